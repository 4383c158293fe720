"""Tests of the synthetic data generator (``python_ml.generator``).

The archives are read back with a line checker written here from the
parsing rules, independent of the generator's own code. It trims fields of
surrounding white space (``\\r`` included) and ignores blank lines, and the
first failing check gives the reject reason. The contract's marts that the
ground truth claims to hold (bots, population, churn labels, 30-day counts)
are then recomputed from the parsed rows and compared with it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import struct
import tarfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from python_ml import cli
from python_ml.generator import churn, generate_dataset, oracle_auc, oracle_top_songs
from python_ml.generator.params import SNAPSHOT_INDEX, GenerationParameters
from python_ml.generator.population import ActivityTraits
from python_ml.generator.truth import AffinityModel

FIRST_DAY = dt.date(2017, 3, 30)
DAYS = [FIRST_DAY + dt.timedelta(days=offset) for offset in range(44)]
SNAPSHOT = dt.date(2017, 4, 28)
LABEL_LAST = dt.date(2017, 5, 12)
FIELD_COUNTS = {"play": 9, "down": 6, "search": 4}
ARCHIVE_PATTERN = re.compile(r"^(\d{8})_(\d+)_(play|down|search)\.log\.tar\.gz$")
DIGITS = re.compile(rb"[0-9]+")
TRUTH_FILES = (
    "users.parquet",
    "songs.parquet",
    "user_genre_tastes.parquet",
    "user_favourite_songs.parquet",
    "planted_dirt.parquet",
    "archives.parquet",
    "manifest.json",
)
LINE_DIRT_KINDS = {
    "malformed_line",
    "invalid_uid",
    "invalid_song_id",
    "invalid_duration",
    "padded_fields",
    "device_case",
    "padded_device",
    "empty_device",
    "empty_duration",
    "gbk_name",
    "unknown_song",
    "repeated_line",
    "blank_line",
}
ARCHIVE_DIRT_KINDS = {"crlf_member", "undated_member", "empty_archive"}
# Published figures for the real 10% user sample.
PUBLISHED_USERS = 59_300
PUBLISHED_EVENTS = {"play": 10_800_000, "down": 610_000, "search": 760_000}
PUBLISHED_MEDIAN_PLAYS = 40


# --- an independent reader of the delivered format -----------------------------


def classify(line: bytes, kind: str) -> str | None:
    """Return None for a blank line, "" for a valid line, else the reject reason."""
    if not line.strip():
        return None
    fields = [value.strip() for value in line.split(b"\t")]
    if len(fields) != FIELD_COUNTS[kind]:
        return "malformed_line"
    uid = fields[0]
    if not DIGITS.fullmatch(uid) or int(uid) == 0:
        return "invalid_uid"
    if kind in ("play", "down") and not DIGITS.fullmatch(fields[2]):
        return "invalid_song_id"
    if kind == "play":
        for value in (fields[6], fields[7]):
            if value and not DIGITS.fullmatch(value):
                return "invalid_duration"
    return ""


@dataclass
class Member:
    """The single member of one archive, split into lines."""

    archive: str
    date: dt.date
    part: int
    kind: str
    name: str
    mtime: int
    payload: bytes
    lines: list[bytes] = field(default_factory=list)


def read_member(path: Path) -> Member:
    """Open an archive, check it contains exactly one regular member and split its lines."""
    match = ARCHIVE_PATTERN.match(path.name)
    assert match, f"unexpected file name {path.name}"
    with tarfile.open(path, mode="r:gz") as tar:
        infos = tar.getmembers()
        assert len(infos) == 1, f"{path.name} holds {len(infos)} members"
        assert infos[0].isfile(), f"{path.name}: member is not a regular file"
        payload = tar.extractfile(infos[0]).read()
    lines = payload.split(b"\n")
    assert lines[-1] == b"", f"{path.name}: last line does not end with a line feed"
    return Member(
        archive=path.name,
        date=dt.datetime.strptime(match.group(1), "%Y%m%d").date(),
        part=int(match.group(2)),
        kind=match.group(3),
        name=infos[0].name,
        mtime=infos[0].mtime,
        payload=payload,
        lines=lines[:-1],
    )


@dataclass
class ParsedLogs:
    """Every archive of a raw folder, classified line by line."""

    members: dict[str, Member]
    # (archive, line number) -> reason; "" valid, None blank.
    outcomes: dict[tuple[str, int], str | None]
    # Valid rows as (user_id, date, kind, fields after trimming).
    rows: list[tuple[int, dt.date, str, list[bytes]]]


def parse_raw(raw_dir: Path) -> ParsedLogs:
    members = {}
    outcomes = {}
    rows = []
    for path in sorted(raw_dir.iterdir()):
        member = read_member(path)
        members[member.archive] = member
        for number, line in enumerate(member.lines, start=1):
            outcome = classify(line, member.kind)
            outcomes[(member.archive, number)] = outcome
            if outcome == "":
                fields = [value.strip() for value in line.split(b"\t")]
                rows.append((int(fields[0]), member.date, member.kind, fields))
    return ParsedLogs(members, outcomes, rows)


def contract_marts(parsed: ParsedLogs) -> pd.DataFrame:
    """Recompute bots, population, labels and 30-day counts from parsed rows."""
    frame = pd.DataFrame(
        {
            "user_id": [row[0] for row in parsed.rows],
            "date": [row[1] for row in parsed.rows],
            "kind": [row[2] for row in parsed.rows],
        }
    )
    in_features = frame["date"] <= SNAPSHOT
    in_label = frame["date"] > SNAPSHOT
    plays = frame[in_features & (frame["kind"] == "play")].groupby("user_id").size()
    threshold = np.percentile(plays.to_numpy(), 99.9)
    bots = set(plays[plays > threshold].index)
    counts = frame[in_features].groupby(["user_id", "kind"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=["play", "down", "search"], fill_value=0)
    label_users = set(frame.loc[in_label, "user_id"])
    result = counts.rename(
        columns={
            "play": "play_count_30d",
            "down": "download_count_30d",
            "search": "search_count_30d",
        }
    )
    result = result[~result.index.isin(bots)].copy()
    result["is_churned"] = ~result.index.isin(label_users)
    result.attrs["bots"] = bots
    return result


# --- fixtures --------------------------------------------------------------------


def generate(root: Path, users: int, seed: int):
    return generate_dataset(root / "raw", users=users, seed=seed)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a 300-user dataset (raw/ and ground_truth/)."""
    root = tmp_path_factory.mktemp("generator-small")
    generate(root, users=300, seed=11)
    return root


