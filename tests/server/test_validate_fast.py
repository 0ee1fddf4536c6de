"""Ingest validation: the fast path accepts and refuses exactly what the slow path does.

``check_events`` tests each event with cheap type checks and bounds the nesting depth by the
brackets in its JSON, walking the payload only when that bound says it may be too deep;
``_explain`` checks every rule in turn and names the first one broken. These tests compare
the two on random events (nesting near the depth limit, strings full of brackets, wrong types,
missing and extra keys, sizes at the limit), so a fast path that accepted anything the slow
path refuses, or refused with another message, fails here.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitaru.backends import NewEvent
from kitaru.events._codec import WIRE_KEYS, wire_event
from kitaru.events._kinds import RESERVED_KINDS
from kitaru.server._errors import ApiError
from kitaru.server._validate import (
    MAX_EVENT_DEPTH,
    _check_each,
    _check_plain,
    _explain,
    check_events,
    latest_timestamp,
    too_deep,
)

EXEC = "exec-fast-1"
BIG = 1 << 20

# Strings that raise the bracket count (and so force the walk) without adding any depth.
_TEXT = st.text(alphabet='[]{}"\\ \nab:,', max_size=12)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)


def _base(index: int = 0) -> dict[str, Any]:
    return wire_event(
        EXEC,
        "kitaru.checkpoint.progress",
        "kitaru.checkpoint:producer:" + "0" * 32,
        index,
        "cp-1",
        "producer",
        "producer",
        1_700_000_000.5,
        {"kitaru": {"source": "kitaru", "attempt": 1}, "message": "m", "data": {"i": index}},
    )


@st.composite
def _chain(draw: st.DrawFn, levels: int, tight: bool = False) -> Any:
    """A value ``levels`` containers deep (1: a flat one), with random scalar siblings.

    ``tight``: no siblings and no brackets in strings, so its JSON has one bracket per level.
    """
    value: Any = 0 if tight else draw(_SCALAR)
    for _ in range(levels):
        siblings = [] if tight else draw(st.lists(_SCALAR, max_size=2))
        if tight:
            value = {"d": value} if draw(st.booleans()) else [value]
            continue
        if draw(st.booleans()):
            keys = draw(st.lists(_TEXT, min_size=len(siblings) + 1, max_size=len(siblings) + 1))
            value = {keys[0]: value, **dict(zip(keys[1:], siblings, strict=True))}
        else:
            value = [*siblings[:1], value, *siblings[1:]]
    return value


# Where a deep value goes: the event is level 1, the payload 2, payload.kitaru 3.
_PLACES = ("data", "kitaru")


@st.composite
def _deep_event(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event but for its depth: nested from a few levels under to a few over the limit."""
    ev = _base()
    levels = draw(st.integers(MAX_EVENT_DEPTH - 6, MAX_EVENT_DEPTH + 3))
    # Tight: as few brackets as the depth takes, so a bound off by one would let it through.
    tight = draw(st.booleans())
    if tight:
        ev["payload"] = {"kitaru": {}}
    if draw(st.sampled_from(_PLACES)) == "data":  # payload.data: level 3
        ev["payload"]["data"] = draw(_chain(levels - 2, tight))
    else:  # a value inside payload.kitaru: level 4
        ev["payload"]["kitaru"]["deep"] = draw(_chain(levels - 3, tight))
    if not tight and draw(st.booleans()):
        ev["payload"]["message"] = "[" * 80 + "{" * 80  # many brackets, no depth
    return ev


_FIELDS = sorted(WIRE_KEYS)
_BAD_KINDS = st.sampled_from(
    ["", "  ", "a\nb", "a\rb", *RESERVED_KINDS, *(f" {k} " for k in RESERVED_KINDS), "ok[{"]
)


