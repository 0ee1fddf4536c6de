"""``kitaru.log`` metadata and ``kitaru.record_usage`` on the checkpoint and flow spans."""

from __future__ import annotations

from typing import Any

import kitaru
from kitaru import checkpoint, flow


@checkpoint
def scored() -> int:
    kitaru.log(score=0.9, model="m", tags=["a", "b"], nothing=None)
    kitaru.record_usage("m", input_tokens=12, output_tokens=3, cost_usd=0.5)
    kitaru.record_usage("n", input_tokens=8, output_tokens=1)
    return 1


@flow
def meta_flow() -> int:
    kitaru.log(run_label="nightly")
    return scored()


def test_metadata_becomes_span_attributes(traced: Any) -> None:
    meta_flow()
    spans = {s.name: s for s in traced.exporter.get_finished_spans()}
    cp = dict(spans["kitaru.checkpoint scored"].attributes or {})
    assert cp["kitaru.meta.score"] == 0.9
    assert cp["kitaru.meta.model"] == "m"
    # Only primitive values become attributes; lists and None stay in the record.
    assert "kitaru.meta.tags" not in cp and "kitaru.meta.nothing" not in cp
    assert cp["kitaru.usage.input_tokens"] == 20
    assert cp["kitaru.usage.output_tokens"] == 4
    assert cp["kitaru.usage.cost_usd"] == 0.5
    fl = dict(spans["kitaru.flow meta_flow"].attributes or {})
    assert fl["kitaru.meta.run_label"] == "nightly"
    assert "kitaru.meta.score" not in fl
