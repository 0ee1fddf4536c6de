"""The sync watcher against a scripted MockTransport server: frames, resume, errors."""

from __future__ import annotations

import logging

import httpx
import pytest
from _client_fake import (
    EXEC_ID,
    PING,
    URL,
    FakeServer,
    end_frame,
    event_frame,
    frame,
    split_every,
    sse_response,
)

from kitaru import (
    KitaruBackendError,
    KitaruClient,
    KitaruFeatureNotAvailableError,
    KitaruStateError,
    KitaruUsageError,
)
from kitaru.client import EventWatcher, StreamDisconnectedError, StreamGapError

FAST = {"backoff_initial": 0.001, "backoff_max": 0.01}


def watch(server: FakeServer, **kwargs):
    client = KitaruClient(URL, api_token=server.token)
    options = {**FAST, **kwargs.pop("options", {})}
    return client.executions.events(EXEC_ID, transport=server.transport, **kwargs, **options)


def indexes(events) -> list[int]:
    return [e.index for e in events]


# -- frame parsing --------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64, 100_000])
@pytest.mark.parametrize("crlf", [False, True])
def test_frames_split_across_chunks_are_parsed(chunk_size: int, crlf: bool) -> None:
    body = (
        b":"
        + b" ok\n\n"
        + b"".join(event_frame(i, crlf=crlf) for i in range(5))
        + PING
        + end_frame("completed")
    )
    server = FakeServer([sse_response(split_every(body, chunk_size))])
    watcher = watch(server)
    events = list(watcher)
    assert indexes(events) == [0, 1, 2, 3, 4]
    first = events[0]
    assert first.exec_id == EXEC_ID
    assert first.kind == "kitaru.checkpoint.progress"
    assert first.cursor == "c0"
    assert first.checkpoint_name == "build_report"
    assert first.step_name == "build_report"
    assert first.checkpoint_id == "cp-1"
    assert first.payload["message"] == "event 0"
    assert first.correlation_id.startswith("kitaru.checkpoint:build_report:")
    assert watcher.final_status == "completed"
    assert watcher.cursor == "c4"
    assert len(server.stream_requests) == 1


def test_end_finishes_even_without_events_and_closes_the_response() -> None:
    server = FakeServer([sse_response([end_frame("failed"), event_frame(99)])])
    watcher = watch(server)
    assert list(watcher) == []
    assert watcher.final_status == "failed"
    assert server.stream_of(0).closed


def test_token_is_sent_on_every_request() -> None:
    server = FakeServer([sse_response([event_frame(0), end_frame()])], token="s3cret")
    assert indexes(watch(server)) == [0]
    assert len(server.requests) == 3  # info, lookup, stream
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in server.requests)


def test_stream_request_shape() -> None:
    server = FakeServer([sse_response([end_frame()])])
    list(
        watch(
            server,
            kinds=["a.b", "c.d"],
            correlation_ids=["kitaru.checkpoint:x:1"],
            since="c7",
        )
    )
    req = server.stream_requests[0]
    assert req.url.path == f"/api/v1/executions/{EXEC_ID}/events/stream"
    assert req.url.params.get_list("kinds") == ["a.b", "c.d"]
    assert req.url.params.get_list("correlation_id") == ["kitaru.checkpoint:x:1"]
    assert req.headers["last-event-id"] == "c7"
    assert req.headers["accept"] == "text/event-stream"
    assert "index" not in req.url.params and "since" not in req.url.params


# -- resume ---------------------------------------------------------------------------------


def test_reconnects_with_the_last_cursor_and_yields_each_event_once() -> None:
    server = FakeServer(
        [
            sse_response([event_frame(0), event_frame(1), event_frame(2)], httpx.ReadError("x")),
            sse_response([event_frame(3), event_frame(4), end_frame()]),
        ]
    )
    assert indexes(watch(server)) == [0, 1, 2, 3, 4]
    assert server.last_event_ids() == [None, "c2"]


def test_a_resumed_stream_that_drops_before_any_event_keeps_the_same_cursor() -> None:
    server = FakeServer(
        [
            sse_response([event_frame(0), event_frame(1)], httpx.ReadError("x")),
            sse_response([PING], httpx.RemoteProtocolError("peer closed")),
            sse_response([]),  # closed cleanly without `end`: also a disconnect
            httpx.ConnectError("refused"),
            sse_response([event_frame(2), end_frame()]),
        ]
    )
    assert indexes(watch(server)) == [0, 1, 2]
    assert server.last_event_ids() == [None, "c1", "c1", "c1", "c1"]


