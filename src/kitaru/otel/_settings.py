"""Settings of the OpenTelemetry bridge: argument, then ``KITARU_OTEL_*`` variable, then default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict, Unpack

from kitaru import environment_variables as ev
from kitaru._checks import parse_positive_int, positive_int
from kitaru._config import resolve
from kitaru.exceptions import KitaruUsageError

__all__ = [
    "DEFAULT_MAX_EVENT_FIELDS",
    "DEFAULT_MAX_SPAN_EVENTS",
    "DEFAULT_MAX_VALUE_LENGTH",
    "BridgeOptions",
    "BridgeSettings",
    "CallerSpan",
    "parse_bool",
]

CallerSpan = Literal["link", "parent"]

DEFAULT_MAX_SPAN_EVENTS = 64  # below the SDK's own default limit of 128 events per span
DEFAULT_MAX_EVENT_FIELDS = 16
DEFAULT_MAX_VALUE_LENGTH = 256

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(raw: str) -> bool:
    """``true``/``1``/``yes``/``on`` or ``false``/``0``/``no``/``off`` (any case)."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false")


def _caller_span(raw: str) -> CallerSpan:
    value = raw.strip().lower()
    if value == "link":
        return "link"
    if value == "parent":
        return "parent"
    raise ValueError("expected 'link' or 'parent'")


def _check_bool(name: str, value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise KitaruUsageError(f"{name} must be True, False or None, got {value!r}")


def _check_positive(name: str, value: object) -> int | None:
    return None if value is None else positive_int(name, value)


class BridgeOptions(TypedDict, total=False):
    """The bridge's settings as keyword arguments.

    Each one ``None`` or left out: its environment variable, then the default (see
    :class:`BridgeSettings` for what each one means).
    """

    record_exception_messages: bool | None
    event_attributes: bool | None
    max_span_events: int | None
    max_event_fields: int | None
    max_value_length: int | None
    caller_span: str | None
    log_records: bool | None
    runtime_logs: bool | None


_OPTION_NAMES = frozenset(BridgeOptions.__annotations__)


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """What the bridge records. Build it with :meth:`resolve`.

    Attributes:
        record_exception_messages: Failed spans also get the exception's message and stack
            trace (an ``exception`` span event); off by default for privacy.
        event_attributes: Span events carry the live event's message and primitive data
            fields; when off, only the kind (the event name) and the index.
        max_span_events: Most span events per checkpoint span (first ones plus the latest).
        max_event_fields: Most data fields per span event.
        max_value_length: Strings longer than this are clipped.
        caller_span: ``link`` (default): a flow called inside another span starts its own
            trace and links to that span; ``parent``: the flow span becomes its child.
        log_records: Live events also become log records (when there is a logger provider).
        runtime_logs: With ``log_records`` on, the checkpoints' captured runtime log lines
            (``logging`` records, stdout, stderr) become log records too, their text as the
            body (docs/runtime-logs-and-metadata.md).
    """

    record_exception_messages: bool = False
    event_attributes: bool = True
    max_span_events: int = DEFAULT_MAX_SPAN_EVENTS
    max_event_fields: int = DEFAULT_MAX_EVENT_FIELDS
    max_value_length: int = DEFAULT_MAX_VALUE_LENGTH
    caller_span: CallerSpan = "link"
    log_records: bool = True
    runtime_logs: bool = True

    @classmethod
    def resolve(cls, **options: Unpack[BridgeOptions]) -> BridgeSettings:
        """Resolve each setting: argument, then its environment variable, then the default.

        Raises:
            KitaruUsageError: An argument or environment variable is invalid.
            TypeError: An argument is not one of :class:`BridgeOptions`.
        """
        unknown = options.keys() - _OPTION_NAMES
        if unknown:
            raise TypeError(f"unexpected keyword argument {min(unknown)!r}")
        caller_span = options.get("caller_span")
        if caller_span is not None:
            try:
                checked_caller: CallerSpan | None = _caller_span(str(caller_span))
            except ValueError:
                raise KitaruUsageError(
                    f"caller_span must be 'link' or 'parent', got {caller_span!r}"
                ) from None
        else:
            checked_caller = None
        return cls(
            record_exception_messages=_flag(
                "record_exception_messages",
                options.get("record_exception_messages"),
                ev.KITARU_OTEL_RECORD_EXCEPTIONS,
                False,
            ),
            event_attributes=_flag(
                "event_attributes",
                options.get("event_attributes"),
                ev.KITARU_OTEL_EVENT_ATTRIBUTES,
                True,
            ),
            max_span_events=resolve(
                _check_positive("max_span_events", options.get("max_span_events")),
                ev.KITARU_OTEL_MAX_SPAN_EVENTS,
                parse_positive_int,
                DEFAULT_MAX_SPAN_EVENTS,
            ),
            max_event_fields=_check_positive("max_event_fields", options.get("max_event_fields"))
            or DEFAULT_MAX_EVENT_FIELDS,
            max_value_length=_check_positive("max_value_length", options.get("max_value_length"))
            or DEFAULT_MAX_VALUE_LENGTH,
            caller_span=resolve(checked_caller, ev.KITARU_OTEL_CALLER_SPAN, _caller_span, "link"),
            log_records=_flag(
                "log_records", options.get("log_records"), ev.KITARU_OTEL_LOG_RECORDS, True
            ),
            runtime_logs=_flag(
                "runtime_logs", options.get("runtime_logs"), ev.KITARU_OTEL_RUNTIME_LOGS, True
            ),
        )


def _flag(name: str, value: object, variable: str, default: bool) -> bool:
    """A boolean option: the argument ``name``'s ``value``, then ``variable``, then ``default``."""
    return resolve(_check_bool(name, value), variable, parse_bool, default)
