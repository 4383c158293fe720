"""Compute every Music Box mart from raw archives, independently of the dbt models.

The result is meant for comparisons with what dbt builds: each frame is
sorted by its key and uses plain dtypes. Integers that can be NULL are
pandas ``Int64``, dates are ``datetime.date`` objects, text is pandas' default
string dtype, and a NULL float is NaN.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from tests.reference.marts import (
    MartSettings,
    build_churn_features,
    build_churn_labels,
    build_fct_events,
    build_user_song_ratings,
    feature_columns,
    find_bots,
)
from tests.reference.parsing import RawLogs, ValidRow, read_raw_logs

logger = logging.getLogger(__name__)

DEFAULT_RATING_WEIGHTS: Mapping[str, float] = MappingProxyType({"play": 1.0, "download": 2.0})

EVENT_COLUMNS = [
    "user_id",
    "event_date",
    "event_type",
    "device",
    "song_id",
    "play_time",
    "song_length",
    "archive_name",
]
NULLABLE_EVENT_INTEGERS = ("song_id", "play_time", "song_length")


def _as_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def _events_frame(rows: Sequence[ValidRow]) -> pd.DataFrame:
    """Return event rows as a frame sorted by every column, so equal multisets compare equal."""
    frame = pd.DataFrame(
        [[getattr(row, column) for column in EVENT_COLUMNS] for row in rows],
        columns=EVENT_COLUMNS,
        dtype=object,
    )
    frame["user_id"] = frame["user_id"].astype("int64")
    for column in NULLABLE_EVENT_INTEGERS:
        frame[column] = frame[column].astype("Int64")
    for column in ("event_type", "device", "archive_name"):
        frame[column] = frame[column].astype("str")
    frame = frame.sort_values(EVENT_COLUMNS, na_position="first", kind="stable")
    return frame.reset_index(drop=True)


def _rejected_rows_frame(logs: RawLogs) -> pd.DataFrame:
    columns = ["archive_name", "line_number", "reason", "raw_line"]
    frame = pd.DataFrame(
        [
            (row.archive_name, row.line_number, row.reason, row.raw_line)
            for row in logs.rejected_rows
        ],
        columns=columns,
    )
    frame = frame.astype(
        {"archive_name": "str", "line_number": "int64", "reason": "str", "raw_line": "str"}
    )
    return frame.sort_values(["archive_name", "line_number"]).reset_index(drop=True)


def _reconciliation_frame(logs: RawLogs) -> pd.DataFrame:
    """Sum the line counts per archive name.

    NOTE: two archives with the same file name in different folders under the
    raw folder share one row, because the archive name alone identifies an
    archive in every mart.
    """
    columns = ["archive_name", "non_blank_lines", "valid_rows", "rejected_rows"]
    frame = pd.DataFrame(logs.reconciliation, columns=columns)
    frame = frame.astype(
        {
            "archive_name": "str",
            "non_blank_lines": "int64",
            "valid_rows": "int64",
            "rejected_rows": "int64",
        }
    )
    frame = frame.groupby("archive_name", as_index=False, sort=True).sum()
    return frame.reset_index(drop=True)


def _rejected_archives_frame(logs: RawLogs) -> pd.DataFrame:
    frame = pd.DataFrame(logs.rejected_archives, columns=["archive_name", "reason"])
    frame = frame.astype({"archive_name": "str", "reason": "str"})
    return frame.sort_values(["archive_name", "reason"]).reset_index(drop=True)


def _churn_features_frame(records: list[dict[str, object]], windows: Sequence[int]) -> pd.DataFrame:
    columns = feature_columns(windows)
    frame = pd.DataFrame(records, columns=columns, dtype=object)
    dtypes: dict[str, str] = {"user_id": "int64", "main_device": "str"}
    for column in columns:
        if column.startswith("days_since_last_"):
            dtypes[column] = "Int64"
        elif column.startswith("play_time_avg_"):
            dtypes[column] = "float64"
        elif column not in dtypes:
            dtypes[column] = "int64"
    return frame.astype(dtypes).reset_index(drop=True)


def compute_marts(
    raw_dir: str | Path,
    *,
    feature_window_start: str | dt.date = "2017-03-30",
    snapshot_date: str | dt.date = "2017-04-28",
    label_window_days: int = 14,
    feature_windows_days: Sequence[int] = (1, 3, 7, 14, 30),
    bot_percentile: float = 0.999,
    user_sample_ratio: float = 1.0,
    rating_weights: Mapping[str, float] = DEFAULT_RATING_WEIGHTS,
    max_rating: float = 5.0,
    engaged_play_ratio: float = 0.8,
) -> dict[str, Any]:
    """Read every archive under ``raw_dir`` and build all marts of the data contract.

    Parameters
    ----------
    raw_dir : str or Path
        Folder searched at any depth for ``*.tar.gz`` archives.
    feature_window_start : str or datetime.date
        First day of the feature window, as an ISO date.
    snapshot_date : str or datetime.date
        Last day of the feature window, as an ISO date.
    label_window_days : int
        Days after the snapshot date whose events decide churn.
    feature_windows_days : sequence of int
        Window lengths N, in days, of the per-window features.
    bot_percentile : float
        Percentile, between 0 and 1, of the feature-window play counts above which a user is a bot.
    user_sample_ratio : float
        Fraction of users kept. Below 1.0 the reference applies its own rule
        (see :func:`tests.reference.marts.is_sampled`), which dbt does not share.
    rating_weights : Mapping of str to float
        Weight of one ``play`` and of one ``download`` in a rating.
    max_rating : float
        Value at which a rating is capped.
    engaged_play_ratio : float
        Minimum play_time / song_length of an engaged play.

    Returns
    -------
    dict
        ``valid_rows`` and ``fct_events`` (event frames), ``rejected_rows``,
        ``rejected_archives``, ``reconciliation``, ``bot_play_threshold``
        (float, NaN without any play in the feature window), ``bot_users``
        (user_id and feature-window play_count), ``churn_labels``,
        ``churn_features``, ``user_song_ratings`` (frames) and ``summary``
        (dict with the keys of the golden fixture's ``summary.json``).

    Raises
    ------
    ValueError
        When a parameter is out of range.
    FileNotFoundError
        When ``raw_dir`` is not a folder.
    """
    settings = MartSettings(
        feature_window_start=_as_date(feature_window_start),
        snapshot_date=_as_date(snapshot_date),
        label_window_days=label_window_days,
        feature_windows_days=tuple(feature_windows_days),
        bot_percentile=bot_percentile,
        user_sample_ratio=user_sample_ratio,
        rating_weights=rating_weights,
        max_rating=max_rating,
        engaged_play_ratio=engaged_play_ratio,
    )
    raw_path = Path(raw_dir)
    if not raw_path.is_dir():
        raise FileNotFoundError(f"raw log folder not found: {raw_path}")

    logs = read_raw_logs(raw_path)
    threshold, bots = find_bots(logs.valid_rows, settings)
    events = build_fct_events(logs.valid_rows, bots, settings)
    labels = build_churn_labels(events, settings)
    features = build_churn_features(events, labels.keys(), settings)
    ratings = build_user_song_ratings(events, settings)
    logger.debug(
        "Bot threshold %s, %d bots, %d events, %d population users",
        threshold,
        len(bots),
        len(events),
        len(labels),
    )

    bot_users = pd.DataFrame(sorted(bots.items()), columns=["user_id", "play_count"])
    churn_labels = pd.DataFrame(list(labels.items()), columns=["user_id", "is_churned"])
    user_song_ratings = pd.DataFrame(
        ratings, columns=["user_id", "song_id", "play_count", "download_count", "rating"]
    )
    summary = {
        "raw_lines": logs.raw_lines,
        "blank_lines": logs.blank_lines,
        "valid_rows": len(logs.valid_rows),
        "rejected_rows": len(logs.rejected_rows),
        "bot_play_threshold": threshold,
        "bot_users": sorted(bots),
        "fct_events_rows": len(events),
        "population_users": len(labels),
        "churned_users": sum(labels.values()),
        "rating_pairs": len(ratings),
    }
    return {
        "valid_rows": _events_frame(logs.valid_rows),
        "fct_events": _events_frame(events),
        "rejected_rows": _rejected_rows_frame(logs),
        "rejected_archives": _rejected_archives_frame(logs),
        "reconciliation": _reconciliation_frame(logs),
        "bot_play_threshold": threshold,
        "bot_users": bot_users.astype({"user_id": "int64", "play_count": "int64"}),
        "churn_labels": churn_labels.astype({"user_id": "int64", "is_churned": "bool"}),
        "churn_features": _churn_features_frame(features, settings.feature_windows_days),
        "user_song_ratings": user_song_ratings.astype(
            {
                "user_id": "int64",
                "song_id": "int64",
                "play_count": "int64",
                "download_count": "int64",
                "rating": "float64",
            }
        ),
        "summary": summary,
    }
