"""Land delivered log archives as parquet files that dbt reads as sources.

Spark cannot read ``.tar.gz`` archives (it reads them as plain gzip and glues the tar
header to the first line), so each archive is unpacked here, in Python, into one
parquet file per archive under ``<landing>/<kind>_logs/``. Every line of the
member is kept, blank ones included, with its 1-based line number, its raw text
and its tab-separated fields as text; dbt applies the contract's checks.

Landing is idempotent. ``<landing>/landed_archives/`` records every landed
archive with the SHA-256 of its bytes: an archive seen before with the same
content is skipped, one whose content changed replaces its earlier copy, and a
new one is added. Archives that cannot be landed are recorded, with the reason,
in ``<landing>/rejected_archives/``, and the others still land.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

ARCHIVE_NAME = re.compile(
    r"^(?P<date>\d{8})_(?P<part>\d+)_(?P<kind>play|down|search)\.log\.tar\.gz$"
)

# Archive suffix -> (landing folder, field names in delivered order).
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "play": (
        "play_logs",
        (
            "uid",
            "device",
            "song_id",
            "song_type",
            "song_name",
            "singer",
            "play_time",
            "song_length",
            "paid_flag",
        ),
    ),
    "down": ("download_logs", ("uid", "device", "song_id", "song_name", "singer", "paid_flag")),
    "search": ("search_logs", ("uid", "device", "time_stamp", "search_query")),
}

LANDED_DIR = "landed_archives"
REJECTED_DIR = "rejected_archives"

LINE_COLUMNS = [
    ("archive_name", pa.string()),
    ("member_name", pa.string()),
    ("line_number", pa.int64()),
    ("raw_line", pa.string()),
    ("field_count", pa.int32()),
    ("landed_at", pa.timestamp("us", tz="UTC")),
]

LANDED_SCHEMA = pa.schema(
    [
        ("archive_name", pa.string()),
        ("log_kind", pa.string()),
        ("archive_date", pa.date32()),
        ("archive_part", pa.int32()),
        ("member_name", pa.string()),
        ("archive_sha256", pa.string()),
        ("archive_bytes", pa.int64()),
        ("line_count", pa.int64()),
        ("blank_line_count", pa.int64()),
        ("non_utf8_line_count", pa.int64()),
        ("source_path", pa.string()),
        ("landed_at", pa.timestamp("us", tz="UTC")),
    ]
)

REJECTED_SCHEMA = pa.schema(
    [
        ("archive_name", pa.string()),
        ("source_path", pa.string()),
        ("archive_sha256", pa.string()),
        ("rejection_reason", pa.string()),
        ("rejection_detail", pa.string()),
        ("rejected_at", pa.timestamp("us", tz="UTC")),
    ]
)

# Reasons an archive is not landed. The dbt source documents the same list.
INVALID_ARCHIVE_NAME = "invalid_archive_name"
CORRUPT_ARCHIVE = "corrupt_archive"
EMPTY_ARCHIVE = "empty_archive"
MULTIPLE_MEMBERS = "multiple_members"
UNSAFE_MEMBER = "unsafe_member"
DUPLICATE_ARCHIVE_NAME = "duplicate_archive_name"


class InvalidArchiveError(Exception):
    """An archive cannot be landed; ``reason`` is one of the rejection codes above."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class LandingResult:
    """Outcome of one landing run: the archive names per outcome."""

    landed: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """True when at least one archive is landed, new or from before."""
        return bool(self.landed or self.replaced or self.unchanged)


def table_schema(kind: str) -> pa.Schema:
    """Return the parquet schema of one log kind's landed lines."""
    _, fields = KINDS[kind]
    return pa.schema(LINE_COLUMNS + [(name, pa.string()) for name in fields])


