"""Build the Music Box marts from parsed rows, by the data contract's definitions.

Everything here works on plain Python objects (lists of rows, dicts keyed by
user), with exact integer arithmetic, so that the result does not depend on
how a SQL engine groups, casts or rounds.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from tests.reference.parsing import ValidRow

logger = logging.getLogger(__name__)

EVENT_TYPES = ("play", "download", "search")

# Multiplier and bucket count of the reference's own user sample rule.
SAMPLE_HASH_MULTIPLIER = 2654435761
SAMPLE_BUCKETS = 1_000_000


@dataclass(frozen=True)
class MartSettings:
    """The dbt vars that shape the marts, checked on creation.

    Attributes
    ----------
    feature_window_start : datetime.date
        First day whose events feed the features and the bot count.
    snapshot_date : datetime.date
        Last day of the feature window.
    label_window_days : int
        Days after the snapshot date that decide churn.
    feature_windows_days : tuple of int
        Lengths N of the windows that end on the snapshot date.
    bot_percentile : float
        Percentile, between 0 and 1, of the per-user play counts above which a user is a bot.
    user_sample_ratio : float
        Fraction of users kept, in (0, 1].
    rating_weights : Mapping of str to float
        Weight of one play and of one download in a rating.
    max_rating : float
        Cap of a rating.
    engaged_play_ratio : float
        Share of the song length a play must reach to count as engaged.
    """

    feature_window_start: dt.date
    snapshot_date: dt.date
    label_window_days: int
    feature_windows_days: tuple[int, ...]
    bot_percentile: float
    user_sample_ratio: float
    rating_weights: Mapping[str, float]
    max_rating: float
    engaged_play_ratio: float

    def __post_init__(self) -> None:
        if self.feature_window_start > self.snapshot_date:
            raise ValueError(
                f"feature_window_start {self.feature_window_start} is after "
                f"snapshot_date {self.snapshot_date}"
            )
        if self.label_window_days < 1:
            raise ValueError(f"label_window_days must be at least 1, got {self.label_window_days}")
        if not self.feature_windows_days:
            raise ValueError("feature_windows_days is empty; give at least one window length")
        for days in self.feature_windows_days:
            if not isinstance(days, int) or days < 1:
                raise ValueError(f"feature window lengths must be positive integers, got {days!r}")
        if len(set(self.feature_windows_days)) != len(self.feature_windows_days):
            raise ValueError(f"feature_windows_days repeats a length: {self.feature_windows_days}")
        if not 0.0 <= self.bot_percentile <= 1.0:
            raise ValueError(f"bot_percentile must be in [0, 1], got {self.bot_percentile}")
        if not 0.0 < self.user_sample_ratio <= 1.0:
            raise ValueError(f"user_sample_ratio must be in (0, 1], got {self.user_sample_ratio}")
        missing = {"play", "download"} - set(self.rating_weights)
        if missing:
            raise ValueError(f"rating_weights has no weight for {sorted(missing)}")
        if self.engaged_play_ratio < 0:
            raise ValueError(f"engaged_play_ratio must be >= 0, got {self.engaged_play_ratio}")

    @property
    def label_window_end(self) -> dt.date:
        """Last day of the label window."""
        return self.snapshot_date + dt.timedelta(days=self.label_window_days)

    def in_feature_window(self, day: dt.date) -> bool:
        """Return True when ``day`` lies in [feature_window_start, snapshot_date]."""
        return self.feature_window_start <= day <= self.snapshot_date

    def in_label_window(self, day: dt.date) -> bool:
        """Return True when ``day`` lies in (snapshot_date, label_window_end]."""
        return self.snapshot_date < day <= self.label_window_end

    def window_start(self, days: int) -> dt.date:
        """Return the first day of the N-day window ending on the snapshot date.

        A window never reaches before the feature window start, because no
        earlier event feeds the features.
        """
        start = self.snapshot_date - dt.timedelta(days=days - 1)
        return max(start, self.feature_window_start)


def count_feature_window_plays(rows: Iterable[ValidRow], settings: MartSettings) -> Counter[int]:
    """Count each user's valid plays in the feature window."""
    counts: Counter[int] = Counter()
    for row in rows:
        if row.event_type == "play" and settings.in_feature_window(row.event_date):
            counts[row.user_id] += 1
    return counts


