"""The event codec (``kitaru.events._codec``): one wire shape for every reader and writer.

The publisher, the server's ingest, the event logs, snapshots, the CLI and the watcher.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from httpx_sse import EventSource

from kitaru import ExecutionEvent
from kitaru._snapshot import SnapshotFold
from kitaru.cli._watch_output import event_json
from kitaru.events._codec import EVENT_FIELDS, WIRE_FIELDS, WIRE_KEYS, encode_record
from kitaru.events._frames import frame_data, new_event_frame, unnamed_frame
from kitaru.events._models import EventRecord
from kitaru.server._schemas import EVENT, EVENTS
from kitaru.server._validate import parse_events


@dataclass
class Source:
    exec_id: str = "exec-1"
    checkpoint_id: str | None = "cp-1"
    name: str = "train"
    step_name: str | None = "train_2"
    meta: Mapping[str, Any] = field(
        default_factory=lambda: {"source": "kitaru", "correlation_id": "train-abc"}
    )


def _record(**body: Any) -> EventRecord:
    body = body or {"message": "half way", "data": {"percent": 0.5, "big": 2**70}}
    return EventRecord(Source(), "kitaru.checkpoint.progress", "train-abc", 3, body, 1700.25)


def test_a_published_event_has_the_wire_fields_in_order() -> None:
    encoded = encode_record(_record())
    assert tuple(encoded.data) == WIRE_FIELDS
    assert tuple(orjson.loads(encoded.json)) == WIRE_FIELDS
    assert encoded.data["payload"]["kitaru"]["ts"] == 1700.25
    # beyond 64 bits: still plain JSON (orjson refuses it, the fallback encodes it)
    assert b'"big":1180591620717411303424' in encoded.json


def test_the_server_measures_an_event_as_the_publisher_encoded_it() -> None:
    encoded = encode_record(_record(message="hi"))
    # the keys in another order (and one unknown key): the server re-encodes in wire order
    shuffled = {k: encoded.data[k] for k in reversed(WIRE_FIELDS)} | {"extra": 1}
    for item in (encoded.data, shuffled):
        (event,) = parse_events(
            orjson.dumps([item]), "exec-1", max_events=10, max_event_bytes=64 * 1024
        )
        assert event.body == encoded.json
    with pytest.raises(Exception, match="over the 10-byte limit"):
        parse_events(orjson.dumps([shuffled]), "exec-1", max_events=10, max_event_bytes=10)


def test_the_openapi_schema_of_an_event_is_the_codec_s_wire_shape() -> None:
    assert set(EVENT["properties"]) == WIRE_KEYS
    assert set(EVENT["required"]) <= WIRE_KEYS
    encoded = encode_record(_record(message="hi"))
    jsonschema.validate([encoded.data], EVENTS)
    missing = {k: v for k, v in encoded.data.items() if k != "payload"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([missing], EVENTS)


def test_a_delivered_event_round_trips_through_to_wire() -> None:
    data = encode_record(_record(message="hi")).data
    event = ExecutionEvent.from_wire(data, cursor="17-0")
    wire = event.to_wire()
    assert tuple(wire) == EVENT_FIELDS
    assert wire["cursor"] == "17-0" and "ts" not in wire
    assert ExecutionEvent.from_wire(orjson.loads(orjson.dumps(wire))) == event


def test_snapshots_and_the_cli_write_the_delivered_shape() -> None:
    event = ExecutionEvent.from_wire(
        encode_record(_record(message="hi")).data | {"kind": "user.note"}, cursor="5-0"
    )
    assert orjson.loads(event_json(event)) == event.to_wire()
    fold = SnapshotFold("exec-1")
    fold.apply(event)
    (timeline_entry,) = fold.snapshot().to_dict()["timeline"]
    assert timeline_entry == event.to_wire()


def test_a_stored_frame_parses_back_to_the_event() -> None:
    encoded = encode_record(_record(message="hi"))
    frame = new_event_frame("9-1", "kitaru.checkpoint.progress", encoded.json)
    assert orjson.loads(frame_data(frame)) == {**encoded.data, "cursor": "9-1"}
    unnamed = unnamed_frame("9-1", frame_data(frame))
    for raw, name in ((frame, "kitaru.checkpoint.progress"), (unnamed, "message")):
        response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
        (sse,) = list(EventSource(response).iter_sse())
        assert (sse.id, sse.event) == ("9-1", name)
        event = ExecutionEvent.from_wire(orjson.loads(sse.data), cursor=sse.id)
        assert event == ExecutionEvent.from_wire(encoded.data, cursor="9-1")
