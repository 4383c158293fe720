"""``musicbox land``: unpack delivered archives into the landing folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from python_ml import config, landing

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "land",
        help="land every log archive found under RAW_DIR (any depth)",
        description=(
            "Unpack every *.tar.gz archive under RAW_DIR into the landing folder that "
            "dbt reads. Unchanged archives are skipped, changed ones replaced; broken "
            "ones are listed in the rejected-archives table and the rest still land. "
            "Exits with 1 only when no archive is usable."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("raw_dir", metavar="RAW_DIR", type=Path, help="folder of archives")
    parser.add_argument(
        "--landing-path",
        type=Path,
        default=None,
        help="landing folder (default: the dbt var landing_path in dbt_project.yml)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = args.landing_path.resolve() if args.landing_path else config.landing_dir()
    try:
        result = landing.land(args.raw_dir, target)
    except FileNotFoundError as error:
        logger.error("%s", error)
        return 1
    for name, reason in sorted(result.rejected.items()):
        logger.warning("not landed: %s (%s)", name, reason)
    if not result.usable:
        logger.error("no usable archive found under %s", args.raw_dir)
        return 1
    return 0
