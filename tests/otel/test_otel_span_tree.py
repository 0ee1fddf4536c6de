"""The exact span trees kitaru records for flows, fan-out, retries, cache hits and replays."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

import kitaru
from kitaru import checkpoint, flow
from kitaru.otel import flow_span_id_for_execution, trace_id_for_execution

# -- flows under test (module level, so replay can find them) ---------------------------------


@checkpoint
def fetch(url: str) -> str:
    kitaru.progress("Fetching", percent=0.5, url=url)
    return f"page:{url}"


@checkpoint
def parse(page: str) -> str:
    return page.upper()


@checkpoint
def store(doc: str) -> int:
    kitaru.events.publish("doc.stored", {"size": len(doc)}, message="stored")
    return len(doc)


@flow
def three_steps(url: str) -> int:
    return store(parse(fetch(url)))


@checkpoint
def square(x: int) -> int:
    return x * x


@flow
def fan_out(n: int) -> list[int]:
    return square.map(range(n))


attempts: dict[str, int] = {}


@checkpoint(retries=1)
def flaky() -> str:
    attempts["flaky"] = attempts.get("flaky", 0) + 1
    if attempts["flaky"] == 1:
        raise RuntimeError("first attempt failed: token=hunter2")
    return "ok"


@flow
def retry_once() -> str:
    return flaky()


@checkpoint(cache=True)
def cached_double(x: int) -> int:
    return 2 * x


@flow
def cache_flow(x: int) -> int:
    return cached_double(x)


@checkpoint
def first(x: int) -> int:
    return x + 1


@checkpoint
def second(x: int) -> int:
    return x * 10


@flow
def replayable(x: int) -> int:
    return second(first(x))


# -- tests ---------------------------------------------------------------------------------


def test_three_checkpoints_exact_tree(traced):
    handle = three_steps.run("a.example")
    assert handle.wait(10) == len("PAGE:A.EXAMPLE")
    assert traced.tree() == [
        "kitaru.flow three_steps [UNSET] kitaru.flow.status=completed",
        "  kitaru.checkpoint fetch [UNSET] kitaru.checkpoint.step=fetch "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=returned",
        "    * kitaru.checkpoint.progress {kitaru.event.data.percent=0.5, "
        "kitaru.event.data.url=a.example, kitaru.event.index=1, kitaru.event.message=Fetching}",
        "  kitaru.checkpoint parse [UNSET] kitaru.checkpoint.step=parse "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=returned",
        "  kitaru.checkpoint store [UNSET] kitaru.checkpoint.step=store "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=returned",
        "    * doc.stored {kitaru.event.data.size=14, kitaru.event.index=1, "
        "kitaru.event.message=stored}",
    ]


def test_trace_and_flow_span_ids_come_from_the_execution_id(traced):
    handle = three_steps.run("b")
    handle.wait(10)
    spans = traced.spans()
    assert {s.trace_id for s in spans} == {handle.exec_id.replace("-", "")}
    assert trace_id_for_execution(handle.exec_id) == handle.exec_id.replace("-", "")
    (root,) = [s for s in spans if s.parent_id is None]
    assert root.span_id == flow_span_id_for_execution(handle.exec_id)
    assert root.attributes["kitaru.execution.id"] == handle.exec_id
    assert root.attributes["kitaru.flow.name"] == "three_steps"
    assert all(s.parent_id == root.span_id for s in spans if s is not root)


def test_every_checkpoint_span_carries_its_identity(traced):
    handle = three_steps.run("c")
    handle.wait(10)
    events = traced.capture.events
    by_cid = {e.correlation_id: e for e in events}
    checkpoint_spans = [s for s in traced.spans() if s.name.startswith("kitaru.checkpoint ")]
    assert len(checkpoint_spans) == 3
    for span in checkpoint_spans:
        cid = span.attributes["kitaru.correlation_id"]
        event = by_cid[cid]
        assert span.attributes["kitaru.checkpoint.name"] == event.checkpoint_name
        assert span.attributes["kitaru.checkpoint.id"] == event.checkpoint_id
        assert span.attributes["kitaru.checkpoint.type"] == "checkpoint"
        assert span.attributes["kitaru.execution.id"] == handle.exec_id
        # Live events carry the span's IDs, and the registry maps the correlation ID to them.
        assert event.trace_id == span.trace_id
        assert event.span_id == span.span_id
        ctx = kitaru.otel.span_context_for_correlation_id(cid)
        assert ctx is not None and format(ctx.span_id, "016x") == span.span_id
        remote = kitaru.otel.span_context_for_event(event)
        assert remote is not None and remote.is_remote
        assert (remote.trace_id, remote.span_id) == (ctx.trace_id, ctx.span_id)
    for event in events:
        assert event.payload["kitaru"]["trace_id"] == handle.exec_id.replace("-", "")


def test_map_of_four_is_four_sibling_spans(traced):
    handle = fan_out.run(4)
    assert handle.wait(10) == [0, 1, 4, 9]
    assert traced.tree() == [
        "kitaru.flow fan_out [UNSET] kitaru.flow.status=completed",
        *[
            f"  kitaru.checkpoint square [UNSET] kitaru.checkpoint.step={step} "
            "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=returned"
            for step in ("square", "square_2", "square_3", "square_4")
        ],
    ]
    cids = {s.attributes["kitaru.correlation_id"] for s in traced.spans() if s.parent_id}
    assert len(cids) == 4


def test_retry_is_a_sibling_span_and_only_the_failed_attempt_is_error(traced):
    attempts.clear()
    handle = retry_once.run()
    assert handle.wait(10) == "ok"
    assert traced.tree() == [
        "kitaru.flow retry_once [UNSET] kitaru.flow.status=completed",
        "  kitaru.checkpoint flaky [ERROR:RuntimeError] kitaru.checkpoint.step=flaky "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=failed error.type=RuntimeError",
        "  kitaru.checkpoint flaky [UNSET] kitaru.checkpoint.step=flaky "
        "kitaru.checkpoint.attempt=2 kitaru.checkpoint.status=returned",
    ]
    from spantree import strings_of

    said = strings_of(traced.spans())
    assert "hunter2" not in said
    assert "first attempt failed" not in said
    a1, a2 = sorted(
        (s for s in traced.spans() if s.parent_id),
        key=lambda s: s.attributes["kitaru.checkpoint.attempt"],
    )
    assert a1.attributes["kitaru.correlation_id"] != a2.attributes["kitaru.correlation_id"]
    assert a1.attributes["kitaru.checkpoint.id"] == a2.attributes["kitaru.checkpoint.id"]


def test_exception_messages_only_on_opt_in(make_traced):
    traced = make_traced(record_exception_messages=True)
    attempts.clear()
    retry_once.run().wait(10)
    failed = next(s for s in traced.spans() if s.status == "ERROR")
    assert failed.description == "RuntimeError: first attempt failed: token=hunter2"
    (name, attrs), *_ = failed.events
    assert name == "exception"
    assert attrs["exception.message"] == "first attempt failed: token=hunter2"
    assert "Traceback" in attrs["exception.stacktrace"]


def test_exception_messages_opt_in_by_environment(make_traced, monkeypatch):
    monkeypatch.setenv("KITARU_OTEL_RECORD_EXCEPTIONS", "true")
    traced = make_traced()
    attempts.clear()
    retry_once.run().wait(10)
    failed = next(s for s in traced.spans() if s.status == "ERROR")
    assert "hunter2" in (failed.description or "")


def test_failing_flow_marks_the_flow_span_error_with_the_type_only(traced):
    @checkpoint
    def boom() -> None:
        raise KeyError("secret-key-name")

    @flow
    def failing() -> None:
        boom()

    handle = failing.run()
    with pytest.raises(KeyError):
        handle.wait(10)
    assert traced.tree() == [
        "kitaru.flow failing [ERROR:KeyError] kitaru.flow.status=failed error.type=KeyError",
        "  kitaru.checkpoint boom [ERROR:KeyError] kitaru.checkpoint.step=boom "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=failed error.type=KeyError",
    ]


def test_cache_hit_is_a_zero_length_span(traced):
    cache_flow.run(21).wait(10)
    second_run = cache_flow.run(21)
    assert second_run.wait(10) == 42
    spans = [s for s in traced.spans() if s.trace_id == second_run.exec_id.replace("-", "")]
    assert render_of(spans) == [
        "kitaru.flow cache_flow [UNSET] kitaru.flow.status=completed",
        "  kitaru.checkpoint cached_double [UNSET] kitaru.checkpoint.step=cached_double "
        "kitaru.checkpoint.status=cached kitaru.cache_hit=True kitaru.replayed=False",
    ]
    hit = next(s for s in spans if s.parent_id)
    assert hit.start == hit.end
    first_run_exec = next(
        s.attributes["kitaru.execution.id"] for s in traced.spans() if s.trace_id != hit.trace_id
    )
    assert hit.attributes["kitaru.cache.source_execution.id"] == first_run_exec


def test_replay_reuses_as_zero_length_spans_and_links_the_original(traced):
    original = replayable.run(1)
    assert original.wait(10) == 20
    replay = kitaru.KitaruClient().executions.replay(original.exec_id, from_="second")
    assert replay.wait(10) == 20
    new_trace = replay.exec_id.replace("-", "")
    spans = [s for s in traced.spans() if s.trace_id == new_trace]
    assert render_of(spans) == [
        "kitaru.flow replayable [UNSET] kitaru.flow.status=completed",
        "  kitaru.checkpoint first [UNSET] kitaru.checkpoint.step=first "
        "kitaru.checkpoint.status=replayed kitaru.cache_hit=False kitaru.replayed=True",
        "  kitaru.checkpoint second [UNSET] kitaru.checkpoint.step=second "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=returned",
    ]
    root = next(s for s in spans if s.parent_id is None)
    assert root.attributes["kitaru.original_execution.id"] == original.exec_id
    assert root.links == [
        (
            original.exec_id.replace("-", ""),
            flow_span_id_for_execution(original.exec_id),
            {"kitaru.link.type": "replay_of"},
        )
    ]
    # The link points at a span that exists: the original's flow span.
    original_root = next(
        s
        for s in traced.spans()
        if s.trace_id == original.exec_id.replace("-", "") and s.parent_id is None
    )
    assert original_root.span_id == flow_span_id_for_execution(original.exec_id)
    reused = next(s for s in spans if s.attributes.get("kitaru.replayed"))
    assert reused.start == reused.end
    assert reused.attributes["kitaru.original_execution.id"] == original.exec_id


def render_of(spans):
    from spantree import render

    return render(spans)


# -- the user's own spans inside a checkpoint ---------------------------------------------


def test_user_spans_inside_a_checkpoint_are_children(traced):
    tracer = traced.provider.get_tracer("user.http")

    @checkpoint
    def call_api() -> str:
        with tracer.start_as_current_span("GET /inventory"):
            pass
        ctx = contextvars.copy_context()
        worker = threading.Thread(target=ctx.run, args=(lambda: tracer.start_span("db").end(),))
        worker.start()
        worker.join()
        return "ok"

    @checkpoint
    async def call_llm() -> str:
        async def one() -> None:
            with tracer.start_as_current_span("POST /v1/chat"):
                await asyncio.sleep(0)

        await asyncio.gather(asyncio.create_task(one()))
        return "ok"

    @flow
    def with_user_spans() -> str:
        call_api()
        return asyncio.run(call_llm())

    with_user_spans.run().wait(10)
    assert traced.tree() == [
        "kitaru.flow with_user_spans [UNSET] kitaru.flow.status=completed",
        "  kitaru.checkpoint call_api [UNSET] kitaru.checkpoint.step=call_api "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=returned",
        "    GET /inventory [UNSET]",
        "    db [UNSET]",
        "  kitaru.checkpoint call_llm [UNSET] kitaru.checkpoint.step=call_llm "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=returned",
        "    POST /v1/chat [UNSET]",
    ]


def test_async_flow_and_checkpoints(traced):
    @checkpoint
    async def aone(x: int) -> int:
        kitaru.progress("thinking")
        return x + 1

    @flow
    async def aflow(x: int) -> list[int]:
        return [await aone(x), *(await aone.map([1, 2]))]

    handle = aflow.run(0)
    assert handle.wait(10) == [1, 2, 3]
    assert traced.tree(events=False) == [
        "kitaru.flow aflow [UNSET] kitaru.flow.status=completed",
        *[
            f"  kitaru.checkpoint aone [UNSET] kitaru.checkpoint.step={step} "
            "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=returned"
            for step in ("aone", "aone_2", "aone_3")
        ],
    ]
    assert all(len(s.events) == 1 for s in traced.spans() if s.parent_id)


# -- a flow called inside someone else's span -----------------------------------------------


def test_flow_called_inside_a_span_links_to_it_by_default(traced):
    tracer = traced.provider.get_tracer("app")
    with tracer.start_as_current_span("POST /reports") as request_span:
        three_steps("link")
    request = request_span.get_span_context()
    spans = traced.spans()
    flow_span = next(s for s in spans if s.name == "kitaru.flow three_steps")
    assert flow_span.parent_id is None
    assert flow_span.trace_id != format(request.trace_id, "032x")
    assert flow_span.links == [
        (
            format(request.trace_id, "032x"),
            format(request.span_id, "016x"),
            {"kitaru.link.type": "caller"},
        )
    ]
    exec_id = flow_span.attributes["kitaru.execution.id"]
    assert flow_span.trace_id == trace_id_for_execution(exec_id)


def test_flow_called_inside_a_span_can_be_its_child(make_traced):
    traced = make_traced(caller_span="parent")
    tracer = traced.provider.get_tracer("app")
    with tracer.start_as_current_span("POST /reports") as request_span:
        three_steps("parent")
    request = request_span.get_span_context()
    lines = traced.tree(events=False)
    assert lines[0] == "POST /reports [UNSET]"
    assert lines[1] == "  kitaru.flow three_steps [UNSET] kitaru.flow.status=completed"
    assert len(lines) == 5
    flow_span = next(s for s in traced.spans() if s.name == "kitaru.flow three_steps")
    assert flow_span.trace_id == format(request.trace_id, "032x")
    # Live events carry the IDs the spans really have.
    events = traced.capture.events
    assert {e.trace_id for e in events} == {format(request.trace_id, "032x")}


def test_invalid_settings_are_usage_errors():
    from kitaru.otel import KitaruOtelObserver

    with pytest.raises(kitaru.KitaruUsageError, match="caller_span"):
        KitaruOtelObserver(caller_span="sibling")
    with pytest.raises(kitaru.KitaruUsageError, match="max_span_events"):
        KitaruOtelObserver(max_span_events=0)
    with pytest.raises(kitaru.KitaruUsageError, match="event_attributes"):
        KitaruOtelObserver(event_attributes="no")  # type: ignore[arg-type]


def test_invalid_environment_names_the_variable(monkeypatch):
    from kitaru.otel import KitaruOtelObserver

    monkeypatch.setenv("KITARU_OTEL_MAX_SPAN_EVENTS", "lots")
    with pytest.raises(kitaru.KitaruUsageError, match="KITARU_OTEL_MAX_SPAN_EVENTS"):
        KitaruOtelObserver()
