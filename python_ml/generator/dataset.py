"""``generate_dataset``: the whole generator, from catalog to archives and ground truth."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from python_ml.generator import churn, dirt, events, text, truth
from python_ml.generator.archive import (
    ARCHIVE_NAME_PATTERN,
    LineFormatter,
    archive_name,
    export_mtime,
    member_name,
    member_payload,
    write_archive,
)
from python_ml.generator.catalog import Catalog, build_catalog
from python_ml.generator.params import (
    DAY_COUNT,
    KINDS,
    GenerationParameters,
    day_dates,
    lines_per_part,
)
from python_ml.generator.population import Population, build_population
from python_ml.generator.seeding import component_rng

logger = logging.getLogger(__name__)

DEFAULT_USERS = 59_000
DEFAULT_SEED = 1
# Archives formatted but not yet written; bounds memory to a few parts.
MAX_PENDING_ARCHIVES = 4


@dataclasses.dataclass
class ArchiveStats:
    """Member name, line end and line counts of one written archive."""

    archive_name: str
    event_date: str
    kind: str
    part: int
    member_name: str
    line_end: str
    lines: int
    blank_lines: int
    rejected_lines: int
    valid_rows: int


@dataclasses.dataclass
class GenerationSummary:
    """Counts and quality figures of a generated dataset (also in ``manifest.json``)."""

    out_dir: Path
    truth_dir: Path
    users: int
    seed: int
    users_with_events: int
    bots: int
    archives: int
    lines: dict[str, int]
    valid_rows: dict[str, int]
    rejected_lines: dict[str, int]
    blank_lines: int
    dirt: dict[str, int]
    population_users: int
    # churn_rate is NaN without a population, the AUCs when all labels are equal.
    churn_rate: float
    oracle_auc: float
    observed_oracle_auc: float


def check_folders(out_dir: Path, truth_dir: Path, overwrite: bool) -> None:
    """Reject a truth folder inside the raw folder and raw archives already present.

    With ``overwrite``, archives named like generated ones are deleted
    instead; other files in ``out_dir`` are never touched.

    Raises
    ------
    ValueError
        When ``truth_dir`` is ``out_dir`` or inside it.
    FileExistsError
        When ``out_dir`` already contains archives and ``overwrite`` is False.
    """
    out_resolved = out_dir.resolve()
    truth_resolved = truth_dir.resolve()
    if truth_resolved == out_resolved or out_resolved in truth_resolved.parents:
        raise ValueError(
            f"ground truth folder {truth_dir} is inside the raw folder {out_dir}; the raw folder "
            "must contain only archives, so choose a truth folder outside it"
        )
    if not out_dir.is_dir():
        return
    existing = sorted(path for path in out_dir.iterdir() if ARCHIVE_NAME_PATTERN.match(path.name))
    if existing and not overwrite:
        raise FileExistsError(
            f"{out_dir} already contains {len(existing)} log archives, such as "
            f"{existing[0].name}; pass overwrite=True (--overwrite) to replace them or choose "
            "an empty folder"
        )
    for path in existing:
        path.unlink()
    if existing:
        logger.info("removed %d archives of an earlier run from %s", len(existing), out_dir)


def plan_slots(counts: np.ndarray, max_lines: int) -> list[dirt.ArchiveSlot]:
    """Split each day's events of each kind into parts of at most ``max_lines`` lines."""
    slots = []
    for day in range(DAY_COUNT):
        for kind_index, kind in enumerate(KINDS):
            total = int(counts[kind_index, :, day].sum())
            parts = max(1, math.ceil(total / max_lines))
            sizes = [len(chunk) for chunk in np.array_split(np.arange(total), parts)]
            for part, size in enumerate(sizes, start=1):
                slots.append(dirt.ArchiveSlot(day=day, kind=kind, part=part, lines=size))
    return slots


def add_empty_parts(
    slots: list[dirt.ArchiveSlot], day_kinds: list[tuple[int, str]]
) -> tuple[list[dirt.ArchiveSlot], set[int]]:
    """Append one empty part to each (day, kind) of ``day_kinds``; return the new slot indices."""
    last_part = Counter()
    for slot in slots:
        last_part[(slot.day, slot.kind)] = max(last_part[(slot.day, slot.kind)], slot.part)
    extended = list(slots)
    empty = set()
    for day, kind in day_kinds:
        empty.add(len(extended))
        extended.append(
            dirt.ArchiveSlot(day=day, kind=kind, part=last_part[(day, kind)] + 1, lines=0)
        )
    return extended, empty


