"""The current OpenTelemetry context switched on the checkpoint hot path with fewer calls.

The API's ``get_current``, ``attach`` and ``detach`` each call the runtime context, which with
the API's default (``ContextVarsRuntimeContext``) is one ``ContextVar`` and its ``get``, ``set``
and ``reset``; ``trace.set_span_in_context`` copies a context with one more key through
``context.set_value``. A checkpoint span does each once or twice (docs/opentelemetry.md, "Cost
on the checkpoint path"): :func:`runtime_var` and :func:`span_key` hand the bridge that
``ContextVar`` and key, looked up when a flow starts, only while those functions are the API's
own; anything else (another runtime context, a patched function) gets ``None`` and the bridge
calls the API.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.trace import propagation

__all__ = ["runtime_var", "span_key"]

# The API's functions as imported: a replaced one means the shortcuts below no longer hold.
_API = (otel_context.get_current, otel_context.attach, otel_context.detach)
_RUNTIME = (
    ContextVarsRuntimeContext.get_current,
    ContextVarsRuntimeContext.attach,
    ContextVarsRuntimeContext.detach,
)
_SET_SPAN = (trace.set_span_in_context, propagation.set_span_in_context, otel_context.set_value)
_SPAN_KEY: Any = getattr(propagation, "_SPAN_KEY", None)


def runtime_var() -> ContextVar[Any] | None:
    """The ``ContextVar`` holding the current context, or ``None`` (then use the API).

    With it, ``var.get()`` is ``otel_context.get_current()``, ``var.set(context)`` is
    ``attach(context)`` and ``var.reset(token)`` is ``detach(token)`` except that a failing
    reset raises where ``detach`` logs (the caller then calls ``detach``, which logs it).
    """
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    if (
        type(runtime) is not ContextVarsRuntimeContext
        or (otel_context.get_current, otel_context.attach, otel_context.detach) != _API
        or (
            ContextVarsRuntimeContext.get_current,
            ContextVarsRuntimeContext.attach,
            ContextVarsRuntimeContext.detach,
        )
        != _RUNTIME
        or vars(runtime).keys() != {"_current_context"}
    ):
        return None
    var = runtime._current_context
    return var if type(var) is ContextVar else None


def span_key() -> str | None:
    """The key ``trace.set_span_in_context`` stores a span under, or ``None`` (use the API).

    With it, ``Context({**parent, key: span})`` is ``trace.set_span_in_context(span, parent)``.
    """
    if (
        type(_SPAN_KEY) is not str
        or (
            trace.set_span_in_context,
            propagation.set_span_in_context,
            otel_context.set_value,
        )
        != _SET_SPAN
    ):
        return None
    return _SPAN_KEY
