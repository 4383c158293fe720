"""Log lines and the deterministic ``.log.tar.gz`` archives that carry them.

An archive is a gzip'd tar with one regular-file member. The tar and gzip
headers both carry a fixed modification time derived from the log's date.
The member's owner is root with empty user and group names, and the gzip
header has no file name, so equal content gives equal bytes on every run.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import re
import tarfile
from pathlib import Path

from python_ml.generator.catalog import Catalog
from python_ml.generator.events import KindEvents, day_start_timestamp
from python_ml.generator.params import day_dates
from python_ml.generator.population import Population

ARCHIVE_NAME_PATTERN = re.compile(r"^(\d{8})_(\d+)_(play|down|search)\.log\.tar\.gz$")
DEVICE_CODES = ("ar", "ip")
# Archives of a day are stamped as exported at 02:00 UTC the next day.
EXPORT_DELAY_SECONDS = 26 * 3600


def archive_name(day: int, part: int, kind: str) -> str:
    """Return the file name of part ``part`` (from 1) of ``kind`` on generated day ``day``."""
    date: dt.date = day_dates()[day]
    return f"{date:%Y%m%d}_{part}_{kind}.log.tar.gz"


def member_name(archive: str, kind: str, undated: bool) -> str:
    """Return the member name: the archive name minus ``.tar.gz``, or ``<kind>.log`` if undated."""
    return f"{kind}.log" if undated else archive.removesuffix(".tar.gz")


def export_mtime(day: int) -> int:
    """Return the fixed modification time (Unix seconds) of a day's archives."""
    return day_start_timestamp(day) + EXPORT_DELAY_SECONDS


class LineFormatter:
    """Formats events as tab-separated log lines, with per-user and per-song text cached."""

    def __init__(self, catalog: Catalog, population: Population) -> None:
        self.uid = [str(value) for value in population.user_id.tolist()]
        self.paid = [str(value) for value in population.paid.tolist()]
        self.play_fragment = catalog.song_fragment
        self.down_fragment = [
            f"{song_id}\t{name}\t{singer}"
            for song_id, name, singer in zip(
                catalog.song_id.tolist(), catalog.song_name, catalog.singer, strict=True
            )
        ]
        self.length = [str(value) for value in catalog.song_length.tolist()]

    def lines(self, kind: str, events: KindEvents) -> list[str]:
        """Return one line (without line end) per event of ``kind``."""
        uid, paid, device = self.uid, self.paid, DEVICE_CODES
        users = events.user.tolist()
        devices = events.device.tolist()
        if kind == "play":
            fragment, length = self.play_fragment, self.length
            return [
                f"{uid[user]}\t{device[code]}\t{fragment[song]}\t{played}\t{length[song]}"
                f"\t{paid[user]}"
                for user, code, song, played in zip(
                    users, devices, events.song.tolist(), events.play_time.tolist(), strict=True
                )
            ]
        if kind == "down":
            fragment = self.down_fragment
            return [
                f"{uid[user]}\t{device[code]}\t{fragment[song]}\t{paid[user]}"
                for user, code, song in zip(users, devices, events.song.tolist(), strict=True)
            ]
        if kind == "search":
            return [
                f"{uid[user]}\t{device[code]}\t{stamp}\t{query}"
                for user, code, stamp, query in zip(
                    users, devices, events.time_stamp.tolist(), events.query, strict=True
                )
            ]
        raise ValueError(f"unknown log kind {kind!r}; expected play, down or search")


def member_payload(lines: list[str], crlf: bool) -> bytes:
    """Return the member bytes, each line ended by ``\\n`` or ``\\r\\n``, GBK text as its bytes."""
    if not lines:
        return b""
    end = "\r\n" if crlf else "\n"
    return (end.join(lines) + end).encode("utf-8", "surrogateescape")


def write_archive(path: Path, member: str, payload: bytes, mtime: int, level: int) -> None:
    """Write ``payload`` as the single member of a gzip'd tar at ``path``, atomically."""
    info = tarfile.TarInfo(member)
    info.size = len(payload)
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(payload))
    data = gzip.compress(buffer.getvalue(), compresslevel=level, mtime=mtime)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