@pytest.fixture(scope="module")
def small_parsed(small: Path) -> ParsedLogs:
    return parse_raw(small / "raw")


@pytest.fixture(scope="module")
def moderate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a 3,000-user dataset: stable marginals, about 600,000 lines."""
    root = tmp_path_factory.mktemp("generator-moderate")
    generate(root, users=3000, seed=5)
    return root


@pytest.fixture(scope="module")
def moderate_parsed(moderate: Path) -> ParsedLogs:
    return parse_raw(moderate / "raw")


def planted(root: Path) -> pd.DataFrame:
    return pd.read_parquet(root / "ground_truth" / "planted_dirt.parquet")


def manifest(root: Path) -> dict:
    return json.loads((root / "ground_truth" / "manifest.json").read_text(encoding="utf-8"))


# --- determinism -------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "first", users=120, seed=3)
    generate(tmp_path / "second", users=120, seed=3)
    for folder in ("raw", "ground_truth"):
        first = sorted(path.name for path in (tmp_path / "first" / folder).iterdir())
        second = sorted(path.name for path in (tmp_path / "second" / folder).iterdir())
        assert first == second
        for name in first:
            left = (tmp_path / "first" / folder / name).read_bytes()
            right = (tmp_path / "second" / folder / name).read_bytes()
            if name == "manifest.json":
                left_json, right_json = json.loads(left), json.loads(right)
                left_json.pop("raw_folder")
                right_json.pop("raw_folder")
                assert left_json == right_json
            else:
                assert left == right, f"{folder}/{name} differs between runs"


def test_other_seed_differs(tmp_path: Path) -> None:
    generate(tmp_path / "first", users=120, seed=3)
    generate(tmp_path / "second", users=120, seed=4)
    name = "20170415_1_play.log.tar.gz"
    first = read_member(tmp_path / "first" / "raw" / name).payload
    second = read_member(tmp_path / "second" / "raw" / name).payload
    assert first != second


def test_gzip_and_tar_headers_fixed(small: Path) -> None:
    for path in sorted((small / "raw").iterdir()):
        header = path.read_bytes()[:10]
        gzip_mtime = struct.unpack("<I", header[4:8])[0]
        flags = header[3]
        assert flags & 0x08 == 0, f"{path.name}: gzip header carries a file name"
        member = read_member(path)
        expected = dt.datetime.combine(member.date, dt.time(), dt.UTC) + dt.timedelta(hours=26)
        assert gzip_mtime == int(expected.timestamp())
        assert member.mtime == int(expected.timestamp())


# --- format --------------------------------------------------------------------------


def test_archives_cover_every_day(small_parsed: ParsedLogs) -> None:
    parts = defaultdict(set)
    for member in small_parsed.members.values():
        parts[(member.date, member.kind)].add(member.part)
    assert set(parts) == {(day, kind) for day in DAYS for kind in FIELD_COUNTS}
    for key, numbers in parts.items():
        assert numbers == set(range(1, len(numbers) + 1)), f"parts of {key} not numbered from 1"


def test_member_names_follow_archive_or_kind(small_parsed: ParsedLogs) -> None:
    names = Counter()
    for member in small_parsed.members.values():
        if member.name == member.archive.removesuffix(".tar.gz"):
            names["dated"] += 1
        else:
            assert member.name == f"{member.kind}.log", member.archive
            names["undated"] += 1
    assert names["undated"] >= 1
    assert names["dated"] > names["undated"]


def test_valid_fields_have_contract_shapes(small_parsed: ParsedLogs) -> None:
    day_start = {day: int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) for day in DAYS}
    for user_id, date, kind, fields in small_parsed.rows:
        assert 0 < user_id < 2**63
        assert fields[1].lower() in (b"ar", b"ip", b"")
        if kind in ("play", "down"):
            assert len(fields[2]) <= 8
        if kind == "play":
            for value in (fields[6], fields[7]):
                assert value == b"" or DIGITS.fullmatch(value)
        if kind == "search":
            stamp = int(fields[2])
            assert day_start[date] <= stamp < day_start[date] + 86_400


def test_play_times_skip_and_overrun(moderate_parsed: ParsedLogs) -> None:
    played, lengths = [], []
    for _, _, kind, fields in moderate_parsed.rows:
        if kind == "play" and fields[6] and fields[7]:
            played.append(int(fields[6]))
            lengths.append(int(fields[7]))
    played_array, length_array = np.array(played), np.array(lengths)
    overrun = played_array - length_array
    assert (overrun > 0).mean() > 0.1
    assert overrun.max() <= 3
    assert (played_array <= 30).mean() > 0.15


def test_user_ids_mostly_nine_digits(small: Path) -> None:
    users = pd.read_parquet(small / "ground_truth" / "users.parquet")
    digits = users["user_id"].astype(str).str.len()
    assert users["user_id"].is_unique
    assert (digits == 9).mean() > 0.7
    assert (digits < 9).any()
    assert (users["user_id"] >= 2**31).any()


def test_names_mostly_chinese_some_latin(small: Path) -> None:
    songs = pd.read_parquet(small / "ground_truth" / "songs.parquet")
    latin = songs["song_name"].map(str.isascii)
    assert 0.03 < latin.mean() < 0.3
    assert not songs["song_name"].str.contains("[\t\r\n]").any()
    assert not songs["singer"].str.contains("[\t\r\n]").any()
    assert (songs["song_name"] == songs["song_name"].str.strip()).all()


# --- dirt -----------------------------------------------------------------------------


def test_rejects_match_planted_dirt(small: Path, small_parsed: ParsedLogs) -> None:
    dirt = planted(small)
    lines = dirt[dirt["line_number"].notna()]
    expected_rejects = {
        (row.archive_name, int(row.line_number)): row.reject_reason
        for row in lines.itertuples()
        if row.reject_reason
    }
    expected_blank = {
        (row.archive_name, int(row.line_number))
        for row in lines.itertuples()
        if row.dirt_kind == "blank_line"
    }
    found_rejects = {key: reason for key, reason in small_parsed.outcomes.items() if reason}
    found_blank = {key for key, reason in small_parsed.outcomes.items() if reason is None}
    assert found_rejects == expected_rejects
    assert found_blank == expected_blank


def test_valid_dirt_lines_parse(small: Path, small_parsed: ParsedLogs) -> None:
    dirt = planted(small)
    valid_kinds = LINE_DIRT_KINDS - {
        "malformed_line",
        "invalid_uid",
        "invalid_song_id",
        "invalid_duration",
        "blank_line",
    }
    rows = dirt[dirt["dirt_kind"].isin(valid_kinds)]
    assert len(rows) > 0
    for row in rows.itertuples():
        assert small_parsed.outcomes[(row.archive_name, int(row.line_number))] == ""


@pytest.mark.parametrize("users", [40, 300])
def test_every_dirt_kind_present(tmp_path: Path, users: int) -> None:
    generate(tmp_path, users=users, seed=2)
    kinds = set(planted(tmp_path)["dirt_kind"])
    assert not LINE_DIRT_KINDS - kinds
    assert not ARCHIVE_DIRT_KINDS - kinds
    reasons = manifest(tmp_path)["rejected_lines"]
    assert set(reasons) == {"malformed_line", "invalid_uid", "invalid_song_id", "invalid_duration"}


def test_dirt_share_about_a_thousandth(moderate: Path) -> None:
    dirt = planted(moderate)
    line_dirt = dirt["line_number"].notna().sum()
    total_lines = sum(manifest(moderate)["lines"].values())
    assert 0.0007 < line_dirt / total_lines < 0.0015


def test_dirty_lines_look_as_planted(small: Path, small_parsed: ParsedLogs) -> None:
    dirt = planted(small)
    members = small_parsed.members
    for row in dirt.itertuples():
        member = members[row.archive_name]
        if row.dirt_kind == "crlf_member":
            assert member.lines and all(line.endswith(b"\r") for line in member.lines)
            continue
        if row.dirt_kind == "empty_archive":
            assert member.payload == b""
            continue
        if row.dirt_kind == "undated_member":
            assert member.name == f"{member.kind}.log"
            continue
        line = member.lines[int(row.line_number) - 1].removesuffix(b"\r")
        fields = line.split(b"\t")
        if row.dirt_kind == "gbk_name":
            with pytest.raises(UnicodeDecodeError):
                line.decode("utf-8")
        elif row.dirt_kind == "unknown_song":
            assert fields[2].strip() == b"0"
        elif row.dirt_kind == "device_case":
            assert fields[1] != fields[1].lower()
        elif row.dirt_kind in ("padded_device", "padded_fields"):
            assert line != b"\t".join(value.strip() for value in fields)
        elif row.dirt_kind == "empty_device":
            assert fields[1].strip() == b""
        elif row.dirt_kind == "empty_duration":
            assert b"" in (fields[6].strip(), fields[7].strip())
        elif row.dirt_kind == "repeated_line":
            previous = member.lines[int(row.line_number) - 2].removesuffix(b"\r")
            assert line == previous


def test_clean_lines_are_utf8(small: Path, small_parsed: ParsedLogs) -> None:
    gbk = {
        (row.archive_name, int(row.line_number))
        for row in planted(small).itertuples()
        if row.dirt_kind == "gbk_name"
    }
    for member in small_parsed.members.values():
        for number, line in enumerate(member.lines, start=1):
            if (member.archive, number) not in gbk:
                line.decode("utf-8")


def test_archive_stats_match_lines(small: Path, small_parsed: ParsedLogs) -> None:
    stats = pd.read_parquet(small / "ground_truth" / "archives.parquet")
    assert set(stats["archive_name"]) == set(small_parsed.members)
    outcomes_by_archive = defaultdict(Counter)
    for (archive, _), outcome in small_parsed.outcomes.items():
        if outcome is None:
            label = "blank"
        elif outcome == "":
            label = "valid"
        else:
            label = "rejected"
        outcomes_by_archive[archive][label] += 1
    for row in stats.itertuples():
        counted = outcomes_by_archive[row.archive_name]
        assert row.lines == len(small_parsed.members[row.archive_name].lines)
        assert row.valid_rows == counted["valid"]
        assert row.rejected_lines == counted["rejected"]
        assert row.blank_lines == counted["blank"]


# --- ground truth ------------------------------------------------------------------------


def test_truth_files_readable_beside_raw(small: Path) -> None:
    truth = small / "ground_truth"
    assert sorted(path.name for path in truth.iterdir()) == sorted(TRUTH_FILES)
    assert all(ARCHIVE_PATTERN.match(path.name) for path in (small / "raw").iterdir())
    for name in TRUTH_FILES[:-1]:
        assert len(pd.read_parquet(truth / name)) > 0, name
    content = manifest(small)
    assert content["seed"] == 11
    assert content["users"] == 300
    assert content["first_date"] == "2017-03-30"
    assert content["last_date"] == "2017-05-12"
    assert "parameters" in content


def test_truth_dir_inside_raw_rejected(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    with pytest.raises(ValueError, match="inside the raw folder"):
        generate_dataset(raw, users=20, seed=1, truth_dir=raw / "truth")
    with pytest.raises(ValueError, match="inside the raw folder"):
        generate_dataset(raw, users=20, seed=1, truth_dir=raw)
    assert not raw.exists()


def test_existing_archives_need_overwrite(tmp_path: Path) -> None:
    generate(tmp_path, users=20, seed=1)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate(tmp_path, users=20, seed=1)
    (tmp_path / "raw" / "notes.txt").write_text("kept")
    generate_dataset(tmp_path / "raw", users=20, seed=9, overwrite=True)
    assert (tmp_path / "raw" / "notes.txt").read_text() == "kept"
    assert manifest(tmp_path)["seed"] == 9


def test_truth_matches_contract_marts(moderate: Path, moderate_parsed: ParsedLogs) -> None:
    users = pd.read_parquet(moderate / "ground_truth" / "users.parquet").set_index("user_id")
    marts = contract_marts(moderate_parsed)
    assert set(users.index[users["is_bot"]]) == marts.attrs["bots"]
    assert (users["is_bot"] == users["is_planted_bot"]).all()
    population = users[users["in_population"]]
    assert set(population.index) == set(marts.index)
    joined = marts.join(population, suffixes=("", "_truth"))
    assert (joined["is_churned"] == joined["is_churned_truth"]).all()
    for column in ("play_count_30d", "download_count_30d", "search_count_30d"):
        assert (joined[column] == joined[f"{column}_truth"]).all(), column


def test_oracle_auc_churn_rate_in_range(moderate: Path) -> None:
    content = manifest(moderate)
    users = pd.read_parquet(moderate / "ground_truth" / "users.parquet")
    population = users[users["in_population"]]
    assert population["churn_probability"].notna().all()
    recomputed = roc_auc_score(population["is_churned"], population["churn_probability"])
    assert recomputed == pytest.approx(content["oracle_auc"], abs=1e-12)
    assert oracle_auc(moderate / "ground_truth") == pytest.approx(recomputed, abs=1e-12)
    assert 0.88 <= content["oracle_auc"] <= 0.95
    assert 0.30 <= content["churn_rate"] <= 0.60
    assert content["churn_rate"] == pytest.approx(population["is_churned"].mean())


@pytest.mark.parametrize("column", ["churn_probability", "observed_churn_probability"])
def test_churn_probability_calibrated(moderate: Path, column: str) -> None:
    users = pd.read_parquet(moderate / "ground_truth" / "users.parquet")
    population = users[users["in_population"]]
    bins = pd.cut(population[column], [0, 0.1, 0.5, 0.9, 1.0], include_lowest=True)
    grouped = population.groupby(bins, observed=True)
    for interval, group in grouped:
        if len(group) < 100:
            continue
        observed = group["is_churned"].mean()
        predicted = group[column].mean()
        assert abs(observed - predicted) < 0.06, f"bin {interval}: {observed} vs {predicted}"


def test_observed_probability_between_recency_and_oracle(moderate: Path) -> None:
    content = manifest(moderate)
    users = pd.read_parquet(moderate / "ground_truth" / "users.parquet")
    population = users[users["in_population"]]
    observed = population["observed_churn_probability"]
    assert observed.between(0.0, 1.0).all()
    recomputed = roc_auc_score(population["is_churned"], observed)
    assert recomputed == pytest.approx(content["observed_oracle_auc"], abs=1e-12)
    assert oracle_auc(moderate / "ground_truth", observed=True) == pytest.approx(recomputed)
    # Knowing the hidden state is worth more than the observed days, and the
    # filter reads those days better than recency alone does.
    assert recomputed < content["oracle_auc"] - 0.005
    recency = roc_auc_score(population["is_churned"], population["days_since_last_event"])
    assert recomputed > recency + 0.01
    assert observed.mean() == pytest.approx(population["is_churned"].mean(), abs=0.02)


def _traits(users: int, join_day: int = 0) -> ActivityTraits:
    return ActivityTraits(
        play_rate=np.full(users, 8.0),
        download_ratio=np.full(users, 0.05),
        search_rate=np.full(users, 0.5),
        fade_hazard=np.full(users, 0.04),
        join_day=np.full(users, join_day, dtype=np.int16),
        initial_fade_age=np.full(users, -1, dtype=np.int16),
    )


def test_observed_probability_reads_silence() -> None:
    params = GenerationParameters()
    counts = np.zeros((3, 3, 44), dtype=np.int32)
    counts[0, :, : SNAPSHOT_INDEX + 1] = 9
    counts[0, 1, SNAPSHOT_INDEX - 9 : SNAPSHOT_INDEX + 1] = 0  # silent for the last 10 days
    counts[0, 2, SNAPSHOT_INDEX + 1 :] = 50  # days after the snapshot are not read
    traits = _traits(3)
    observed = churn.observed_churn_probability(params, traits, counts)
    state = np.full((3, 44), churn.ACTIVE, dtype=np.int8)
    state[1] = churn.GONE
    activity = churn.Activity(
        counts=counts,
        state=state,
        fade_age=np.full((3, 44), -1, dtype=np.int16),
        bot_play_rate=np.zeros(3),
    )
    oracle = churn.oracle_churn_probability(params, traits, activity)
    # A busy user silent for ten days is almost surely gone. A user busy up
    # to the snapshot is active, or at most a day into fading.
    assert observed[1] == pytest.approx(oracle[1], abs=0.01)
    assert oracle[0] < observed[0] < 0.2
    assert observed[2] == observed[0]


def test_observed_probability_of_new_user() -> None:
    params = GenerationParameters()
    join_day = SNAPSHOT_INDEX - 5
    counts = np.zeros((3, 1, 44), dtype=np.int32)
    counts[0, 0, join_day : SNAPSHOT_INDEX + 1] = 9
    new_user = churn.observed_churn_probability(params, _traits(1, join_day), counts)
    existing = churn.observed_churn_probability(params, _traits(1), counts)
    state = np.full((1, 44), churn.ACTIVE, dtype=np.int8)
    activity = churn.Activity(
        counts=counts,
        state=state,
        fade_age=np.full((1, 44), -1, dtype=np.int16),
        bot_play_rate=np.zeros(1),
    )
    oracle = churn.oracle_churn_probability(params, _traits(1, join_day), activity)
    # A user busy since joining is almost surely active, with the higher
    # hazard of a new user's first weeks.
    assert oracle[0] < new_user[0] < oracle[0] + 0.05
    assert new_user[0] > existing[0]


def test_churners_fade_before_leaving(moderate: Path) -> None:
    users = pd.read_parquet(moderate / "ground_truth" / "users.parquet")
    population = users[users["in_population"]]
    churned = population[population["is_churned"]]
    stayed = population[~population["is_churned"]]
    assert churned["days_since_last_event"].median() > stayed["days_since_last_event"].median()
    assert churned["play_count_30d"].median() < stayed["play_count_30d"].median()


def test_oracle_top_songs_ranks_by_affinity(small: Path) -> None:
    truth = small / "ground_truth"
    users = pd.read_parquet(truth / "users.parquet")
    favourites = pd.read_parquet(truth / "user_favourite_songs.parquet")
    tastes = pd.read_parquet(truth / "user_genre_tastes.parquet")
    songs = pd.read_parquet(truth / "songs.parquet").set_index("song_id")
    chosen = users["user_id"].head(5).tolist()
    top = oracle_top_songs(truth, chosen, n=10)
    for user in chosen:
        share = float(users.loc[users["user_id"] == user, "favourite_share"].iloc[0])
        taste = tastes[tastes["user_id"] == user].set_index("genre")["taste_weight"]
        weight = favourites[favourites["user_id"] == user].set_index("song_id")["favourite_weight"]
        affinity = (
            (1 - share)
            * taste.reindex(songs["genre"]).to_numpy()
            * songs["popularity_weight"].to_numpy()
        )
        affinity = pd.Series(affinity, index=songs.index)
        affinity = affinity.add(share * weight, fill_value=0.0)
        assert affinity.sum() == pytest.approx(1.0)
        expected = affinity.sort_values(ascending=False, kind="stable").head(10)
        assert len(top[user]) == 10
        assert np.allclose(affinity[top[user]].to_numpy(), expected.to_numpy())

    excluded = {chosen[0]: top[chosen[0]][:3]}
    again = oracle_top_songs(truth, chosen[:1], n=10, exclude=excluded)
    assert not set(again[chosen[0]]) & set(excluded[chosen[0]])
    assert again[chosen[0]][:7] == top[chosen[0]][3:]
    with pytest.raises(KeyError, match="not in the ground truth"):
        oracle_top_songs(truth, [1], n=3)


def test_plays_follow_true_affinity(moderate: Path, moderate_parsed: ParsedLogs) -> None:
    users = pd.read_parquet(moderate / "ground_truth" / "users.parquet")
    heavy = users[~users["is_bot"]].nlargest(40, "play_count_30d")["user_id"].tolist()
    plays = defaultdict(Counter)
    heavy_users = set(heavy)
    for user_id, _, kind, fields in moderate_parsed.rows:
        if kind == "play" and user_id in heavy_users and fields[2] != b"0":
            plays[user_id][int(fields[2])] += 1
    model = AffinityModel.load(moderate / "ground_truth")
    top = model.top_songs(heavy, 20)
    own, others = [], []
    for index, user in enumerate(heavy):
        total = sum(plays[user].values())
        other_user = heavy[(index + 1) % len(heavy)]
        own.append(sum(plays[user][song] for song in top[user]) / total)
        others.append(sum(plays[user][song] for song in top[other_user]) / total)
    assert np.mean(own) > 0.3
    assert np.mean(own) > 3 * np.mean(others)


# --- marginals ----------------------------------------------------------------------------


def test_event_mix_and_volume(moderate: Path) -> None:
    content = manifest(moderate)
    events = content["valid_rows"]
    total = sum(events.values())
    published_total = sum(PUBLISHED_EVENTS.values())
    for kind, published in PUBLISHED_EVENTS.items():
        share = events[kind] / total
        assert share == pytest.approx(published / published_total, abs=0.02), kind
    per_user = total / content["users"]
    assert per_user == pytest.approx(published_total / PUBLISHED_USERS, rel=0.2)
    assert content["users_with_events"] >= 0.97 * content["users"]


def test_bots_are_top_players(moderate: Path) -> None:
    users = pd.read_parquet(moderate / "ground_truth" / "users.parquet")
    bots = users[users["is_bot"]]
    humans = users[~users["is_bot"]]
    assert len(bots) == pytest.approx(0.001 * len(users), abs=2)
    assert bots["play_count_30d"].min() > humans["play_count_30d"].max()


def test_median_plays_over_period(moderate_parsed: ParsedLogs) -> None:
    plays = Counter(row[0] for row in moderate_parsed.rows if row[2] == "play")
    users = {row[0] for row in moderate_parsed.rows}
    per_user = np.array([plays.get(user, 0) for user in users])
    assert np.median(per_user) == pytest.approx(PUBLISHED_MEDIAN_PLAYS, rel=0.15)
    top = np.sort(per_user)[-max(1, len(per_user) // 1000) :]
    assert top.min() > 5000


def test_parts_per_day_and_weekly_rhythm(moderate: Path) -> None:
    stats = pd.read_parquet(moderate / "ground_truth" / "archives.parquet")
    plays = stats[stats["kind"] == "play"]
    parts = plays[plays["valid_rows"] > 0].groupby("event_date").size()
    assert parts.min() >= 2
    daily = plays.groupby("event_date")["valid_rows"].sum()
    dates = pd.to_datetime(daily.index)
    weekend = daily[dates.day_of_week >= 5].mean()
    midweek = daily[dates.day_of_week.isin([1, 2])].mean()
    assert weekend > 1.05 * midweek
    # Scaled to 59,000 users, the quietest and busiest days come within 10%
    # of the published 250,000 and 490,000 plays, the low end widened for the
    # noise of 3,000 users.
    scaled = daily * 59_000 / 3000
    assert scaled.min() > 200_000
    assert scaled.idxmax() == "2017-04-22"
    assert 490_000 * 0.9 < scaled.max() < 490_000 * 1.1


def test_cli_generate_writes_and_rejects(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    assert cli.main(["generate", "--users", "25", "--seed", "4", "--out", str(raw)]) == 0
    assert (tmp_path / "ground_truth" / "manifest.json").is_file()
    assert len(list(raw.iterdir())) >= 132
    assert cli.main(["generate", "--users", "25", "--out", str(raw)]) == 2
    inside = ["generate", "--users", "25", "--out", str(raw), "--truth-dir", str(raw / "t")]
    assert cli.main([*inside, "--overwrite"]) == 2