@st.composite
def _mutated_event(draw: st.DrawFn) -> Any:
    """A valid event with a few random changes: wrong types, missing or extra keys, bad values."""
    ev: Any = _base(draw(st.integers(0, 5)))
    for _ in range(draw(st.integers(0, 3))):
        what = draw(
            st.sampled_from(["set", "drop", "extra", "kind", "corr", "ts", "index", "meta"])
        )
        if what == "set":
            ev[draw(st.sampled_from(_FIELDS))] = draw(st.one_of(_SCALAR, _chain(1)))
        elif what == "drop":
            ev.pop(draw(st.sampled_from(_FIELDS)), None)
        elif what == "extra":
            ev[draw(_TEXT)] = draw(_SCALAR)
        elif what == "kind":
            ev["kind"] = draw(_BAD_KINDS)
        elif what == "corr":
            ev["correlation_id"] = draw(st.sampled_from(["", " ", "\t", "c[1]"]))
        elif what == "ts":
            ev["ts"] = draw(st.sampled_from([-1, 0, True, None, 1e30, "1", 1_700_000_000]))
        elif what == "index":
            ev["index"] = draw(st.sampled_from([-1, True, 2**63, 2**63 - 1, 1.0, None]))
        elif type(ev.get("payload")) is dict:
            ev["payload"]["kitaru"] = draw(st.one_of(_SCALAR, _chain(1)))
    if draw(st.booleans()):
        return draw(st.one_of(_SCALAR, st.lists(_SCALAR, max_size=2)))  # not an object at all
    return ev


def _decoded(value: Any) -> Any:
    """``value`` as the server sees it: encoded and decoded by orjson."""
    return orjson.loads(orjson.dumps(value))


def _slow(item: Any, max_event_bytes: int) -> tuple[int, str] | None:
    """What the slow path says of ``item`` at position 0: ``None`` if it finds nothing wrong."""
    with pytest.raises(ApiError) as err:
        _explain(0, item, EXEC, max_event_bytes, latest_timestamp())
    if err.value.status == 400 and err.value.message == "event [0] is not a valid event":
        return None
    return err.value.status, err.value.message


def _fast(items: list[Any], max_event_bytes: int) -> list[bytes] | tuple[int, str]:
    try:
        return [ev.body for ev in check_events(items, EXEC, max_event_bytes=max_event_bytes)]
    except ApiError as exc:
        return exc.status, exc.message


def _encoded(item: dict[str, Any]) -> bytes:
    """The body the log stores for an accepted event (as the publisher encodes it)."""
    if item.keys() == WIRE_KEYS:
        return orjson.dumps(item)
    fields = [item.get(k) for k in ("kind", "correlation_id", "index")]
    names = [item.get(k) for k in ("checkpoint_id", "checkpoint_name", "step_name")]
    return orjson.dumps(wire_event(EXEC, *fields, *names, item.get("ts"), item["payload"]))


def _agree(item: Any, max_event_bytes: int = BIG) -> bool:
    """Assert the two paths agree on ``item``; whether it was accepted."""
    slow = _slow(copy.deepcopy(item), max_event_bytes)
    fast = _fast([item], max_event_bytes)
    if slow is None:
        assert fast == [_encoded(item)]
        return True
    assert fast == slow
    return False


_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_deep_event())
def test_nesting_near_the_limit_is_judged_alike(ev: dict[str, Any]) -> None:
    item = _decoded(ev)
    accepted = _agree(item)
    assert accepted == (not too_deep(item["payload"], MAX_EVENT_DEPTH, 2))


@_SETTINGS
@given(_mutated_event())
def test_malformed_events_are_refused_alike(ev: Any) -> None:
    _agree(_decoded(ev))


@_SETTINGS
@given(st.one_of(_deep_event(), _mutated_event()), st.integers(-2, 2))
def test_the_size_limit_is_judged_alike(ev: Any, delta: int) -> None:
    item = _decoded(ev)
    size = len(_encoded(item)) if type(item) is dict and type(item.get("payload")) is dict else 50
    _agree(item, max(1, size + delta))


