"""Argument types and definitions shared by the subcommands.

The ``type=`` callables' rules live in ``kitaru._checks`` (shared with the library and the
server); these only turn their ``ValueError`` into argparse's error type. Subcommands list their
arguments as :data:`Argument` tables and add them with :func:`add_arguments`.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from kitaru._checks import parse_positive_int, parse_positive_number

__all__ = ["SERVER_URL", "Argument", "add_arguments", "positive_int", "seconds"]

Argument = tuple[str, dict[str, Any]]
"""One argument: its name or flag, and the keyword arguments of ``add_argument``."""

SERVER_URL: Argument = (
    "--server-url",
    {"metavar": "URL", "help": "the kitaru server (default: KITARU_SERVER_URL)"},
)


def add_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, arguments: Iterable[Argument]
) -> None:
    """Add each argument of the table, in order."""
    for flag, options in arguments:
        parser.add_argument(flag, **options)


def seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        return parse_positive_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r}"
        ) from None


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        return parse_positive_int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
