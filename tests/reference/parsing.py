"""Read raw log archives and parse their lines by the Music Box data contract.

This module is the reference side of the parsing rules. It uses only the
standard library, so that it shares no code or SQL with the dbt models that it
checks.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import logging
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

# `<part>` is one or more ASCII letters or digits, and the kind is lower case.
ARCHIVE_NAME_PATTERN = re.compile(
    r"(?P<date>[0-9]{8})_(?P<part>[0-9A-Za-z]+)_(?P<kind>play|down|search)\.log\.tar\.gz"
)
EVENT_TYPE_BY_KIND = {"play": "play", "down": "download", "search": "search"}
FIELD_COUNT_BY_EVENT_TYPE = {"play": 9, "download": 6, "search": 4}
INT64_MAX = 2**63 - 1

# Field positions in a tab-separated line. The first three are the same in every kind,
# and the two durations exist in plays only.
UID_FIELD = 0
DEVICE_FIELD = 1
SONG_ID_FIELD = 2
PLAY_TIME_FIELD = 6
SONG_LENGTH_FIELD = 7


class InvalidArchiveError(Exception):
    """An archive that cannot be read as one delivered log file.

    Parameters
    ----------
    reason : str
        Short code stored in the ``rejected_archives`` result.
    detail : str
        Human-readable cause, for the log.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ValidRow:
    """One parsed event, with NULL as None."""

    user_id: int
    event_date: dt.date
    event_type: str
    device: str | None
    song_id: int | None
    play_time: int | None
    song_length: int | None
    archive_name: str


@dataclass(frozen=True)
class RejectedRow:
    """One non-blank line that failed a check, with the first failing check's reason."""

    archive_name: str
    line_number: int
    reason: str
    raw_line: str


@dataclass
class RawLogs:
    """Everything read from a folder of archives, before any mart is built."""

    valid_rows: list[ValidRow] = field(default_factory=list)
    rejected_rows: list[RejectedRow] = field(default_factory=list)
    # One (archive_name, non_blank_lines, valid_rows, rejected_rows) tuple per read archive.
    reconciliation: list[tuple[str, int, int, int]] = field(default_factory=list)
    # One (archive_name, reason) tuple per skipped archive.
    rejected_archives: list[tuple[str, str]] = field(default_factory=list)
    raw_lines: int = 0
    blank_lines: int = 0


def find_archives(raw_dir: Path) -> list[Path]:
    """List every ``*.tar.gz`` file under ``raw_dir`` at any depth, sorted by path."""
    return sorted(path for path in raw_dir.rglob("*.tar.gz") if path.is_file())


def parse_archive_name(name: str) -> tuple[dt.date, str]:
    """Return the event date and event type that an archive name gives.

    Raises
    ------
    InvalidArchiveError
        When the name breaks ``YYYYMMDD_<part>_<kind>.log.tar.gz`` or the
        date does not exist.
    """
    match = ARCHIVE_NAME_PATTERN.fullmatch(name)
    if match is None:
        raise InvalidArchiveError(
            "invalid_archive_name", f"{name!r} does not match YYYYMMDD_<part>_<kind>.log.tar.gz"
        )
    try:
        event_date = dt.datetime.strptime(match["date"], "%Y%m%d").date()
    except ValueError as error:
        raise InvalidArchiveError(
            "invalid_archive_name", f"{name!r} starts with an invalid date: {error}"
        ) from error
    return event_date, EVENT_TYPE_BY_KIND[match["kind"]]


def read_member(path: Path) -> bytes:
    """Return the content of the single regular-file member of a gzip'd tar.

    The whole gzip stream is decompressed first, so that a bad CRC, a
    truncated stream or trailing data other than zero padding rejects the
    archive even when the tar headers would still parse.

    Raises
    ------
    InvalidArchiveError
        When the file is not gzip, the gzip content is not a tar, or the tar
        does not contain exactly one member that is a regular file.
    """
    compressed = path.read_bytes()
    if not compressed:
        raise InvalidArchiveError("invalid_gzip", f"{path.name} is an empty file")
    try:
        tar_bytes = gzip.decompress(compressed)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise InvalidArchiveError("invalid_gzip", f"{path.name}: {error}") from error
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as archive:
            members = archive.getmembers()
            if len(members) != 1:
                raise InvalidArchiveError(
                    "wrong_member_count", f"{path.name} has {len(members)} members, expected 1"
                )
            member = members[0]
            if not member.isreg():
                raise InvalidArchiveError(
                    "member_not_regular_file", f"{path.name}: {member.name!r} is not a regular file"
                )
            handle = archive.extractfile(member)
            if handle is None:
                raise InvalidArchiveError(
                    "member_not_regular_file", f"{path.name}: {member.name!r} has no content"
                )
            return handle.read()
    except tarfile.TarError as error:
        raise InvalidArchiveError("invalid_tar", f"{path.name}: {error}") from error