def decode_line(raw: bytes) -> tuple[str, bool]:
    """Decode one line's bytes; return the text and whether it was not valid UTF-8.

    Names are free text and GBK occurs in the exports, so a line that is not
    UTF-8 is decoded as GB18030 (a superset of GBK), and failing that as UTF-8
    with replacement characters. Digits and tabs decode the same in all three,
    so the choice never changes a row's validity, only how names read.
    """
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def split_member(data: bytes) -> tuple[list[str], int]:
    """Split a member's bytes into decoded lines; return them and the non-UTF-8 count.

    Lines end in ``\\n``; a ``\\r`` before it stays in the text and is trimmed by
    the staging models with the other surrounding white space.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        lines = text.split("\n")
        non_utf8 = 0
    else:
        lines = []
        non_utf8 = 0
        for raw in data.split(b"\n"):
            line, replaced = decode_line(raw)
            lines.append(line)
            non_utf8 += replaced
    if lines and lines[-1] == "":
        # The text after the final newline is not a line.
        lines.pop()
    return lines, non_utf8


def lines_table(
    kind: str, archive_name: str, member_name: str, lines: list[str], landed_at: datetime
) -> pa.Table:
    """Build the landed table of one archive: one row per line, fields as text."""
    _, fields = KINDS[kind]
    columns: list[list[str | None]] = [[] for _ in fields]
    field_counts = []
    width = len(fields)
    for line in lines:
        parts = line.split("\t")
        field_counts.append(len(parts))
        if len(parts) < width:
            parts = parts + [None] * (width - len(parts))
        for index in range(width):
            columns[index].append(parts[index])
    count = len(lines)
    arrays = [
        pa.array([archive_name] * count, pa.string()),
        pa.array([member_name] * count, pa.string()),
        pa.array(range(1, count + 1), pa.int64()),
        pa.array(lines, pa.string()),
        pa.array(field_counts, pa.int32()),
        pa.array([landed_at] * count, pa.timestamp("us", tz="UTC")),
    ] + [pa.array(values, pa.string()) for values in columns]
    return pa.Table.from_arrays(arrays, schema=table_schema(kind))


def read_member(path: Path) -> tuple[str, bytes]:
    """Return the name and bytes of the single regular-file member of an archive.

    Raises
    ------
    InvalidArchiveError
        When the file is not a complete gzip'd tar, contains no member or several,
        or its member is not a plain relative file name (absolute path, ``..``,
        link, device or directory), which could write outside the landing folder
        if it were extracted.
    """
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            members = archive.getmembers()
            if not members:
                raise InvalidArchiveError(EMPTY_ARCHIVE, "the archive contains no member")
            if len(members) > 1:
                names = ", ".join(member.name for member in members[:5])
                raise InvalidArchiveError(
                    MULTIPLE_MEMBERS, f"{len(members)} members ({names}); expected one"
                )
            member = members[0]
            check_member_is_safe(member)
            handle = archive.extractfile(member)
            if handle is None:
                raise InvalidArchiveError(UNSAFE_MEMBER, f"member {member.name!r} has no data")
            data = handle.read()
    except InvalidArchiveError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise InvalidArchiveError(CORRUPT_ARCHIVE, f"cannot read as gzip'd tar: {error}") from error
    return member.name, data


def check_member_is_safe(member: tarfile.TarInfo) -> None:
    """Raise InvalidArchiveError unless the member is a regular file with a plain relative name."""
    name = member.name
    if not member.isreg():
        kind = "link" if (member.issym() or member.islnk()) else "non-regular entry"
        raise InvalidArchiveError(UNSAFE_MEMBER, f"member {name!r} is a {kind}, not a regular file")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise InvalidArchiveError(UNSAFE_MEMBER, f"member {name!r} has an absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise InvalidArchiveError(UNSAFE_MEMBER, f"member {name!r} contains '..'")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_archives(raw_dir: Path) -> list[Path]:
    """Return every ``*.tar.gz`` file under ``raw_dir`` at any depth, in path order."""
    return sorted(
        path for path in raw_dir.rglob("*") if path.name.endswith(".tar.gz") and path.is_file()
    )


def write_parquet_atomically(table: pa.Table, destination: Path) -> None:
    """Write ``table`` to ``destination`` through a hidden temporary file and a rename.

    Spark skips files whose names start with ``.`` or ``_``, so a reader never
    sees a half-written file, and a crash leaves the earlier copy in place.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=destination.parent)
    os.close(handle)
    try:
        pq.write_table(table, temporary, compression="snappy")
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_state(path: Path, schema: pa.Schema, key: str) -> dict[str, dict]:
    """Read a state table as a dict keyed by column ``key``; empty when there is no file."""
    if not path.exists():
        return {}
    rows = pq.read_table(path, schema=schema).to_pylist()
    return {row[key]: row for row in rows}


def write_state(path: Path, schema: pa.Schema, rows: Iterable[dict]) -> None:
    ordered = sorted(rows, key=lambda row: (row["archive_name"], row.get("source_path") or ""))
    write_parquet_atomically(pa.Table.from_pylist(ordered, schema=schema), path)


def parse_archive_name(name: str) -> tuple[str, date, int]:
    """Return (kind, date, part) from a delivered archive name or raise InvalidArchiveError."""
    match = ARCHIVE_NAME.match(name)
    if not match:
        raise InvalidArchiveError(
            INVALID_ARCHIVE_NAME,
            f"name does not match YYYYMMDD_<part>_<play|down|search>.log.tar.gz: {name!r}",
        )
    try:
        day = datetime.strptime(match["date"], "%Y%m%d").date()
    except ValueError as error:
        raise InvalidArchiveError(
            INVALID_ARCHIVE_NAME, f"{match['date']!r} in {name!r} is not a calendar date"
        ) from error
    return match["kind"], day, int(match["part"])


