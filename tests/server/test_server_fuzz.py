"""Hypothesis fuzz of the ingest and stream endpoints: never a 5xx, never a corrupted log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from _serverkit import (
    collect,
    data_frames,
    error_detail,
    finish,
    new_execution,
    wire_event,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _support import require_server_deps
from kitaru import _wire

pytestmark = pytest.mark.server

FUZZ = settings(
    max_examples=150,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
kinds = (
    st.sampled_from(
        ["k.one", "k.two", "end", " cursor", "gap", "error", "system", "", " ", "a\nb", "x\r"]
    )
    | text
)
indexes = st.integers(min_value=-3, max_value=40) | st.sampled_from(
    [2**63, 2**64 - 1, True, 1.5, "3"]
)


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, httpx.Client, str, str]]:
    require_server_deps()
    from kitaru.server import serve_in_thread

    srv = serve_in_thread(
        db=tmp_path_factory.mktemp("fuzz") / "server.db", token=None, ping_interval=0.2
    )
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        running = new_execution(c)
        done = new_execution(c)
        c.post(
            _wire.path_events(done),
            content=orjson.dumps(
                [wire_event(done, i, kind=k) for i, k in enumerate(["k.one", "k.two"] * 5)]
            ),
        )
        finish(c, done)
        yield srv, c, running, done
    srv.stop()


def dump(value: Any) -> bytes:
    # The standard library writes integers of any size (orjson refuses past 64 bits).
    return json.dumps(value, ensure_ascii=False).encode()


def event_like(exec_id: str) -> st.SearchStrategy[dict[str, Any]]:
    base = wire_event(exec_id, 0)
    return st.fixed_dictionaries(
        {},
        optional={
            "exec_id": st.sampled_from([exec_id, exec_id, "other"]) | text,
            "kind": kinds,
            "correlation_id": st.sampled_from(["c1", "c2", "", "  "]) | json_scalars,
            "index": indexes,
            "checkpoint_id": st.none() | text | st.integers(),
            "checkpoint_name": st.none() | st.sampled_from(["cp", "other"]) | st.integers(),
            "step_name": st.none() | text,
            "ts": st.none() | st.floats(allow_nan=False, allow_infinity=False) | text,
            "payload": st.just(base["payload"]) | json_values,
        },
    )


def test_ingest_never_fails_with_5xx(target: tuple[Any, httpx.Client, str, str]) -> None:
    srv, c, running, _ = target
    accepted: set[tuple[str, int]] = set()

    @FUZZ
    @given(
        body=st.one_of(
            st.binary(max_size=64),
            json_values.map(dump),
            st.lists(event_like(running), max_size=5).map(dump),
        ),
        path_id=st.sampled_from([running, running, running, "missing"]) | text,
    )
    def check(body: bytes, path_id: str) -> None:
        r = c.post(_wire.path_events(quote(path_id, safe="")), content=body)
        assert r.status_code < 500, r.text
        if r.status_code == 200:
            assert path_id == running
            for item in orjson.loads(body):
                accepted.add((item["correlation_id"], item["index"]))
        else:
            assert 400 <= r.status_code < 500
            error_detail(r)  # every refusal is a JSON detail object, unknown routes included

    check()
    # The log holds exactly the accepted events, each once.
    finish(c, running)
    frames = collect(srv.url, running)
    stored = [orjson.loads(f.data) for f in data_frames(frames)]
    assert {(e["correlation_id"], e["index"]) for e in stored} == accepted
    assert len(stored) == len(accepted)
    assert frames[-1].event == "end"


def test_stream_never_fails_with_5xx(target: tuple[Any, httpx.Client, str, str]) -> None:
    srv, c, _, done = target
    header_text = st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=24
    ).map(str.strip)

    @FUZZ
    @given(
        params=st.lists(
            st.tuples(
                st.sampled_from(
                    ["kinds", "kind", "checkpoint", "correlation_id", "since", "token", "x"]
                ),
                st.sampled_from(["k.one", "cp", "c1", "000000000003", "0", ""]) | header_text,
            ),
            max_size=5,
        ),
        last_event_id=st.none() | st.sampled_from(["000000000005", "", "1"]) | header_text,
        path_id=st.sampled_from([done, done, "missing"]) | text,
    )
    def check(params: list[tuple[str, str]], last_event_id: str | None, path_id: str) -> None:
        headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
        url = srv.url + _wire.path_stream(quote(path_id, safe=""))
        with c.stream("GET", url, params=params, headers=headers) as r:
            assert r.status_code < 500
            if r.status_code == 200:
                text_body = r.read().decode()
                assert text_body.rstrip().split("\n\n")[-1].startswith("event: end")
            else:
                r.read()
                assert 400 <= r.status_code < 500

    check()
