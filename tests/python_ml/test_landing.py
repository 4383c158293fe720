"""Landing of delivered archives: idempotence, replacement, and broken or hostile input."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from python_ml import cli, landing

GOLDEN_RAW = Path(__file__).resolve().parents[1] / "fixtures" / "golden-small" / "raw"


def write_archive(
    path: Path,
    members: list[tuple[str, bytes]] | None = None,
    special: list[tarfile.TarInfo] | None = None,
) -> Path:
    """Write a gzip'd tar at ``path`` holding ``members`` (name, bytes) and ``special`` entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members or []:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in special or []:
            archive.addfile(info)
    return path


def play_archive(folder: Path, day: str, lines: list[bytes], part: int = 1) -> Path:
    name = f"{day}_{part}_play.log.tar.gz"
    return write_archive(folder / name, [(name[: -len(".tar.gz")], b"".join(lines))])


def read_landed(landing_dir: Path, folder: str, name: str) -> list[dict]:
    return pq.read_table(landing_dir / folder / name).to_pylist()


def read_state(landing_dir: Path, folder: str) -> list[dict]:
    return pq.read_table(landing_dir / folder / f"{folder}.parquet").to_pylist()


PLAY = b"168500003\tar\t102\t0\tsong\tsinger\t200\t240\t0\n"