def test_cursor_frames_move_the_resume_position() -> None:
    server = FakeServer(
        [
            sse_response(
                [event_frame(0), frame(event="cursor", id="c5"), PING], httpx.ReadError("x")
            ),
            sse_response([event_frame(6), end_frame()]),
        ]
    )
    watcher = watch(server)
    assert indexes(watcher) == [0, 6]
    assert server.last_event_ids() == [None, "c5"]


def test_control_frames_without_id_do_not_move_the_cursor() -> None:
    # A gap frame carries no id of its own here; the cursor must stay on the last event.
    server = FakeServer(
        [
            sse_response(
                [event_frame(0), frame(event="gap", data={"reason": "retention"})],
                httpx.ReadError("x"),
            ),
            sse_response([end_frame()]),
        ]
    )
    assert indexes(watch(server, on_gap="continue")) == [0]
    assert server.last_event_ids() == [None, "c0"]


def test_since_is_the_first_resume_position() -> None:
    server = FakeServer(
        [sse_response([], httpx.ReadError("x")), sse_response([event_frame(9), end_frame()])]
    )
    assert indexes(watch(server, since="c8")) == [9]
    assert server.last_event_ids() == ["c8", "c8"]


def test_stall_read_timeout_reconnects() -> None:
    server = FakeServer(
        [
            sse_response([event_frame(0)], httpx.ReadTimeout("no bytes")),
            sse_response([event_frame(1), end_frame()]),
        ]
    )
    assert indexes(watch(server)) == [0, 1]
    assert server.last_event_ids() == [None, "c0"]


def test_503_is_retried() -> None:
    server = FakeServer(
        [
            httpx.Response(503, json={"detail": "restarting"}),
            httpx.Response(502, text="bad gateway"),
            sse_response([event_frame(0), end_frame()]),
        ]
    )
    assert indexes(watch(server)) == [0]
    assert len(server.stream_requests) == 3


def test_retry_hint_is_accepted() -> None:
    server = FakeServer(
        [
            sse_response([frame(retry=1), event_frame(0)], httpx.ReadError("x")),
            sse_response([event_frame(1), end_frame()]),
        ]
    )
    client = KitaruClient(URL)
    watcher = client.executions.events(EXEC_ID, transport=server.transport)
    assert indexes(watcher) == [0, 1]


def test_reconnect_false_raises_on_drop() -> None:
    server = FakeServer([sse_response([event_frame(0)], httpx.ReadError("x"))])
    watcher = watch(server, reconnect=False)
    assert next(watcher).index == 0
    with pytest.raises(StreamDisconnectedError) as info:
        next(watcher)
    assert "reconnect=False" in str(info.value)
    assert info.value.cursor == "c0"
    assert len(server.stream_requests) == 1


def test_gives_up_after_max_outage() -> None:
    server = FakeServer(lambda attempt, request: (_ for _ in ()).throw(httpx.ConnectError("x")))
    watcher = watch(server, options={"max_outage": 0.2})
    with pytest.raises(StreamDisconnectedError) as info:
        next(watcher)
    err = info.value
    assert isinstance(err, KitaruBackendError)
    assert isinstance(err, httpx.TransportError)
    assert "could not be reached for 0.2 s" in str(err)
    assert URL in str(err)
    assert len(server.stream_requests) >= 2


def test_an_outage_that_ends_is_ridden_out() -> None:
    def script(attempt: int, request: httpx.Request) -> httpx.Response:
        if attempt < 20:
            raise httpx.ConnectError("down")
        return sse_response([event_frame(0), end_frame()])

    server = FakeServer(script)
    assert indexes(watch(server, options={"max_outage": 30.0})) == [0]
    assert len(server.stream_requests) == 21


# -- filters --------------------------------------------------------------------------------


