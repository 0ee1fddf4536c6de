"""Argument types shared by the subcommands (argparse ``type=`` callables).

The rules themselves live in ``kitaru._checks`` (shared with the library and the server);
these only turn their ``ValueError`` into argparse's error type.
"""

from __future__ import annotations

import argparse

from kitaru._checks import parse_positive_int, parse_positive_number

__all__ = ["positive_int", "seconds"]


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
