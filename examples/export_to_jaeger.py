"""Export a flow's trace over OTLP, for example to Jaeger, and print its trace ID.

``kitaru.otel.configure()`` reads the standard OpenTelemetry variables: with
``OTEL_EXPORTER_OTLP_ENDPOINT`` set (the Jaeger of ``collector-config/jaeger.yaml`` takes OTLP/HTTP
on port 14318, the Collector of ``collector-config/otelcol.yaml`` on 4318) every flow execution
becomes one trace and every checkpoint execution one span in it, with progress events as span
events. Without it the example still runs; nothing is exported.

The trace ID is a pure function of the execution ID (a UUID execution ID is its own trace ID),
so you can paste the execution ID into Jaeger's search. With ``KITARU_TRACE_URL_TEMPLATE`` set
(for example ``http://127.0.0.1:16686/trace/{trace_id}``) the example prints the link.

Run it::

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318 python examples/export_to_jaeger.py
"""

from __future__ import annotations

import os
import time

import kitaru
import kitaru.otel
from kitaru import KitaruClient, checkpoint, flow


@checkpoint
def retrieve(query: str) -> list[str]:
    kitaru.progress("Searching the index", percent=0.5, query_chars=len(query))
    time.sleep(0.05)
    return [f"doc-{i}" for i in range(3)]


@checkpoint
def answer(docs: list[str]) -> str:
    kitaru.progress("Drafting the answer", percent=0.5, documents=len(docs))
    return f"answer from {len(docs)} documents"


@flow
def rag(query: str) -> str:
    return answer(retrieve(query))


def main() -> None:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    kitaru.otel.configure(service_name="kitaru-example")
    handle = rag.run("what do otters eat?")
    print(f"result: {handle.wait()}")
    trace_id = kitaru.otel.trace_id_for_execution(handle.exec_id)
    print(f"execution {handle.exec_id}")
    print(f"trace ID {trace_id}")
    template = os.environ.get("KITARU_TRACE_URL_TEMPLATE", "").strip()
    if template:
        print(f"trace link {template.replace('{trace_id}', trace_id)}")
    checkpoints = KitaruClient().executions.get(handle.exec_id).checkpoints
    print(f"spans: 1 flow + {len(checkpoints)} checkpoints")
    # Send what is still batched now (bounded: a collector that is down costs about a second).
    done = kitaru.otel.shutdown(timeout=5.0)
    if endpoint:
        # OpenTelemetry logs an export that failed (a collector that is down) on stderr.
        print(f"spans sent to {endpoint}" + ("" if done else " (shutdown timed out)"))
    else:
        print("OTEL_EXPORTER_OTLP_ENDPOINT is not set: nothing was exported")


if __name__ == "__main__":
    main()
