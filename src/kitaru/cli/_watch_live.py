"""The live lanes view of ``kitaru events`` on a terminal (``rich.live``).

One row per running checkpoint execution: a spinner, its name, a progress bar once a percent is
known, and its latest message. Finished lanes collapse into one summary row per checkpoint name
above the running ones, so running work stays on screen however many lanes have finished; a
failed lane's row names its exception type.

Rendering runs on rich's refresh thread at a fixed rate, not once per event: the watch loop
only folds events into the board under a lock, so a burst of events costs no redraws.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from kitaru.cli._terminal import terminal_safe
from kitaru.cli._watch_output import WatchInfo, lane_label, summary_line
from kitaru.events._models import ExecutionEvent
from kitaru.lanes import CANCELLED, FAILED, LOST, RETURNED, Lane, LaneBoard

__all__ = ["LanesView", "LiveOutput"]

_STATUS_STYLE = {
    "completed": "bold green",
    "failed": "bold red",
    "lost": "bold red",
    "cancelled": "bold yellow",
}
_MAX_ERROR_TYPES = 3


class LanesView:
    """A renderable of a :class:`LaneBoard`, read under ``lock`` at each refresh.

    Args:
        board: The board the watch loop folds events into.
        lock: Held by the watch loop while it changes ``board``.
        info: The watched execution.
    """

    def __init__(self, board: LaneBoard, lock: threading.Lock, info: WatchInfo) -> None:
        self.board = board
        self.lock = lock
        self.info = info
        self.status: str | None = None
        self.reconnecting: Callable[[], bool] | None = None
        """Asked at each refresh: is the stream down and being reconnected?"""
        self._spinners: dict[str, Spinner] = {}

    def _spinner(self, lane: Lane) -> Spinner:
        spinner = self._spinners.get(lane.correlation_id)
        if spinner is None:
            spinner = self._spinners[lane.correlation_id] = Spinner("dots", style="cyan")
        return spinner

    def _header(self) -> RenderableType:
        text = Text()
        text.append("kitaru ", style="bold magenta")
        text.append(terminal_safe(self.info.header()))
        if self.status is not None:
            text.append("  ")
            text.append(self.status, style=_STATUS_STYLE.get(self.status, "bold"))
        elif self.reconnecting is not None and self.reconnecting():
            text.append("  ")
            text.append("reconnecting…", style="bold yellow")
        trace = Text(f"trace {self.info.trace_id}", style="dim")
        if self.info.trace_url:
            trace.append("  ")
            trace.append(self.info.trace_url, style=f"link {self.info.trace_url} underline blue")
        return Group(text, trace)

    def _finished_rows(
        self, finished: list[Lane], retried: set[str]
    ) -> Iterator[tuple[RenderableType, ...]]:
        groups: dict[str, list[Lane]] = {}
        for lane in finished:
            name = terminal_safe(lane.checkpoint_name) if lane.checkpoint_name else lane_label(lane)
            groups.setdefault(name, []).append(lane)
        for name, group in groups.items():
            # Attempts a later attempt replaced are retries of a call, not failures.
            lanes = [lane for lane in group if lane.correlation_id not in retried]
            retries = len(group) - len(lanes)
            ok = sum(lane.status == RETURNED for lane in lanes)
            failed = [lane for lane in lanes if lane.status == FAILED]
            ended = Counter(lane.status for lane in lanes if lane.status in (LOST, CANCELLED))
            if failed or ended[LOST]:
                icon = Text("✗", style="bold red")
            elif ended[CANCELLED]:
                icon = Text("■", style="bold yellow")
            else:
                icon = Text("✓", style="bold green")
            detail = Text()
            if ok:
                detail.append(f"{ok} returned", style="green")
            if retries:
                detail.append(f" ({retries} retr{'ies' if retries != 1 else 'y'})", style="dim")
            if failed:
                types = Counter(terminal_safe(lane.error_type or "error") for lane in failed)
                shown = ", ".join(t for t, _ in types.most_common(_MAX_ERROR_TYPES))
                detail.append(("  " if ok else "") + f"{len(failed)} failed: {shown}", style="red")
            for verdict, count in ended.items():
                style = "red" if verdict == LOST else "yellow"
                detail.append(("  " if len(detail) else "") + f"{count} {verdict}", style=style)
            durations = [lane.duration for lane in lanes if lane.duration is not None]
            if durations:
                detail.append(f"  {sum(durations) / len(durations):.1f}s avg", style="dim")
            yield icon, Text(name, style="bold"), Text(""), detail

    def _running_row(self, lane: Lane) -> tuple[RenderableType, ...]:
        bar: RenderableType = Text("running", style="dim")
        if lane.percent is not None:
            grid = Table.grid(padding=(0, 1))
            grid.add_row(
                ProgressBar(total=1.0, completed=lane.percent, width=24),
                Text(f"{lane.percent:4.0%}"),
            )
            bar = grid
        message = Text(
            terminal_safe(lane.message or ""), style="italic", no_wrap=True, overflow="ellipsis"
        )
        # Once the stream has ended, a lane without a terminal event is not running any more
        # (its events were filtered out, or its process was lost): no spinner for it.
        icon: RenderableType = self._spinner(lane) if self.status is None else Text("?")
        return icon, Text(lane_label(lane), style="bold cyan"), bar, message

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with self.lock:
            lanes = self.board.lanes()
            retried = self.board.superseded()
            summary = (
                summary_line(self.info, self.status, self.board, trace=False)
                if self.status
                else None
            )
        finished = [lane for lane in lanes if lane.finished]
        running = [lane for lane in lanes if not lane.finished]
        for lane in finished:
            self._spinners.pop(lane.correlation_id, None)  # bounded by the running lanes
        table = Table.grid(padding=(0, 1), expand=False)
        table.add_column(width=1)
        table.add_column(no_wrap=True, overflow="ellipsis", max_width=32)
        table.add_column(no_wrap=True)
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for row in self._finished_rows(finished, retried):
            table.add_row(*row)
        # Keep the header, the finished summary and the last line on screen: running lanes
        # beyond the terminal's height are counted instead of drawn.
        room = max(1, (options.height or console.height) - 4 - table.row_count)
        shown = running if len(running) <= room else running[: room - 1]
        for lane in shown:
            table.add_row(*self._running_row(lane))
        if len(shown) < len(running):
            table.add_row(Text(""), Text(f"… {len(running) - len(shown)} more running"))
        if not lanes:
            table.add_row(Text("…", style="dim"), Text("waiting for live events", style="dim"))
        yield self._header()
        yield table
        if summary is not None:
            yield Text(terminal_safe(summary), style="dim")


class LiveOutput:
    """Live lanes on a terminal; the final frame stays on screen when the watch ends."""

    lanes_only = True
    """It shows the folded lanes, not each event, so it can start from a snapshot."""

    def __init__(self, console: Console | None = None, *, refresh_per_second: float = 8) -> None:
        self.console = console or Console()
        self._refresh = refresh_per_second
        self._view: LanesView | None = None
        self._live: Live | None = None

    def start(self, info: WatchInfo, board: LaneBoard, lock: threading.Lock) -> None:
        """Open the live display of ``board``."""
        self._view = LanesView(board, lock, info)
        self._live = Live(
            self._view,
            console=self.console,
            refresh_per_second=self._refresh,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def event(self, event: ExecutionEvent, board: LaneBoard) -> None:
        """Nothing to do: the refresh thread draws the board."""

    def follow_connection(self, reconnecting: Callable[[], bool]) -> None:
        """Show "reconnecting…" in the header while ``reconnecting()`` is true."""
        if self._view is not None:
            self._view.reconnecting = reconnecting

    def finish(self, status: str | None, board: LaneBoard) -> None:
        """Draw the final frame with the execution's status and stop the display."""
        view = self._view
        if view is not None:
            with view.lock:
                view.status = status or "watch stopped"
        self.close()

    def close(self) -> None:
        """Stop the display, leaving its last frame on screen (idempotent)."""
        live, self._live = self._live, None
        if live is not None:
            live.refresh()
            live.stop()
