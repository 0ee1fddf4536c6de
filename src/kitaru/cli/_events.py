"""``kitaru events EXEC_ID`` (also ``kitaru executions events``): watch an execution live.

``kitaru events --latest`` watches the newest execution, ``--flow NAME`` the newest of a flow.
The execution is looked up first, fail-fast: an unreachable server is one error line (exit 2).

On a terminal it draws live lanes, one per checkpoint execution (:mod:`kitaru.cli._watch_live`);
into a pipe or a file it prints plain lines; with ``--json`` one JSON object per event.

Exit codes: 0 when the execution completed, 1 when it failed or was lost, 3 when it was
cancelled, 2 for a usage or connection error (an unknown execution ID included), 130 on Ctrl-C,
141 when the reader of the output went away (the table is in ``docs/outcomes.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

from kitaru import _config
from kitaru._snapshot import ExecutionSnapshot
from kitaru.cli._args import SERVER_URL, Argument, add_arguments, seconds
from kitaru.cli._target import TARGET_ARGUMENTS, check, resolve
from kitaru.cli._terminal import terminal_safe
from kitaru.cli._watch_output import JsonOutput, PlainOutput, WatchInfo, WatchOutput
from kitaru.client._client import KitaruClient
from kitaru.client._errors import LOCAL_MODE_WATCH_MESSAGE
from kitaru.client._watch_options import parse_options, validate_request
from kitaru.client._watcher import open_session, watch
from kitaru.exceptions import KitaruError, KitaruFeatureNotAvailableError
from kitaru.lanes import VERDICTS, LaneBoard

__all__ = ["EXIT_CONNECTION", "add_parser", "exit_code_for", "fail", "register", "run"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONNECTION = 2
EXIT_CANCELLED = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

CLI_INSTALL_HINT = (
    "kitaru: live lanes need the cli extra: pip install 'kitaru[cli]' (printing plain lines)"
)


_WATCH_ARGUMENTS: tuple[Argument, ...] = (
    *TARGET_ARGUMENTS,
    (
        "--kind",
        {
            "dest": "kinds",
            "action": "append",
            "metavar": "KIND",
            "help": "only events of this kind (repeatable)",
        },
    ),
    ("--checkpoint", {"metavar": "NAME", "help": "only events of this checkpoint"}),
    (
        "--correlation-id",
        {
            "dest": "correlation_ids",
            "action": "append",
            "metavar": "ID",
            "help": "only events of this checkpoint execution (repeatable)",
        },
    ),
    ("--since", {"metavar": "CURSOR", "help": "resume after this cursor"}),
    (
        "--no-reconnect",
        {
            "action": "store_true",
            "help": "stop (exit 2) when the connection drops instead of resuming",
        },
    ),
    (
        "--max-outage",
        {
            "type": seconds,
            "metavar": "SECONDS",
            "help": "give up (exit 2) when the server stays unreachable this long (default 60)",
        },
    ),
)
_OUTPUT_ARGUMENTS: tuple[Argument, ...] = (
    ("--json", {"action": "store_true", "help": "print one JSON object per event (for jq)"}),
    ("--plain", {"action": "store_true", "help": "print plain lines even on a terminal"}),
)


def add_parser(subparsers: Any, name: str, *, help_text: str) -> argparse.ArgumentParser:
    """Add the ``events`` parser under ``name`` (used by ``kitaru events`` and ``executions``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description="Watch the live events of one execution until it ends. On a terminal: "
        "one live lane per checkpoint execution. In a pipe: one plain line per event "
        "(--json: one JSON object per event). Exit code 0 when the execution completed, "
        "1 when it failed or was lost, 2 for usage or connection errors.",
    )
    add_arguments(parser, _WATCH_ARGUMENTS)
    add_arguments(parser.add_mutually_exclusive_group(), _OUTPUT_ARGUMENTS)
    add_arguments(parser, [SERVER_URL])
    parser.set_defaults(func=run)
    return parser


def register(subparsers: Any) -> None:
    """Add ``kitaru events`` (the short name of ``kitaru executions events``)."""
    add_parser(subparsers, "events", help_text="watch an execution's live events")


def exit_code_for(status: str | None) -> int:
    """The exit code for an execution's final status: 0 completed, 3 cancelled, 1 otherwise."""
    if status == "completed":
        return EXIT_OK
    return EXIT_CANCELLED if status == "cancelled" else EXIT_FAILED


def _output(args: argparse.Namespace) -> WatchOutput:
    if args.json:
        return JsonOutput()
    if args.plain or not sys.stdout.isatty():
        return PlainOutput()
    try:
        from rich.console import Console

        from kitaru.cli._watch_live import LiveOutput
    except ImportError:
        print(CLI_INSTALL_HINT, file=sys.stderr)
        return PlainOutput()
    console = Console()
    if not console.is_terminal or console.is_dumb_terminal:
        return PlainOutput()
    return LiveOutput(console)


def fail(message: object) -> int:
    """Print ``kitaru: error: MESSAGE`` to stderr; returns exit code 2."""
    print(f"kitaru: error: {message}", file=sys.stderr)
    return EXIT_CONNECTION


def _of(flow: str | None) -> str:
    return f" of flow {flow!r}" if flow else ""


