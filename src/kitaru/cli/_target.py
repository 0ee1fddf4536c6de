"""Which execution a CLI command means: an exact ID, or the newest one (``--latest``).

``kitaru events --latest`` watches the newest execution of the store it reads, ``--flow NAME``
the newest of that flow. Resolving also checks that the server answers: the lookup goes
through a fail-fast client, so a refused or hanging connection is one error line naming the
server instead of a long silent wait (see "Watching from a terminal" in ``docs/cli.md``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from kitaru.cli._args import Argument, add_arguments
from kitaru.client._client import KitaruClient
from kitaru.exceptions import KitaruStateError, KitaruUsageError
from kitaru.store._records import ExecutionRecord

__all__ = ["TARGET_ARGUMENTS", "Target", "add_target_arguments", "check", "resolve"]


@dataclass(frozen=True)
class Target:
    """The execution a command acts on, as its durable record found it."""

    exec_id: str
    flow_name: str | None
    record: ExecutionRecord


TARGET_ARGUMENTS: tuple[Argument, ...] = (
    (
        "exec_id",
        {
            "metavar": "EXEC_ID",
            "nargs": "?",
            "help": "the exact execution ID (or use --latest / --flow)",
        },
    ),
    (
        "--latest",
        {"action": "store_true", "help": "the newest execution (of --flow NAME, when given)"},
    ),
    ("--flow", {"metavar": "NAME", "help": "the newest execution of this flow (implies --latest)"}),
)
"""``EXEC_ID`` (optional), ``--latest`` and ``--flow NAME``."""


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """``EXEC_ID`` (optional), ``--latest`` and ``--flow NAME``."""
    add_arguments(parser, TARGET_ARGUMENTS)


def check(args: argparse.Namespace) -> None:
    """Raise :class:`~kitaru.KitaruUsageError` unless exactly one way to name it was given."""
    latest = bool(args.latest or args.flow)
    if args.exec_id is not None and latest:
        raise KitaruUsageError("give either EXEC_ID or --latest/--flow, not both")
    if args.exec_id is None and not latest:
        raise KitaruUsageError(
            "give an EXEC_ID (see `kitaru executions list`), or --latest for the newest "
            "execution, or --flow NAME for the newest execution of a flow"
        )


def resolve(client: KitaruClient, args: argparse.Namespace) -> Target:
    """The execution ``args`` name, looked up in ``client``'s store.

    Raises:
        KitaruUsageError: Neither or both of EXEC_ID and ``--latest``/``--flow``.
        KitaruStateError: No such execution (the message names the store it looked in).
        KitaruBackendError: The server could not be reached (named, with the time it took).
    """
    check(args)
    if args.exec_id is None:
        records = client.executions.list(flow=args.flow, limit=1)
        if not records:
            of = f" of flow {args.flow!r}" if args.flow else ""
            raise KitaruStateError(f"no executions{of} in {client.location}")
        record = records[0]
    else:
        try:
            record = client.executions.get(args.exec_id)
        except KitaruStateError:
            raise KitaruStateError(
                f"no execution with ID {args.exec_id!r} in {client.location}; execution IDs "
                "are exact (prefixes are not accepted): see `kitaru executions list`, or "
                "use --latest for the newest execution"
            ) from None
    return Target(record.exec_id, record.flow_name, record)
