"""``kitaru executions logs EXEC_ID``: an execution's captured runtime log lines.

Prints the lines its checkpoints logged and printed, in store order. ``--follow`` keeps
printing while the execution runs and exits when it has ended; ``--checkpoint`` keeps one
checkpoint's lines; ``-v``/``-vv`` add the step, attempt and logger, then the checkpoint
execution's correlation ID and the source line; ``--grouped`` prints each checkpoint
execution's lines together under a header; ``--json`` prints one JSON object per line.

Log text comes from the producer and is untrusted: control characters are shown escaped, so a
line can never move the cursor, recolour or retitle the terminal.
See ``docs/runtime-logs-and-metadata.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterable
from typing import Any

import orjson

from kitaru import _config
from kitaru.cli import _events
from kitaru.cli._args import SERVER_URL, add_arguments
from kitaru.cli._terminal import terminal_safe
from kitaru.client._client import KitaruClient
from kitaru.exceptions import KitaruError
from kitaru.store._logs import LogLine

__all__ = ["add_parser", "format_line", "printable"]


def printable(text: str) -> str:
    """``text`` with control characters (line breaks included) shown as escapes."""
    return terminal_safe(text)


def add_parser(commands: Any) -> None:
    """Add ``kitaru executions logs``."""
    logs = commands.add_parser(
        "logs",
        help="show the runtime log lines an execution's checkpoints logged and printed",
        description="Show the lines an execution's checkpoints logged (Python logging) and "
        "printed (stdout/stderr), captured per checkpoint execution.",
    )
    logs.add_argument("exec_id", metavar="EXEC_ID", help="the exact execution ID")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the execution ends"
    )
    logs.add_argument(
        "--checkpoint", metavar="NAME", help="only lines of this checkpoint (name or step name)"
    )
    logs.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: step, attempt and logger; -vv: also correlation ID and source line",
    )
    logs.add_argument(
        "--grouped",
        action="store_true",
        help="print each checkpoint execution's lines together (not with --follow)",
    )
    logs.add_argument("--json", action="store_true", help="one JSON object per line")
    add_arguments(logs, [SERVER_URL])
    logs.set_defaults(func=run)


def _clock(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def format_line(line: LogLine, verbose: int = 0, *, with_checkpoint: bool = True) -> str:
    """One line of terminal output for one log line."""
    parts = [_clock(line.ts)]
    if with_checkpoint:
        parts.append(printable(line.step_name if verbose else line.checkpoint))
    if verbose >= 1:
        parts.append(f"#{line.attempt}")
    parts.append(f"{line.level:<7}")
    if verbose >= 1 and line.logger:
        parts.append(printable(line.logger) + ":")
    if verbose >= 2:
        parts.append(f"[{printable(line.correlation_id)}]")
        if line.source:
            parts.append(f"({printable(line.source)})")
    # A multi-line message (a traceback) keeps its lines, each one made safe and indented.
    text = "\n    ".join(printable(part) for part in line.message.split("\n"))
    parts.append(text)
    return " ".join(parts)


def _json(line: LogLine) -> str:
    return orjson.dumps(line.to_dict()).decode()


def _grouped(lines: Iterable[LogLine], verbose: int) -> list[str]:
    groups: dict[str, list[LogLine]] = {}
    for line in lines:
        groups.setdefault(line.correlation_id, []).append(line)
    out: list[str] = []
    for items in groups.values():
        first = items[0]
        if out:
            out.append("")
        out.append(
            f"== {printable(first.step_name)} (attempt {first.attempt}) "
            f"[{printable(first.correlation_id)}]"
        )
        out += ["  " + format_line(i, verbose, with_checkpoint=False) for i in items]
    return out


def run(args: argparse.Namespace) -> int:
    """Handler of ``kitaru executions logs``."""
    client = KitaruClient(server_url=_config.server_url(args.server_url))
    try:
        if args.follow:
            for line in client.executions.follow_logs(args.exec_id, args.checkpoint):
                print(_json(line) if args.json else format_line(line, args.verbose), flush=True)
            return 0
        lines = client.executions.logs(args.exec_id, checkpoint=args.checkpoint)
    except KitaruError as exc:
        return _events.fail(exc)
    if args.json:
        for line in lines:
            print(_json(line))
    elif args.grouped:
        for text in _grouped(lines, args.verbose):
            print(text)
    else:
        for line in lines:
            print(format_line(line, args.verbose))
    if not lines:
        print("no log lines", file=sys.stderr)
    return 0
