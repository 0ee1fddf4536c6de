"""The publisher's encoding from per-lane JSON fragments (``_codec.encode_record``).

Compared with the plain definition (the wire dictionary of ``docs/protocol.md`` built in full,
then ``dumps``) on random events: the same bytes, the same dictionary, the same exception.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitaru.events import _codec
from kitaru.events._codec import EncodedEvent, dumps, encode_record, wire_event
from kitaru.events._jsonsafe import json_safe_mapping
from kitaru.events._models import EventRecord


@dataclass(eq=False)
class Source:
    exec_id: str = "exec-1"
    checkpoint_id: str | None = "cp-1"
    name: str = "train"
    step_name: str | None = "train_2"
    meta: Mapping[str, Any] = field(
        default_factory=lambda: {"source": "kitaru", "correlation_id": "train-abc"}
    )


def expected(rec: EventRecord) -> tuple[dict[str, Any], bytes]:
    """The wire event by its definition: every dictionary built, then encoded whole."""
    meta = dict(rec.meta)
    meta["ts"] = rec.ts
    payload: dict[str, Any] = {"kitaru": meta}
    for key, value in rec.body.items():
        payload[key] = json_safe_mapping(value) if key == "data" and value is not None else value
    src = rec.source
    data = wire_event(
        src.exec_id,
        rec.kind,
        rec.correlation_id,
        rec.index,
        src.checkpoint_id,
        src.name,
        src.step_name,
        rec.ts,
        payload,
    )
    return data, dumps(data)


def check(rec: EventRecord) -> EncodedEvent | None:
    """``encode_record(rec)`` agrees with :func:`expected` (or both raise the same)."""
    try:
        want_data, want_json = expected(rec)
    except Exception as exc:
        with pytest.raises(type(exc)):
            encode_record(rec)
        return None
    got = encode_record(rec)
    assert got.json == want_json
    assert got.exec_id == str(rec.source.exec_id)
    assert got.data == want_data
    assert tuple(got.data) == _codec.WIRE_FIELDS
    assert json.loads(got.json) == json.loads(want_json)
    return got


# Text with any code point (control characters, quotes, backslashes, non-BMP, surrogates).
_any_text = st.text(st.characters(blacklist_categories=()), max_size=12)
_text = st.one_of(st.text(max_size=12), _any_text, st.sampled_from(["", '"', "\\", "\x00\n"]))
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(),  # beyond 64 bits too: orjson refuses those
    st.floats(),  # NaN and infinities included: markers, not JSON
    _text,
)
_not_native = st.one_of(
    st.just(dt.datetime(2026, 12, 3, 10, 0)),
    st.just(uuid.UUID(int=7)),
    st.just(Decimal("1.5")),
    st.tuples(st.integers(), _text),
    st.frozensets(st.integers(), max_size=3),
    st.builds(object),
)
_values = st.recursive(
    st.one_of(_scalars, _not_native),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(_text, st.integers(0, 3)), inner, max_size=4),
    ),
    max_leaves=12,
)
_bodies = st.fixed_dictionaries(
    {},
    optional={
        "message": _text,
        "status": st.sampled_from(["started", "returned"]),
        "data": st.one_of(st.none(), st.dictionaries(_text, _values, max_size=5)),
        "kitaru": st.just({"x": 1}),  # a body key that replaces the metadata in place
    },
)
_metas = st.one_of(
    st.just({"source": "kitaru", "correlation_id": "cid-0"}),
    st.just({}),
    st.just({"ts": 1.0, "correlation_id": "cid-0"}),  # the time replaces a key in place
    st.dictionaries(_text, _scalars, max_size=4),
)
_sources = st.builds(
    Source,
    exec_id=st.one_of(st.just("exec-1"), _text),
    checkpoint_id=st.one_of(st.none(), st.just("cp-1"), _text),
    name=st.one_of(st.just("train"), _text),
    step_name=st.one_of(st.none(), st.just("train_2"), _text),
    meta=_metas,
)
_records = st.builds(
    EventRecord,
    _sources,
    st.one_of(st.just("kitaru.checkpoint.progress"), _text),
    st.one_of(st.just("cid-0"), _text),
    st.one_of(st.integers(min_value=0, max_value=2**63), st.integers(min_value=0)),
    _bodies,
    st.one_of(st.floats(min_value=0, max_value=4e9), st.floats()),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records)
def test_an_encoded_record_is_its_wire_event_encoded_whole(rec: EventRecord) -> None:
    check(rec)
    check(rec)  # the second time from the lane's cached fragments


@settings(max_examples=150, deadline=None)
@given(st.lists(_records, min_size=2, max_size=12), st.randoms(use_true_random=False))
def test_interleaved_lanes_never_share_fragments(records: list[EventRecord], random: Any) -> None:
    for rec in random.sample(records * 3, len(records) * 3):
        check(rec)


def test_two_lanes_differing_in_one_field_each_get_their_own_fragments() -> None:
    meta = {"source": "kitaru", "correlation_id": "cid-0"}
    base = {"exec_id": "e", "checkpoint_id": "c", "name": "n", "step_name": "s", "meta": meta}
    variants = [
        Source(**base),  # type: ignore[arg-type]
        Source(**{**base, "exec_id": "e2"}),  # type: ignore[arg-type]
        Source(**{**base, "checkpoint_id": None}),  # type: ignore[arg-type]
        Source(**{**base, "name": "n2"}),  # type: ignore[arg-type]
        Source(**{**base, "step_name": "s2"}),  # type: ignore[arg-type]
        Source(**{**base, "meta": {**meta, "attempt": 2}}),  # type: ignore[arg-type]
    ]
    seen: set[bytes] = set()
    for kind in ("k1", "k2"):
        for cid in ("cid-0", "cid-1"):
            for round_ in range(2):
                for src in variants:
                    got = check(EventRecord(src, kind, cid, 1, {"message": "m"}, 5.0))
                    assert got is not None
                    if round_ == 0:
                        assert got.json not in seen  # every lane's event differs
                        seen.add(got.json)
                    else:
                        assert got.json in seen
    assert len(seen) == len(variants) * 4


def test_a_lane_whose_metadata_mapping_is_replaced_gets_new_fragments() -> None:
    src = Source(meta={"correlation_id": "cid-0", "attempt": 1})
    first = encode_record(EventRecord(src, "k", "cid-0", 0, {}, 1.0))
    assert b'"attempt":1' in first.json
    src.meta = {"correlation_id": "cid-0", "attempt": 2}
    second = check(EventRecord(src, "k", "cid-0", 1, {}, 1.0))
    assert second is not None and b'"attempt":2' in second.json


def test_the_data_of_a_fast_encoding_is_built_on_first_access_and_kept() -> None:
    rec = EventRecord(Source(), "k", "cid-0", 0, {"data": {"when": dt.date(2026, 1, 2)}}, 1.0)
    got = encode_record(rec)
    assert got._data is None  # nothing built yet
    assert got.exec_id == "exec-1"
    data = got.data
    assert data is got.data
    assert data["payload"]["data"] == {"when": "2026-01-02"}
    assert got == EncodedEvent(*expected(rec))
    assert "EncodedEvent(data=" in repr(got)
