"""The ``musicbox`` command line: one subcommand per stage of the pipeline."""

from __future__ import annotations

import argparse
import logging
import sys

from python_ml.commands import generate, land, servers, train

COMMANDS = (land, generate, train, servers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicbox",
        description="Land raw app logs, generate synthetic logs and train models on the marts.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold for messages on standard error",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # py4j logs every gateway call at INFO; keep it quiet unless asked for.
    logging.getLogger("py4j").setLevel(max(logging.WARNING, logging.getLogger().level))
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