class ArchiveWriter:
    """Writes the archives of each day and collects their statistics and dirt records."""

    def __init__(
        self,
        params: GenerationParameters,
        catalog: Catalog,
        population: Population,
        slots: list[dirt.ArchiveSlot],
        seed: int,
        out_dir: Path,
    ) -> None:
        self.params = params
        self.catalog = catalog
        self.population = population
        self.slots = slots
        self.seed = seed
        self.out_dir = out_dir
        self.formatter = LineFormatter(catalog, population)
        self.song_has_gbk = events.gbk_candidates(catalog)
        plan_rng = component_rng(seed, "dirt-plan")
        self.line_plan = dirt.plan_line_dirt(params, slots, plan_rng)
        self.crlf, self.undated, empty_day_kinds = dirt.plan_archive_dirt(params, slots, plan_rng)
        self.slots, self.empty = add_empty_parts(slots, empty_day_kinds)
        self.stats: list[ArchiveStats] = []
        self.records: list[dirt.DirtRecord] = []
        # Valid events added by repeated lines, per kind, user and day.
        self.extra_valid = np.zeros((3, population.size, DAY_COUNT), dtype=np.int32)
        # zlib releases the GIL, so one thread compresses while the main
        # thread formats the next archive.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-writer")
        self.pending: list[Future] = []

    def _submit(self, path: Path, member: str, payload: bytes, mtime: int) -> None:
        """Compress and write an archive on the worker thread, keeping few payloads queued."""
        while len(self.pending) >= MAX_PENDING_ARCHIVES:
            self.pending.pop(0).result()
        self.pending.append(
            self.executor.submit(
                write_archive, path, member, payload, mtime, self.params.gzip_level
            )
        )

    def close(self) -> None:
        """Wait for every queued archive; re-raise the first write error."""
        try:
            for future in self.pending:
                future.result()
        finally:
            self.pending.clear()
            self.executor.shutdown(wait=True)

    def write_day(self, day: int, day_events: dict[int, events.KindEvents]) -> None:
        """Write every archive of ``day``."""
        for slot_index, slot in enumerate(self.slots):
            if slot.day != day:
                continue
            kind_index = KINDS.index(slot.kind)
            kind_events = day_events[kind_index]
            offset = sum(
                other.lines
                for other in self.slots
                if other.day == day and other.kind == slot.kind and other.part < slot.part
            )
            part_events = kind_events.take(slice(offset, offset + slot.lines))
            self._write_slot(slot_index, slot, part_events)

    def _write_slot(
        self, slot_index: int, slot: dirt.ArchiveSlot, part_events: events.KindEvents
    ) -> None:
        name = archive_name(slot.day, slot.part, slot.kind)
        lines = self.formatter.lines(slot.kind, part_events)
        plan = self.line_plan.get(slot_index, {})
        rng = component_rng(self.seed, "dirt", slot_index)
        if slot.kind == "search":
            queries = part_events.query or []

            def has_gbk_form(index: int) -> bool:
                return text.has_invalid_gbk_bytes(queries[index])
        else:
            songs = part_events.song

            def has_gbk_form(index: int) -> bool:
                return bool(self.song_has_gbk[songs[index]])

        dirty = dirt.apply_line_dirt(lines, slot.kind, plan, rng, has_gbk_form)
        kind_index = KINDS.index(slot.kind)
        for source in dirty.repeated_sources:
            self.extra_valid[kind_index, part_events.user[source], slot.day] += 1

        crlf = slot_index in self.crlf
        undated = slot_index in self.undated
        member = member_name(name, slot.kind, undated)
        payload = member_payload(dirty.lines, crlf)
        self._submit(self.out_dir / name, member, payload, export_mtime(slot.day))

        for line_number, kind, variant, reason in dirty.records:
            self.records.append(dirt.DirtRecord(name, line_number, kind, variant, reason))
        for flag, kind, variant in (
            (crlf, dirt.CRLF_MEMBER, "CRLF line ends"),
            (undated, dirt.UNDATED_MEMBER, member),
            (slot_index in self.empty, dirt.EMPTY_ARCHIVE, "extra part, zero-byte member"),
        ):
            if flag:
                self.records.append(dirt.DirtRecord(name, None, kind, variant, ""))

        blank = sum(1 for record in dirty.records if record[1] == "blank_line")
        rejected = sum(1 for record in dirty.records if record[3])
        self.stats.append(
            ArchiveStats(
                archive_name=name,
                event_date=str(day_dates()[slot.day]),
                kind=slot.kind,
                part=slot.part,
                member_name=member,
                line_end="crlf" if crlf else "lf",
                lines=len(dirty.lines),
                blank_lines=blank,
                rejected_lines=rejected,
                valid_rows=len(dirty.lines) - blank - rejected,
            )
        )


