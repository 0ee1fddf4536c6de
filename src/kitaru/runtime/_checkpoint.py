"""``@checkpoint``: a persisted step of a flow whose body publishes lifecycle events."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, ParamSpec, TypeVar, overload

from kitaru import _config
from kitaru._ids import new_checkpoint_id
from kitaru.events._kinds import (
    CHECKPOINT_FAILED_KIND,
    CHECKPOINT_RETURNED_KIND,
    CHECKPOINT_STARTED_KIND,
    FAILED_MESSAGE,
)
from kitaru.exceptions import (
    KitaruCancelledError,
    KitaruContextError,
    KitaruOutputError,
    KitaruUsageError,
)
from kitaru.runtime._scope import (
    INTERRUPTED,
    CheckpointScope,
    FlowRun,
    _current_checkpoint,
    _current_flow,
    current_flow,
)
from kitaru.store._failure import describe_failure
from kitaru.store._records import AttemptRecord, CheckpointRecord
from kitaru.store._values import dump_value, fingerprint, load_value

__all__ = ["Checkpoint", "checkpoint"]


P = ParamSpec("P")
R = TypeVar("R")

_MISS = object()
# What dump_value stores for None (frozen, so one instance serves every checkpoint's record).
_NONE_OUTPUT = dump_value(None, what="None")


class Checkpoint(Generic[P, R]):
    """A checkpoint: call it inside a ``@flow`` to run it as a durable, observed step.

    Use :func:`checkpoint` to make one. Besides calling it, ``.submit()`` runs one call in the
    background, ``.map()`` and ``.product()`` fan out over inputs with a concurrency bound.
    """

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str | None = None,
        retries: int = 0,
        retry_delay: float = 0.0,
        cache: bool = False,
        type: str = "checkpoint",
    ) -> None:
        if not callable(func):
            raise KitaruUsageError(f"@checkpoint needs a function, got {func!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise KitaruUsageError(f"retries must be a non-negative int, got {retries!r}")
        if isinstance(retry_delay, bool) or not isinstance(retry_delay, (int, float)):
            raise KitaruUsageError(f"retry_delay must be a number of seconds, got {retry_delay!r}")
        if retry_delay < 0:
            raise KitaruUsageError(f"retry_delay must be >= 0, got {retry_delay!r}")
        if not isinstance(cache, bool):
            raise KitaruUsageError(f"cache must be True or False, got {cache!r}")
        resolved = name if name is not None else getattr(func, "__name__", None)
        if not isinstance(resolved, str) or not resolved.strip() or ":" in resolved:
            raise KitaruUsageError(
                f"checkpoint name must be a non-blank string without ':', got {resolved!r}"
            )
        if not isinstance(type, str) or not type.strip():
            raise KitaruUsageError(f"checkpoint type must be a non-blank string, got {type!r}")
        self.func = func
        self.name = resolved.strip()
        self.retries = retries
        self.retry_delay = float(retry_delay)
        self.cache = cache
        self.checkpoint_type = type
        self.is_async = inspect.iscoroutinefunction(func)
        functools.update_wrapper(self, func)

    def __repr__(self) -> str:
        return f"<kitaru checkpoint {self.name!r}>"

    # -- calling --------------------------------------------------------------------------

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        run = _current_flow.get()
        if run is None:
            run = self._require_flow()  # raises
        step = run.allocate_step(self.name)
        if self.is_async:
            return self._acall(run, step, args, kwargs)  # type: ignore[return-value]
        result: R = self._call(run, step, args, kwargs)
        return result

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Run one call in the flow's bounded background pool; returns a future of its result.

        For an ``async def`` checkpoint this returns an :class:`asyncio.Task` instead (call it
        from a running event loop).
        """
        run = self._require_flow()
        step = run.allocate_step(self.name)
        if self.is_async:
            coro = self._acall(run, step, args, kwargs)
            return asyncio.ensure_future(coro)  # type: ignore[return-value]
        ctx = contextvars.copy_context()
        return run.executor().submit(ctx.run, self._call, run, step, args, kwargs)

    def map(self, *iterables: Iterable[Any], max_concurrency: int | None = None) -> list[R]:
        """Call the checkpoint once per item (zipping several iterables), concurrently.

        Results come back in input order. At most ``max_concurrency`` (default:
        ``KITARU_MAX_WORKERS``, 8) calls run at once. When calls fail, every call still
        finishes, then the first failure in input order is raised. For an ``async def``
        checkpoint this returns an awaitable.
        """
        if not iterables:
            raise KitaruUsageError(f"{self.name}.map() needs at least one iterable")
        results: list[R] = self._fan_out(list(zip(*iterables, strict=False)), max_concurrency)
        return results

    def product(self, *iterables: Iterable[Any], max_concurrency: int | None = None) -> list[R]:
        """Call the checkpoint once per combination of the iterables (``itertools.product``)."""
        if not iterables:
            raise KitaruUsageError(f"{self.name}.product() needs at least one iterable")
        results: list[R] = self._fan_out(list(itertools.product(*iterables)), max_concurrency)
        return results

    # -- internals ------------------------------------------------------------------------

    def _require_flow(self) -> FlowRun:
        run = current_flow()
        if run is None:
            raise KitaruContextError(
                f"checkpoint {self.name!r} was called outside a @flow; call it from inside a "
                "function decorated with @flow"
            )
        return run

    def _fan_out(self, items: list[tuple[Any, ...]], max_concurrency: int | None) -> Any:
        run = self._require_flow()
        bound = _config.max_workers(max_concurrency)
        steps = [run.allocate_step(self.name) for _ in items]
        if self.is_async:
            return self._afan_out(run, steps, items, bound)
        if not items:
            return []
        results: list[Any] = [None] * len(items)
        errors: list[BaseException | None] = [None] * len(items)
        with ThreadPoolExecutor(
            max_workers=min(bound, len(items)), thread_name_prefix=f"kitaru-{self.name}"
        ) as pool:
            futures = [
                pool.submit(
                    contextvars.copy_context().run, self._call, run, step, item, {}, position
                )
                for position, (step, item) in enumerate(zip(steps, items, strict=True))
            ]
            for i, fut in enumerate(futures):
                while True:
                    try:
                        results[i] = fut.result()
                    except KeyboardInterrupt:
                        # Ctrl-C while waiting: the items stop at their next cancellation
                        # point, so keep collecting (docs/outcomes.md).
                        run.cancel(INTERRUPTED)
                        continue
                    except BaseException as exc:
                        errors[i] = exc
                    break
        for err in errors:
            if err is not None:
                raise err
        return results

    async def _afan_out(
        self,
        run: FlowRun,
        steps: list[tuple[str, int]],
        items: list[tuple[Any, ...]],
        bound: int,
    ) -> list[Any]:
        sem = asyncio.Semaphore(bound)

        async def one(step: tuple[str, int], item: tuple[Any, ...], position: int) -> Any:
            async with sem:
                return await self._acall(run, step, item, {}, position)

        results = await asyncio.gather(
            *(one(s, it, pos) for pos, (s, it) in enumerate(zip(steps, items, strict=True))),
            return_exceptions=True,
        )
        for res in results:
            if isinstance(res, BaseException):
                raise res
        return list(results)

    def _cache_key(self, args: Any, kwargs: Any) -> str:
        inputs = dump_value(
            {"args": list(args), "kwargs": dict(kwargs)},
            what=f"inputs of checkpoint {self.name!r} (cache=True needs storable inputs)",
        )
        return fingerprint(self.name, f"{self.func.__module__}.{self.func.__qualname__}", inputs)

    def _prepare(
        self, run: FlowRun, step: tuple[str, int], args: Any, kwargs: Any
    ) -> tuple[Any, CheckpointRecord]:
        """A recorded output to reuse (replay first, then cache), or ``_MISS`` and a new record.

        A cancellation point first: a call of a cancelled run never starts.
        """
        if run.cancel_reason is not None:
            run.raise_if_cancelled()
        step_name, seq = step
        store = run.runtime.store
        source: CheckpointRecord | None = None
        status = ""
        cache_key: str | None = None
        if run.replay is not None:
            source = run.replay.reuse.get(step_name)
            status = "replayed"
        if source is None and self.cache:
            cache_key = self._cache_key(args, kwargs)
            source = store.find_cached(cache_key)
            status = "cached"
        record = CheckpointRecord(
            checkpoint_id=new_checkpoint_id(),
            exec_id=run.exec_id,
            name=self.name,
            step_name=step_name,
            seq=seq,
            checkpoint_type=self.checkpoint_type,
            status="running",
            started_at=time.time(),
        )
        if source is None or source.output is None:
            record.cache_key = cache_key  # a miss: this call becomes the cache source
            return _MISS, record
        value = load_value(source.output)
        record.status = status
        record.output = source.output
        record.ended_at = record.started_at
        record.reused_from = f"{source.exec_id}/{source.checkpoint_id}"
        # Reused work reports its tokens at zero incurred cost (docs/runtime-logs-and-metadata.md)
        record.usage = [u.as_reused() for u in source.usage]
        store.save_checkpoint(record)
        run.runtime.notify("on_checkpoint_reused", run, record)
        return value, record

    def _begin(
        self, run: FlowRun, record: CheckpointRecord, item: int | None = None
    ) -> tuple[CheckpointScope, contextvars.Token[CheckpointScope | None]]:
        """Start the record's next attempt: its scope, made current (reset the token at its end)."""
        attempt = len(record.attempts) + 1
        scope = CheckpointScope(run, record, attempt, item)
        record.attempts.append(
            AttemptRecord(
                attempt=attempt,
                correlation_id=scope.correlation_id,
                status="running",
                started_at=scope.started_at,
            )
        )
        record.status = "running"
        run.runtime.store.save_checkpoint(record)
        run.runtime.observer_group.notify("on_checkpoint_start", scope)
        scope.emit(CHECKPOINT_STARTED_KIND, {"status": "started"}, lifecycle=True)
        return scope, _current_checkpoint.set(scope)

    def _end(
        self,
        scope: CheckpointScope,
        record: CheckpointRecord,
        error: BaseException | None,
    ) -> None:
        """Publish the terminal event, tell observers, note the attempt's outcome."""
        if error is None:
            scope.emit(CHECKPOINT_RETURNED_KIND, {"status": "returned"}, lifecycle=True)
        else:
            scope.emit(
                CHECKPOINT_FAILED_KIND,
                {
                    "status": "failed",
                    "error_type": type(error).__name__,
                    "message": FAILED_MESSAGE,
                },
                lifecycle=True,
            )
        status = "returned" if error is None else "failed"
        scope.run.runtime.observer_group.notify("on_checkpoint_end", scope, status, error)
        attempt = record.attempts[-1]
        attempt.ended_at = time.time()
        attempt.status = "completed" if error is None else "failed"
        if error is not None:
            # The record is the private place for the exception's text (docs/outcomes.md).
            detail = describe_failure(error, scope.run.runtime.error_detail)
            attempt.error_type = detail.error_type
            attempt.error_message = detail.message
            attempt.error_traceback = detail.traceback
        if scope.metadata:
            attempt.metadata = dict(scope.metadata)
        if scope.usage:
            record.usage.extend(scope.usage.values())

    def _store_output(self, run: FlowRun, record: CheckpointRecord, result: Any) -> None:
        try:
            record.output = (
                _NONE_OUTPUT
                if result is None
                else dump_value(result, what=f"output of checkpoint {self.name!r}")
            )
        except KitaruOutputError as exc:
            detail = describe_failure(exc, run.runtime.error_detail)
            last = record.attempts[-1]
            last.status = "failed"
            last.error_type = detail.error_type
            last.error_message = detail.message
            last.error_traceback = detail.traceback
            self._fail(run, record, exc)
            raise
        record.status = "completed"
        record.ended_at = time.time()
        run.runtime.store.save_checkpoint(record)

    def _fail(self, run: FlowRun, record: CheckpointRecord, error: BaseException) -> None:
        record.status = "failed"
        record.error_type = type(error).__name__
        last = record.attempts[-1] if record.attempts else None
        if last is not None and last.error_type == record.error_type:
            record.error_message = last.error_message
            record.error_traceback = last.error_traceback
        record.ended_at = time.time()
        record.cache_key = None
        run.runtime.store.save_checkpoint(record)

    def _should_retry(self, attempt: int, error: BaseException) -> bool:
        return (
            attempt <= self.retries
            and isinstance(error, Exception)
            and not isinstance(error, KitaruCancelledError)
        )

    @staticmethod
    def _as_cancel(run: FlowRun, error: BaseException) -> BaseException:
        """Ctrl-C in a checkpoint body cancels the run; the lane fails as cancelled."""
        if isinstance(error, KeyboardInterrupt):
            run.cancel(INTERRUPTED)
            cancelled = KitaruCancelledError(f"execution {run.exec_id} was cancelled (Ctrl-C)")
            cancelled.__cause__ = error
            cancelled.__traceback__ = error.__traceback__
            return cancelled
        return error

    def _attempt_failed(
        self, scope: CheckpointScope, record: CheckpointRecord, error: BaseException
    ) -> bool:
        """End a failed attempt; True when another attempt follows (after ``retry_delay``)."""
        run = scope.run
        self._end(scope, record, error)
        if self._should_retry(scope.attempt, error) and run.cancel_reason is None:
            run.runtime.store.save_checkpoint(record)
            return True
        self._fail(run, record, error)
        return False

    def _attempt_returned(
        self, scope: CheckpointScope, record: CheckpointRecord, result: Any
    ) -> None:
        self._end(scope, record, None)
        self._store_output(scope.run, record, result)

    def _call(
        self, run: FlowRun, step: tuple[str, int], args: Any, kwargs: Any, item: int | None = None
    ) -> Any:
        value, record = self._prepare(run, step, args, kwargs)
        if value is not _MISS:
            return value
        while True:
            scope, token = self._begin(run, record, item)
            try:
                result = self.func(*args, **kwargs)
            except BaseException as exc:
                _current_checkpoint.reset(token)
                error = self._as_cancel(run, exc)
                if self._attempt_failed(scope, record, error):
                    if self.retry_delay:
                        time.sleep(self.retry_delay)
                    continue
                if error is exc:
                    raise
                raise error from exc
            _current_checkpoint.reset(token)
            self._end(scope, record, None)
            self._store_output(run, record, result)
            return result

    async def _acall(
        self, run: FlowRun, step: tuple[str, int], args: Any, kwargs: Any, item: int | None = None
    ) -> Any:
        value, record = self._prepare(run, step, args, kwargs)
        if value is not _MISS:
            return value
        func: Callable[..., Awaitable[Any]] = self.func  # type: ignore[assignment]
        while True:
            scope, token = self._begin(run, record, item)
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                _current_checkpoint.reset(token)
                if not self._attempt_failed(scope, record, exc):
                    raise
                if self.retry_delay:
                    await asyncio.sleep(self.retry_delay)
                continue
            _current_checkpoint.reset(token)
            self._attempt_returned(scope, record, result)
            return result