def find_bots(rows: Iterable[ValidRow], settings: MartSettings) -> tuple[float, dict[int, int]]:
    """Return the bot play threshold and the bots with their feature-window play counts.

    The threshold is the percentile of the play counts of users with at least
    one play in the feature window, with linear interpolation between ranks
    (numpy's default method). A user whose count is strictly greater is a
    bot. With no play in the feature window the threshold is NaN and no user
    is a bot.
    """
    counts = count_feature_window_plays(rows, settings)
    if not counts:
        return math.nan, {}
    values = np.array(sorted(counts.values()), dtype=np.float64)
    threshold = float(np.quantile(values, settings.bot_percentile, method="linear"))
    bots = {user_id: count for user_id, count in counts.items() if count > threshold}
    return threshold, bots


def is_sampled(user_id: int, ratio: float) -> bool:
    """Return True when the user sample keeps ``user_id``.

    At ratio 1.0 every user is kept. Below it, the user is kept when
    ``(user_id * 2654435761) % 1_000_000 < ratio * 1_000_000``. This rule
    belongs to the reference alone: the dbt models draw their sample with
    their own hash, so the two are compared only at ratio 1.0.
    """
    if ratio >= 1.0:
        return True
    return (user_id * SAMPLE_HASH_MULTIPLIER) % SAMPLE_BUCKETS < ratio * SAMPLE_BUCKETS


def build_fct_events(
    rows: Iterable[ValidRow], bots: Mapping[int, int], settings: MartSettings
) -> list[ValidRow]:
    """Keep the valid rows of non-bot users that pass the user sample, repeats included.

    Bots are found among all valid rows before the sample is drawn.
    """
    return [
        row
        for row in rows
        if row.user_id not in bots and is_sampled(row.user_id, settings.user_sample_ratio)
    ]


def build_churn_labels(events: Iterable[ValidRow], settings: MartSettings) -> dict[int, bool]:
    """Return ``is_churned`` for each population user.

    The population is the users with at least one event of any type in the
    feature window. A user is churned without any event in the label window.
    """
    population: set[int] = set()
    active_after_snapshot: set[int] = set()
    for row in events:
        if settings.in_feature_window(row.event_date):
            population.add(row.user_id)
        elif settings.in_label_window(row.event_date):
            active_after_snapshot.add(row.user_id)
    return {user_id: user_id not in active_after_snapshot for user_id in sorted(population)}


@dataclass
class _WindowTotals:
    """Running totals of one user over one feature window."""

    counts: Counter[str] = field(default_factory=Counter)
    play_time_total: int = 0
    play_time_plays: int = 0
    engaged_plays: int = 0
    songs: set[int] = field(default_factory=set)
    days: set[dt.date] = field(default_factory=set)


@dataclass
class _UserTotals:
    """Running totals of one user over the whole feature window."""

    windows: dict[int, _WindowTotals]
    last_date: dict[str, dt.date] = field(default_factory=dict)
    device_events: Counter[str] = field(default_factory=Counter)


def is_engaged_play(row: ValidRow, ratio: Fraction) -> bool:
    """Return True for a play of at least ``ratio`` times its song's length.

    Both durations must be known and the song length positive. The ratio is
    exact, so that 0.8 means 8/10 and not its nearest binary float.
    """
    if row.play_time is None or row.song_length is None or row.song_length <= 0:
        return False
    return row.play_time * ratio.denominator >= ratio.numerator * row.song_length


def feature_columns(windows: Sequence[int]) -> list[str]:
    """Return the column names of ``churn_features`` in their output order."""
    columns = ["user_id"]
    columns += [f"{event_type}_count_{days}d" for event_type in EVENT_TYPES for days in windows]
    columns += [f"days_since_last_{event_type}" for event_type in EVENT_TYPES]
    columns.append("days_since_last_event")
    for name in (
        "play_time_total",
        "play_time_avg",
        "engaged_play_count",
        "distinct_song_count",
        "active_day_count",
    ):
        columns += [f"{name}_{days}d" for days in windows]
    columns.append("main_device")
    return columns


