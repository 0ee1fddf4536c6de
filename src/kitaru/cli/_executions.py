"""``kitaru executions list | get | replay | resume | cancel | events``.

``list`` and ``get`` read the same store as ``KitaruClient().executions`` (the server named by
``KITARU_SERVER_URL``, else the local database); ``events`` is :mod:`kitaru.cli._events`.
Tables are plain aligned text, so they read the same on a terminal, in a pipe and without the
``cli`` extra; ``--json`` prints JSON instead.

Exit codes: 0 on success (``replay``/``resume``: the new execution completed; ``cancel``: the
execution is now cancelled), 1 when a replayed or resumed execution failed or was lost, or a
cancelled one ended otherwise or not within ``--wait``, 3 when a replayed or resumed execution
was cancelled, 2 for usage or connection errors (an unknown execution ID included). The table
is in ``docs/outcomes.md``.
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
from kitaru.cli._args import SERVER_URL, Argument, add_arguments, positive_int, seconds
from kitaru.cli._target import TARGET_ARGUMENTS, check, resolve
from kitaru.cli._terminal import terminal_safe
from kitaru.client._client import KitaruClient
from kitaru.exceptions import KitaruError, KitaruStateError
from kitaru.store._records import EXECUTION_STATUSES, ExecutionRecord

__all__ = ["register"]


_IMPORT: Argument = (
    "--import",
    {
        "dest": "imports",
        "action": "append",
        "metavar": "MODULE_OR_FILE",
        "help": "import this module or Python file first, to define the flow (repeatable)",
    },
)
_NEW_RECORD_JSON: Argument = (
    "--json",
    {"action": "store_true", "help": "print the new record as JSON"},
)


def _exec_id(help_text: str) -> Argument:
    return ("exec_id", {"metavar": "EXEC_ID", "help": help_text})


def register(subparsers: Any) -> None:
    """Add ``kitaru executions ...`` to the command line."""
    group = subparsers.add_parser("executions", help="list, inspect, replay and watch executions")
    commands = group.add_subparsers(dest="executions_command", metavar="COMMAND", required=True)
    # name, handler, add_parser's help and description, the arguments before --server-url
    table: list[tuple[str, Any, dict[str, str], list[Argument]]] = [
        (
            "list",
            _list,
            {"help": "list executions, newest first"},
            [
                ("--flow", {"metavar": "NAME", "help": "only executions of this flow"}),
                ("--status", {"choices": EXECUTION_STATUSES, "help": "only this status"}),
                (
                    "--limit",
                    {"type": positive_int, "default": 20, "help": "at most this many (default 20)"},
                ),
                ("--json", {"action": "store_true", "help": "one JSON object per execution"}),
            ],
        ),
        (
            "get",
            _get,
            {"help": "show one execution and its checkpoint calls"},
            [
                *TARGET_ARGUMENTS,
                ("--json", {"action": "store_true", "help": "print the record as JSON"}),
                (
                    "--traceback",
                    {"action": "store_true", "help": "also print the tracebacks of failed calls"},
                ),
            ],
        ),
        (
            "cancel",
            _cancel,
            {
                "help": "stop a running execution (it ends cancelled)",
                "description": "Ask a running execution to stop. Its process, here or "
                "elsewhere, sees the request at its next heartbeat and stops at the next "
                "cancellation point (kitaru.progress, kitaru.events.publish, or the start of a "
                "checkpoint call).",
            },
            [
                _exec_id("the exact execution ID"),
                (
                    "--wait",
                    {
                        "type": seconds,
                        "default": 10.0,
                        "metavar": "SECONDS",
                        "help": "how long to wait for the execution to end (default 10)",
                    },
                ),
            ],
        ),
        (
            "resume",
            _resume,
            {
                "help": "continue a failed, lost or cancelled execution as a new one",
                "description": "Run execution EXEC_ID again in this process as a new execution: "
                "every checkpoint call that completed reuses its recorded output, the rest run. "
                "The flow must be importable here (its module, or a file or module given with "
                "--import).",
            },
            [_exec_id("the execution to resume"), _IMPORT, _NEW_RECORD_JSON],
        ),
        (
            "replay",
            _replay,
            {
                "help": "re-run an execution as a new one, reusing recorded outputs",
                "description": "Re-run execution EXEC_ID in this process as a new execution: "
                "checkpoint calls before --from reuse their recorded outputs; --from and later "
                "run again. The flow must be importable here (its module, or a file or module "
                "given with --import).",
            },
            [
                _exec_id("the execution to replay"),
                (
                    "--from",
                    {
                        "dest": "from_",
                        "metavar": "STEP",
                        "help": "step or checkpoint name to re-run from",
                    },
                ),
                _IMPORT,
                _NEW_RECORD_JSON,
            ],
        ),
    ]
    for name, handler, parser_options, arguments in table:
        parser = commands.add_parser(name, **parser_options)
        add_arguments(parser, [*arguments, SERVER_URL])
        parser.set_defaults(func=handler)
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


_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10)) | {127: None}


def _indent(text: str, prefix: str = "    ") -> list[str]:
    # Exception text comes from the producer: no terminal control characters get through.
    clean = text.translate(_CONTROL)
    return [prefix + line for line in clean.rstrip("\n").splitlines()] or [prefix]


def _failures(record: ExecutionRecord, *, tracebacks: bool) -> list[str]:
    """Why each failed call failed, from the record (the private place for the text)."""
    lines: list[str] = []
    for cp in sorted(record.checkpoints, key=lambda c: c.seq):
        if cp.status != "failed" or not cp.error_type:
            continue
        lines += ["", f"{cp.step_name} failed:"]
        message = f": {cp.error_message}" if cp.error_message else ""
        lines += _indent(cp.error_type + message)
        if tracebacks and cp.error_traceback:
            lines += _indent(cp.error_traceback)
    return lines


def _describe(record: ExecutionRecord, *, tracebacks: bool = False) -> list[str]:
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
    verdict = record.status if record.status in ("lost", "cancelled") else None
    lines = [f"execution {record.exec_id}"]
    lines += [f"  {name:<11}{value}" for name, value in fields]
    if record.checkpoints:
        rows = []
        for cp in sorted(record.checkpoints, key=lambda c: c.seq):
            status, ended = cp.status, cp.ended_at
            if status == "running" and verdict is not None:
                # A call that never finished takes the execution's verdict, and its time
                # stops at the execution's end (docs/outcomes.md).
                status, ended = verdict, record.ended_at
            rows.append(
                (
                    cp.step_name,
                    status,
                    str(len(cp.attempts)),
                    _took(cp.started_at, ended),
                    cp.error_type or "",
                )
            )
        lines.append("")
        lines += _table(("STEP", "STATUS", "ATTEMPTS", "DURATION", "ERROR"), rows)
        lines += _failures(record, tracebacks=tracebacks)
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
        print(
            "\n".join(terminal_safe(line) for line in _describe(record, tracebacks=args.traceback))
        )
    return 0


def _cancel(args: argparse.Namespace) -> int:
    try:
        record = _client(args).executions.cancel(args.exec_id, wait=args.wait)
    except KitaruError as exc:
        return _events.fail(exc)
    if record.status == "cancelled":
        print(f"execution {record.exec_id} cancelled")
        return 0
    if record.is_terminal:
        print(f"execution {record.exec_id} had already ended: {record.status}")
    else:
        print(
            f"execution {record.exec_id}: cancel requested; it is still running (it stops at "
            "its next cancellation point)"
        )
    return _events.EXIT_FAILED


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
    return _rerun(args, "replaying")


def _resume(args: argparse.Namespace) -> int:
    return _rerun(args, "resuming")


def _rerun(args: argparse.Namespace, verb: str) -> int:
    if args.server_url:
        # The rerun executes the flow in this process: its runtime (records, live events) reads
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
        if verb == "resuming":
            handle = client.executions.resume(args.exec_id)
        else:
            handle = client.executions.replay(args.exec_id, from_=args.from_)
    except KitaruStateError as exc:
        _events.fail(exc)
        if not args.imports:
            print("kitaru: hint: name the flow's module or file with --import", file=sys.stderr)
        return _events.EXIT_CONNECTION
    except KitaruError as exc:
        return _events.fail(exc)
    out = sys.stderr if args.json else sys.stdout
    print(f"{verb} {args.exec_id} as {handle.exec_id}", file=out, flush=True)
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
