"""Ground truth of a generated dataset: files, the contract's labels and the oracles.

The ground-truth folder contains parquet files and ``manifest.json`` (see
``docs/generator.md`` for every column). Two oracles are read back from it:

- :func:`oracle_auc`, the ROC AUC of the true churn probabilities against
  the realised labels over the contract's population (``observed=True``
  scores the probabilities inferred from the observed days instead);
- :func:`oracle_top_songs`, each user's songs ranked by true affinity,
  ``favourite_share * favourite_weight(song) + (1 - favourite_share) *
  taste_weight(genre of song) * popularity_weight(song)``, which is the
  probability that the user's next play is that song.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from python_ml.generator import churn
from python_ml.generator.catalog import Catalog
from python_ml.generator.params import (
    BOT_PERCENTILE,
    DAY_COUNT,
    FIRST_DAY,
    KINDS,
    LABEL_FIRST_INDEX,
    LABEL_LAST_INDEX,
    LABEL_WINDOW_DAYS,
    SNAPSHOT_DATE,
    SNAPSHOT_INDEX,
    GenerationParameters,
    day_dates,
)
from python_ml.generator.population import Population

if TYPE_CHECKING:
    from python_ml.generator.dataset import ArchiveWriter

USERS_FILE = "users.parquet"
SONGS_FILE = "songs.parquet"
TASTES_FILE = "user_genre_tastes.parquet"
FAVOURITES_FILE = "user_favourite_songs.parquet"
DIRT_FILE = "planted_dirt.parquet"
ARCHIVES_FILE = "archives.parquet"
MANIFEST_FILE = "manifest.json"


def contract_bots(feature_plays: np.ndarray) -> tuple[np.ndarray, float]:
    """Apply the contract's bot rule to valid plays per user in the feature window.

    Among users with at least one play, the 0.999 percentile is taken with
    linear interpolation (numpy's default); users strictly above it are bots.

    Returns
    -------
    is_bot : numpy.ndarray of bool
    threshold : float
        The percentile, NaN when no user played.
    """
    players = feature_plays[feature_plays > 0]
    if len(players) == 0:
        return np.zeros(len(feature_plays), dtype=bool), math.nan
    threshold = float(np.percentile(players, BOT_PERCENTILE * 100))
    return feature_plays > threshold, threshold


def _write_table(path: Path, columns: dict[str, Any]) -> None:
    pq.write_table(pa.table(columns), path, compression="zstd")


def write_ground_truth(
    truth_dir: Path,
    *,
    out_dir: Path,
    users: int,
    seed: int,
    params: GenerationParameters,
    catalog: Catalog,
    population: Population,
    activity: churn.Activity,
    probability: np.ndarray,
    writer: ArchiveWriter,
) -> dict[str, Any]:
    """Write every ground-truth file into ``truth_dir`` and return the manifest."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    valid = activity.counts + writer.extra_valid
    feature = valid[:, :, : SNAPSHOT_INDEX + 1]
    label_events = valid[:, :, LABEL_FIRST_INDEX : LABEL_LAST_INDEX + 1].sum(axis=(0, 2))
    is_bot, threshold = contract_bots(feature[0].sum(axis=1))
    active_days = feature.sum(axis=0) > 0
    in_population = ~is_bot & active_days.any(axis=1)
    is_churned = label_events == 0
    last_day = np.where(
        active_days.any(axis=1), SNAPSHOT_INDEX - np.argmax(active_days[:, ::-1], axis=1), -1
    )

    state = activity.state[:, SNAPSHOT_INDEX]
    known = ~population.is_bot & (state != churn.NOT_JOINED)
    probability = np.where(known, probability, np.nan)
    observed = churn.observed_churn_probability(params, population.activity, activity.counts)
    observed = np.where(known, observed, np.nan)
    scored = in_population & known
    auc = roc_auc(is_churned[scored], probability[scored])
    observed_auc = roc_auc(is_churned[scored], observed[scored])
    churn_rate = float(is_churned[in_population].mean()) if in_population.any() else math.nan

    traits = population.activity
    dates = day_dates()
    fade_age = activity.fade_age[:, SNAPSHOT_INDEX]
    _write_table(
        truth_dir / USERS_FILE,
        {
            "user_id": population.user_id,
            "is_bot": is_bot,
            "is_planted_bot": population.is_bot,
            "in_population": in_population,
            "is_churned": is_churned,
            "churn_probability": probability,
            "observed_churn_probability": observed,
            "state_at_snapshot": [churn.STATE_NAMES[code] for code in state.tolist()],
            "fading_days_at_snapshot": pa.array(fade_age, mask=fade_age < 0),
            "join_date": [dates[day] for day in traits.join_day.tolist()],
            "play_rate": traits.play_rate,
            "download_ratio": traits.download_ratio,
            "search_rate": traits.search_rate,
            "fade_hazard": traits.fade_hazard,
            "bot_play_rate": activity.bot_play_rate,
            "favourite_share": population.favourite_share,
            "device": np.where(population.device == 0, "ar", "ip"),
            "paid_flag": population.paid,
            "play_count_30d": feature[0].sum(axis=1),
            "download_count_30d": feature[1].sum(axis=1),
            "search_count_30d": feature[2].sum(axis=1),
            "days_since_last_event": pa.array(SNAPSHOT_INDEX - last_day, mask=last_day < 0),
            "label_window_events": label_events,
        },
    )
    _write_table(
        truth_dir / SONGS_FILE,
        {
            "song_id": catalog.song_id,
            "genre": catalog.genre,
            "song_name": catalog.song_name,
            "singer": catalog.singer,
            "song_length": catalog.song_length,
            "song_type": catalog.song_type,
            "popularity_weight": catalog.popularity,
        },
    )
    genre_count = catalog.genre_count
    _write_table(
        truth_dir / TASTES_FILE,
        {
            "user_id": np.repeat(population.user_id, genre_count),
            "genre": np.tile(np.arange(genre_count, dtype=np.int16), population.size),
            "taste_weight": population.taste.reshape(-1),
        },
    )
    _write_favourites(truth_dir / FAVOURITES_FILE, catalog, population)
    records = writer.records
    _write_table(
        truth_dir / DIRT_FILE,
        {
            "archive_name": [record.archive_name for record in records],
            "line_number": pa.array([record.line_number for record in records], pa.int64()),
            "dirt_kind": [record.dirt_kind for record in records],
            "variant": [record.variant for record in records],
            "reject_reason": [record.reject_reason for record in records],
        },
    )
    stats = writer.stats
    _write_table(
        truth_dir / ARCHIVES_FILE,
        {
            field.name: [getattr(item, field.name) for item in stats]
            for field in dataclasses.fields(stats[0])
        },
    )

    def per_kind(attribute: str) -> dict[str, int]:
        totals = Counter()
        for item in stats:
            totals[item.kind] += getattr(item, attribute)
        return {kind: int(totals[kind]) for kind in KINDS}

    manifest = {
        "seed": seed,
        "users": users,
        "first_date": str(FIRST_DAY),
        "last_date": str(dates[DAY_COUNT - 1]),
        "snapshot_date": str(SNAPSHOT_DATE),
        "label_window_days": LABEL_WINDOW_DAYS,
        "raw_folder": str(out_dir),
        "archives": len(stats),
        "lines": per_kind("lines"),
        "blank_lines": sum(item.blank_lines for item in stats),
        "valid_rows": per_kind("valid_rows"),
        "rejected_lines": dict(
            sorted(
                Counter(record.reject_reason for record in records if record.reject_reason).items()
            )
        ),
        "dirt": dict(sorted(Counter(record.dirt_kind for record in records).items())),
        "users_with_events": int((valid.sum(axis=(0, 2)) > 0).sum()),
        "bots": int(is_bot.sum()),
        "planted_bots": int(population.is_bot.sum()),
        "bot_play_threshold": _json_number(threshold),
        "population_users": int(in_population.sum()),
        "churned_users": int(is_churned[in_population].sum()),
        "churn_rate": _json_number(churn_rate),
        "oracle_auc": _json_number(auc),
        "observed_oracle_auc": _json_number(observed_auc),
        "catalog_songs": catalog.size,
        "files": [
            USERS_FILE,
            SONGS_FILE,
            TASTES_FILE,
            FAVOURITES_FILE,
            DIRT_FILE,
            ARCHIVES_FILE,
        ],
        "parameters": params.to_json(),
    }
    (truth_dir / MANIFEST_FILE).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    return manifest


def _json_number(value: float) -> float | None:
    """Return ``value``, or None (JSON null) when it is NaN, which JSON cannot carry."""
    return None if math.isnan(value) else value


def _write_favourites(path: Path, catalog: Catalog, population: Population) -> None:
    """Write favourite songs with their weights, merging a song drawn twice for one user."""
    rows, slots = np.nonzero(population.favourites >= 0)
    songs = population.favourites[rows, slots]
    weights = population.favourite_weight[rows, slots]
    keys = rows.astype(np.int64) * catalog.size + songs
    unique, inverse = np.unique(keys, return_inverse=True)
    merged = np.bincount(inverse, weights=weights)
    _write_table(
        path,
        {
            "user_id": population.user_id[unique // catalog.size],
            "song_id": catalog.song_id[unique % catalog.size],
            "favourite_weight": merged,
        },
    )


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the ROC AUC of ``scores`` for boolean ``labels``, NaN without both classes.

    It is the Mann-Whitney statistic: the chance that a random positive
    scores above a random negative, ties counting one half.
    """
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(scores, kind="stable")
    _, first, sizes = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(first + (sizes + 1) / 2.0, sizes)
    rank_sum = ranks[labels].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def read_manifest(truth_dir: str | Path) -> dict[str, Any]:
    """Return the parsed ``manifest.json`` of a ground-truth folder."""
    return json.loads((Path(truth_dir) / MANIFEST_FILE).read_text(encoding="utf-8"))


def read_users(truth_dir: str | Path) -> pd.DataFrame:
    """Return the per-user ground truth (``users.parquet``)."""
    return pd.read_parquet(Path(truth_dir) / USERS_FILE)


def oracle_auc(truth_dir: str | Path, observed: bool = False) -> float:
    """Return the ROC AUC of the true churn probabilities against the population's labels.

    With ``observed``, the probabilities are ``observed_churn_probability``,
    inferred from the days up to the snapshot date without the hidden state.
    """
    column = "observed_churn_probability" if observed else "churn_probability"
    users = read_users(truth_dir)
    population = users[users["in_population"]]
    return roc_auc(population["is_churned"].to_numpy(), population[column].to_numpy())


@dataclasses.dataclass
class AffinityModel:
    """The true song affinities of every user, loaded from a ground-truth folder.

    Attributes
    ----------
    user_index : dict of int to int
        Row of each user id in ``taste`` and ``favourite_share``.
    song_ids, song_genre, popularity : numpy.ndarray
        Catalog columns, indexed by song position.
    genre_songs : list of numpy.ndarray
        Song positions of each genre, most popular first.
    taste : numpy.ndarray, shape (users, genres)
    favourite_share : numpy.ndarray
    favourites : list of dict of int to float
        Per user row, favourite song position to its favourite weight.
    """

    user_index: dict[int, int]
    song_ids: np.ndarray
    song_genre: np.ndarray
    popularity: np.ndarray
    genre_songs: list[np.ndarray]
    taste: np.ndarray
    favourite_share: np.ndarray
    favourites: list[dict[int, float]]

    @classmethod
    def load(cls, truth_dir: str | Path) -> AffinityModel:
        """Read songs, users, tastes and favourites from ``truth_dir``."""
        folder = Path(truth_dir)
        songs = pd.read_parquet(folder / SONGS_FILE)
        users = pd.read_parquet(folder / USERS_FILE, columns=["user_id", "favourite_share"])
        tastes = pd.read_parquet(folder / TASTES_FILE)
        favourites = pd.read_parquet(folder / FAVOURITES_FILE)

        user_ids = users["user_id"].to_numpy()
        user_rows = pd.Series(np.arange(len(user_ids)), index=user_ids)
        song_ids = songs["song_id"].to_numpy()
        song_genre = songs["genre"].to_numpy().astype(np.int64)
        popularity = songs["popularity_weight"].to_numpy()
        genre_count = int(song_genre.max()) + 1
        genre_songs = []
        for genre in range(genre_count):
            members = np.flatnonzero(song_genre == genre)
            genre_songs.append(members[np.argsort(-popularity[members], kind="stable")])

        taste = np.zeros((len(user_ids), genre_count))
        taste[user_rows[tastes["user_id"]].to_numpy(), tastes["genre"].to_numpy()] = tastes[
            "taste_weight"
        ].to_numpy()

        song_position = pd.Series(np.arange(len(song_ids)), index=song_ids)
        favourite_maps: list[dict[int, float]] = [{} for _ in range(len(user_ids))]
        for row, song, weight in zip(
            user_rows[favourites["user_id"]].tolist(),
            song_position[favourites["song_id"]].tolist(),
            favourites["favourite_weight"].tolist(),
            strict=True,
        ):
            favourite_maps[row][song] = weight
        return cls(
            user_index={int(user): row for row, user in enumerate(user_ids.tolist())},
            song_ids=song_ids,
            song_genre=song_genre,
            popularity=popularity,
            genre_songs=genre_songs,
            taste=taste,
            favourite_share=users["favourite_share"].to_numpy(),
            favourites=favourite_maps,
        )

    def affinity(self, row: int, songs: np.ndarray) -> np.ndarray:
        """Return the affinity of user ``row`` for the song positions ``songs``."""
        share = self.favourite_share[row]
        result = (1.0 - share) * self.taste[row, self.song_genre[songs]] * self.popularity[songs]
        favourites = self.favourites[row]
        for index, song in enumerate(songs.tolist()):
            if song in favourites:
                result[index] += share * favourites[song]
        return result

    def top_songs(
        self,
        user_ids: Iterable[int],
        n: int,
        exclude: Mapping[int, Iterable[int]] | None = None,
    ) -> dict[int, list[int]]:
        """Return each user's ``n`` song ids of highest affinity, best first, ``exclude`` left out.

        Outside the favourites, affinity within a genre follows popularity, so
        the top ``n`` songs are among each genre's ``n + e`` most popular
        songs (``e`` of them excluded) plus the favourites: only those
        candidates are scored.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        position = {int(song): index for index, song in enumerate(self.song_ids.tolist())}
        result: dict[int, list[int]] = {}
        for user in (int(value) for value in user_ids):
            if user not in self.user_index:
                raise KeyError(f"user {user} is not in the ground truth")
            row = self.user_index[user]
            excluded = {
                position[int(song)]
                for song in (exclude or {}).get(user, ())
                if int(song) in position
            }
            excluded_per_genre = Counter(self.song_genre[song] for song in excluded)
            candidates = [
                songs[: n + excluded_per_genre[genre]]
                for genre, songs in enumerate(self.genre_songs)
            ]
            candidates.append(np.fromiter(self.favourites[row], dtype=np.int64))
            pool = np.unique(np.concatenate(candidates))
            if excluded:
                pool = pool[~np.isin(pool, np.fromiter(excluded, dtype=np.int64))]
            scores = self.affinity(row, pool)
            # Highest affinity first; equal affinities by song id.
            ranked = pool[np.lexsort((self.song_ids[pool], -scores))][:n]
            result[user] = self.song_ids[ranked].tolist()
        return result


def oracle_top_songs(
    truth_dir: str | Path,
    user_ids: Iterable[int],
    n: int,
    exclude: Mapping[int, Iterable[int]] | None = None,
) -> dict[int, list[int]]:
    """Return each user's top-``n`` song ids by true affinity, best first.

    Parameters
    ----------
    truth_dir : str or Path
        A ground-truth folder written by ``generate_dataset``.
    user_ids : iterable of int
        Users to rank for; each must be in the ground truth.
    n : int
        Songs per user (fewer when the catalog minus exclusions is smaller).
    exclude : mapping of int to iterable of int, optional
        Song ids to leave out per user, such as the songs seen in training.

    Raises
    ------
    KeyError
        When a user id is not in the ground truth.
    """
    return AffinityModel.load(truth_dir).top_songs(user_ids, n, exclude)
