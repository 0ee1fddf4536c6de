"""The ``kitaru`` command line.

Each subcommand lives in its own module with a ``register(subparsers)`` function that adds its
parser and sets ``func`` (the handler, returning an exit code). Add a subcommand by adding its
module to :data:`SUBCOMMANDS`. Handlers import optional dependencies lazily and print an
install hint when they are missing, so ``kitaru --help`` always works.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from kitaru._version import __version__
from kitaru.exceptions import KitaruError, KitaruUsageError

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

SUBCOMMANDS: tuple[str, ...] = (
    "kitaru.cli._server",
    "kitaru.cli._executions",
    "kitaru.cli._events",
)
"""Modules that register a subcommand, in help order."""


def build_parser() -> argparse.ArgumentParser:
    """The ``kitaru`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="kitaru",
        description="Durable flows whose checkpoints publish live events and traces.",
    )
    parser.add_argument("--version", action="version", version=f"kitaru {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kitaru`` command line; returns the process exit code.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except KitaruUsageError as exc:
        print(f"kitaru: error: {exc}", file=sys.stderr)
        return 2
    except KitaruError as exc:
        print(f"kitaru: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (head, jq ...) went away: stop quietly, and keep the interpreter's
        # exit-time flush of stdout from raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
