"""``dbt build`` of the golden fixture reproduces every expected value, on both targets.

Each test runs once on the local target's warehouse and once on the warehouse
that the Thrift server wrote. The marts are read from their parquet files, so
the comparison is the same for both.
"""

from __future__ import annotations

import pytest

from tests.conftest import BUILD_OUTPUT_FILE, GOLDEN_DIR
from tests.integration.golden import (
    actual_summary,
    compare_frames,
    load_expected,
    load_summary,
    warehouse_reader,
)

EXPECTED_DIR = GOLDEN_DIR / "expected"

pytestmark = pytest.mark.slow


@pytest.fixture(
    scope="module",
    params=["local", pytest.param("thrift", marks=pytest.mark.thrift)],
)
def read(request: pytest.FixtureRequest):
    """Reader of the golden build's tables on the target given by the parameter."""
    if request.param == "local":
        warehouse = request.getfixturevalue("golden_build") / "spark" / "warehouse"
    else:
        warehouse = request.getfixturevalue("thrift_build").warehouse_dir
    return warehouse_reader(warehouse)


@pytest.mark.parametrize(
    ("expected_file", "table", "keys"),
    [
        ("churn_labels.csv", "churn_labels", ["user_id"]),
        ("churn_features.csv", "churn_features", ["user_id"]),
        ("user_song_ratings.csv", "user_song_ratings", ["user_id", "song_id"]),
    ],
)
def test_mart_matches_expected(read, expected_file: str, table: str, keys: list[str]) -> None:
    expected = load_expected(EXPECTED_DIR, expected_file)
    problems = compare_frames(expected, read("marts", table), keys)
    assert not problems, f"{table} differs from {expected_file}:\n" + "\n".join(problems[:20])


def test_rejected_rows_per_reason(read) -> None:
    expected = load_expected(EXPECTED_DIR, "rejected_rows.csv")
    rejected = read("marts", "rejected_rows")
    lines = rejected[rejected["rejection_level"] == "line"]
    actual = lines.groupby("rejection_reason").size().rename("row_count").reset_index()
    actual = actual.rename(columns={"rejection_reason": "reason"})
    problems = compare_frames(expected, actual, ["reason"])
    assert not problems, "\n".join(problems)


def test_event_counts_per_type(read) -> None:
    expected = load_expected(EXPECTED_DIR, "fct_events_counts.csv")
    events = read("marts", "fct_events")
    actual = events.groupby("event_type").size().rename("row_count").reset_index()
    problems = compare_frames(expected, actual, ["event_type"])
    assert not problems, "\n".join(problems)


def test_summary_figures(read) -> None:
    expected = load_summary(EXPECTED_DIR)
    actual = actual_summary(read)
    for key, wanted in expected.items():
        assert key in actual, f"summary figure {key} is not computed"
        if isinstance(wanted, float):
            assert actual[key] == pytest.approx(wanted, rel=1e-12), key
        else:
            assert actual[key] == wanted, key


def test_every_archive_reconciles(read) -> None:
    reconciliation = read("marts", "rpt_archive_reconciliation")
    assert len(reconciliation) == len(list((GOLDEN_DIR / "raw").glob("*.tar.gz")))
    unreconciled = reconciliation[~reconciliation["is_reconciled"]]
    assert unreconciled.empty, unreconciled.to_string()


def test_rejected_lines_keep_raw_text(read) -> None:
    rejected = read("marts", "rejected_rows")
    lines = rejected[rejected["rejection_level"] == "line"]
    assert lines["raw_line"].notna().all()
    assert lines["archive_name"].str.endswith(".log.tar.gz").all()
    assert (lines["line_number"] >= 1).all()


def test_local_build_output_quiet(golden_build) -> None:
    output = (golden_build / BUILD_OUTPUT_FILE).read_text("utf-8")
    # conf/log4j2.properties silences the warning that dbt-spark's session
    # builder triggers on every node, and leaves Spark's other warnings.
    assert "Using an existing Spark session" not in output
    assert "NativeCodeLoader" not in output
    assert "Reconfiguration failed" not in output
    # The orphan sweep of the table materialization reads no missing folder.
    assert "FileNotFoundException" not in output
    assert "Completed successfully" in output