def test_checkpoint_filter_is_applied_client_side_and_not_sent_for_live_executions() -> None:
    body = [
        event_frame(0, checkpoint="build_report"),
        event_frame(1, checkpoint="other"),
        event_frame(2, checkpoint="build_report"),
        end_frame(),
    ]
    server = FakeServer([sse_response(body)], status="running")
    watcher = watch(server, checkpoint="build_report")
    assert indexes(watcher) == [0, 2]
    assert "checkpoint" not in server.stream_requests[0].url.params
    assert watcher.cursor == "c2"


def test_checkpoint_filter_is_sent_for_completed_executions() -> None:
    server = FakeServer(
        [sse_response([event_frame(0, checkpoint="other"), end_frame()])], status="completed"
    )
    assert indexes(watch(server, checkpoint="build_report")) == []
    assert server.stream_requests[0].url.params["checkpoint"] == "build_report"


def test_kind_and_correlation_filters_are_rechecked_client_side() -> None:
    server = FakeServer(
        [
            sse_response(
                [
                    event_frame(0, kind="kitaru.checkpoint.started"),
                    event_frame(1, kind="kitaru.checkpoint.progress"),
                    end_frame(),
                ]
            )
        ]
    )
    assert indexes(watch(server, kinds=["kitaru.checkpoint.progress"])) == [1]
    server = FakeServer([sse_response([event_frame(0), end_frame()])])
    assert indexes(watch(server, correlation_ids=["kitaru.checkpoint:zzz:1"])) == []


# -- control frames and errors --------------------------------------------------------------


def test_gap_raises_by_default() -> None:
    gap = frame(event="gap", data={"reason": "retention", "from": "c0", "to": "c40"})
    server = FakeServer([sse_response([gap, event_frame(41), end_frame()])])
    watcher = watch(server)
    with pytest.raises(StreamGapError) as info:
        next(watcher)
    assert info.value.reason == "retention"
    assert "retention" in str(info.value) and "on_gap='continue'" in str(info.value)
    assert isinstance(info.value, KitaruBackendError)


def test_gap_can_be_continued(caplog: pytest.LogCaptureFixture) -> None:
    gap = frame(event="gap", id="c40", data={"reason": "retention"})
    server = FakeServer([sse_response([gap, event_frame(41), end_frame()])])
    with caplog.at_level(logging.WARNING, logger="kitaru.client"):
        assert indexes(watch(server, on_gap="continue")) == [41]
    assert any("retention" in r.getMessage() for r in caplog.records)


def test_error_frame_is_terminal() -> None:
    err = frame(event="error", data={"kind": "internal", "message": "store failed"})
    server = FakeServer([sse_response([event_frame(0), err, event_frame(1)])])
    watcher = watch(server)
    assert next(watcher).index == 0
    with pytest.raises(KitaruBackendError, match="store failed"):
        next(watcher)
    assert len(server.stream_requests) == 1


def test_error_frame_streaming_disabled() -> None:
    err = frame(event="error", data={"kind": "streaming_disabled", "message": "off"})
    server = FakeServer([sse_response([err])])
    with pytest.raises(KitaruFeatureNotAvailableError):
        list(watch(server))


@pytest.mark.parametrize(
    ("response", "error", "match"),
    [
        (
            httpx.Response(501, json={"detail": {"kind": "streaming_disabled"}}),
            KitaruFeatureNotAvailableError,
            "streaming disabled",
        ),
        (
            httpx.Response(404, json={"detail": "Not Found"}),
            KitaruFeatureNotAvailableError,
            "no live-event stream",
        ),
        (
            httpx.Response(404, json={"detail": {"kind": "execution_unknown", "message": "gone"}}),
            KitaruStateError,
            "no execution",
        ),
        (httpx.Response(401, json={"detail": "bad token"}), KitaruBackendError, "authorization"),
        (httpx.Response(403, json={"detail": "forbidden"}), KitaruBackendError, "authorization"),
        (
            httpx.Response(400, json={"detail": {"kind": "cursor_invalid", "message": "bad"}}),
            KitaruUsageError,
            "since='zz'",
        ),
        (
            httpx.Response(200, text="<html>hi</html>", headers={"content-type": "text/html"}),
            KitaruBackendError,
            "not an event stream",
        ),
        (httpx.Response(418, json={"detail": "teapot"}), KitaruBackendError, "HTTP 418"),
    ],
)
def test_stream_status_mapping(response: httpx.Response, error: type, match: str) -> None:
    server = FakeServer([response])
    watcher = watch(server, since="zz")
    with pytest.raises(error, match=match):
        next(watcher)
    assert len(server.stream_requests) == 1


