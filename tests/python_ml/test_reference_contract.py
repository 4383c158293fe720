"""Tests of the Python reference implementation of the data contract.

The golden fixture's expected marts were computed independently of this
reference, so reproducing every value there checks the reference itself.
Small hand-made archives then pin the parsing rules and mart definitions
that the fixture covers only once or not at all.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from tests.reference import compute_marts

REPO_ROOT = Path(__file__).resolve().parents[2]

GOLDEN_DIR = REPO_ROOT / "tests" / "fixtures" / "golden-small"
THRESHOLD_TOLERANCE = 1e-9
FLOAT_TOLERANCE = 1e-9
INT64_MAX = 2**63 - 1


# --- comparison helpers -------------------------------------------------------


def read_expected(name: str) -> pd.DataFrame:
    """Read an expected CSV with every cell as text, so an empty cell stays ''."""
    return pd.read_csv(GOLDEN_DIR / "expected" / name, dtype=str, keep_default_na=False)


def cell_matches(expected: str, actual: object, dtype: object) -> bool:
    """Compare one expected CSV cell with an actual value of a column of ``dtype``.

    An empty expected cell means NULL. Booleans are spelled true/false, and
    floats match within FLOAT_TOLERANCE.
    """
    if expected == "":
        return bool(pd.isna(actual))
    if pd.isna(actual):
        return False
    if pd.api.types.is_bool_dtype(dtype):
        return expected in ("true", "false") and bool(actual) == (expected == "true")
    if pd.api.types.is_integer_dtype(dtype):
        return int(expected) == int(actual)
    if pd.api.types.is_float_dtype(dtype):
        return math.isclose(float(expected), float(actual), abs_tol=FLOAT_TOLERANCE)
    return expected == str(actual)


def first_mismatch(actual: pd.DataFrame, expected: pd.DataFrame, key: Sequence[str]) -> str | None:
    """Describe the first key and column where ``actual`` differs from ``expected``.

    Rows are matched by ``key`` and visited in the expected file's order.
    Columns of ``actual`` that the expected file does not have are ignored.
    Returns None when every expected value is reproduced.
    """
    key = list(key)
    missing_columns = [column for column in expected.columns if column not in actual.columns]
    if missing_columns:
        return f"actual frame has no column {missing_columns[0]!r}"

    actual_keys = [tuple(str(value) for value in row) for row in actual[key].to_numpy()]
    if len(set(actual_keys)) != len(actual_keys):
        return f"actual frame repeats a key of {key}"
    actual_rows = dict(zip(actual_keys, range(len(actual)), strict=True))
    expected_keys = [tuple(row) for row in expected[key].to_numpy()]

    for expected_position, expected_key in enumerate(expected_keys):
        label = ", ".join(f"{name}={value}" for name, value in zip(key, expected_key, strict=True))
        actual_position = actual_rows.get(expected_key)
        if actual_position is None:
            return f"{label}: row missing from the actual frame"
        for column in expected.columns:
            if column in key:
                continue
            want = expected.iloc[expected_position][column]
            got = actual.iloc[actual_position][column]
            if hasattr(got, "item"):
                got = got.item()
            if not cell_matches(want, got, actual[column].dtype):
                return f"{label}, column {column}: expected {want!r}, got {got!r}"

    extra = sorted(set(actual_keys) - set(expected_keys))
    if extra:
        return f"{dict(zip(key, extra[0], strict=True))}: row not in the expected file"
    return None


# --- golden fixture -----------------------------------------------------------


@pytest.fixture(scope="module")
def golden() -> dict:
    return compute_marts(GOLDEN_DIR / "raw")


def test_golden_churn_labels(golden: dict) -> None:
    mismatch = first_mismatch(
        golden["churn_labels"], read_expected("churn_labels.csv"), ["user_id"]
    )
    assert mismatch is None, mismatch


def test_golden_churn_features(golden: dict) -> None:
    expected = read_expected("churn_features.csv")
    mismatch = first_mismatch(golden["churn_features"], expected, ["user_id"])
    assert mismatch is None, mismatch


def test_golden_churn_features_column_order(golden: dict) -> None:
    expected_columns = list(read_expected("churn_features.csv").columns)
    actual_columns = list(golden["churn_features"].columns)
    assert actual_columns[: len(expected_columns)] == expected_columns


def test_golden_user_song_ratings(golden: dict) -> None:
    expected = read_expected("user_song_ratings.csv")
    mismatch = first_mismatch(golden["user_song_ratings"], expected, ["user_id", "song_id"])
    assert mismatch is None, mismatch


def test_golden_rejected_row_counts(golden: dict) -> None:
    counts = golden["rejected_rows"].groupby("reason").size().rename("row_count").reset_index()
    mismatch = first_mismatch(counts, read_expected("rejected_rows.csv"), ["reason"])
    assert mismatch is None, mismatch


def test_golden_fct_events_counts(golden: dict) -> None:
    counts = golden["fct_events"].groupby("event_type").size().rename("row_count").reset_index()
    mismatch = first_mismatch(counts, read_expected("fct_events_counts.csv"), ["event_type"])
    assert mismatch is None, mismatch


def test_golden_summary(golden: dict) -> None:
    expected = json.loads((GOLDEN_DIR / "expected" / "summary.json").read_text())
    actual = golden["summary"]
    assert set(actual) == set(expected)
    for name, want in expected.items():
        if name == "bot_play_threshold":
            assert actual[name] == pytest.approx(want, abs=THRESHOLD_TOLERANCE), name
        else:
            assert actual[name] == want, name


def test_golden_summary_matches_frames(golden: dict) -> None:
    summary = golden["summary"]
    assert summary["bot_play_threshold"] == golden["bot_play_threshold"]
    assert summary["bot_users"] == golden["bot_users"]["user_id"].tolist()
    assert summary["fct_events_rows"] == len(golden["fct_events"])
    assert summary["valid_rows"] == len(golden["valid_rows"])
    assert summary["population_users"] == len(golden["churn_labels"])
    assert summary["churned_users"] == int(golden["churn_labels"]["is_churned"].sum())
    assert summary["rating_pairs"] == len(golden["user_song_ratings"])


def test_golden_reconciliation_balances(golden: dict) -> None:
    reconciliation = golden["reconciliation"]
    assert len(reconciliation) == len(list((GOLDEN_DIR / "raw").glob("*.tar.gz")))
    assert golden["rejected_archives"].empty
    balance = reconciliation["valid_rows"] + reconciliation["rejected_rows"]
    unbalanced = reconciliation[reconciliation["non_blank_lines"] != balance]
    assert unbalanced.empty, unbalanced.to_string()
    summary = golden["summary"]
    assert reconciliation["non_blank_lines"].sum() + summary["blank_lines"] == summary["raw_lines"]


def test_golden_bots_removed_everywhere(golden: dict) -> None:
    bots = set(golden["bot_users"]["user_id"])
    assert bots
    assert bots <= set(golden["valid_rows"]["user_id"])
    assert not bots & set(golden["fct_events"]["user_id"])
    assert not bots & set(golden["churn_labels"]["user_id"])
    assert not bots & set(golden["user_song_ratings"]["user_id"])


def test_golden_frames_sorted_with_plain_dtypes(golden: dict) -> None:
    features = golden["churn_features"]
    assert features["user_id"].is_monotonic_increasing
    assert features["user_id"].dtype == "int64"
    assert features["days_since_last_play"].dtype == "Int64"
    assert features["play_count_1d"].dtype == "int64"
    assert features["play_time_avg_7d"].dtype == "float64"
    assert golden["churn_labels"]["is_churned"].dtype == "bool"
    ratings = golden["user_song_ratings"]
    assert ratings.equals(ratings.sort_values(["user_id", "song_id"]))
    events = golden["fct_events"]
    assert events["song_id"].dtype == "Int64"
    assert all(isinstance(day, dt.date) for day in events["event_date"])


def test_mismatch_names_user_and_column(golden: dict) -> None:
    expected = read_expected("churn_features.csv")
    changed = golden["churn_features"].copy()
    user_id = int(expected["user_id"].iloc[3])
    changed.loc[changed["user_id"] == user_id, "search_count_30d"] += 1
    mismatch = first_mismatch(changed, expected, ["user_id"])
    assert mismatch is not None
    assert f"user_id={user_id}" in mismatch
    assert "search_count_30d" in mismatch


def test_mismatch_reports_null_against_value(golden: dict) -> None:
    expected = read_expected("churn_features.csv")
    changed = golden["churn_features"].copy()
    user_id = int(expected.loc[expected["days_since_last_search"] == "", "user_id"].iloc[0])
    changed.loc[changed["user_id"] == user_id, "days_since_last_search"] = 0
    mismatch = first_mismatch(changed, expected, ["user_id"])
    assert mismatch is not None
    assert f"user_id={user_id}, column days_since_last_search" in mismatch


# --- hand-made archives: line rules -------------------------------------------

PLAY = "20170428_1_play.log.tar.gz"
DOWN = "20170428_1_down.log.tar.gz"
SEARCH = "20170428_1_search.log.tar.gz"


def tar_gz_bytes(members: Sequence[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    """Build a gzip'd tar in memory from (name, content) pairs or ready TarInfo entries."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
                continue
            name, content = member
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_archive(
    folder: Path, archive_name: str, content: bytes | str, member_name: str | None = None
) -> Path:
    """Write one delivered-format archive whose member contains ``content``."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    member = member_name if member_name is not None else archive_name.removesuffix(".tar.gz")
    path = folder / archive_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tar_gz_bytes([(member, content)]))
    return path


def play_line(
    uid: str = "42", song_id: str = "7", play_time: str = "200", length: str = "240"
) -> str:
    return f"{uid}\tar\t{song_id}\t0\tname\tsinger\t{play_time}\t{length}\t0"


def parse_one(tmp_path: Path, archive_name: str, line: str) -> dict:
    write_archive(tmp_path, archive_name, line + "\n")
    return compute_marts(tmp_path)


def test_crlf_lines_parse_like_lf(tmp_path: Path) -> None:
    content = play_line(play_time="200") + "\r\n" + play_line(play_time="x") + "\r\n"
    write_archive(tmp_path, PLAY, content)
    marts = compute_marts(tmp_path)
    valid = marts["valid_rows"]
    assert len(valid) == 1
    assert valid["song_length"].iloc[0] == 240
    assert valid["device"].iloc[0] == "ar"
    rejected = marts["rejected_rows"]
    assert rejected["reason"].tolist() == ["invalid_duration"]
    assert rejected["raw_line"].iloc[0] == play_line(play_time="x")
    assert rejected["line_number"].iloc[0] == 2


def test_padded_fields_are_trimmed(tmp_path: Path) -> None:
    line = "  42 \t IP \t 007 \t0\tname\tsinger\t 180 \t 240\t0 "
    valid = parse_one(tmp_path, PLAY, line)["valid_rows"]
    row = valid.iloc[0]
    assert row["user_id"] == 42
    assert row["device"] == "ip"
    assert row["song_id"] == 7
    assert row["play_time"] == 180
    assert row["song_length"] == 240


def test_gbk_names_do_not_reject(tmp_path: Path) -> None:
    song = "晴天".encode("gbk")
    singer = "周杰伦".encode("gbk")
    play = b"42\tar\t7\t0\t" + song + b"\t" + singer + b"\t200\t240\t0\n"
    write_archive(tmp_path, PLAY, play)
    write_archive(tmp_path, SEARCH, b"43\tip\t1493294400\t" + song + b"\n")
    # 0xFF is invalid in UTF-8 and in GB18030, so this name decodes with replacements.
    write_archive(tmp_path, DOWN, b"44\tar\t9\t\xff\xfe\tsinger\t0\n")
    marts = compute_marts(tmp_path)
    assert sorted(marts["valid_rows"]["user_id"]) == [42, 43, 44]
    assert marts["rejected_rows"].empty


def test_gbk_rejected_line_keeps_decoded_text(tmp_path: Path) -> None:
    line = b"42\tar\t7\t" + "晴天".encode("gbk") + b"\n"
    write_archive(tmp_path, PLAY, line)
    rejected = compute_marts(tmp_path)["rejected_rows"]
    assert rejected["reason"].tolist() == ["malformed_line"]
    assert rejected["raw_line"].iloc[0] == "42\tar\t7\t晴天"


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    content = "\n" + play_line() + "\n   \n\t\r\n" + play_line(uid="x") + "\n\r\n"
    write_archive(tmp_path, PLAY, content)
    marts = compute_marts(tmp_path)
    assert marts["summary"]["raw_lines"] == 6
    assert marts["summary"]["blank_lines"] == 4
    assert marts["reconciliation"]["non_blank_lines"].tolist() == [2]
    assert len(marts["valid_rows"]) == 1
    # Line numbers count blank lines too.
    assert marts["rejected_rows"]["line_number"].tolist() == [5]


def test_last_line_without_newline_counts(tmp_path: Path) -> None:
    write_archive(tmp_path, PLAY, play_line() + "\n" + play_line(song_id="8"))
    marts = compute_marts(tmp_path)
    assert marts["summary"]["raw_lines"] == 2
    assert sorted(marts["valid_rows"]["song_id"]) == [7, 8]


def test_empty_member_has_no_lines(tmp_path: Path) -> None:
    write_archive(tmp_path, PLAY, b"")
    marts = compute_marts(tmp_path)
    assert marts["summary"]["raw_lines"] == 0
    assert marts["reconciliation"].to_dict("records") == [
        {"archive_name": PLAY, "non_blank_lines": 0, "valid_rows": 0, "rejected_rows": 0}
    ]


REJECT_CASES = [
    # (archive, line, reason)
    (PLAY, "42\tar\t7\t0\tname\tsinger\t200\t240", "malformed_line"),
    (PLAY, play_line() + "\textra", "malformed_line"),
    (DOWN, "42\tar\t7\tname\tsinger", "malformed_line"),
    (SEARCH, "42\tar\t1493294400\tquery\textra", "malformed_line"),
    (SEARCH, "42 ar 1493294400 query", "malformed_line"),
    (PLAY, play_line(uid="abc"), "invalid_uid"),
    (PLAY, play_line(uid=""), "invalid_uid"),
    (PLAY, play_line(uid="-5"), "invalid_uid"),
    (PLAY, play_line(uid="+5"), "invalid_uid"),
    (PLAY, play_line(uid="1.5"), "invalid_uid"),
    (PLAY, play_line(uid="0"), "invalid_uid"),
    (PLAY, play_line(uid="000"), "invalid_uid"),
    (PLAY, play_line(uid="\uff14\uff12"), "invalid_uid"),
    (PLAY, play_line(uid=str(INT64_MAX + 1)), "invalid_uid"),
    (SEARCH, "0\tar\t1493294400\tquery", "invalid_uid"),
    (DOWN, "4 2\tar\t7\tname\tsinger\t0", "invalid_uid"),
    (PLAY, play_line(song_id="x12"), "invalid_song_id"),
    (PLAY, play_line(song_id=""), "invalid_song_id"),
    (PLAY, play_line(song_id="-1"), "invalid_song_id"),
    (PLAY, play_line(song_id=str(INT64_MAX + 1)), "invalid_song_id"),
    (DOWN, "42\tar\tx12\tname\tsinger\t0", "invalid_song_id"),
    (PLAY, play_line(play_time="-3"), "invalid_duration"),
    (PLAY, play_line(play_time="1.5"), "invalid_duration"),
    (PLAY, play_line(length="4m"), "invalid_duration"),
    (PLAY, play_line(length=str(INT64_MAX + 1)), "invalid_duration"),
    # The first failing check wins.
    (PLAY, "abc\tar\tx\t0\tname\tsinger\t-1\t240", "malformed_line"),
    (PLAY, play_line(uid="abc", song_id="x"), "invalid_uid"),
    (PLAY, play_line(song_id="x", play_time="-1"), "invalid_song_id"),
]


@pytest.mark.parametrize(("archive_name", "line", "reason"), REJECT_CASES)
def test_reject_reason(tmp_path: Path, archive_name: str, line: str, reason: str) -> None:
    marts = parse_one(tmp_path, archive_name, line)
    assert marts["valid_rows"].empty
    rejected = marts["rejected_rows"]
    assert rejected["reason"].tolist() == [reason]
    assert rejected["archive_name"].tolist() == [archive_name]
    assert rejected["raw_line"].tolist() == [line]


def test_search_time_stamp_is_not_checked(tmp_path: Path) -> None:
    valid = parse_one(tmp_path, SEARCH, "42\t\tnot-a-time\tquery")["valid_rows"]
    assert len(valid) == 1
    assert pd.isna(valid["device"].iloc[0])
    assert pd.isna(valid["song_id"].iloc[0])


def test_int64_boundaries(tmp_path: Path) -> None:
    largest = str(INT64_MAX)
    line = play_line(uid=largest, song_id=largest, play_time=largest, length=largest)
    row = parse_one(tmp_path, PLAY, line)["valid_rows"].iloc[0]
    assert row["user_id"] == INT64_MAX
    assert row["song_id"] == INT64_MAX
    assert row["play_time"] == INT64_MAX
    assert row["song_length"] == INT64_MAX


def test_null_rules_of_valid_rows(tmp_path: Path) -> None:
    write_archive(
        tmp_path, PLAY, play_line(uid="0042", song_id="0", play_time="", length="") + "\n"
    )
    write_archive(tmp_path, DOWN, "43\t\t00\tname\tsinger\t0\n")
    valid = compute_marts(tmp_path)["valid_rows"].set_index("user_id")
    assert valid.loc[42, "event_type"] == "play"
    assert pd.isna(valid.loc[42, "song_id"])
    assert pd.isna(valid.loc[42, "play_time"])
    assert pd.isna(valid.loc[42, "song_length"])
    assert valid.loc[43, "event_type"] == "download"
    assert pd.isna(valid.loc[43, "device"])
    assert pd.isna(valid.loc[43, "song_id"])
    assert pd.isna(valid.loc[43, "play_time"])


def test_archive_name_gives_date_and_kind(tmp_path: Path) -> None:
    write_archive(
        tmp_path,
        "20170420_3_down.log.tar.gz",
        "42\tar\t129\tname\tsinger\t0\n",
        member_name="down.log",
    )
    write_archive(
        tmp_path / "nested" / "deeper",
        "20170421_1_search.log.tar.gz",
        "42\tar\t1\tq\n",
        member_name="20170101_1_play.log",
    )
    valid = compute_marts(tmp_path)["valid_rows"]
    assert valid[["event_date", "event_type", "archive_name"]].values.tolist() == [
        [dt.date(2017, 4, 20), "download", "20170420_3_down.log.tar.gz"],
        [dt.date(2017, 4, 21), "search", "20170421_1_search.log.tar.gz"],
    ]


def test_repeated_lines_are_kept(tmp_path: Path) -> None:
    write_archive(tmp_path, PLAY, (play_line() + "\n") * 3)
    marts = compute_marts(tmp_path)
    assert len(marts["fct_events"]) == 3
    assert marts["user_song_ratings"]["play_count"].tolist() == [3]


def directory_member() -> tarfile.TarInfo:
    info = tarfile.TarInfo("20170428_1_play.log")
    info.type = tarfile.DIRTYPE
    return info


def uncompressed_tar(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("member.log")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


LINE = (play_line() + "\n").encode()
BAD_ARCHIVES = [
    ("2017-04-28_1_play.log.tar.gz", tar_gz_bytes([("m.log", LINE)]), "invalid_archive_name"),
    ("20170431_1_play.log.tar.gz", tar_gz_bytes([("m.log", LINE)]), "invalid_archive_name"),
    ("20170428_1_PLAY.log.tar.gz", tar_gz_bytes([("m.log", LINE)]), "invalid_archive_name"),
    ("20170428_1_stream.log.tar.gz", tar_gz_bytes([("m.log", LINE)]), "invalid_archive_name"),
    ("20170428_play.log.tar.gz", tar_gz_bytes([("m.log", LINE)]), "invalid_archive_name"),
    (PLAY, LINE, "invalid_gzip"),
    (PLAY, uncompressed_tar(LINE), "invalid_gzip"),
    (PLAY, tar_gz_bytes([("m.log", LINE)])[:-12], "invalid_gzip"),
    (PLAY, b"", "invalid_gzip"),
    (PLAY, tar_gz_bytes([("m.log", LINE)]) + b"trailing", "invalid_gzip"),
    (PLAY, gzip.compress(LINE), "invalid_tar"),
    (PLAY, tar_gz_bytes([("a.log", LINE), ("b.log", LINE)]), "wrong_member_count"),
    (PLAY, tar_gz_bytes([]), "wrong_member_count"),
    (PLAY, tar_gz_bytes([directory_member()]), "member_not_regular_file"),
]


@pytest.mark.parametrize(("archive_name", "content", "reason"), BAD_ARCHIVES)
def test_bad_archive_is_skipped(
    tmp_path: Path, archive_name: str, content: bytes, reason: str
) -> None:
    (tmp_path / archive_name).write_bytes(content)
    write_archive(tmp_path / "good", "20170427_1_play.log.tar.gz", LINE)
    marts = compute_marts(tmp_path)
    assert marts["rejected_archives"].to_dict("records") == [
        {"archive_name": archive_name, "reason": reason}
    ]
    assert marts["reconciliation"]["archive_name"].tolist() == ["20170427_1_play.log.tar.gz"]
    assert marts["summary"]["raw_lines"] == 1
    assert len(marts["valid_rows"]) == 1


def test_other_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "20170428_1_play.log").write_bytes(LINE)
    (tmp_path / "notes.txt").write_text("not an archive\n")
    marts = compute_marts(tmp_path)
    assert marts["rejected_archives"].empty
    assert marts["summary"]["raw_lines"] == 0


# --- hand-made archives: marts ------------------------------------------------

SMALL_WINDOWS = {
    "feature_window_start": "2017-04-20",
    "snapshot_date": "2017-04-28",
    "label_window_days": 2,
    "feature_windows_days": (1, 3),
    # With a handful of users the default percentile makes the busiest player a bot.
    "bot_percentile": 1.0,
}


def archive_for(day: str, kind: str, part: int = 1) -> str:
    return f"{day.replace('-', '')}_{part}_{kind}.log.tar.gz"


def write_days(folder: Path, lines_by_archive: dict[str, list[str]]) -> None:
    for archive_name, lines in lines_by_archive.items():
        write_archive(folder, archive_name, "".join(line + "\n" for line in lines))


def test_windows_and_labels(tmp_path: Path) -> None:
    write_days(
        tmp_path,
        {
            # User 1: first and last feature days, no label-window event.
            archive_for("2017-04-20", "play"): [play_line(uid="1"), play_line(uid="5")],
            archive_for("2017-04-28", "play"): [play_line(uid="1")],
            # User 2: three days before the snapshot is outside the 3-day window.
            archive_for("2017-04-25", "search"): ["2\tar\t1\tq"],
            archive_for("2017-04-26", "down"): ["2\tar\t9\tn\ts\t0"],
            # Label window: user 2 on its last day, user 1 one day after it.
            archive_for("2017-04-30", "play"): [play_line(uid="2")],
            archive_for("2017-05-01", "play"): [play_line(uid="1")],
            # Users 3 and 4 have no feature-window event, so they are not in the population.
            archive_for("2017-04-19", "play"): [play_line(uid="3")],
            archive_for("2017-04-29", "play"): [play_line(uid="4"), play_line(uid="5")],
        },
    )
    marts = compute_marts(tmp_path, **SMALL_WINDOWS)
    labels = marts["churn_labels"].set_index("user_id")["is_churned"].to_dict()
    assert labels == {1: True, 2: False, 5: False}

    features = marts["churn_features"].set_index("user_id")
    assert features.loc[1, "play_count_1d"] == 1
    assert features.loc[1, "play_count_3d"] == 1
    assert features.loc[1, "days_since_last_play"] == 0
    assert pd.isna(features.loc[1, "days_since_last_download"])
    assert features.loc[2, "download_count_3d"] == 1
    assert features.loc[2, "search_count_3d"] == 0
    assert features.loc[2, "days_since_last_search"] == 3
    assert features.loc[2, "days_since_last_download"] == 2
    assert features.loc[2, "days_since_last_event"] == 2
    assert pd.isna(features.loc[2, "days_since_last_play"])
    assert features.loc[5, "days_since_last_event"] == 8

    # fct_events keeps every date, inside a window or not.
    assert len(marts["fct_events"]) == 10


def test_feature_window_start_clips_windows(tmp_path: Path) -> None:
    write_days(
        tmp_path,
        {
            archive_for("2017-04-26", "play"): [play_line(uid="1")],
            archive_for("2017-04-27", "play"): [play_line(uid="1")],
            archive_for("2017-04-28", "play"): [play_line(uid="1")],
        },
    )
    marts = compute_marts(
        tmp_path,
        feature_window_start="2017-04-27",
        snapshot_date="2017-04-28",
        feature_windows_days=(7,),
    )
    features = marts["churn_features"]
    assert features["play_count_7d"].tolist() == [2]
    assert features["active_day_count_7d"].tolist() == [2]


def test_extra_play_features(tmp_path: Path) -> None:
    write_days(
        tmp_path,
        {
            archive_for("2017-04-28", "play"): [
                play_line(uid="1", song_id="7", play_time="192", length="240"),
                play_line(uid="1", song_id="7", play_time="191", length="240"),
                play_line(uid="1", song_id="0", play_time="", length="240"),
                play_line(uid="1", song_id="8", play_time="30", length="0"),
                play_line(uid="1", song_id="9", play_time="300", length=""),
            ],
            archive_for("2017-04-27", "play"): [
                play_line(uid="1", song_id="10", play_time="240", length="240"),
            ],
            archive_for("2017-04-26", "search"): ["1\tip\t1\tq"],
            archive_for("2017-04-28", "search"): ["2\t\t1\tq"],
        },
    )
    marts = compute_marts(tmp_path, **SMALL_WINDOWS)
    features = marts["churn_features"].set_index("user_id")
    assert features.loc[1, "play_time_total_1d"] == 192 + 191 + 30 + 300
    assert features.loc[1, "play_time_avg_1d"] == pytest.approx((192 + 191 + 30 + 300) / 4)
    assert features.loc[1, "play_time_total_3d"] == 192 + 191 + 30 + 300 + 240
    # 192 is exactly 0.8 * 240, so it is engaged. 191 is not, and a length of 0 never is.
    assert features.loc[1, "engaged_play_count_1d"] == 1
    assert features.loc[1, "engaged_play_count_3d"] == 2
    # Song 0 is NULL and not a distinct song.
    assert features.loc[1, "distinct_song_count_1d"] == 3
    assert features.loc[1, "distinct_song_count_3d"] == 4
    # A search day is an active day as much as a play day.
    assert features.loc[1, "active_day_count_3d"] == 3
    assert features.loc[1, "active_day_count_1d"] == 1

    # User 2 only searched: no play time, NULL average, NULL device.
    assert features.loc[2, "play_time_total_3d"] == 0
    assert math.isnan(features.loc[2, "play_time_avg_3d"])
    assert features.loc[2, "engaged_play_count_3d"] == 0
    assert pd.isna(features.loc[2, "main_device"])


def test_main_device_tie_takes_first_name(tmp_path: Path) -> None:
    write_days(
        tmp_path,
        {
            # User 1: two ip and two ar events, so the tie goes to "ar".
            archive_for("2017-04-21", "search"): ["1\tip\t1\tq", "1\tIP\t1\tq", "1\t\t1\tq"],
            archive_for("2017-04-22", "down"): ["1\tar\t9\tn\ts\t0", "1\tAr\t9\tn\ts\t0"],
            # User 2: ip wins on counts, and events outside the feature window do not count.
            archive_for("2017-04-22", "search"): ["2\tip\t1\tq", "2\tar\t1\tq", "2\tip\t1\tq"],
            archive_for("2017-04-30", "search"): ["2\tar\t1\tq", "2\tar\t1\tq"],
        },
    )
    marts = compute_marts(tmp_path, **SMALL_WINDOWS)
    devices = marts["churn_features"].set_index("user_id")["main_device"].to_dict()
    assert devices == {1: "ar", 2: "ip"}


def test_ratings_over_all_dates(tmp_path: Path) -> None:
    write_days(
        tmp_path,
        {
            archive_for("2017-04-01", "play"): [play_line(uid="1", song_id="7")],
            archive_for("2017-04-28", "play"): [
                play_line(uid="1", song_id="7"),
                play_line(uid="1", song_id="0"),
                play_line(uid="1", song_id="8"),
            ],
            archive_for("2017-04-28", "down"): ["1\tar\t7\tn\ts\t0", "1\tar\t8\tn\ts\t0"],
            archive_for("2017-05-20", "down"): ["1\tar\t7\tn\ts\t0", "2\tar\t0\tn\ts\t0"],
            archive_for("2017-04-28", "search"): ["1\tar\t7\tq"],
        },
    )
    marts = compute_marts(tmp_path, **SMALL_WINDOWS)
    ratings = marts["user_song_ratings"]
    assert ratings.to_dict("records") == [
        # 2 plays + 2 downloads weigh 6.0, capped at 5.0.
        {"user_id": 1, "song_id": 7, "play_count": 2, "download_count": 2, "rating": 5.0},
        {"user_id": 1, "song_id": 8, "play_count": 1, "download_count": 1, "rating": 3.0},
    ]
    weighted = compute_marts(
        tmp_path, **SMALL_WINDOWS, rating_weights={"play": 0.5, "download": 1.0}, max_rating=10.0
    )["user_song_ratings"]
    assert weighted["rating"].tolist() == [3.0, 1.5]


def test_bot_threshold_interpolates(tmp_path: Path) -> None:
    plays_by_user = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 100}
    lines = [play_line(uid=uid) for uid, count in plays_by_user.items() for _ in range(count)]
    write_days(
        tmp_path,
        {
            archive_for("2017-04-28", "play"): lines,
            # Plays outside the feature window neither count nor add a user to the percentile.
            archive_for("2017-04-29", "play"): [play_line(uid="1")] * 500 + [play_line(uid="6")],
        },
    )
    marts = compute_marts(tmp_path, **{**SMALL_WINDOWS, "bot_percentile": 0.9})
    # Sorted counts 1, 2, 3, 4, 100: rank 0.9 * 4 = 3.6 lies 60% of the way from 4 to 100.
    assert marts["bot_play_threshold"] == pytest.approx(61.6, abs=THRESHOLD_TOLERANCE)
    assert marts["bot_users"].to_dict("records") == [{"user_id": 5, "play_count": 100}]
    assert 5 not in set(marts["fct_events"]["user_id"])
    assert 5 in set(marts["valid_rows"]["user_id"])
    assert sorted(marts["churn_labels"]["user_id"]) == [1, 2, 3, 4]

    # At the median (3) users 4 and 5 have strictly more plays, but user 3 has exactly 3.
    median = compute_marts(tmp_path, **{**SMALL_WINDOWS, "bot_percentile": 0.5})
    assert median["bot_play_threshold"] == 3.0
    assert median["summary"]["bot_users"] == [4, 5]


def test_no_plays_means_no_bots(tmp_path: Path) -> None:
    write_days(tmp_path, {archive_for("2017-04-28", "search"): ["1\tar\t1\tq"]})
    marts = compute_marts(tmp_path, **SMALL_WINDOWS)
    assert math.isnan(marts["bot_play_threshold"])
    assert marts["bot_users"].empty
    assert marts["churn_labels"]["user_id"].tolist() == [1]


def test_user_sample_rule(tmp_path: Path) -> None:
    write_days(
        tmp_path,
        {archive_for("2017-04-28", "search"): [f"{uid}\tar\t1\tq" for uid in range(1, 11)]},
    )
    full = compute_marts(tmp_path, **SMALL_WINDOWS)
    assert full["churn_labels"]["user_id"].tolist() == list(range(1, 11))
    # (uid * 2654435761) % 1_000_000 for uids 1 to 10 is 435761, 871522, 307283, 743044,
    # 178805, 614566, 50327, 486088, 921849, 357610. Ratio 0.5 keeps those below 500000.
    half = compute_marts(tmp_path, **SMALL_WINDOWS, user_sample_ratio=0.5)
    assert half["churn_labels"]["user_id"].tolist() == [1, 3, 5, 7, 8, 10]
    assert sorted(set(half["fct_events"]["user_id"])) == [1, 3, 5, 7, 8, 10]
    assert len(half["valid_rows"]) == 10


@pytest.mark.parametrize(
    "overrides",
    [
        {"user_sample_ratio": 0.0},
        {"user_sample_ratio": 1.5},
        {"bot_percentile": 1.2},
        {"label_window_days": 0},
        {"feature_windows_days": ()},
        {"feature_windows_days": (0, 3)},
        {"feature_window_start": "2017-05-01"},
        {"rating_weights": {"play": 1.0}},
    ],
)
def test_invalid_parameters_raise(tmp_path: Path, overrides: dict) -> None:
    with pytest.raises(ValueError):
        compute_marts(tmp_path, **overrides)


def test_missing_raw_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        compute_marts(tmp_path / "missing")
