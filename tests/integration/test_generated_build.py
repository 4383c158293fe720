"""The dbt marts on generated data equal an independent Python implementation of the contract.

The golden fixture pins hand-made edge cases. This test covers the mass of
ordinary and dirty lines that the generator writes, so a rule that breaks
only on combinations the fixture lacks still fails here.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import run_dbt, run_musicbox
from tests.integration.golden import compare_frames, warehouse_reader
from tests.reference import compute_marts

pytestmark = pytest.mark.slow

USERS = 500
SEED = 7


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("generated")
    raw = data_dir / "raw"
    run_musicbox(
        ["generate", "--users", str(USERS), "--seed", str(SEED), "--out", str(raw)], data_dir
    )
    run_musicbox(["land", str(raw)], data_dir)
    # Models and seeds only: the data tests run on the golden build.
    run_dbt(["build", "--exclude-resource-type", "test", "unit_test"], data_dir)
    read = warehouse_reader(data_dir / "spark" / "warehouse")
    return read, compute_marts(raw)


def test_generated_data_has_dirt_and_bots(generated) -> None:
    _, reference = generated
    summary = reference["summary"]
    assert summary["rejected_rows"] > 0
    assert summary["blank_lines"] > 0
    assert summary["bot_users"], "the generated data should contain at least one bot"


@pytest.mark.parametrize(
    ("table", "keys"),
    [
        ("churn_labels", ["user_id"]),
        ("churn_features", ["user_id"]),
        ("user_song_ratings", ["user_id", "song_id"]),
    ],
)
def test_mart_equals_reference(generated, table: str, keys: list[str]) -> None:
    read, reference = generated
    expected = reference[table]
    problems = compare_frames(expected, read("marts", table), keys)
    assert not problems, f"{table} differs from the reference:\n" + "\n".join(problems[:20])


def test_rejected_lines_equal_reference(generated) -> None:
    read, reference = generated
    expected = reference["rejected_rows"][["archive_name", "line_number", "reason"]]
    rejected = read("marts", "rejected_rows")
    lines = rejected[rejected["rejection_level"] == "line"]
    actual = lines.rename(columns={"rejection_reason": "reason"})
    problems = compare_frames(expected, actual, ["archive_name", "line_number"])
    assert not problems, "\n".join(problems[:20])


def test_cleaned_events_equal_reference(generated) -> None:
    read, reference = generated
    columns = [
        "user_id",
        "event_type",
        "device",
        "song_id",
        "play_time",
        "song_length",
        "event_date",
    ]
    expected = reference["fct_events"].copy()
    actual = read("marts", "fct_events")
    assert len(actual) == len(expected)
    expected["event_date"] = pd.to_datetime(expected["event_date"]).dt.date
    expected_counts = expected.groupby(columns, dropna=False).size()
    actual_counts = actual.groupby(columns, dropna=False).size()
    difference = expected_counts.sub(actual_counts, fill_value=0)
    assert (difference == 0).all(), difference[difference != 0].head(20).to_string()


def test_bot_threshold_equals_reference(generated) -> None:
    read, reference = generated
    bots = read("intermediate", "int_users_bot_flagged")
    assert float(bots["bot_play_threshold"].iloc[0]) == pytest.approx(
        reference["bot_play_threshold"], rel=1e-12
    )
    assert sorted(bots.loc[bots["is_bot"], "user_id"]) == reference["summary"]["bot_users"]


def test_every_generated_archive_reconciles(generated) -> None:
    read, reference = generated
    reconciliation = read("marts", "rpt_archive_reconciliation")
    assert reconciliation["is_reconciled"].all()
    expected = reference["reconciliation"]
    actual = reconciliation.rename(columns={"non_blank_line_count": "non_blank_lines"})
    actual = actual.rename(
        columns={"valid_row_count": "valid_rows", "rejected_row_count": "rejected_rows"}
    )
    problems = compare_frames(expected, actual, ["archive_name"])
    assert not problems, "\n".join(problems[:20])