def test_malformed_data_frame_is_a_backend_error() -> None:
    server = FakeServer([sse_response([frame(event="x.y", id="c1", data="{not json")])])
    with pytest.raises(KitaruBackendError, match="malformed"):
        list(watch(server))


def test_a_malformed_frame_among_good_ones_in_one_piece_raises_after_those_before_it() -> None:
    """The frames of one received piece are cut out together, but each is still decoded on its
    own: the events before the bad frame are delivered, the error is the bad frame's, and the
    cursor is the last good event's."""
    bad = frame(event="x.y", id="c3", data="{not json")
    piece = event_frame(1) + event_frame(2) + bad + event_frame(4) + end_frame()
    server = FakeServer([sse_response([piece])])
    watcher = watch(server, reconnect=False)
    seen = []
    with pytest.raises(KitaruBackendError, match=r"malformed event frame .*\(JSONDecodeError\)"):
        for event in watcher:
            seen.append((event.index, watcher.cursor))
    assert seen == [(1, "c1"), (2, "c2")]
    assert watcher.cursor == "c2"


def test_a_frame_without_exec_id_or_kind_takes_the_watch_and_the_event_name() -> None:
    plain = frame(id="c1", event="custom", data={"index": 1, "payload": {}})
    named = frame(id="c2", event="custom", data={"kind": "own", "exec_id": "other", "index": 2})
    server = FakeServer([sse_response([plain + named + end_frame()])])
    events = list(watch(server))
    assert [(e.exec_id, e.kind, e.index, e.cursor) for e in events] == [
        (EXEC_ID, "custom", 1, "c1"),
        ("other", "own", 2, "c2"),
    ]


# -- call-time checks -----------------------------------------------------------------------


def test_streaming_disabled_is_reported_at_call_time() -> None:
    server = FakeServer(streaming=False)
    with pytest.raises(KitaruFeatureNotAvailableError, match="streaming disabled"):
        watch(server)
    assert server.stream_requests == []


def test_unknown_execution_is_a_state_error_at_call_time() -> None:
    server = FakeServer()
    client = KitaruClient(URL)
    with pytest.raises(KitaruStateError, match="exact, full execution ID"):
        client.executions.events(EXEC_ID[:8], transport=server.transport)
    assert server.stream_requests == []


def test_a_prefix_match_by_the_server_is_refused() -> None:
    server = FakeServer()
    server.executions[EXEC_ID[:8]] = dict(server.executions[EXEC_ID])  # a lenient server
    client = KitaruClient(URL)
    with pytest.raises(KitaruStateError, match="prefixes are not accepted"):
        client.executions.events(EXEC_ID[:8], transport=server.transport)


def test_auth_failure_at_call_time() -> None:
    server = FakeServer(token="right")
    client = KitaruClient(URL, api_token="wrong")
    with pytest.raises(KitaruBackendError, match="authorization failed"):
        client.executions.events(EXEC_ID, transport=server.transport)


def test_lookup_rides_out_a_restart() -> None:
    calls = {"n": 0}
    inner = FakeServer([sse_response([end_frame()])])

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise httpx.ConnectError("down")
        return inner.handle(request)

    client = KitaruClient(URL)
    watcher = client.executions.events(EXEC_ID, transport=httpx.MockTransport(handler), **FAST)
    assert list(watcher) == []


# -- closing --------------------------------------------------------------------------------


def test_close_closes_the_http_response() -> None:
    server = FakeServer([sse_response([event_frame(0), event_frame(1), end_frame()])])
    watcher = watch(server)
    assert isinstance(watcher, EventWatcher)
    assert next(watcher).index == 0
    stream = server.stream_of(0)
    assert not stream.closed
    watcher.close()
    assert stream.closed
    with pytest.raises(StopIteration):
        next(watcher)
    watcher.close()  # idempotent


def test_context_manager_closes() -> None:
    server = FakeServer([sse_response([event_frame(0), event_frame(1), end_frame()])])
    with watch(server) as watcher:
        for event in watcher:
            assert event.index == 0
            break
    assert server.stream_of(0).closed