def generate_dataset(
    out_dir: str | Path,
    users: int = DEFAULT_USERS,
    seed: int = DEFAULT_SEED,
    truth_dir: str | Path | None = None,
    *,
    params: GenerationParameters | None = None,
    overwrite: bool = False,
) -> GenerationSummary:
    """Generate synthetic raw logs in the delivered format and their ground truth.

    Parameters
    ----------
    out_dir : str or Path
        Raw folder that receives the ``YYYYMMDD_<part>_<kind>.log.tar.gz``
        archives; created when missing.
    users : int
        Number of simulated users (at least 1); events scale with it.
    seed : int
        Non-negative seed. The same seed, users and parameters give
        byte-identical archives and truth files.
    truth_dir : str or Path, optional
        Ground-truth folder, by default ``ground_truth`` beside ``out_dir``.
        It must not be ``out_dir`` or inside it.
    params : GenerationParameters, optional
        Model parameters; the calibrated defaults when omitted.
    overwrite : bool
        Replace archives already in ``out_dir`` instead of raising.

    Returns
    -------
    GenerationSummary
    """
    if users < 1:
        raise ValueError(f"users must be at least 1, got {users}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    params = params or GenerationParameters()
    out_dir = Path(out_dir)
    truth_dir = Path(truth_dir) if truth_dir is not None else out_dir.parent / "ground_truth"
    check_folders(out_dir, truth_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)

    catalog = build_catalog(params, users, seed)
    population = build_population(params, users, seed, catalog)
    activity = churn.simulate_activity(params, population, seed)
    logger.info(
        "simulated %d users (%d bots) and %d events over a catalog of %d songs",
        users,
        int(population.is_bot.sum()),
        int(activity.counts.sum()),
        catalog.size,
    )

    slots = plan_slots(activity.counts, lines_per_part(params, users))
    writer = ArchiveWriter(params, catalog, population, slots, seed, out_dir)
    try:
        for day in range(DAY_COUNT):
            day_events = events.generate_day(
                params, catalog, population, activity.counts[:, :, day], day, seed
            )
            writer.write_day(day, day_events)
            logger.debug("formatted the archives of day %d", day)
    finally:
        writer.close()

    probability = churn.oracle_churn_probability(params, population.activity, activity)
    manifest = truth.write_ground_truth(
        truth_dir,
        out_dir=out_dir,
        users=users,
        seed=seed,
        params=params,
        catalog=catalog,
        population=population,
        activity=activity,
        probability=probability,
        writer=writer,
    )
    if manifest["bots"] != manifest["planted_bots"]:
        logger.warning(
            "the contract's bot rule flags %d users but %d bots were planted",
            manifest["bots"],
            manifest["planted_bots"],
        )
    return GenerationSummary(
        out_dir=out_dir,
        truth_dir=truth_dir,
        users=users,
        seed=seed,
        users_with_events=manifest["users_with_events"],
        bots=manifest["bots"],
        archives=manifest["archives"],
        lines=manifest["lines"],
        valid_rows=manifest["valid_rows"],
        rejected_lines=manifest["rejected_lines"],
        blank_lines=manifest["blank_lines"],
        dirt=manifest["dirt"],
        population_users=manifest["population_users"],
        churn_rate=_figure(manifest["churn_rate"]),
        oracle_auc=_figure(manifest["oracle_auc"]),
        observed_oracle_auc=_figure(manifest["observed_oracle_auc"]),
    )


def _figure(value: float | None) -> float:
    """Return a manifest figure, reading null (too few users for the figure) as NaN."""
    return math.nan if value is None else value
