"""``musicbox generate``: write a synthetic dataset in the delivered archive format."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from python_ml.config import ConfigError, data_dir
from python_ml.generator import DEFAULT_SEED, DEFAULT_USERS, generate_dataset

logger = logging.getLogger(__name__)


def _whole_number(text: str, minimum: int) -> int:
    """Parse an option value as an int of at least ``minimum`` or raise argparse's error."""
    try:
        value: int | None = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at least {minimum}, got {text!r}"
        )
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write synthetic raw log archives and their ground truth",
        description=(
            "Write 44 days (2017-03-30 to 2017-05-12) of synthetic play, download and search "
            "logs as YYYYMMDD_<part>_<kind>.log.tar.gz archives, plus a ground-truth folder "
            "(true churn probabilities, tastes, catalog and planted dirt) beside them."
        ),
    )
    parser.add_argument(
        "--users",
        type=_positive_int,
        default=DEFAULT_USERS,
        metavar="N",
        help=(
            "number of simulated users; events scale with it, about 210 per user "
            "(default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--seed",
        type=_non_negative_int,
        default=DEFAULT_SEED,
        metavar="S",
        help=(
            "random seed, a non-negative whole number; the same seed and users give "
            "byte-identical archives (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "raw folder for the archives (default: raw in $MUSICBOX_DATA_DIR, which "
            "defaults to data/ in the project)"
        ),
    )
    parser.add_argument(
        "--truth-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "ground-truth folder; must not be inside the raw folder (default: ground_truth "
            "beside the raw folder)"
        ),
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete log archives already in the raw folder instead of failing",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        out_dir = args.out if args.out is not None else data_dir() / "raw"
    except ConfigError as error:
        logger.error("cannot resolve the default raw folder: %s; pass --out", error)
        return 2
    truth_dir = args.truth_dir if args.truth_dir is not None else out_dir.parent / "ground_truth"
    logger.info(
        "generating %d users with seed %d into %s (ground truth in %s)",
        args.users,
        args.seed,
        out_dir,
        truth_dir,
    )
    started = time.perf_counter()
    try:
        summary = generate_dataset(
            out_dir, args.users, args.seed, truth_dir, overwrite=args.overwrite
        )
    except (ValueError, FileExistsError) as error:
        logger.error("generation failed: %s", error)
        return 2
    elapsed = time.perf_counter() - started
    logger.info(
        "wrote %d archives in %.1f s: %s lines, %d rejected, %d blank",
        summary.archives,
        elapsed,
        ", ".join(f"{count} {kind}" for kind, count in summary.lines.items()),
        sum(summary.rejected_lines.values()),
        summary.blank_lines,
    )
    logger.info(
        "%d users with events, %d bots, population %d, churn rate %.3f, "
        "oracle AUC %.4f (%.4f from the observed days alone)",
        summary.users_with_events,
        summary.bots,
        summary.population_users,
        summary.churn_rate,
        summary.oracle_auc,
        summary.observed_oracle_auc,
    )
    return 0
