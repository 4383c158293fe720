"""One day of events: songs, play times, devices, search queries and line order.

The daily counts come from ``churn.simulate_activity``; this module fills in
what each event contains. Lines of a day are ordered by a simulated time of
day, so users interleave as in a real export.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from python_ml.generator import text
from python_ml.generator.catalog import Catalog
from python_ml.generator.churn import KIND_DOWN, KIND_PLAY, KIND_SEARCH
from python_ml.generator.params import GenerationParameters, day_dates
from python_ml.generator.population import Population
from python_ml.generator.seeding import component_rng

# Relative activity by hour of the day in China (UTC+8), midnight first.
LOCAL_HOUR_WEIGHTS = np.array(
    [5, 3, 2, 1, 1, 1, 2, 4, 6, 6, 6, 7, 9, 8, 7, 7, 7, 7, 8, 9, 11, 12, 11, 8], dtype=np.float64
)
UTC_OFFSET_HOURS = 8
# Shares of search queries by what they contain.
QUERY_SHARES = {"singer": 0.47, "title": 0.35, "title_prefix": 0.11, "singer_title": 0.07}


@dataclasses.dataclass
class KindEvents:
    """The events of one kind on one day, in line order.

    Attributes
    ----------
    user : numpy.ndarray of int64
        Population index of each event's user.
    device : numpy.ndarray of int8
        0 for ``ar``, 1 for ``ip``.
    song : numpy.ndarray of int64
        Catalog index (plays and downloads; for searches, the song the query
        was about).
    play_time : numpy.ndarray of int64 or None
        Seconds played (plays only).
    time_stamp : numpy.ndarray of int64 or None
        Unix time in seconds (searches only).
    query : list of str or None
        Search text (searches only).
    """

    user: np.ndarray
    device: np.ndarray
    song: np.ndarray
    play_time: np.ndarray | None = None
    time_stamp: np.ndarray | None = None
    query: list[str] | None = None

    def __len__(self) -> int:
        return len(self.user)

    def take(self, rows: np.ndarray | slice) -> KindEvents:
        """Return the events at ``rows``, in that order."""
        query = None
        if self.query is not None:
            indices = range(len(self.user))[rows] if isinstance(rows, slice) else rows
            query = [self.query[index] for index in indices]
        return KindEvents(
            user=self.user[rows],
            device=self.device[rows],
            song=self.song[rows],
            play_time=None if self.play_time is None else self.play_time[rows],
            time_stamp=None if self.time_stamp is None else self.time_stamp[rows],
            query=query,
        )


def day_start_timestamp(day: int) -> int:
    """Return the Unix time of 00:00 UTC on generated day ``day``."""
    date = day_dates()[day]
    return int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp())


def seconds_of_day(rng: np.random.Generator, count: int) -> np.ndarray:
    """Draw ``count`` times of day in UTC seconds [0, 86400), following app usage."""
    utc_weights = np.roll(LOCAL_HOUR_WEIGHTS, -UTC_OFFSET_HOURS)
    hours = rng.choice(24, size=count, p=utc_weights / utc_weights.sum())
    return hours * 3600 + rng.integers(0, 3600, size=count)


def draw_devices(
    params: GenerationParameters,
    population: Population,
    users: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Return each event's device: the user's main one, now and then the other."""
    switch = rng.random(len(users)) < params.other_device_share
    return np.where(switch, 1 - population.device[users], population.device[users]).astype(np.int8)


def draw_play_times(
    params: GenerationParameters, lengths: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Return seconds played: full plays (a little past the end), skips and partial plays."""
    count = len(lengths)
    mode = rng.random(count)
    full = lengths + rng.integers(0, params.overrun_max_seconds + 1, size=count)
    skip = rng.integers(1, params.skip_max_seconds + 1, size=count)
    partial = np.maximum(1, np.rint(lengths * rng.uniform(0.1, 0.95, size=count)))
    full_cut = params.full_play_share
    skip_cut = full_cut + params.skip_share
    times = np.where(mode < full_cut, full, np.where(mode < skip_cut, skip, partial))
    return times.astype(np.int64)


def search_queries(catalog: Catalog, songs: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Return one query per song: its singer, its title, a title prefix or both."""
    names = list(QUERY_SHARES)
    shares = np.array(list(QUERY_SHARES.values()))
    choices = rng.choice(len(names), size=len(songs), p=shares / shares.sum())
    queries = []
    for song, choice in zip(songs.tolist(), choices.tolist(), strict=True):
        title = catalog.song_name[song]
        singer = catalog.singer[song]
        kind = names[choice]
        if kind == "singer":
            queries.append(singer)
        elif kind == "title":
            queries.append(title)
        elif kind == "title_prefix":
            queries.append(_prefix(title))
        else:
            queries.append(f"{singer} {title}")
    return queries


def _prefix(title: str) -> str:
    """Return the start of a title as typed into a search box."""
    if title.isascii():
        return title.split(" ")[0]
    return title[: max(1, min(2, len(title) - 1))]


def generate_day(
    params: GenerationParameters,
    catalog: Catalog,
    population: Population,
    counts: np.ndarray,
    day: int,
    seed: int,
) -> dict[int, KindEvents]:
    """Generate the play, download and search events of ``day``.

    Parameters
    ----------
    counts : numpy.ndarray, shape (3, users)
        Events of each kind per user on that day.

    Returns
    -------
    dict of int to KindEvents
        Keyed by ``KIND_PLAY``, ``KIND_DOWN`` and ``KIND_SEARCH``.
    """
    rng = component_rng(seed, "events", day)
    start = day_start_timestamp(day)
    result = {}
    for kind in (KIND_PLAY, KIND_DOWN, KIND_SEARCH):
        users = np.repeat(np.arange(population.size), counts[kind])
        songs = population.draw_songs(catalog, users, rng)
        devices = draw_devices(params, population, users, rng)
        seconds = seconds_of_day(rng, len(users))
        order = np.argsort(seconds, kind="stable")
        events = KindEvents(user=users, device=devices, song=songs)
        if kind == KIND_PLAY:
            events.play_time = draw_play_times(params, catalog.song_length[songs], rng)
        if kind == KIND_SEARCH:
            events.time_stamp = start + seconds
            events.query = search_queries(catalog, songs, rng)
        result[kind] = events.take(order)
    return result


def gbk_candidates(catalog: Catalog) -> np.ndarray:
    """Return, per song, whether its title or singer has a GBK form that is not UTF-8."""
    return np.array(
        [
            text.has_invalid_gbk_bytes(title) or text.has_invalid_gbk_bytes(singer)
            for title, singer in zip(catalog.song_name, catalog.singer, strict=True)
        ]
    )
