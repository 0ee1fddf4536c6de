"""Hand-written, single-pass validation of request bodies: JSON, execution IDs and live events.

Ingest is the hot path, so events are parsed once with orjson and checked with plain type
tests (no per-event pydantic model). Every error names the offending field and event position,
and a batch with any bad event is rejected whole before anything is written. The REST API's
record bodies are checked by :mod:`kitaru.server._validate_records`.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from itertools import chain, compress, repeat
from operator import add, itemgetter, methodcaller
from typing import Any, NoReturn

import orjson

from kitaru import _wire
from kitaru._checks import execution_id_problem
from kitaru.backends import NewEvent
from kitaru.events._codec import WIRE_FIELDS, wire_event
from kitaru.events._kinds import RESERVED_KINDS
from kitaru.server._errors import ApiError, bad_request

__all__ = [
    "MAX_INT",
    "check_events",
    "check_exec_id",
    "json_type",
    "latest_timestamp",
    "parse_event_array",
    "parse_events",
    "parse_json",
    "paused_collector",
    "short_value",
    "timestamp_problem",
]

MAX_INT = 2**63 - 1
"""Largest integer accepted in an index or count (SQLite's and JSON's common 64-bit range)."""

MAX_EVENT_DEPTH = 64
"""Deepest nesting of arrays and objects in one event, the event object itself being level 1.

