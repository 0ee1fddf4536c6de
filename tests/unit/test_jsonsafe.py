"""JSON-safety of user data (docs/live-events.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid

import kitaru
from kitaru import checkpoint, flow
from kitaru.events._jsonsafe import json_safe_mapping

SECRET = "repr-secret-42"


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int
    when: dt.date


class Opaque:
    def __repr__(self) -> str:
        return f"Opaque({SECRET})"

    def __str__(self) -> str:
        return SECRET


def test_conversions():
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    out = json_safe_mapping(
        {
            "s": "text",
            "i": 3,
            "f": 1.5,
            "b": True,
            "n": None,
            "list": [1, "a"],
            "tuple": (1, 2),
            "set": {3, 1, 2},
            "dt": moment,
            "date": dt.date(2026, 1, 2),
            "uuid": ident,
            "enum": Color.RED,
            "intenum": Level.HIGH,
            "dataclass": Point(1, dt.date(2026, 1, 2)),
            "nested": {"deep": [{"dt": moment}]},
            "opaque": Opaque(),
            "nan": float("nan"),
            "bytes": b"\x00\x01",
            3: "non-string key",
        }
    )
    assert out["s"] == "text" and out["i"] == 3 and out["f"] == 1.5
    assert out["b"] is True and out["n"] is None
    assert out["list"] == [1, "a"]
    assert out["tuple"] == [1, 2]
    assert out["set"] == [1, 2, 3]
    assert out["dt"] == moment.isoformat()
    assert out["date"] == "2026-01-02"
    assert out["uuid"] == str(ident)
    assert out["enum"] == "red"
    assert out["intenum"] == 3 and type(out["intenum"]) is int
    assert out["dataclass"] == {"x": 1, "when": "2026-01-02"}
    assert out["nested"] == {"deep": [{"dt": moment.isoformat()}]}
    assert out["opaque"] == {
        "python_type": "Opaque",
        "serialization_error": "not JSON serializable",
    }
    assert out["nan"]["python_type"] == "float"
    assert out["bytes"]["python_type"] == "bytes"
    assert out["3"] == "non-string key"
    text = json.dumps(out)
    assert SECRET not in text


def test_pydantic_model():
    import pydantic

    class Model(pydantic.BaseModel):
        name: str
        when: dt.date

    out = json_safe_mapping({"m": Model(name="n", when=dt.date(2026, 1, 1))})
    assert out["m"] == {"name": "n", "when": "2026-01-01"}


def test_cycle_replaces_only_that_top_level_field():
    loop: list = [1]
    loop.append(loop)
    d: dict = {"a": 1}
    d["self"] = d
    shared = [1, 2]
    out = json_safe_mapping({"loop": loop, "d": d, "ok": "fine", "twice": [shared, shared]})
    assert out["loop"] == {"python_type": "list", "serialization_error": "reference cycle"}
    assert out["d"] == {"python_type": "dict", "serialization_error": "reference cycle"}
    assert out["ok"] == "fine"
    assert out["twice"] == [[1, 2], [1, 2]]  # shared, not cyclic


def test_events_carry_json_safe_data(kitaru_events):
    @checkpoint
    def step() -> None:
        kitaru.progress("p", when=dt.date(2026, 5, 1), thing=Opaque())
        kitaru.events.publish("custom.kind", {"color": Color.RED, "obj": Opaque()})

    @flow
    def f() -> None:
        step()

    f()
    events = kitaru_events.events
    assert events[1].payload["data"] == {
        "when": "2026-05-01",
        "thing": {"python_type": "Opaque", "serialization_error": "not JSON serializable"},
    }
    assert events[2].payload["data"]["color"] == "red"
    assert SECRET not in json.dumps([dict(e.payload) for e in events])


def test_big_integers_are_json_native(kitaru_events):
    big = 2**80 + 1

    @checkpoint
    def step() -> None:
        kitaru.progress("big", value=big, negative=-big)

    @flow
    def f() -> None:
        step()

    f()
    progress = [e for e in kitaru_events.events if e.kind.endswith("progress")]
    assert len(progress) == 1
    assert progress[0].payload["data"] == {"value": big, "negative": -big}
    assert kitaru_events.runtime.publisher.stats().dropped == 0


def test_json_native_payloads_pass_unchanged_and_others_are_walked():
    from collections import OrderedDict

    from kitaru.events._jsonsafe import is_json_native

    native = {"step": 3, "loss": 0.25, "tags": ["a", None, True], "nested": {"k": [1, {"x": ""}]}}
    assert json_safe_mapping(native) is native  # no copy for what is already JSON
    for bad in (
        {"nan": float("nan")},
        {"inf": [float("inf")]},
        {"when": dt.date(2026, 1, 1)},
        {"tuple": (1, 2)},
        {"sub": OrderedDict(a=1)},
        {"enum": Level.HIGH},
        {3: "int key"},
    ):
        assert not is_json_native(bad), bad
        out = json_safe_mapping(bad)
        assert out is not bad
        assert is_json_native(out), out
    deep: dict = {}
    node = deep
    for _ in range(100):
        node["n"] = {}
        node = node["n"]
    assert not is_json_native(deep)


def test_one_marker_for_unbounded_and_bounded_walks():
    import re

    from kitaru.adapters.langgraph import bounded_payload
    from kitaru.events._jsonsafe import Bounds, json_safe, marker

    assert json_safe(Opaque()) == marker(Opaque(), "not JSON serializable")
    assert bounded_payload(Opaque(), limit=10) == marker(Opaque(), "unsupported_stream_value")
    bounds = Bounds(max_string=6, max_items=2, max_depth=2, redact=re.compile("token"))
    out = json_safe({"token": "s3cret", "text": "abcdefghij", "more": {"deep": {"x": 1}}}, bounds)
    assert out == {
        "token": "[redacted]",
        "text": "abc...",
        "_kitaru_omitted_keys": 1,
    }
    assert json_safe({"d": {"e": {"f": 1}}}, bounds)["d"] == {
        "e": {"python_type": "dict", "serialization_error": "nested too deeply"}
    }
    assert json_safe([1, 2, 3], bounds) == [1, 2, {"_kitaru_omitted_items": 1}]
    assert json_safe({dt.date(2026, 1, 1)}, bounds) == ["2026-01-01"]