@_SETTINGS
@given(st.lists(st.one_of(_deep_event(), _mutated_event()), min_size=1, max_size=6))
def test_a_batch_is_refused_at_its_first_bad_event(events: list[Any]) -> None:
    items = [_decoded(ev) for ev in events]
    fast = _fast(items, BIG)
    for pos, item in enumerate(items):
        slow = _slow(copy.deepcopy(item), BIG)
        if slow is not None:
            status, message = slow
            assert fast == (status, message.replace("event [0]", f"event [{pos}]", 1))
            return
    assert fast == [_encoded(item) for item in items]


def _pure_chain(event_levels: int) -> dict[str, Any]:
    """A valid event exactly ``event_levels`` deep with as few containers as that takes."""
    ev = _base()
    ev["payload"] = {"kitaru": {}}
    inner: Any = ev["payload"]["kitaru"]
    for _ in range(event_levels - 3):  # event 1, payload 2, kitaru 3
        inner["d"] = {}
        inner = inner["d"]
    return ev


@pytest.mark.parametrize("levels", [MAX_EVENT_DEPTH - 1, MAX_EVENT_DEPTH, MAX_EVENT_DEPTH + 1])
def test_the_depth_limit_holds_with_the_fewest_brackets(levels: int) -> None:
    ev = _pure_chain(levels)
    body = orjson.dumps(ev)
    assert body.count(b"{") + body.count(b"[") == levels  # no bracket to spare for the bound
    assert _agree(_decoded(ev)) == (levels <= MAX_EVENT_DEPTH)


def test_brackets_in_strings_do_not_refuse_a_shallow_event() -> None:
    ev = _base()
    ev["payload"]["message"] = "[" * 200
    ev["kind"] = "custom.{[" * 10
    assert _agree(_decoded(ev))


def test_too_deep_to_encode_is_refused_as_too_deep() -> None:
    # Deeper than orjson encodes: the fast path's encoding fails and the slow path names it.
    text = b'[{"exec_id":"%s","kind":"k","correlation_id":"c","index":0,"payload":{"kitaru":{},' % (
        EXEC.encode()
    )
    body = text + b'"d":' + b"[" * 300 + b"]" * 300 + b"}}]"
    items = orjson.loads(body)
    fast = _fast(items, BIG)
    assert isinstance(fast, tuple) and fast[0] == 400 and "levels deep" in fast[1]


# -- whole batches: the field-by-field check against the event-by-event one ---------------------

_KINDS = st.sampled_from(["kitaru.checkpoint.progress", "custom.a", "custom.{b}"])
_CORRS = st.sampled_from(["corr-1", "corr-2 [x]", "kitaru.checkpoint:p:" + "0" * 32])


@st.composite
def _plain_event(draw: st.DrawFn) -> dict[str, Any]:
    """A valid exact event with random field values (what the batch-at-once check takes)."""
    ev = _base(draw(st.integers(0, 2**63 - 1)))
    ev["kind"] = draw(_KINDS)
    ev["correlation_id"] = draw(_CORRS)
    for key in ("checkpoint_id", "checkpoint_name", "step_name"):
        ev[key] = draw(st.one_of(st.none(), _TEXT))
    ev["ts"] = draw(st.sampled_from([None, 0, 0.0, 1, 1_700_000_000, 1_700_000_000.25]))
    ev["payload"]["data"] = draw(st.one_of(_SCALAR, _chain(draw(st.integers(1, 3)))))
    if draw(st.booleans()):  # the producer's key order is kept, whatever it is
        ev = dict(reversed(list(ev.items())))
    return ev


@st.composite
def _batch(draw: st.DrawFn) -> list[Any]:
    """Mostly plain events; sometimes one that is not (bad, deep, or not exact)."""
    events: list[Any] = draw(st.lists(_plain_event(), min_size=1, max_size=8))
    odd = draw(st.sampled_from(["none", "mutated", "deep"]))
    if odd != "none":
        other = draw(_mutated_event() if odd == "mutated" else _deep_event())
        events.insert(draw(st.integers(0, len(events))), other)
    return [_decoded(ev) for ev in events]