def _wants_snapshot(args: argparse.Namespace, output: WatchOutput) -> bool:
    # Plain and JSON lines print every event, so they replay; filtered views fold only what
    # the filters let through, which an unfiltered snapshot would contradict.
    return (
        getattr(output, "lanes_only", False)
        and args.since is None
        and not args.kinds
        and args.checkpoint is None
        and not args.correlation_ids
    )


def _snapshot(client: KitaruClient, exec_id: str) -> ExecutionSnapshot | None:
    try:
        return client.executions.snapshot(exec_id)
    except KitaruFeatureNotAvailableError:
        return None  # an older server without snapshots: replay the stream instead


def _ended_at(client: KitaruClient, exec_id: str) -> float | None:
    try:
        return client.executions.get(exec_id).ended_at
    except KitaruError:
        return None


def _filtered(args: argparse.Namespace) -> bool:
    return bool(args.kinds or args.checkpoint is not None or args.correlation_ids)


def _present(client: KitaruClient, exec_id: str) -> tuple[set[str], set[str]]:
    """The event kinds and checkpoint names the execution's stream has (unfiltered)."""
    kinds: set[str] = set()
    names: set[str] = set()
    try:
        for event in client.executions.events(exec_id, reconnect=False):
            kinds.add(event.kind)
            if event.checkpoint_name:
                names.add(event.checkpoint_name)
    except KitaruError:
        pass  # the hint is a courtesy: without it the watch's own outcome stands
    return kinds, names


def _hint_nothing_matched(args: argparse.Namespace, kinds: set[str], names: set[str]) -> None:
    """Say on stderr that the filters matched nothing, and what the execution does have."""
    used = []
    if args.kinds:
        used.append("--kind " + ", ".join(args.kinds))
    if args.checkpoint is not None:
        used.append(f"--checkpoint {args.checkpoint}")
    if args.correlation_ids:
        used.append("--correlation-id " + ", ".join(args.correlation_ids))
    print(f"kitaru: no event matched {'; '.join(used)}", file=sys.stderr)
    print(
        "kitaru: hint: the execution has kinds: " + (", ".join(sorted(kinds)) or "none"),
        file=sys.stderr,
    )
    print(
        "kitaru: hint: and checkpoints: " + (", ".join(sorted(names)) or "none"),
        file=sys.stderr,
    )


def run(args: argparse.Namespace) -> int:
    """Watch the execution ``args`` name until its stream ends; returns the exit code."""
    options: dict[str, Any] = {}
    if args.max_outage is not None:
        options["max_outage"] = args.max_outage
    output = _output(args)
    board = LaneBoard()
    since = args.since
    try:
        # An explicit server URL (from the flag or the environment) keeps the CLI off the
        # process runtime: watching needs no publisher and no heartbeat thread.
        check(args)
        client = KitaruClient(server_url=_config.server_url(args.server_url))
        if client.is_local:
            raise KitaruFeatureNotAvailableError(LOCAL_MODE_WATCH_MESSAGE)
        # Arguments first (no request is made for a bad one), then the execution itself,
        # which is also where an unreachable server is reported, at once.
        filters = (args.kinds, args.checkpoint, args.correlation_ids)
        reconnect = not args.no_reconnect
        validate_request(args.exec_id or "latest", *filters, args.since, reconnect)
        parse_options(options)
        target = resolve(client, args)
        if args.exec_id is None:
            print(
                terminal_safe(
                    f"kitaru: watching the newest execution{_of(args.flow)}: {target.exec_id}"
                ),
                file=sys.stderr,
                flush=True,
            )
        if _wants_snapshot(args, output):
            # The lanes view only needs the folded state: a late joiner renders at once from
            # the snapshot and tails from its cursor instead of replaying every event.
            snap = _snapshot(client, target.exec_id)
            if snap is not None and snap.cursor is not None:
                board = snap.board()
                since = snap.cursor
        # What events() does, keeping the sync watcher's type: it also knows the final status.
        arguments = (target.exec_id, *filters, since, reconnect)
        session = open_session(client, arguments, options)
        watcher = watch(client, session)
    except KitaruError as exc:
        return fail(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    lock = threading.Lock()
    status: str | None = None
    code = EXIT_CONNECTION
    try:
        info = WatchInfo.build(target.exec_id, target.flow_name)
        output.start(info, board, lock)
        follow = getattr(output, "follow_connection", None)
        if follow is not None:
            follow(lambda: watcher.reconnecting)
        matched = 0
        for event in watcher:
            matched += 1
            with lock:
                board.apply(event)
            output.event(event, board)
        status = watcher.final_status
        code = exit_code_for(status)
        if status in VERDICTS:
            # Lanes that never ended take the execution's verdict (docs/outcomes.md).
            ended_at = _ended_at(client, args.exec_id)
            with lock:
                board.settle(status, ended_at)
        output.finish(status, board)
        if matched == 0 and _filtered(args) and status is not None:
            kinds, names = _present(client, args.exec_id)
            _hint_nothing_matched(args, kinds, names)
    except KitaruError as exc:
        output.finish(None, board)
        code = fail(exc)
    except KeyboardInterrupt:
        output.finish(None, board)
        print("kitaru: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (head, jq -e ...) went away: stop quietly, and keep Python's exit-time
        # flush of stdout from raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    finally:
        watcher.close()
    return code
