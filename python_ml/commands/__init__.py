"""Subcommands of ``musicbox``; each module exposes ``register(subparsers)``."""