def _accumulate(
    events: Iterable[ValidRow], population: Iterable[int], settings: MartSettings
) -> dict[int, _UserTotals]:
    windows = settings.feature_windows_days
    window_starts = {days: settings.window_start(days) for days in windows}
    engaged_ratio = Fraction(str(settings.engaged_play_ratio))
    totals = {
        user_id: _UserTotals(windows={days: _WindowTotals() for days in windows})
        for user_id in population
    }
    for row in events:
        user = totals.get(row.user_id)
        if user is None or not settings.in_feature_window(row.event_date):
            continue
        previous = user.last_date.get(row.event_type)
        if previous is None or row.event_date > previous:
            user.last_date[row.event_type] = row.event_date
        if row.device is not None:
            user.device_events[row.device] += 1
        for days, window in user.windows.items():
            if row.event_date < window_starts[days]:
                continue
            window.counts[row.event_type] += 1
            window.days.add(row.event_date)
            if row.event_type != "play":
                continue
            if row.song_id is not None:
                window.songs.add(row.song_id)
            if row.play_time is not None:
                window.play_time_total += row.play_time
                window.play_time_plays += 1
            if is_engaged_play(row, engaged_ratio):
                window.engaged_plays += 1
    return totals


def _main_device(device_events: Counter[str]) -> str | None:
    """Return the device with the most events, the alphabetically first on a tie."""
    if not device_events:
        return None
    return min(device_events.items(), key=lambda item: (-item[1], item[0]))[0]


def build_churn_features(
    events: Iterable[ValidRow], population: Iterable[int], settings: MartSettings
) -> list[dict[str, object]]:
    """Compute one feature record per population user, keyed by ``feature_columns``.

    NULL is None. Every ``_<N>d`` column is over the user's events in the N-day
    window, while ``days_since_last_*`` and ``main_device`` look at the whole
    feature window.
    """
    totals = _accumulate(events, population, settings)
    records = []
    for user_id in sorted(totals):
        user = totals[user_id]
        record: dict[str, object] = {"user_id": user_id}
        for event_type in EVENT_TYPES:
            for days, window in user.windows.items():
                record[f"{event_type}_count_{days}d"] = window.counts[event_type]
        for event_type in EVENT_TYPES:
            last = user.last_date.get(event_type)
            since = None if last is None else (settings.snapshot_date - last).days
            record[f"days_since_last_{event_type}"] = since
        last_event = max(user.last_date.values(), default=None)
        record["days_since_last_event"] = (
            None if last_event is None else (settings.snapshot_date - last_event).days
        )
        for days, window in user.windows.items():
            record[f"play_time_total_{days}d"] = window.play_time_total
        for days, window in user.windows.items():
            average = None
            if window.play_time_plays:
                average = window.play_time_total / window.play_time_plays
            record[f"play_time_avg_{days}d"] = average
        for days, window in user.windows.items():
            record[f"engaged_play_count_{days}d"] = window.engaged_plays
        for days, window in user.windows.items():
            record[f"distinct_song_count_{days}d"] = len(window.songs)
        for days, window in user.windows.items():
            record[f"active_day_count_{days}d"] = len(window.days)
        record["main_device"] = _main_device(user.device_events)
        records.append(record)
    return records


def build_user_song_ratings(
    events: Iterable[ValidRow], settings: MartSettings
) -> list[tuple[int, int, int, int, float]]:
    """Return (user_id, song_id, play_count, download_count, rating) sorted by user and song.

    Every date of the cleaned events counts. Searches and rows without a song
    are left out. The rating is the weighted sum of the two counts, capped at
    the maximum rating.
    """
    # (user_id, song_id) -> [play_count, download_count]
    counts: defaultdict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for row in events:
        if row.song_id is None:
            continue
        if row.event_type == "play":
            counts[(row.user_id, row.song_id)][0] += 1
        elif row.event_type == "download":
            counts[(row.user_id, row.song_id)][1] += 1
    play_weight = settings.rating_weights["play"]
    download_weight = settings.rating_weights["download"]
    ratings = []
    for (user_id, song_id), (plays, downloads) in sorted(counts.items()):
        rating = min(play_weight * plays + download_weight * downloads, settings.max_rating)
        ratings.append((user_id, song_id, plays, downloads, float(rating)))
    return ratings
