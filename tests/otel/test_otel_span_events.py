"""Live events as span events: bounded attributes, per-span cap, and the privacy opt-out."""

from __future__ import annotations

import enum

import kitaru
from kitaru import checkpoint, flow


class Color(enum.Enum):
    RED = "red"


@checkpoint
def chatty(n: int) -> int:
    for i in range(n):
        kitaru.progress(f"step {i}", percent=(i + 1) / n, i=i)
    return n


@flow
def chatty_flow(n: int) -> int:
    return chatty(n)


@checkpoint
def odd_fields() -> None:
    kitaru.progress(
        "odd",
        long="x" * 1000,
        nested={"a": 1},
        items=[1, 2],
        color=Color.RED,
        flag=True,
        big=2**70,
        none=None,
    )
    kitaru.events.publish("custom.kind", {"ok": 1}, correlation_id="my-lane")


@flow
def odd_flow() -> None:
    odd_fields()


def _checkpoint_span(traced):
    (span,) = [s for s in traced.spans() if s.parent_id]
    return span


def test_events_beyond_the_cap_keep_the_first_and_the_latest(make_traced):
    traced = make_traced(max_span_events=5)
    chatty_flow.run(100).wait(10)
    span = _checkpoint_span(traced)
    indexes = [attrs["kitaru.event.index"] for _, attrs in span.events]
    assert indexes == [1, 2, 3, 4, 100]
    assert span.attributes["kitaru.events.dropped"] == 95
    assert span.events[-1][1]["kitaru.event.message"] == "step 99"
    # Lifecycle is never the part dropped: the span still ends with its status.
    assert span.attributes["kitaru.checkpoint.status"] == "returned"


def test_under_the_cap_nothing_is_dropped(make_traced):
    traced = make_traced(max_span_events=5)
    chatty_flow.run(5).wait(10)
    span = _checkpoint_span(traced)
    assert [a["kitaru.event.index"] for _, a in span.events] == [1, 2, 3, 4, 5]
    assert "kitaru.events.dropped" not in span.attributes


def test_cap_by_environment(make_traced, monkeypatch):
    monkeypatch.setenv("KITARU_OTEL_MAX_SPAN_EVENTS", "2")
    traced = make_traced()
    chatty_flow.run(10).wait(10)
    span = _checkpoint_span(traced)
    assert [a["kitaru.event.index"] for _, a in span.events] == [1, 10]
    assert span.attributes["kitaru.events.dropped"] == 8


def test_attributes_are_bounded_primitives(make_traced):
    traced = make_traced(max_value_length=16)
    odd_flow.run().wait(10)
    span = _checkpoint_span(traced)
    (progress_name, progress), (custom_name, custom) = span.events
    assert progress_name == "kitaru.checkpoint.progress"
    assert progress == {
        "kitaru.event.index": 1,
        "kitaru.event.message": "odd",
        "kitaru.event.data.long": "x" * 15 + "…",
        "kitaru.event.data.color": "red",  # an enum by its value
        "kitaru.event.data.flag": True,
        "kitaru.event.data_dropped": 4,  # nested, items, big (beyond int64), none
    }
    assert custom_name == "custom.kind"
    assert custom == {
        "kitaru.event.index": 2,
        "kitaru.correlation_id": "my-lane",
        "kitaru.event.data.ok": 1,
    }


def test_at_most_n_data_fields(make_traced):
    traced = make_traced(max_event_fields=3)

    @checkpoint
    def many() -> None:
        kitaru.progress("many", **{f"k{i}": i for i in range(10)})

    @flow
    def many_flow() -> None:
        many()

    many_flow.run().wait(10)
    ((_, attrs),) = _checkpoint_span(traced).events
    data = {k: v for k, v in attrs.items() if k.startswith("kitaru.event.data.")}
    assert data == {"kitaru.event.data.k0": 0, "kitaru.event.data.k1": 1, "kitaru.event.data.k2": 2}
    assert attrs["kitaru.event.data_dropped"] == 7


def test_event_attributes_off_keeps_only_kind_and_index(make_traced):
    traced = make_traced(event_attributes=False)
    odd_flow.run().wait(10)
    span = _checkpoint_span(traced)
    assert span.events == [
        ("kitaru.checkpoint.progress", {"kitaru.event.index": 1}),
        ("custom.kind", {"kitaru.event.index": 2, "kitaru.correlation_id": "my-lane"}),
    ]


def test_event_attributes_off_by_environment(make_traced, monkeypatch):
    monkeypatch.setenv("KITARU_OTEL_EVENT_ATTRIBUTES", "false")
    traced = make_traced()
    chatty_flow.run(1).wait(10)
    assert _checkpoint_span(traced).events == [
        ("kitaru.checkpoint.progress", {"kitaru.event.index": 1})
    ]


def test_events_from_threads_sharing_the_scope_are_all_recorded(make_traced):
    import contextvars
    import threading

    traced = make_traced(max_span_events=120)  # the SDK itself keeps at most 128

    @checkpoint
    def parallel() -> None:
        def work(k: int) -> None:
            for i in range(25):
                kitaru.progress("w", k=k, i=i)

        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(work, k))
            for k in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    @flow
    def parallel_flow() -> None:
        parallel()

    parallel_flow.run().wait(10)
    span = _checkpoint_span(traced)
    indexes = sorted(a["kitaru.event.index"] for _, a in span.events)
    assert indexes == list(range(1, 101))
