"""``@flow``: a durable run of checkpoints, with handles and replay."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import importlib
import inspect
import logging
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, NoReturn, ParamSpec, TypeVar, overload

from kitaru._ids import new_exec_id
from kitaru.exceptions import (
    KitaruCancelledError,
    KitaruOutputError,
    KitaruStateError,
    KitaruUsageError,
)
from kitaru.runtime._replay import ReplayPlan, plan_replay, plan_resume
from kitaru.runtime._runtime import Runtime, get_runtime
from kitaru.runtime._scope import INTERRUPTED, FlowRun, _current_flow
from kitaru.store._records import ExecutionRecord
from kitaru.store._values import StoredValue, dump_value, load_value

__all__ = ["Flow", "FlowHandle", "find_flow", "flow"]

logger = logging.getLogger("kitaru")

EXIT_INTERRUPTED = 130
"""Exit status of a process whose flow Ctrl-C cancelled (128 + SIGINT, as shells expect)."""

_INTERRUPT_GRACE = 1.5
"""Seconds ``wait()`` gives a flow interrupted by Ctrl-C to reach a cancellation point."""

P = ParamSpec("P")
R = TypeVar("R")

_registry: dict[str, Flow[Any, Any]] = {}
_registry_lock = threading.Lock()


class FlowHandle(Generic[R]):
    """A started flow execution.

    Attributes:
        exec_id: The execution's ID (a UUID string).
    """

    def __init__(self, exec_id: str, runtime: Runtime) -> None:
        self.exec_id = exec_id
        self._runtime = runtime
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._status = "running"

    def __repr__(self) -> str:
        return f"<FlowHandle {self.exec_id} {self.status}>"

    @property
    def status(self) -> str:
        """``running``, ``completed``, ``failed``, ``lost`` or ``cancelled``."""
        if self._done.is_set():
            return self._status
        try:
            record = self._runtime.store.get_execution(self.exec_id)
        except Exception:
            return self._status
        return record.status if record is not None else self._status

    def done(self) -> bool:
        """True once the execution finished in this process."""
        return self._done.is_set()

    def cancel(self) -> None:
        """Ask the execution to stop at its next cancellation point; it ends ``cancelled``.

        Returns at once (call :meth:`wait` to wait for the end). The request is also stored,
        so it reaches a producer in another process through its heartbeat. See
        ``docs/outcomes.md`` for where a running flow stops.
        """
        self._runtime.cancel(self.exec_id)
        if not self._done.is_set():
            self._runtime.store.request_cancel(self.exec_id)

    def wait(self, timeout: float | None = None) -> R:
        """Wait for the execution and return its result, or re-raise its error.

        Ctrl-C while waiting cancels the execution, gives it a moment to stop, prints one line
        to stderr and exits the process with status 130 (``SystemExit``), without a traceback.

        Raises:
            TimeoutError: The execution did not finish within ``timeout`` seconds.
            KitaruCancelledError: The execution was cancelled.
        """
        try:
            done = self._done.wait(timeout)
        except KeyboardInterrupt:
            self._runtime.cancel(self.exec_id, INTERRUPTED)
            # A second Ctrl-C during the grace period still exits (nothing is printed twice).
            with contextlib.suppress(KeyboardInterrupt):
                self._done.wait(_INTERRUPT_GRACE)
            exit_interrupted(self.exec_id)
        if not done:
            raise TimeoutError(f"execution {self.exec_id} did not finish within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[no-any-return]

    def _finish(self, result: Any, error: BaseException | None, status: str | None) -> None:
        self._result, self._error = result, error
        self._status = status or ("completed" if error is None else "failed")
        self._done.set()


def exit_interrupted(exec_id: str) -> NoReturn:
    """Say in one line that Ctrl-C cancelled ``exec_id`` and exit with status 130."""
    with contextlib.suppress(OSError, ValueError):
        print(f"kitaru: execution {exec_id} cancelled (interrupted)", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_INTERRUPTED)


def final_status(run: FlowRun, error: BaseException | None) -> str:
    """The execution's terminal status for the flow body's outcome ``error``."""
    if error is None:
        return "completed"
    if run.cancel_reason is not None and isinstance(
        error, (KitaruCancelledError, KeyboardInterrupt)
    ):
        return "cancelled"
    return "failed"


class Flow(Generic[P, R]):
    """A flow: calling it runs one durable execution and returns its result.

    Use :func:`flow` to make one. ``run()`` starts an execution in the background and returns a
    :class:`FlowHandle`; ``replay()`` re-runs an earlier execution from a checkpoint.
    """

    def __init__(self, func: Callable[P, R], *, name: str | None = None) -> None:
        if not callable(func):
            raise KitaruUsageError(f"@flow needs a function, got {func!r}")
        resolved = name if name is not None else getattr(func, "__name__", None)
        if not isinstance(resolved, str) or not resolved.strip():
            raise KitaruUsageError(f"flow name must be a non-blank string, got {resolved!r}")
        self.func = func
        self.name = resolved.strip()
        self.is_async = inspect.iscoroutinefunction(func)
        self.ref = f"{func.__module__}:{func.__qualname__}"
        functools.update_wrapper(self, func)
        with _registry_lock:
            _registry[self.name] = self

    def __repr__(self) -> str:
        return f"<kitaru flow {self.name!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run one execution to its end and return its result (an awaitable for async flows)."""
        run = self._start(args, kwargs)
        if self.is_async:
            return self._aexecute(run, args, kwargs)  # type: ignore[return-value]
        return self._execute(run, args, kwargs)  # type: ignore[no-any-return]

    def run(self, *args: P.args, **kwargs: P.kwargs) -> FlowHandle[R]:
        """Start one execution in a background thread; returns its handle at once."""
        run = self._start(args, kwargs)
        return self._launch(run, args, kwargs)

    def replay(
        self, exec_id: str, *, from_: str | None = None, **flow_kwargs: Any
    ) -> FlowHandle[R]:
        """Re-run execution ``exec_id`` as a new execution, reusing outputs before ``from_``.

        Args:
            exec_id: The execution to replay (it must belong to this flow).
            from_: Step or checkpoint name to re-execute from (``None``: re-run everything).
            **flow_kwargs: Flow arguments that replace the recorded ones.

        Returns:
            The new execution's handle; its record names ``exec_id`` as ``original_exec_id``.
        """
        original = self._original(exec_id)
        plan = plan_replay(original, from_)
        args, kwargs = _recorded_inputs(original)
        kwargs.update(flow_kwargs)
        run = self._start(tuple(args), kwargs, replay=plan)
        return self._launch(run, tuple(args), kwargs)

    def resume(self, exec_id: str, **flow_kwargs: Any) -> FlowHandle[R]:
        """Continue a ``failed``, ``lost`` or ``cancelled`` execution as a new execution.

        Every checkpoint call that completed in ``exec_id`` reuses its recorded output (its
        body does not run, and it shows as a zero-length span marked as reused); the others
        run. This is :meth:`replay` with the starting point found for you.

        Args:
            exec_id: The execution to resume (it must belong to this flow).
            **flow_kwargs: Flow arguments that replace the recorded ones.

        Returns:
            The new execution's handle; its record names ``exec_id`` as ``original_exec_id``.

        Raises:
            KitaruStateError: No such execution, another flow's, or one that did not end
                ``failed``, ``lost`` or ``cancelled``.
        """
        original = self._original(exec_id)
        plan = plan_resume(original)
        args, kwargs = _recorded_inputs(original)
        kwargs.update(flow_kwargs)
        run = self._start(tuple(args), kwargs, replay=plan)
        return self._launch(run, tuple(args), kwargs)

    # -- internals ------------------------------------------------------------------------

    def _original(self, exec_id: str) -> ExecutionRecord:
        original = get_runtime().store.get_execution(exec_id)
        if original is None:
            raise KitaruStateError(f"no execution with ID {exec_id!r}")
        if original.flow_name != self.name:
            raise KitaruStateError(
                f"execution {exec_id} belongs to flow {original.flow_name!r}, not {self.name!r}"
            )
        return original

    def _start(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], replay: ReplayPlan | None = None
    ) -> FlowRun:
        runtime = get_runtime()
        try:
            inputs: StoredValue | None = dump_value(
                {"args": list(args), "kwargs": kwargs}, what=f"inputs of flow {self.name!r}"
            )
        except KitaruOutputError:
            # Only replay needs stored inputs; the run itself goes on.
            logger.info(
                "kitaru: inputs of flow %r cannot be stored; replay will need them", self.name
            )
            inputs = None
        exec_id = new_exec_id()
        run = FlowRun(
            runtime=runtime,
            exec_id=exec_id,
            flow_name=self.name,
            original_exec_id=replay.original_exec_id if replay else None,
            replay=replay,
        )
        runtime.store.create_execution(
            ExecutionRecord(
                exec_id=exec_id,
                flow_name=self.name,
                flow_ref=self.ref,
                status="running",
                created_at=run.started_at,
                original_exec_id=run.original_exec_id,
                inputs=inputs,
            )
        )
        runtime.execution_started(exec_id, run)
        if runtime.mode == "server" and runtime.server_url:
            # Once per execution: the ID and a command that works from any shell, so a run
            # is watchable without listing executions first (docs/cli.md).
            logger.info(
                "kitaru: flow %s started execution %s on %s; watch it with: "
                "kitaru events %s --server-url %s",
                self.name,
                exec_id,
                runtime.server_url,
                exec_id,
                runtime.server_url,
            )
        return run

    def _launch(self, run: FlowRun, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowHandle[R]:
        handle: FlowHandle[R] = FlowHandle(run.exec_id, run.runtime)

        def target() -> None:
            try:
                if self.is_async:
                    result = asyncio.run(self._aexecute(run, args, kwargs))
                else:
                    result = self._execute(run, args, kwargs)
            except BaseException as exc:
                handle._finish(None, exc, run.final_status)
            else:
                handle._finish(result, None, run.final_status)

        ctx = contextvars.Context()  # a fresh context: the new run is nobody's child
        thread = threading.Thread(
            target=ctx.run, args=(target,), name=f"kitaru-flow-{self.name}", daemon=False
        )
        thread.start()
        return handle

    def _begin(self, run: FlowRun) -> contextvars.Token[FlowRun | None]:
        token = _current_flow.set(run)
        run.runtime.notify("on_flow_start", run)
        return token

    def _finish(
        self,
        run: FlowRun,
        token: contextvars.Token[FlowRun | None],
        result: Any,
        error: BaseException | None,
    ) -> BaseException | None:
        """Close the run; returns the error to raise (the flow's, or an output error)."""
        run.close()
        output: StoredValue | None = None
        if error is None:
            try:
                output = dump_value(result, what=f"output of flow {self.name!r}")
            except KitaruOutputError as exc:
                error = exc
        status = final_status(run, error)
        run.final_status = status
        run.runtime.notify("on_flow_end", run, status, error)
        _current_flow.reset(token)
        runtime = run.runtime
        # Hand queued live events on before the execution turns terminal, so a watcher's
        # stream does not end ahead of the flow's last events. This also runs while the
        # transport is failing: the flush wakes the sender to retry at once, so after a server
        # restart the retried events land before the finish (else a watcher sees `end`
        # first), while a backend that is still down costs one failed attempt, not the bound.
        if runtime.publishing:
            runtime.publisher.flush(runtime.flush_timeout * 4, stop_on_failure=True)
        runtime.execution_finished(run.exec_id)
        runtime.store.finish_execution(
            run.exec_id,
            status,
            output=output,
            error_type=None if error is None else type(error).__name__,
        )
        return error

    def _execute(self, run: FlowRun, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        token = self._begin(run)
        try:
            result = self.func(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                run.cancel(INTERRUPTED)
            self._finish(run, token, None, exc)
            if run.cancel_reason == INTERRUPTED and threading.current_thread() is (
                threading.main_thread()
            ):
                # Ctrl-C in a plain flow call: the record says cancelled; exit quietly.
                exit_interrupted(run.exec_id)
            raise
        error = self._finish(run, token, result, None)
        if error is not None:
            raise error
        return result

    async def _aexecute(self, run: FlowRun, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        token = self._begin(run)
        func: Callable[..., Coroutine[Any, Any, Any]] = self.func  # type: ignore[assignment]
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                run.cancel(INTERRUPTED)
            self._finish(run, token, None, exc)
            raise
        error = self._finish(run, token, result, None)
        if error is not None:
            raise error
        return result


def _recorded_inputs(record: ExecutionRecord) -> tuple[list[Any], dict[str, Any]]:
    if record.inputs is None:
        return [], {}
    raw = load_value(record.inputs)
    return list(raw.get("args", [])), dict(raw.get("kwargs", {}))


def find_flow(record: ExecutionRecord) -> Flow[Any, Any]:
    """The :class:`Flow` that ran ``record``: from this process, else imported by reference."""
    with _registry_lock:
        found = _registry.get(record.flow_name)
    if found is not None:
        return found
    if record.flow_ref:
        module_name, _, qualname = record.flow_ref.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            obj = None
        if isinstance(obj, Flow):
            return obj
    raise KitaruStateError(
        f"flow {record.flow_name!r} of execution {record.exec_id} is not defined in this "
        f"process and could not be imported from {record.flow_ref!r}; import its module first"
    )


@overload
def flow(func: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(*, name: str | None = None) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(
    func: Callable[P, R] | None = None, /, *, name: str | None = None
) -> Flow[P, R] | Callable[[Callable[P, R]], Flow[P, R]]:
    """Make a function a flow: each call is one durable execution of its checkpoints.

    Works with and without arguments, on plain and ``async def`` functions. Calling a flow runs
    it and returns its result (for ``async def``, an awaitable); ``flow.run(...)`` starts it in
    the background and returns a :class:`FlowHandle`.

    Args:
        func: The function (when used without parentheses).
        name: The flow's name; defaults to the function's ``__name__``.
    """

    def wrap(f: Callable[P, R]) -> Flow[P, R]:
        return Flow(f, name=name)

    if func is not None:
        return wrap(func)
    return wrap