Checked on every event before it is stored: orjson refuses to encode more than 254 levels,
and every response that embeds events (the stream, the snapshot) adds levels of its own, so an
unbounded depth would let one accepted event break every later read of its execution. Most
events are checked by the brackets of their JSON (one per array or object, so at most this
many cannot be too deep); only one with more is walked (``check_events``).
"""

MAX_CLOCK_SKEW = 24 * 3600.0
"""How far (seconds) a producer's timestamps may lie ahead of the server's clock."""


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def short_value(value: Any) -> str:
    """``repr(value)`` cut to 80 characters, for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_json(body: bytes) -> Any:
    """Decode a request body.

    Raises:
        ApiError: 400 when the body is empty or not JSON.
    """
    if not body:
        raise bad_request("request body is empty; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None


def check_exec_id(exec_id: object) -> str:
    """An execution ID, by the rules shared with the client (``kitaru._checks``).

    Raises:
        ApiError: 400 with the same message the client raises for the same value.
    """
    problem = execution_id_problem(exec_id)
    if problem is not None:
        raise bad_request(problem)
    assert isinstance(exec_id, str)
    return exec_id


def check_kind(kind: Any, where: str) -> str:
    """An event kind (``docs/live-events.md``): the reserved control names are refused."""
    if not isinstance(kind, str):
        raise bad_request(f"{where}: kind must be a string, got {json_type(kind)}")
    if "\n" in kind or "\r" in kind:
        raise bad_request(f"{where}: kind must not contain line breaks, got {short_value(kind)}")
    stripped = kind.strip()
    if not stripped:
        raise bad_request(f"{where}: kind must not be blank")
    if stripped in RESERVED_KINDS:
        raise bad_request(
            f"{where}: kind {kind!r} is reserved for stream control frames "
            f"({', '.join(sorted(RESERVED_KINDS))})"
        )
    return kind


def too_deep(root: Any, limit: int = MAX_EVENT_DEPTH, depth: int = 1) -> bool:
    """True when ``root`` (at nesting level ``depth``) holds a container deeper than ``limit``.

    Iterative, so a hostile depth costs neither the stack nor a recursion limit.
    """
    if type(root) is not dict and type(root) is not list:
        return False
    stack: list[tuple[Any, int]] = [(root, depth)]
    pop, push = stack.pop, stack.append
    while stack:
        obj, level = pop()
        for value in obj.values() if type(obj) is dict else obj:
            t = type(value)
            if t is dict or t is list:
                if level >= limit:
                    return True
                push((value, level + 1))
    return False


def latest_timestamp() -> float:
    """The latest timestamp a producer may send now: the server's clock plus the skew."""
    return time.time() + MAX_CLOCK_SKEW


def timestamp_problem(name: str, value: Any, latest: float) -> str:
    """The error message of a timestamp field ``name`` out of range (``latest``: the limit)."""
    return (
        f"{name} must be a finite number of seconds since the epoch, at least 0 and at most "
        f"{MAX_CLOCK_SKEW:.0f} s ahead of the server's clock ({latest:.0f}), "
        f"got {short_value(value)}"
    )


def parse_events(
    body: bytes, exec_id: str, *, max_events: int, max_event_bytes: int
) -> list[NewEvent]:
    """Validate an ingest body: a JSON array of wire events of execution ``exec_id``.

    Raises:
        ApiError: 400 for malformed input, 413 for an oversized batch or event.
    """
    with paused_collector():
        return check_events(
            parse_event_array(body, max_events=max_events), exec_id, max_event_bytes=max_event_bytes
        )


@contextlib.contextmanager
def paused_collector() -> Iterator[None]:
    """The cyclic garbage collector paused (unless it already is) for the block's duration.

    Meant for the decoding and checking of an ingest batch, with the decoded objects freed
    before the block ends: they are a few dicts per event, all garbage once the events are
    checked, but a collection run while they are alive would find them reachable and
    promote them to the older generations, whose growth then triggers full collections of
    the server's whole heap (``benchmarks/README.md``, "Measurements": about a tenth of the
    server's CPU per ingested event). Freed by reference counting, they never needed the
    collector; anything else that becomes garbage meanwhile is collected after the block.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def parse_event_array(body: bytes, *, max_events: int) -> list[Any]:
    """An ingest body decoded: a JSON array of at most ``max_events`` items (not yet checked).

    Raises:
        ApiError: 400 when it is not a JSON array, 413 when it holds too many items.
    """
    items = parse_json(body)
    if not isinstance(items, list):
        raise bad_request(f"request body must be a JSON array of events, got {json_type(items)}")
    if len(items) > max_events:
        raise ApiError(
            413,
            _wire.ERROR_TOO_LARGE,
            f"batch has {len(items)} events; at most {max_events} are accepted per request",
        )
    return items


# The wire fields of the common event, fetched in one call (KeyError: some are missing).
_WIRE_FIELDS = itemgetter(*WIRE_FIELDS)
_WIRE_COUNT = len(WIRE_FIELDS)


def check_events(items: list[Any], exec_id: str, *, max_event_bytes: int) -> list[NewEvent]:
    """Validate decoded wire events of execution ``exec_id``; any bad one refuses them all.

    Raises:
        ApiError: 400 for a malformed event, 413 for an oversized one.
    """
    latest = latest_timestamp()
    plain = _check_plain(items, exec_id, max_event_bytes, latest)
    if plain is not None:
        return plain
    return _check_each(items, exec_id, max_event_bytes, latest)


# The batch-at-once check (_check_plain): type tests as sets of types, one per field.
_DICT = frozenset((dict,))
_STR = frozenset((str,))
_INT = frozenset((int,))
_NAME_TYPES = frozenset((str, type(None)))
_TS_TYPES = frozenset((float, int, type(None)))
_KITARU = methodcaller("get", "kitaru")
_FIELD_GETTERS = tuple(map(itemgetter, WIRE_FIELDS))
# ``[`` as the int that ``bytes.__contains__`` looks up with memchr (a bytes argument first
# fails as an int, an exception raised and cleared per call).
_OPEN_ARRAY = ord("[")


def _check_plain(
    items: list[Any], exec_id: str, max_event_bytes: int, latest: float
) -> list[NewEvent] | None:
    """The events of a batch in which every event is plain, checked field by field at once.

    Plain: an object with exactly the nine wire fields (``exact`` in :func:`_check_each`)
    that passes every rule. Each rule is tested for the whole batch by a C-level loop over
    one field's values (the set of their types, their minimum and maximum, the distinct
    kinds and correlation IDs) instead of a Python statement per event, and the bracket
    count's second pass only for events that hold a ``[`` (``benchmarks/README.md``,
    "Measurements", branch ``verbatim``: about 5 % of the server's instructions per
    ingested event). ``None`` when
    any event is not plain (or the batch is empty): :func:`_check_each` then judges the
    batch event by event and names the first problem. It accepts exactly the events
    :func:`_check_each` accepts and stores the same bytes for them (compared on random
    batches by tests/server/test_validate_fast.py).
    """
    n = len(items)
    if not n or set(map(type, items)) != _DICT or set(map(len, items)) != {_WIRE_COUNT}:
        return None
    try:
        # A list per field (not a tuple per event: those would outlive the batch in the
        # tuple free list and count towards a collection, see paused_collector).
        execs, kinds, corrs, indexes, cids, cnames, snames, tss, payloads = [
            list(map(get, items)) for get in _FIELD_GETTERS
        ]
    except KeyError:
        return None
    if (
        execs.count(exec_id) != n
        or set(map(type, kinds)) != _STR
        or set(map(type, corrs)) != _STR
        or set(map(type, indexes)) != _INT
        or min(indexes) < 0
        or max(indexes) > MAX_INT
        or not set(map(type, chain(cids, cnames, snames))) <= _NAME_TYPES
        or not set(map(type, tss)) <= _TS_TYPES
        or set(map(type, payloads)) != _DICT
        or set(map(type, map(_KITARU, payloads))) != _DICT
    ):
        return None
    # Times other than None and 0 (0 is in range): JSON has no NaN, so min and max bound them.
    times = list(filter(None, tss))
    if times and (min(times) < 0 or max(times) > latest):
        return None
    good: set[str] = set()
    if not all(map(_good_kind, set(kinds), repeat(good))) or not all(
        map(_good_corr, set(corrs), repeat(good))
    ):
        return None
    try:
        encoded = list(map(orjson.dumps, items))
    except orjson.JSONEncodeError:
        return None  # too deep to encode, say
    if max(map(len, encoded)) > max_event_bytes:
        return None
    # The depth bound of _check_each (brackets in the JSON), by C-level loops; the walk only
    # for an event with more brackets than the limit.
    deep = MAX_EVENT_DEPTH
    brackets = list(map(bytes.count, encoded, repeat(b"{")))
    if any(map(bytes.__contains__, encoded, repeat(_OPEN_ARRAY))):
        brackets = list(map(add, brackets, map(bytes.count, encoded, repeat(b"["))))
    if max(brackets) > deep:
        over = compress(payloads, map(deep.__lt__, brackets))
        if any(map(too_deep, over, repeat(deep), repeat(2))):
            return None
    return list(map(NewEvent, kinds, corrs, indexes, cids, cnames, snames, encoded))


def _check_each(
    items: list[Any], exec_id: str, max_event_bytes: int, latest: float
) -> list[NewEvent]:
    """:func:`check_events` event by event: any event, and the error naming the first bad one."""
    # Module names read once per batch, not once per event.
    dumps, fields, wire_count, max_int, new = (
        orjson.dumps,
        _WIRE_FIELDS,
        _WIRE_COUNT,
        MAX_INT,
        NewEvent,
    )
    deep = MAX_EVENT_DEPTH
    # Kinds and correlation IDs already found valid in this batch (most batches repeat one).
    good_kinds: set[str] = set()
    good_corrs: set[str] = set()
    out: list[NewEvent] = []
    append = out.append
    # One pass of cheap type tests; any event that fails them goes to _explain, which finds
    # and names the exact problem (so the fast path needs no messages of its own). The fast
    # path accepts exactly what _explain accepts; tests/server/test_validate_fast.py compares
    # the two on random events.
    for pos, item in enumerate(items):
        if type(item) is dict:
            try:
                got_exec, kind, corr, index, cid, cname, sname, ts, payload = fields(item)
                exact = len(item) == wire_count  # all nine present and no other key
            except KeyError:
                got_exec = item.get("exec_id")
                kind = item.get("kind")
                corr = item.get("correlation_id")
                index = item.get("index")
                cid = item.get("checkpoint_id")
                cname = item.get("checkpoint_name")
                sname = item.get("step_name")
                ts = item.get("ts")
                payload = item.get("payload")
                exact = False
            if (
                got_exec == exec_id
                and type(kind) is str
                and type(corr) is str
                and type(index) is int
                and 0 <= index <= max_int
                and (cid is None or type(cid) is str)
                and (cname is None or type(cname) is str)
                and (sname is None or type(sname) is str)
                and (ts is None or ((type(ts) is float or type(ts) is int) and 0 <= ts <= latest))
                and type(payload) is dict
                and type(payload.get("kitaru")) is dict
                and (kind in good_kinds or _good_kind(kind, good_kinds))
                and (corr in good_corrs or _good_corr(corr, good_corrs))
            ):
                try:
                    if exact:
                        encoded = dumps(item)
                    else:
                        # Same keys in the same order as the publisher's encoding, so the size
                        # measured here is the size it measured against the same limit.
                        encoded = dumps(
                            wire_event(exec_id, kind, corr, index, cid, cname, sname, ts, payload)
                        )
                except orjson.JSONEncodeError:
                    encoded = None  # too deep to encode, say: _explain names it
                # Every array and object of the event adds one bracket to its JSON, so fewer
                # brackets (in strings too) than the depth limit mean it cannot be too deep;
                # only an event with more is walked.
                if (
                    encoded is not None
                    and len(encoded) <= max_event_bytes
                    and (
                        encoded.count(b"{") + encoded.count(b"[") <= deep
                        or not too_deep(payload, deep, 2)
                    )
                ):
                    append(new(kind, corr, index, cid, cname, sname, encoded))
                    continue
        _explain(pos, item, exec_id, max_event_bytes, latest)
    return out


def _good_kind(kind: str, good: set[str]) -> bool:
    """Whether ``kind`` passes :func:`check_kind` (remembered in ``good`` if it does)."""
    if "\n" in kind or "\r" in kind:
        return False
    stripped = kind.strip()
    if not stripped or stripped in RESERVED_KINDS:
        return False
    good.add(kind)
    return True


def _good_corr(corr: str, good: set[str]) -> bool:
    """Whether ``corr`` is a non-blank correlation ID (remembered in ``good`` if it is)."""
    if not corr.strip():
        return False
    good.add(corr)
    return True


def _explain(pos: int, item: Any, exec_id: str, max_event_bytes: int, latest: float) -> NoReturn:
    """Raise the error that names what is wrong with event ``pos``."""
    where = f"event [{pos}]"
    if type(item) is not dict:
        raise bad_request(f"{where} must be a JSON object, got {json_type(item)}")
    got_exec = item.get("exec_id")
    if got_exec != exec_id:
        raise bad_request(
            f"{where}: exec_id {short_value(got_exec)} does not match the execution in the "
            f"path ({exec_id!r})"
        )
    kind = check_kind(item.get("kind"), where)
    corr = item.get("correlation_id")
    if not isinstance(corr, str) or not corr.strip():
        raise bad_request(
            f"{where}: correlation_id must be a non-blank string, got {short_value(corr)}"
        )
    index = item.get("index")
    if type(index) is not int or not 0 <= index <= MAX_INT:
        raise bad_request(
            f"{where}: index must be a non-negative integer, got {short_value(index)}"
        )
    names: list[str | None] = []
    for key in ("checkpoint_id", "checkpoint_name", "step_name"):
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            raise bad_request(f"{where}: {key} must be a string or null, got {json_type(value)}")
        names.append(value)
    ts = item.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int | float)):
        raise bad_request(f"{where}: ts must be a number or null, got {json_type(ts)}")
    if ts is not None and not 0 <= ts <= latest:
        raise bad_request(f"{where}: " + timestamp_problem("ts", ts, latest))
    payload = item.get("payload")
    if type(payload) is not dict:
        raise bad_request(f"{where}: payload must be a JSON object, got {json_type(payload)}")
    if type(payload.get("kitaru")) is not dict:
        raise bad_request(
            f"{where}: payload.kitaru must be a JSON object (kitaru's event metadata), "
            f"got {json_type(payload.get('kitaru'))}"
        )
    if too_deep(payload, MAX_EVENT_DEPTH, 2):
        raise bad_request(
            f"{where}: payload is nested more than {MAX_EVENT_DEPTH} levels deep (arrays and "
            "objects, counting the event itself)"
        )
    # Same keys in the same order as the publisher's encoding, so the size measured here is
    # the size the publisher measured against the same limit (docs/protocol.md).
    encoded = orjson.dumps(
        wire_event(exec_id, kind, corr, index, names[0], names[1], names[2], ts, payload)
    )
    if len(encoded) > max_event_bytes:
        raise ApiError(
            413,
            _wire.ERROR_TOO_LARGE,
            f"{where} is {len(encoded)} bytes of JSON, over the {max_event_bytes}-byte "
            "limit per event",
        )
    raise bad_request(f"{where} is not a valid event")