def land_archive(path: Path, landing: Path, sha256: str, landed_at: datetime) -> dict:
    """Land one archive; return its row for the landed-archives table."""
    kind, day, part = parse_archive_name(path.name)
    member_name, data = read_member(path)
    lines, non_utf8 = split_member(data)
    folder, _ = KINDS[kind]
    table = lines_table(kind, path.name, member_name, lines, landed_at)
    stem = path.name[: -len(".tar.gz")]
    write_parquet_atomically(table, landing / folder / f"{stem}.parquet")
    blank = sum(1 for line in lines if not line.strip())
    return {
        "archive_name": path.name,
        "log_kind": {"down": "download"}.get(kind, kind),
        "archive_date": day,
        "archive_part": part,
        "member_name": member_name,
        "archive_sha256": sha256,
        "archive_bytes": path.stat().st_size,
        "line_count": len(lines),
        "blank_line_count": blank,
        "non_utf8_line_count": non_utf8,
        "source_path": str(path),
        "landed_at": landed_at,
    }


def ensure_layout(landing: Path) -> None:
    """Create every landing folder, each with at least one parquet file.

    dbt registers the folders as tables whose columns Spark infers from the
    files, so each folder gets a zero-row file: a kind with no archive yet
    (no searches delivered, say) then reads as an empty table.
    """
    for kind, (folder, _) in KINDS.items():
        placeholder = landing / folder / "no_archive.parquet"
        if not placeholder.exists():
            write_parquet_atomically(table_schema(kind).empty_table(), placeholder)
    for folder, schema in ((LANDED_DIR, LANDED_SCHEMA), (REJECTED_DIR, REJECTED_SCHEMA)):
        state = landing / folder / f"{folder}.parquet"
        if not state.exists():
            write_parquet_atomically(schema.empty_table(), state)


def land(raw_dir: Path, landing: Path) -> LandingResult:
    """Land every archive under ``raw_dir`` into ``landing``.

    Parameters
    ----------
    raw_dir : Path
        Folder searched at any depth for ``*.tar.gz`` archives.
    landing : Path
        Landing folder (the dbt var ``landing_path``).

    Returns
    -------
    LandingResult
        Archive names per outcome; ``rejected`` maps each to its reason.
    """
    started = time.monotonic()
    raw_dir = raw_dir.resolve()
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw folder not found: {raw_dir}")
    ensure_layout(landing)
    landed_path = landing / LANDED_DIR / f"{LANDED_DIR}.parquet"
    rejected_path = landing / REJECTED_DIR / f"{REJECTED_DIR}.parquet"
    landed_state = read_state(landed_path, LANDED_SCHEMA, "archive_name")
    # Rejections are kept per file, so two bad files of one name both show.
    rejected_state = read_state(rejected_path, REJECTED_SCHEMA, "source_path")
    result = LandingResult()
    now = datetime.now(UTC).replace(microsecond=0)
    archives = find_archives(raw_dir)
    logger.info("landing %d archives from %s into %s", len(archives), raw_dir, landing)

    seen: dict[str, str] = {}
    for path in archives:
        name = path.name
        sha256 = file_sha256(path)
        if name in seen and seen[name] != sha256:
            duplicate = InvalidArchiveError(
                DUPLICATE_ARCHIVE_NAME,
                f"an archive of this name with other content was landed from {seen[name]}",
            )
            reject(result, rejected_state, path, sha256, now, duplicate)
            continue
        if name in seen:
            continue
        previous = landed_state.get(name)
        if previous is not None and previous["archive_sha256"] == sha256:
            seen[name] = str(path)
            result.unchanged.append(name)
            rejected_state.pop(str(path), None)
            continue
        try:
            row = land_archive(path, landing, sha256, now)
        except InvalidArchiveError as error:
            reject(result, rejected_state, path, sha256, now, error)
            continue
        seen[name] = str(path)
        landed_state[name] = row
        rejected_state.pop(str(path), None)
        (result.replaced if previous is not None else result.landed).append(name)
        if previous is not None:
            logger.info("replaced %s: its content changed since it was landed", name)

    write_state(landed_path, LANDED_SCHEMA, landed_state.values())
    write_state(rejected_path, REJECTED_SCHEMA, rejected_state.values())
    logger.info(
        "landing done in %.1f s: %d new, %d replaced, %d unchanged, %d rejected",
        time.monotonic() - started,
        len(result.landed),
        len(result.replaced),
        len(result.unchanged),
        len(result.rejected),
    )
    return result


def reject(
    result: LandingResult,
    rejected_state: dict[str, dict],
    path: Path,
    sha256: str,
    now: datetime,
    error: InvalidArchiveError,
) -> None:
    """Record a rejected archive and log it with its file name and reason."""
    logger.error("rejected archive %s: %s", path, error)
    result.rejected[path.name] = error.reason
    rejected_state[str(path)] = {
        "archive_name": path.name,
        "source_path": str(path),
        "archive_sha256": sha256,
        "rejection_reason": error.reason,
        "rejection_detail": error.detail,
        "rejected_at": now,
    }
