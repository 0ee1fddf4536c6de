"""``kitaru executions list | get | replay | events``: read, replay and watch executions.

``list`` and ``get`` read the same store as ``KitaruClient().executions`` (the server named by
``KITARU_SERVER_URL``, else the local database); ``events`` is :mod:`kitaru.cli._events`.
Tables are plain aligned text, so they read the same on a terminal, in a pipe and without the
``cli`` extra; ``--json`` prints JSON instead.

Exit codes: 0 on success (``replay``: the new execution completed), 1 when a replayed execution
failed, 2 for usage or connection errors (an unknown execution ID included).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import os
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from kitaru import _config
from kitaru._ids import trace_id_for
from kitaru.cli import _events, _logs, _meta_output
from kitaru.cli._args import positive_int
from kitaru.cli._target import add_target_arguments, check, resolve
from kitaru.cli._terminal import terminal_safe
from kitaru.client._client import KitaruClient
from kitaru.exceptions import KitaruError, KitaruStateError
from kitaru.store._records import EXECUTION_STATUSES, ExecutionRecord

__all__ = ["register"]


def _server_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server-url", metavar="URL", help="the kitaru server (default: KITARU_SERVER_URL)"
    )


def register(subparsers: Any) -> None:
    """Add ``kitaru executions ...`` to the command line."""
    group = subparsers.add_parser("executions", help="list, inspect, replay and watch executions")
    commands = group.add_subparsers(dest="executions_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list executions, newest first")
    listing.add_argument("--flow", metavar="NAME", help="only executions of this flow")
    listing.add_argument("--status", choices=EXECUTION_STATUSES, help="only this status")
    listing.add_argument(
        "--limit", type=positive_int, default=20, help="at most this many (default 20)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per execution")
    _server_flag(listing)
    listing.set_defaults(func=_list)

    get = commands.add_parser("get", help="show one execution and its checkpoint calls")
    add_target_arguments(get)
    get.add_argument("--json", action="store_true", help="print the record as JSON")
    _server_flag(get)
    get.set_defaults(func=_get)

    replay = commands.add_parser(
        "replay",
        help="re-run an execution as a new one, reusing recorded outputs",
        description="Re-run execution EXEC_ID in this process as a new execution: checkpoint "
        "calls before --from reuse their recorded outputs; --from and later run again. The "
        "flow must be importable here (its module, or a file or module given with --import).",
    )
    replay.add_argument("exec_id", metavar="EXEC_ID", help="the execution to replay")
    replay.add_argument(
        "--from", dest="from_", metavar="STEP", help="step or checkpoint name to re-run from"
    )
    replay.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE_OR_FILE",
        help="import this module or Python file first, to define the flow (repeatable)",
    )
    replay.add_argument("--json", action="store_true", help="print the new record as JSON")
    _server_flag(replay)
    replay.set_defaults(func=_replay)

    _events.add_parser(commands, "events", help_text="watch an execution's live events")
    _logs.add_parser(commands)


def _client(args: argparse.Namespace) -> KitaruClient:
    return KitaruClient(server_url=_config.server_url(getattr(args, "server_url", None)))


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _took(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{max(0.0, end - start):.2f}s"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in (header, *rows)
    ]


def _record_json(record: ExecutionRecord, *, checkpoints: bool) -> dict[str, Any]:
    data = record.to_dict()
    if not checkpoints:
        data.pop("checkpoints", None)
    data["trace_id"] = trace_id_for(record.exec_id)
    if checkpoints:
        data["usage_summary"] = record.usage_summary()
    return data


def _print_json(data: Any) -> None:
    print(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode())


def _list(args: argparse.Namespace) -> int:
    try:
        client = _client(args)
        records = client.executions.list(flow=args.flow, status=args.status, limit=args.limit)
    except KitaruError as exc:
        return _events.fail(exc)
    # Which store was read goes to stderr: runs made without KITARU_SERVER_URL live in the
    # local database, so an empty list must say where it looked.
    where = client.location
    if client.is_local:
        where += " (KITARU_SERVER_URL is not set)"
    if args.json:
        for record in records:
            _print_json(_record_json(record, checkpoints=False))
        return 0
    if not records:
        print(f"no executions in {where}", file=sys.stderr)
        return 0
    print(f"executions in {where}, newest first:", file=sys.stderr)
    rows = [
        (r.exec_id, r.flow_name, r.status, _when(r.created_at), _took(r.created_at, r.ended_at))
        for r in records
    ]
    for line in _table(("EXEC_ID", "FLOW", "STATUS", "STARTED", "DURATION"), rows):
        print(terminal_safe(line))
    return 0


def _describe(record: ExecutionRecord) -> list[str]:
    trace_id = trace_id_for(record.exec_id)
    template = _config.trace_url_template()
    fields = [
        ("flow", record.flow_name),
        ("status", record.status + (f" ({record.error_type})" if record.error_type else "")),
        ("started", _when(record.created_at)),
        ("duration", _took(record.created_at, record.ended_at)),
        ("trace", trace_id),
    ]
    if template:
        fields.append(("trace link", template.replace("{trace_id}", trace_id)))
    if record.original_exec_id:
        fields.append(("replay of", record.original_exec_id))
    lines = [f"execution {record.exec_id}"]
    lines += [f"  {name:<11}{value}" for name, value in fields]
    if record.checkpoints:
        rows = [
            (
                cp.step_name,
                cp.status,
                str(len(cp.attempts)),
                _took(cp.started_at, cp.ended_at),
                cp.error_type or "",
            )
            for cp in sorted(record.checkpoints, key=lambda c: c.seq)
        ]
        lines.append("")
        lines += _table(("STEP", "STATUS", "ATTEMPTS", "DURATION", "ERROR"), rows)
    lines += _meta_output.describe_metadata_and_usage(record)
    return lines


def _get(args: argparse.Namespace) -> int:
    try:
        check(args)
        record = resolve(_client(args), args).record
    except KitaruError as exc:
        return _events.fail(exc)
    if args.json:
        _print_json(_record_json(record, checkpoints=True))
    else:
        print("\n".join(terminal_safe(line) for line in _describe(record)))
    return 0


def _import(target: str) -> None:
    """Import a module by name, or run a Python file as a module (not as ``__main__``)."""
    path = Path(target)
    if target.endswith(".py") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"--import {target}: no such file")
        # Its flows register themselves by name, which is how replay finds them.
        runpy.run_path(str(path), run_name=f"kitaru_import_{path.stem}")
    else:
        importlib.import_module(target)


def _replay(args: argparse.Namespace) -> int:
    if args.server_url:
        # The replay runs the flow in this process: its runtime (records, live events) reads
        # the server from the environment, so the flag goes there before anything starts.
        os.environ["KITARU_SERVER_URL"] = _config.server_url(args.server_url) or ""
    # Like `python -m`: flows recorded as "module:qualname" import from the working directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        for target in args.imports or ():
            _import(target)
    except (ImportError, OSError) as exc:
        print(f"kitaru: error: cannot import {exc}", file=sys.stderr)
        return _events.EXIT_CONNECTION
    client = KitaruClient()
    try:
        handle = client.executions.replay(args.exec_id, from_=args.from_)
    except KitaruStateError as exc:
        _events.fail(exc)
        if not args.imports:
            print("kitaru: hint: name the flow's module or file with --import", file=sys.stderr)
        return _events.EXIT_CONNECTION
    except KitaruError as exc:
        return _events.fail(exc)
    out = sys.stderr if args.json else sys.stdout
    print(f"replaying {args.exec_id} as {handle.exec_id}", file=out, flush=True)
    # The flow's own exception is not the CLI's error: the new record says what failed.
    with contextlib.suppress(Exception):
        handle.wait()
    try:
        record = client.executions.get(handle.exec_id)
    except KitaruError as exc:
        return _events.fail(exc)
    if args.json:
        _print_json(_record_json(record, checkpoints=True))
    else:
        print("\n".join(terminal_safe(line) for line in _describe(record)))
    return _events.exit_code_for(record.status)
