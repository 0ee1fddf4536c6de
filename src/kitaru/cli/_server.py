"""``kitaru server start``: run the kitaru server (records, live-event ingest, SSE)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kitaru import _config
from kitaru import environment_variables as ev
from kitaru.cli._args import positive_int, seconds
from kitaru.exceptions import KitaruUsageError

__all__ = ["register"]

# Kept equal to kitaru.server.DEFAULT_HOST/DEFAULT_PORT (a test checks it); not imported from
# there so that `kitaru --help` works without the server extra.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765

INSTALL_HINT = "the kitaru server needs the server extra: pip install 'kitaru[server]'"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port (0-65535), got {text!r}")
    return value


def register(subparsers: Any) -> None:
    """Add ``kitaru server ...`` to the command line."""
    server = subparsers.add_parser("server", help="run the kitaru server")
    commands = server.add_subparsers(dest="server_command", metavar="COMMAND", required=True)
    start = commands.add_parser(
        "start",
        help="start the server in the foreground",
        description="Serve execution records, live-event ingest and SSE streams over HTTP.",
    )
    start.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    start.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})"
    )
    start.add_argument(
        "--db",
        metavar="PATH|URL",
        help="where executions live: a SQLite file (also the event log by default; default "
        "KITARU_HOME/server.db) or postgresql://user@host:5432/db (several replicas)",
    )
    start.add_argument(
        "--event-log",
        metavar="URL",
        help="where live events live: redis://host:6379/0 (several replicas; ?prefix=NAME "
        "for the key prefix), a SQLite file, or 'memory' (default: the SQLite --db)",
    )
    start.add_argument(
        "--token",
        help=f"API token clients must send (default ${ev.KITARU_API_TOKEN}; prefer the "
        "variable, command lines are visible to other users)",
    )
    start.add_argument(
        "--no-streaming",
        action="store_true",
        help="disable live events: ingest and stream endpoints answer 501",
    )
    start.add_argument(
        "--lost-after",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help="mark a running execution lost after this long without a heartbeat (default 30)",
    )
    start.add_argument(
        "--ping-interval",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="SSE heartbeat interval on idle streams (default 10)",
    )
    start.add_argument(
        "--max-events-per-execution",
        type=positive_int,
        metavar="N",
        help="retention: keep at most N newest events per execution (default: all)",
    )
    start.add_argument(
        "--retain-ended",
        type=seconds,
        metavar="SECONDS",
        help="retention: drop an ended execution's events after this long (default: keep)",
    )
    start.add_argument(
        "--allow-insecure-remote",
        action="store_true",
        help="allow listening on a non-loopback address without a token",
    )
    start.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"log one line per HTTP request (default ${ev.KITARU_ACCESS_LOG}, else off)",
    )
    start.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level (default info)",
    )
    start.set_defaults(func=_start)


def _start(args: argparse.Namespace) -> int:
    try:
        from kitaru.server import check_bind_address, serve
    except ImportError as exc:
        raise KitaruUsageError(f"{INSTALL_HINT} ({exc})") from None
    token = _config.api_token(args.token)
    check_bind_address(args.host, token, allow_insecure_remote=args.allow_insecure_remote)
    options: dict[str, Any] = {
        "token": token,
        "streaming": not args.no_streaming,
        "lost_after": args.lost_after,
        "ping_interval": args.ping_interval,
        "max_events_per_execution": args.max_events_per_execution,
        "retain_ended": args.retain_ended,
    }
    if args.db:
        options["db"] = args.db
    if args.event_log:
        options["event_log_url"] = args.event_log

    def ready(url: str) -> None:
        details = [
            "streaming on" if not args.no_streaming else "streaming off",
            "token required" if token else "no token",
        ]
        print(f"kitaru server listening on {url} ({', '.join(details)})", file=sys.stderr)
        web = f"{url}/ui/#token=<your API token>" if token else f"{url}/ui/"
        print(f"kitaru web view: {web}", file=sys.stderr)
        sys.stderr.flush()

    serve(
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        allow_insecure_remote=args.allow_insecure_remote,
        on_ready=ready,
        access_log=args.access_log,
        **options,
    )
    return 0