def _each(items: list[Any], max_event_bytes: int) -> list[NewEvent] | tuple[int, str]:
    try:
        return _check_each(items, EXEC, max_event_bytes, latest_timestamp())
    except ApiError as exc:
        return exc.status, exc.message


@_SETTINGS
@given(_batch(), st.integers(300, 2000))
def test_a_batch_is_judged_alike_at_once_and_event_by_event(
    items: list[Any], max_event_bytes: int
) -> None:
    each = _each(copy.deepcopy(items), max_event_bytes)
    plain = _check_plain(items, EXEC, max_event_bytes, latest_timestamp())
    if plain is not None:
        assert plain == each  # same events, same stored bytes
    try:
        result: Any = check_events(items, EXEC, max_event_bytes=max_event_bytes)
    except ApiError as exc:
        result = (exc.status, exc.message)
    assert result == each


@_SETTINGS
@given(st.lists(_plain_event(), min_size=1, max_size=8))
def test_plain_batches_take_the_check_at_once(events: list[Any]) -> None:
    items = [_decoded(ev) for ev in events]
    plain = _check_plain(items, EXEC, BIG, latest_timestamp())
    assert plain is not None
    assert [ev.body for ev in plain] == [orjson.dumps(item) for item in items]
    assert [ev.index for ev in plain] == [item["index"] for item in items]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("exec_id", "another-exec"),
        ("kind", "end"),
        ("kind", " "),
        ("correlation_id", ""),
        ("index", -1),
        ("index", 2**63),
        ("index", True),
        ("checkpoint_name", 1),
        ("ts", -1),
        ("ts", 1e30),
        ("ts", True),
        ("payload", []),
    ],
)
def test_one_bad_field_in_a_long_batch_refuses_it_as_event_by_event(key: str, value: Any) -> None:
    items = [_decoded(_base(i)) for i in range(50)]
    items[37][key] = value
    plain = _check_plain(items, EXEC, BIG, latest_timestamp())
    assert plain is None
    with pytest.raises(ApiError) as err:
        check_events(items, EXEC, max_event_bytes=BIG)
    assert err.value.message.startswith("event [37]")


def test_an_oversized_or_deep_event_in_a_batch_is_left_to_the_event_by_event_check() -> None:
    items = [_decoded(_base(i)) for i in range(5)]
    size = len(orjson.dumps(items[3]))
    items[3]["payload"]["message"] = "x" * 100
    assert _check_plain(items, EXEC, size + 50, latest_timestamp()) is None
    with pytest.raises(ApiError) as err:
        check_events(items, EXEC, max_event_bytes=size + 50)
    assert err.value.status == 413 and err.value.message.startswith("event [3]")
    deep = [_decoded(_base(i)) for i in range(5)]
    deep[2] = _decoded(_pure_chain(MAX_EVENT_DEPTH + 1))
    assert _check_plain(deep, EXEC, BIG, latest_timestamp()) is None
    with pytest.raises(ApiError) as err:
        check_events(deep, EXEC, max_event_bytes=BIG)
    assert "levels deep" in err.value.message


@pytest.mark.parametrize("levels", [MAX_EVENT_DEPTH, MAX_EVENT_DEPTH + 1])
@pytest.mark.parametrize("payload_first", [False, True])
def test_brackets_in_strings_and_any_key_order_keep_the_depth_limit(
    levels: int, payload_first: bool
) -> None:
    # A chain as tight as the limit allows, among strings full of brackets (which send the
    # event to the walk) and in the producer's key order.
    ev = _pure_chain(levels)
    ev["kind"] = 'custom."payload":{[' * 4
    ev["payload"]["kitaru"]["payload"] = 1
    ev["payload"]["message"] = '"payload":' + "{" * 70
    if payload_first:
        ev = {"payload": ev.pop("payload"), **ev}
    item = _decoded(ev)
    assert _agree(item) == (levels <= MAX_EVENT_DEPTH)
    plain = _check_plain([item], EXEC, BIG, latest_timestamp())
    assert (plain is not None) == (levels <= MAX_EVENT_DEPTH)
