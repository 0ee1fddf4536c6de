"""The flow of ``make demo``: a research digest that fans out over four sources.

``plan`` picks the sources, ``read_source.map(...)`` reads four of them concurrently (one live
lane each, with progress), ``summarize`` writes the digest. The flow is slow on purpose (about
seven seconds) so that ``kitaru events EXEC_ID`` has something to draw.

When the flow ends it prints its OpenTelemetry trace as a tree (spans kept in memory) and the
trace ID. With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set the spans are exported there too (Jaeger,
a collector); with ``KITARU_TRACE_URL_TEMPLATE`` set it prints the trace's link.

Run by ``scripts/demo.sh`` against a server it started, or alone: ``python examples/demo.py``
(uses ``KITARU_SERVER_URL`` when set, else starts a kitaru server in this process).

Options: ``--exec-id-file PATH`` writes the execution ID there as soon as the flow starts;
``--speed X`` scales every pause (``0.2`` is five times faster).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import kitaru
import kitaru.otel
from _support import kitaru_server, trace_tree
from kitaru import KitaruClient, checkpoint, flow

SPEED = 1.0
SOURCES = ["field notes", "river survey", "museum archive", "volunteer reports"]


def pause(seconds: float) -> None:
    time.sleep(seconds * SPEED)


@checkpoint
def plan(topic: str) -> list[str]:
    kitaru.progress(f"Choosing sources about {topic}", percent=0.3)
    pause(0.5)
    kitaru.progress(f"Picked {len(SOURCES)} sources", percent=1.0, sources=len(SOURCES))
    pause(0.3)
    return SOURCES


@checkpoint
def read_source(source: str) -> str:
    pages = 6
    step = 0.35 + 0.1 * (len(source) % 4)  # sources read at different speeds
    for page in range(1, pages + 1):
        pause(step)
        kitaru.progress(f"{source}: page {page} of {pages}", percent=page / pages)
    words = 120 * len(source)
    kitaru.events.publish("demo.source.read", {"words": words}, message=f"{words} words")
    return f"{source}: {words} words"


@checkpoint
def summarize(notes: list[str]) -> str:
    for part, what in enumerate(["Comparing notes", "Drafting", "Polishing"], start=1):
        kitaru.progress(what, percent=part / 3)
        pause(0.5)
    return f"Digest of {len(notes)} sources"


@flow
def research_digest(topic: str) -> str:
    sources = plan(topic)
    notes = read_source.map(sources)
    return summarize(notes)


def tracer_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    """Spans kept in memory for the tree, and exported over OTLP when the variables say so."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # No arguments: the exporter reads the standard OTEL_EXPORTER_OTLP_* variables.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider, memory


def main() -> int:
    global SPEED
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exec-id-file", type=Path)
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    SPEED = args.speed

    with kitaru_server():
        provider, memory = tracer_provider()
        kitaru.otel.configure(tracer_provider=provider)
        handle = research_digest.run("otters")
        if args.exec_id_file is not None:
            partial = args.exec_id_file.with_suffix(".partial")
            partial.write_text(handle.exec_id)
            partial.replace(args.exec_id_file)  # the reader never sees half an ID
        print(f"execution {handle.exec_id}", flush=True)
        try:
            print(f"result: {handle.wait(timeout=120)}")
        except Exception as exc:
            print(f"the flow failed: {type(exc).__name__}")
        status = KitaruClient().executions.get(handle.exec_id).status

    kitaru.otel.shutdown()
    provider.force_flush()
    print()
    print("\n".join(trace_tree(memory.get_finished_spans())))
    trace_id = kitaru.otel.trace_id_for_execution(handle.exec_id)
    print()
    print(f"execution {handle.exec_id} {status}")
    print(f"trace ID  {trace_id}")
    template = os.environ.get("KITARU_TRACE_URL_TEMPLATE", "").strip()
    if template:
        print(f"trace     {template.replace('{trace_id}', trace_id)}")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if endpoint:
        print(f"spans sent over OTLP to {endpoint}")
    provider.shutdown()
    return 0 if status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