@overload
def checkpoint(func: Callable[P, R], /) -> Checkpoint[P, R]: ...


@overload
def checkpoint(
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    cache: bool = False,
    type: str = "checkpoint",
) -> Callable[[Callable[P, R]], Checkpoint[P, R]]: ...


def checkpoint(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    cache: bool = False,
    type: str = "checkpoint",
) -> Checkpoint[P, R] | Callable[[Callable[P, R]], Checkpoint[P, R]]:
    """Make a function a checkpoint: a durable, observed step of a flow.

    Works with and without arguments, on plain and ``async def`` functions::

        @checkpoint
        def fetch(url: str) -> str: ...

        @checkpoint(retries=2, cache=True)
        async def embed(text: str) -> list[float]: ...

    While the body runs it publishes ``kitaru.checkpoint.started``, then whatever the body
    publishes, then ``kitaru.checkpoint.returned`` or ``kitaru.checkpoint.failed``.

    Args:
        func: The function (when used without parentheses).
        name: The checkpoint's name; defaults to the function's ``__name__``.
        retries: Extra attempts after an ``Exception``; each attempt is its own checkpoint
            execution with its own correlation ID and ``attempt`` number.
        retry_delay: Seconds to wait between attempts.
        cache: Reuse the output of an earlier completed call with the same checkpoint and
            inputs (the body does not run, so no live events are published).
        type: The checkpoint type reported in ``payload["kitaru"]["checkpoint_type"]``.

    Returns:
        A :class:`Checkpoint`, or a decorator making one.
    """

    def wrap(f: Callable[P, R]) -> Checkpoint[P, R]:
        return Checkpoint(
            f, name=name, retries=retries, retry_delay=retry_delay, cache=cache, type=type
        )

    if func is not None:
        return wrap(func)
    return wrap