def split_lines(content: bytes) -> list[bytes]:
    """Split a member on ``\\n``, dropping the empty piece after a final ``\\n``."""
    if not content:
        return []
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def decode_line(raw: bytes) -> str:
    """Decode a line as UTF-8, else as GB18030, else as UTF-8 with replacement characters."""
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace")


def is_blank(line: str) -> bool:
    """Return True for an empty line or one made only of white space.

    White space is what Python's ``str.isspace`` accepts, which includes tabs,
    ``\\r`` and the Unicode space characters.
    """
    return line.strip() == ""


def _parse_int64(text: str) -> int | None:
    """Return the value of a string of ASCII digits that fits a signed 64-bit integer."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    if value > INT64_MAX:
        return None
    return value


def _parse_duration(text: str) -> tuple[bool, int | None]:
    """Return (is_valid, value) for a play_time or song_length field, where empty is NULL."""
    if text == "":
        return True, None
    value = _parse_int64(text)
    return value is not None, value


def parse_line(
    line: str, event_type: str, event_date: dt.date, archive_name: str
) -> ValidRow | str:
    """Parse one non-blank decoded line into a valid row, or return its reject reason.

    The checks run in the contract's order and the first failing one wins:
    field count, then uid, then song_id (plays and downloads), then the two
    durations (plays).
    """
    fields = [value.strip() for value in line.split("\t")]
    if len(fields) != FIELD_COUNT_BY_EVENT_TYPE[event_type]:
        return "malformed_line"

    user_id = _parse_int64(fields[UID_FIELD])
    if user_id is None or user_id == 0:
        return "invalid_uid"

    song_id: int | None = None
    if event_type in ("play", "download"):
        song_id = _parse_int64(fields[SONG_ID_FIELD])
        if song_id is None:
            return "invalid_song_id"
        if song_id == 0:
            song_id = None

    play_time: int | None = None
    song_length: int | None = None
    if event_type == "play":
        play_time_valid, play_time = _parse_duration(fields[PLAY_TIME_FIELD])
        song_length_valid, song_length = _parse_duration(fields[SONG_LENGTH_FIELD])
        if not (play_time_valid and song_length_valid):
            return "invalid_duration"

    device = fields[DEVICE_FIELD].lower() or None
    return ValidRow(
        user_id=user_id,
        event_date=event_date,
        event_type=event_type,
        device=device,
        song_id=song_id,
        play_time=play_time,
        song_length=song_length,
        archive_name=archive_name,
    )


def read_raw_logs(raw_dir: Path) -> RawLogs:
    """Read and parse every archive under ``raw_dir``.

    Each archive is either skipped whole (listed in ``rejected_archives``) or
    contributes all of its lines. The archive name, never the member name,
    gives the event date and kind.
    """
    logs = RawLogs()
    for path in find_archives(raw_dir):
        name = path.name
        try:
            event_date, event_type = parse_archive_name(name)
            content = read_member(path)
        except InvalidArchiveError as rejection:
            logger.warning("Skipping archive %s: %s", path, rejection.detail)
            logs.rejected_archives.append((name, rejection.reason))
            continue

        non_blank = valid = rejected = 0
        for line_number, raw in enumerate(split_lines(content), start=1):
            logs.raw_lines += 1
            line = decode_line(raw)
            if is_blank(line):
                logs.blank_lines += 1
                continue
            non_blank += 1
            parsed = parse_line(line, event_type, event_date, name)
            if isinstance(parsed, ValidRow):
                valid += 1
                logs.valid_rows.append(parsed)
            else:
                rejected += 1
                # The raw line excludes its terminator, `\r\n` as well as `\n`.
                raw_line = line.removesuffix("\r")
                logs.rejected_rows.append(RejectedRow(name, line_number, parsed, raw_line))
        logs.reconciliation.append((name, non_blank, valid, rejected))

    logger.debug(
        "Read %d archives (%d skipped): %d valid rows, %d rejected rows, %d blank lines",
        len(logs.reconciliation),
        len(logs.rejected_archives),
        len(logs.valid_rows),
        len(logs.rejected_rows),
        logs.blank_lines,
    )
    return logs