def test_land_keeps_every_line_with_its_number(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    lines = [PLAY, b"   \n", b"1\tIP \t5\t0\ts\ts\t\t\t0\r\n", b"7\tar\t1\n"]
    play_archive(raw, "20170401", lines)
    result = landing.land(raw, tmp_path / "landing")

    assert result.landed == ["20170401_1_play.log.tar.gz"]
    rows = read_landed(tmp_path / "landing", "play_logs", "20170401_1_play.log.parquet")
    assert [row["line_number"] for row in rows] == [1, 2, 3, 4]
    assert rows[1]["raw_line"] == "   "
    assert rows[2]["raw_line"].endswith("\r")
    assert rows[2]["device"] == "IP "
    assert rows[3]["field_count"] == 3
    assert rows[3]["play_time"] is None
    assert {row["archive_name"] for row in rows} == {"20170401_1_play.log.tar.gz"}
    state = read_state(tmp_path / "landing", "landed_archives")
    assert state[0]["line_count"] == 4
    assert state[0]["blank_line_count"] == 1


def test_land_decodes_gbk_names(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    name = "晴天".encode("gbk")
    play_archive(raw, "20170418", [b"1\tar\t5\t0\t" + name + b"\tx\t1\t2\t0\n", PLAY])
    landing.land(raw, tmp_path / "landing")

    rows = read_landed(tmp_path / "landing", "play_logs", "20170418_1_play.log.parquet")
    assert rows[0]["song_name"] == "晴天"
    assert rows[1]["uid"] == "168500003"
    assert read_state(tmp_path / "landing", "landed_archives")[0]["non_utf8_line_count"] == 1


def test_land_keeps_the_member_name(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_archive(raw / "20170420_3_down.log.tar.gz", [("down.log", b"1\tar\t5\ts\ts\t0\n")])
    landing.land(raw, tmp_path / "landing")

    rows = read_landed(tmp_path / "landing", "download_logs", "20170420_3_down.log.parquet")
    assert rows[0]["member_name"] == "down.log"
    assert rows[0]["archive_name"] == "20170420_3_down.log.tar.gz"


def test_land_twice_changes_nothing(tmp_path: Path) -> None:
    landing_dir = tmp_path / "landing"
    first = landing.land(GOLDEN_RAW, landing_dir)
    landed_files = sorted(landing_dir.rglob("*.parquet"))
    modified = {path: path.stat().st_mtime_ns for path in landed_files}
    state = read_state(landing_dir, "landed_archives")

    second = landing.land(GOLDEN_RAW, landing_dir)

    assert len(first.landed) == 167
    assert second.landed == []
    assert second.replaced == []
    assert len(second.unchanged) == 167
    data_files = [path for path in landed_files if "_archives" not in path.parent.name]
    assert all(path.stat().st_mtime_ns == modified[path] for path in data_files)
    assert read_state(landing_dir, "landed_archives") == state


def test_land_adds_a_new_day(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    play_archive(raw, "20170401", [PLAY])
    landing.land(raw, tmp_path / "landing")
    play_archive(raw / "later", "20170402", [PLAY, PLAY])

    result = landing.land(raw, tmp_path / "landing")

    assert result.landed == ["20170402_1_play.log.tar.gz"]
    assert result.unchanged == ["20170401_1_play.log.tar.gz"]
    names = sorted(
        row["archive_name"] for row in read_state(tmp_path / "landing", "landed_archives")
    )
    assert names == ["20170401_1_play.log.tar.gz", "20170402_1_play.log.tar.gz"]


def test_land_replaces_a_changed_archive(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    play_archive(raw, "20170401", [PLAY])
    landing.land(raw, tmp_path / "landing")
    play_archive(raw, "20170401", [PLAY, PLAY, PLAY])

    result = landing.land(raw, tmp_path / "landing")

    assert result.replaced == ["20170401_1_play.log.tar.gz"]
    rows = read_landed(tmp_path / "landing", "play_logs", "20170401_1_play.log.parquet")
    assert len(rows) == 3
    state = read_state(tmp_path / "landing", "landed_archives")
    assert len(state) == 1
    assert state[0]["line_count"] == 3


def broken_archives(raw: Path) -> dict[str, str]:
    """Write one archive of each broken kind; return name -> expected reason."""
    raw.mkdir(parents=True, exist_ok=True)
    good = play_archive(raw, "20170401", [PLAY])
    truncated = raw / "20170402_1_play.log.tar.gz"
    truncated.write_bytes(good.read_bytes()[:30])
    (raw / "20170403_1_play.log.tar.gz").write_bytes(b"this is not gzip data at all")
    (raw / "20170404_1_play.log.tar.gz").write_bytes(gzip.compress(b"\x00" * 10 + b"junk" * 200))
    write_archive(raw / "20170405_1_play.log.tar.gz", [])
    write_archive(raw / "20170406_1_play.log.tar.gz", [("a.log", PLAY), ("b.log", PLAY)])
    write_archive(raw / "20170407_1_play.log.tar.gz", [("/tmp/evil.log", PLAY)])
    write_archive(raw / "20170408_1_play.log.tar.gz", [("../../evil.log", PLAY)])
    link = tarfile.TarInfo("20170409_1_play.log")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    write_archive(raw / "20170409_1_play.log.tar.gz", special=[link])
    hard = tarfile.TarInfo("20170410_1_play.log")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "../outside"
    write_archive(raw / "20170410_1_play.log.tar.gz", special=[hard])
    write_archive(raw / "play_20170411.log.tar.gz", [("x.log", PLAY)])
    write_archive(raw / "20170231_1_play.log.tar.gz", [("x.log", PLAY)])
    return {
        "20170402_1_play.log.tar.gz": landing.CORRUPT_ARCHIVE,
        "20170403_1_play.log.tar.gz": landing.CORRUPT_ARCHIVE,
        "20170404_1_play.log.tar.gz": landing.CORRUPT_ARCHIVE,
        "20170405_1_play.log.tar.gz": landing.EMPTY_ARCHIVE,
        "20170406_1_play.log.tar.gz": landing.MULTIPLE_MEMBERS,
        "20170407_1_play.log.tar.gz": landing.UNSAFE_MEMBER,
        "20170408_1_play.log.tar.gz": landing.UNSAFE_MEMBER,
        "20170409_1_play.log.tar.gz": landing.UNSAFE_MEMBER,
        "20170410_1_play.log.tar.gz": landing.UNSAFE_MEMBER,
        "play_20170411.log.tar.gz": landing.INVALID_ARCHIVE_NAME,
        "20170231_1_play.log.tar.gz": landing.INVALID_ARCHIVE_NAME,
    }


def test_broken_archives_are_rejected_and_others_land(tmp_path: Path) -> None:
    expected = broken_archives(tmp_path / "raw")

    result = landing.land(tmp_path / "raw", tmp_path / "landing")

    assert result.landed == ["20170401_1_play.log.tar.gz"]
    assert result.rejected == expected
    recorded = {
        row["archive_name"]: row for row in read_state(tmp_path / "landing", "rejected_archives")
    }
    assert {name: row["rejection_reason"] for name, row in recorded.items()} == expected
    assert all(row["rejection_detail"] for row in recorded.values())
    assert all(row["source_path"].endswith(name) for name, row in recorded.items())


def test_hostile_members_write_nothing_outside(tmp_path: Path) -> None:
    broken_archives(tmp_path / "work" / "raw")
    before = set(tmp_path.rglob("*"))

    landing.land(tmp_path / "work" / "raw", tmp_path / "work" / "landing")

    landing_dir = tmp_path / "work" / "landing"
    created = set(tmp_path.rglob("*")) - before
    outside = [path for path in created if path != landing_dir and landing_dir not in path.parents]
    assert outside == []
    assert not (tmp_path / "evil.log").exists()
    assert not Path("/tmp/evil.log").exists()
    assert not (tmp_path / "outside").exists()


def test_fixed_archive_leaves_the_rejected_list(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    play_archive(raw, "20170401", [PLAY])
    (raw / "20170402_1_play.log.tar.gz").write_bytes(b"broken")
    landing.land(raw, tmp_path / "landing")
    assert len(read_state(tmp_path / "landing", "rejected_archives")) == 1

    play_archive(raw, "20170402", [PLAY])
    result = landing.land(raw, tmp_path / "landing")

    assert result.landed == ["20170402_1_play.log.tar.gz"]
    assert read_state(tmp_path / "landing", "rejected_archives") == []


def test_duplicate_name_with_other_content_is_rejected(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    play_archive(raw / "a", "20170401", [PLAY])
    play_archive(raw / "b", "20170401", [PLAY, PLAY])

    result = landing.land(raw, tmp_path / "landing")

    assert result.landed == ["20170401_1_play.log.tar.gz"]
    assert result.rejected == {"20170401_1_play.log.tar.gz": landing.DUPLICATE_ARCHIVE_NAME}
    rows = read_landed(tmp_path / "landing", "play_logs", "20170401_1_play.log.parquet")
    assert len(rows) == 1


def test_cli_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICBOX_DATA_DIR", str(tmp_path / "data"))
    only_broken = tmp_path / "broken"
    only_broken.mkdir()
    (only_broken / "20170402_1_play.log.tar.gz").write_bytes(b"broken")
    mixed = tmp_path / "mixed"
    shutil.copytree(only_broken, mixed)
    play_archive(mixed, "20170401", [PLAY])

    assert cli.main(["land", str(only_broken)]) == 1
    assert cli.main(["land", str(mixed)]) == 0
    assert cli.main(["land", str(tmp_path / "missing")]) == 1
    assert (tmp_path / "data" / "landing" / "play_logs" / "20170401_1_play.log.parquet").exists()
