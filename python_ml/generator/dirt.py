"""Planted dirt: lines the parser must reject and valid lines that are awkward.

Line-level dirt either inserts a new line (rejects, repeats, blank lines) or
rewrites an existing line in place (padding, device spelling, empty
durations, GBK names, song 0). Inserted rejects are corrupted copies of a
real line of the same archive, so they never remove a real event: the
realised churn labels depend only on the simulated events. Rewritten lines
stay valid under the parsing rules.

Archive-level dirt is chosen in ``plan_archive_dirt``: members with CRLF line
ends, members named without their date, and extra empty parts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from python_ml.generator import text
from python_ml.generator.params import GenerationParameters

PLAY, DOWN, SEARCH = "play", "down", "search"
ALL_KINDS = (PLAY, DOWN, SEARCH)

# Field positions per kind.
FIELD_COUNT = {PLAY: 9, DOWN: 6, SEARCH: 4}
SONG_ID_FIELD = {PLAY: 2, DOWN: 2}
NAME_FIELDS = {PLAY: (4, 5), DOWN: (3, 4), SEARCH: (3,)}
PLAY_TIME_FIELD, SONG_LENGTH_FIELD = 6, 7

# Archive-level dirt kinds; their records have no line number.
CRLF_MEMBER = "crlf_member"
UNDATED_MEMBER = "undated_member"
EMPTY_ARCHIVE = "empty_archive"


# Random tries to find a line that suits a rewriting dirt kind before giving up.
MAX_PICK_TRIES = 200


def _any_line(index: int) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class LineDirt:
    """One kind of line-level dirt.

    Attributes
    ----------
    reason : str
        The parser's reject reason for the line, or "" when it stays valid
        (or is blank and ignored).
    kinds : tuple of str
        Log kinds it applies to.
    inserts : bool
        True when it adds a line, False when it rewrites one.
    weight : float
        Relative frequency among line-level dirt.
    """

    reason: str
    kinds: tuple[str, ...]
    inserts: bool
    weight: float


LINE_DIRT = {
    "malformed_line": LineDirt("malformed_line", ALL_KINDS, True, 10),
    "invalid_uid": LineDirt("invalid_uid", ALL_KINDS, True, 10),
    "invalid_song_id": LineDirt("invalid_song_id", (PLAY, DOWN), True, 8),
    "invalid_duration": LineDirt("invalid_duration", (PLAY,), True, 8),
    "padded_fields": LineDirt("", ALL_KINDS, False, 10),
    "device_case": LineDirt("", ALL_KINDS, False, 8),
    "padded_device": LineDirt("", ALL_KINDS, False, 6),
    "empty_device": LineDirt("", ALL_KINDS, False, 3),
    "empty_duration": LineDirt("", (PLAY,), False, 8),
    "gbk_name": LineDirt("", ALL_KINDS, False, 10),
    "unknown_song": LineDirt("", (PLAY, DOWN), False, 8),
    "repeated_line": LineDirt("", ALL_KINDS, True, 8),
    "blank_line": LineDirt("", ALL_KINDS, True, 6),
}


@dataclasses.dataclass(frozen=True)
class DirtRecord:
    """One planted dirt item of an archive; ``line_number`` is None for archive-level dirt."""

    archive_name: str
    line_number: int | None
    dirt_kind: str
    variant: str
    reject_reason: str


@dataclasses.dataclass(frozen=True)
class ArchiveSlot:
    """One archive to write: a day, a kind, a part and how many event lines it carries."""

    day: int
    kind: str
    part: int
    lines: int


def plan_line_dirt(
    params: GenerationParameters, slots: list[ArchiveSlot], rng: np.random.Generator
) -> dict[int, dict[str, int]]:
    """Return, per slot index, how many lines of each dirt kind to plant there.

    Every dirt kind gets ``max(1, round(share * weight / total weight *
    lines))`` items, spread over the archives it applies to in proportion to
    their lines, so that each kind occurs at least once at any scale with
    such archives.
    """
    total_lines = sum(slot.lines for slot in slots)
    total_weight = sum(dirt.weight for dirt in LINE_DIRT.values())
    plan: dict[int, dict[str, int]] = {}
    for name, dirt in LINE_DIRT.items():
        sizes = np.array([slot.lines if slot.kind in dirt.kinds else 0 for slot in slots])
        if sizes.sum() == 0:
            continue
        requested = max(1, round(params.dirt_line_share * dirt.weight / total_weight * total_lines))
        if not dirt.inserts:
            requested = min(requested, int(sizes.sum()))
        spread = rng.multinomial(requested, sizes / sizes.sum())
        for index in np.flatnonzero(spread):
            plan.setdefault(int(index), {})[name] = int(spread[index])
    return plan


def plan_archive_dirt(
    params: GenerationParameters, slots: list[ArchiveSlot], rng: np.random.Generator
) -> tuple[set[int], set[int], list[tuple[int, str]]]:
    """Choose the archive-level dirt.

    Returns
    -------
    crlf : set of int
        Slot indices whose member uses ``\\r\\n`` line ends (chosen among
        archives with lines).
    undated : set of int
        Slot indices whose member is named ``<kind>.log``.
    empty_extra : list of (day, kind)
        Days and kinds that get one more part with an empty member.
    """

    def count(per_thousand: float) -> int:
        return max(1, round(per_thousand * len(slots) / 1000))

    with_lines = [index for index, slot in enumerate(slots) if slot.lines > 0]
    crlf_count = min(len(with_lines), count(params.crlf_archives_per_thousand))
    crlf = set(rng.choice(with_lines, size=crlf_count, replace=False).tolist())
    undated_count = min(len(slots), count(params.undated_member_archives_per_thousand))
    undated = set(rng.choice(len(slots), size=undated_count, replace=False).tolist())
    day_kinds = sorted({(slot.day, slot.kind) for slot in slots})
    empty_count = min(len(day_kinds), count(params.empty_extra_archives_per_thousand))
    picks = rng.choice(len(day_kinds), size=empty_count, replace=False)
    return crlf, undated, sorted(day_kinds[index] for index in picks)


def _pad(value: str, rng: np.random.Generator) -> str:
    left = " " * int(rng.integers(0, 3))
    right = " " * int(rng.integers(0 if left else 1, 3))
    return left + value + right


def _rewrite(
    name: str, fields: list[str], kind: str, rng: np.random.Generator
) -> tuple[list[str], str]:
    """Apply rewriting dirt ``name`` to ``fields``; return them and the variant used."""
    fields = list(fields)
    if name == "padded_fields":
        targets = [0, 2] if kind == SEARCH else [0, SONG_ID_FIELD[kind]]
        if kind == PLAY:
            targets += [PLAY_TIME_FIELD, SONG_LENGTH_FIELD]
        for target in targets:
            fields[target] = _pad(fields[target], rng)
        return fields, "spaces around numbers"
    if name == "device_case":
        variants = {"ar": ("AR", "Ar", "aR"), "ip": ("IP", "Ip", "iP")}[fields[1]]
        fields[1] = variants[int(rng.integers(0, len(variants)))]
        return fields, fields[1]
    if name == "padded_device":
        fields[1] = _pad(fields[1].upper() if rng.random() < 0.3 else fields[1], rng)
        return fields, "spaces around device"
    if name == "empty_device":
        fields[1] = "" if rng.random() < 0.7 else " "
        return fields, "empty" if not fields[1] else "space only"
    if name == "empty_duration":
        choice = int(rng.integers(0, 3))
        if choice in (0, 2):
            fields[PLAY_TIME_FIELD] = ""
        if choice in (1, 2):
            fields[SONG_LENGTH_FIELD] = ""
        return fields, ("empty play_time", "empty song_length", "both empty")[choice]
    if name == "gbk_name":
        for target in NAME_FIELDS[kind]:
            if not fields[target].isascii():
                fields[target] = text.as_gbk_text(fields[target])
        return fields, "GBK bytes"
    if name == "unknown_song":
        fields[SONG_ID_FIELD[kind]] = "0"
        return fields, "song_id 0"
    raise ValueError(f"unknown rewriting dirt kind {name!r}")


def _corrupt(name: str, fields: list[str], kind: str, rng: np.random.Generator) -> tuple[str, str]:
    """Return the line that dirt ``name`` inserts (from a real line's fields) and its variant."""
    if name == "repeated_line":
        return "\t".join(fields), "same line twice"
    if name == "blank_line":
        line = ("", " ", "   ")[int(rng.integers(0, 3))]
        return line, "empty" if not line else "spaces only"
    fields = list(fields)
    if name == "malformed_line":
        choice = int(rng.integers(0, 3))
        if choice == 0:
            dropped = int(rng.integers(1, len(fields) - 1))
            return "\t".join(fields[:-dropped]), f"{dropped} fields missing"
        if choice == 1:
            return "\t".join([*fields, "0"]), "extra field"
        return " ".join(fields), "spaces instead of tabs"
    if name == "invalid_uid":
        uid = fields[0]
        variants = {
            "empty": "",
            "negative": "-" + uid,
            "zero": "0",
            "letters": uid[:3] + "x" + uid[3:],
            "decimal": uid + ".0",
            "inner space": uid[:4] + " " + uid[4:],
        }
    elif name == "invalid_song_id":
        song_id = fields[SONG_ID_FIELD[kind]]
        variants = {
            "empty": "",
            "negative": "-" + song_id,
            "letters": "s" + song_id,
            "decimal": song_id + ".5",
            "null": "NULL",
        }
    elif name == "invalid_duration":
        variants = {
            "decimal": f"{fields[PLAY_TIME_FIELD]}.5",
            "negative": "-" + fields[PLAY_TIME_FIELD],
            "letters": "abc",
            "null": "null",
        }
    else:
        raise ValueError(f"unknown inserting dirt kind {name!r}")
    variant = list(variants)[int(rng.integers(0, len(variants)))]
    value = variants[variant]
    if name == "invalid_uid":
        fields[0] = value
    elif name == "invalid_song_id":
        fields[SONG_ID_FIELD[kind]] = value
    else:
        target = PLAY_TIME_FIELD if rng.random() < 0.6 else SONG_LENGTH_FIELD
        fields[target] = value
        variant += " " + ("play_time" if target == PLAY_TIME_FIELD else "song_length")
    return "\t".join(fields), variant


@dataclasses.dataclass
class DirtyLines:
    """An archive's lines after line-level dirt, with what was planted where.

    Attributes
    ----------
    lines : list of str
        Member lines without line ends.
    records : list of (int, str, str, str)
        ``(line_number, dirt_kind, variant, reject_reason)``, line numbers
        1-based.
    repeated_sources : list of int
        Index (into the original lines) of each line that was repeated, so
        the caller can count the extra valid event.
    """

    lines: list[str]
    records: list[tuple[int, str, str, str]]
    repeated_sources: list[int]


def apply_line_dirt(
    lines: list[str],
    kind: str,
    plan: dict[str, int],
    rng: np.random.Generator,
    has_gbk_form: Callable[[int], bool],
) -> DirtyLines:
    """Plant the dirt of ``plan`` into ``lines`` of one archive of ``kind``.

    Parameters
    ----------
    lines : list of str
        The archive's clean lines, without line ends.
    plan : dict of str to int
        Count of each dirt kind to plant.
    has_gbk_form : callable
        Tells whether the line at an index has a name whose GBK bytes are
        not valid UTF-8 (only those lines can carry GBK dirt).
    """
    count = len(lines)
    if count == 0:
        return DirtyLines(list(lines), [], [])
    rewrites = {name: number for name, number in plan.items() if not LINE_DIRT[name].inserts}
    inserts = {name: number for name, number in plan.items() if LINE_DIRT[name].inserts}

    # Rewritten lines are distinct; GBK dirt takes lines that have a GBK form.
    used_lines: set[int] = set()

    def pick_line(accept: Callable[[int], bool]) -> int | None:
        for _ in range(MAX_PICK_TRIES):
            index = int(rng.integers(0, count))
            if index not in used_lines and accept(index):
                return index
        return None

    rewritten: dict[int, tuple[str, str, str]] = {}
    for name in sorted(rewrites):
        accept = has_gbk_form if name == "gbk_name" else _any_line
        for _ in range(rewrites[name]):
            index = pick_line(accept)
            if index is None:
                break
            used_lines.add(index)
            fields, variant = _rewrite(name, lines[index].split("\t"), kind, rng)
            rewritten[index] = ("\t".join(fields), name, variant)

    result = list(lines)
    for index, (line, _, _) in rewritten.items():
        result[index] = line

    # Inserted lines copy an untouched line and go right after it (blank
    # lines anywhere, including before the first line).
    all_used_lines = len(used_lines) >= count
    after: dict[int, list[tuple[str, str, str, str]]] = {}
    repeated_sources = []
    for name in sorted(inserts):
        for _ in range(inserts[name]):
            if name == "blank_line":
                source = int(rng.integers(-1, count))
                fields = []
            else:
                source = int(rng.integers(0, count))
                while not all_used_lines and source in used_lines:
                    source = int(rng.integers(0, count))
                fields = lines[source].split("\t")
            line, variant = _corrupt(name, fields, kind, rng)
            after.setdefault(source, []).append((line, name, variant, LINE_DIRT[name].reason))
            if name == "repeated_line":
                repeated_sources.append(source)

    final: list[str] = []
    records: list[tuple[int, str, str, str]] = []

    def emit_inserted(source: int) -> None:
        for line, name, variant, reason in after.get(source, []):
            final.append(line)
            records.append((len(final), name, variant, reason))

    emit_inserted(-1)
    cursor = 0
    for index in sorted(set(rewritten) | {source for source in after if source >= 0}):
        final.extend(result[cursor : index + 1])
        if index in rewritten:
            _, name, variant = rewritten[index]
            records.append((len(final), name, variant, ""))
        emit_inserted(index)
        cursor = index + 1
    final.extend(result[cursor:])
    return DirtyLines(final, records, repeated_sources)
