"""Comparison of built marts with the golden fixture's expected files.

The marts are read from the parquet files of the warehouse, so the same
comparison serves every target whose warehouse is a local folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

TableReader = Callable[[str, str], pd.DataFrame]


def warehouse_reader(warehouse_dir: Path, schema: str = "music_box") -> TableReader:
    """Return a reader of ``(layer, table)`` from a Spark warehouse folder.

    ``layer`` is the dbt custom schema (``marts``, ``intermediate``...), which
    dbt appends to the target schema.
    """

    def read(layer: str, table: str) -> pd.DataFrame:
        path = warehouse_dir / f"{schema}_{layer}.db" / table
        if not path.is_dir():
            raise AssertionError(f"table {schema}_{layer}.{table} not found at {path}")
        return ds.dataset(path, format="parquet").to_table().to_pandas()

    return read


def load_expected(expected_dir: Path, name: str) -> pd.DataFrame:
    """Read one expected CSV with empty cells as NULL and ids as integers."""
    return pd.read_csv(expected_dir / name, keep_default_na=False, na_values=[""])


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _same(expected: object, actual: object) -> bool:
    if _is_missing(expected) or _is_missing(actual):
        return _is_missing(expected) and _is_missing(actual)
    if isinstance(expected, (bool, str)) or isinstance(actual, (bool, str)):
        return str(expected).lower() == str(actual).lower()
    return math.isclose(float(expected), float(actual), rel_tol=1e-12, abs_tol=1e-9)


def compare_frames(expected: pd.DataFrame, actual: pd.DataFrame, keys: list[str]) -> list[str]:
    """Return one message per difference between the expected rows and the actual ones.

    Rows are matched on ``keys``; every expected column is compared; extra
    actual columns are ignored. Messages name the key and the column.
    """
    missing_columns = [column for column in expected.columns if column not in actual.columns]
    if missing_columns:
        return [f"columns missing from the mart: {missing_columns}"]
    actual = actual[list(expected.columns)]
    expected_keys = expected.set_index(keys).index
    actual_keys = actual.set_index(keys).index
    problems = []
    if actual_keys.has_duplicates:
        problems.append(
            f"duplicate keys in the mart: {list(actual_keys[actual_keys.duplicated()])[:5]}"
        )
    only_expected = expected_keys.difference(actual_keys)
    only_actual = actual_keys.difference(expected_keys)
    if len(only_expected):
        problems.append(f"rows missing from the mart for {keys}: {list(only_expected)[:10]}")
    if len(only_actual):
        problems.append(f"unexpected rows in the mart for {keys}: {list(only_actual)[:10]}")
    merged = expected.merge(actual, on=keys, suffixes=("_expected", "_actual"), how="inner")
    merged = merged.sort_values(keys)
    for column in expected.columns:
        if column in keys:
            continue
        for _, row in merged.iterrows():
            wanted, got = row[f"{column}_expected"], row[f"{column}_actual"]
            if not _same(wanted, got):
                key = {name: row[name] for name in keys}
                problems.append(f"{key} column {column}: expected {wanted!r}, got {got!r}")
    return problems


def actual_summary(read: TableReader) -> dict[str, object]:
    """Compute the summary.json figures from the built tables."""
    archives = read("marts", "rpt_archive_reconciliation")
    rejected = read("marts", "rejected_rows")
    bots = read("intermediate", "int_users_bot_flagged")
    events = read("marts", "fct_events")
    labels = read("marts", "churn_labels")
    ratings = read("marts", "user_song_ratings")
    line_rejects = rejected[rejected["rejection_level"] == "line"]
    return {
        "raw_lines": int(archives["line_count"].sum()),
        "blank_lines": int(archives["blank_line_count"].sum()),
        "valid_rows": int(archives["valid_row_count"].sum()),
        "rejected_rows": len(line_rejects),
        "bot_play_threshold": float(bots["bot_play_threshold"].iloc[0]),
        "bot_users": sorted(int(user) for user in bots.loc[bots["is_bot"], "user_id"]),
        "fct_events_rows": len(events),
        "population_users": len(labels),
        "churned_users": int(labels["is_churned"].sum()),
        "rating_pairs": len(ratings),
    }


def load_summary(expected_dir: Path) -> dict[str, object]:
    return json.loads((expected_dir / "summary.json").read_text(encoding="utf-8"))
