"""Token and cost metrics: per checkpoint name and model, and GenAI ``gen_ai.client.token.usage``.

Two feeds, each from one place (see ``docs/opentelemetry.md``, "Token and cost metrics"):

* :class:`UsageMetrics` (on the bridge's meter, like the checkpoint duration) reads what
  ``kitaru.record_usage`` recorded on a checkpoint execution when it ends and adds it to
  ``kitaru.usage.tokens`` (counter, ``{token}``; Prometheus ``kitaru_usage_tokens_total``) per
  ``kitaru.flow.name``, ``kitaru.checkpoint.name``, ``gen_ai.request.model`` and
  ``gen_ai.token.type`` (``input`` or ``output``), and to ``kitaru.usage.cost_usd`` (counter,
  US dollars; ``kitaru_usage_cost_usd_total``) per the same names and model. Only incurred work
  counts: a cached or replayed checkpoint reuses tokens and costs nothing, so it adds nothing.
* :func:`record_chat_tokens` records the OpenTelemetry GenAI semantic conventions' client
  histogram ``gen_ai.client.token.usage`` (``{token}``; ``gen_ai_client_token_usage_*``) once
  per model request and token type, with ``gen_ai.operation.name``, ``gen_ai.provider.name``,
  ``gen_ai.request.model`` and ``gen_ai.response.model``. The adapters call it from their
  ``chat`` spans; it uses the meter provider kitaru built, else the global one.

Neither ever raises into the flow: a failure is logged at DEBUG.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import Histogram, Meter, MeterProvider

from kitaru.otel import _attributes as attr

if TYPE_CHECKING:
    from kitaru.runtime._scope import CheckpointScope

__all__ = ["TOKEN_BUCKETS", "UsageMetrics", "record_chat_tokens"]

logger = logging.getLogger("kitaru.otel")

TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
"""Bucket bounds of ``gen_ai.client.token.usage``, as the GenAI semantic conventions advise."""

TOKEN_USAGE = "gen_ai.client.token.usage"
TOKEN_TYPE = "gen_ai.token.type"
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"


class UsageMetrics:
    """The per-checkpoint token and cost counters of one meter."""

    def __init__(self, meter: Meter) -> None:
        self.tokens = meter.create_counter(
            "kitaru.usage.tokens",
            unit="{token}",
            description="Model tokens checkpoint executions used, per checkpoint name and model",
        )
        self.cost = meter.create_counter(
            "kitaru.usage.cost_usd",
            unit="{USD}",
            description="What checkpoint executions' model calls cost, in US dollars",
        )

    def checkpoint_ended(self, scope: CheckpointScope) -> None:
        """Add what ``kitaru.record_usage`` recorded on ``scope`` (if anything)."""
        usage = scope.usage
        if not usage:
            return
        for record in list(usage.values()):
            base: dict[str, Any] = {
                attr.FLOW_NAME: scope.flow_name,
                attr.CHECKPOINT_NAME: scope.name,
                REQUEST_MODEL: record.model,
            }
            if record.input_tokens:
                self.tokens.add(record.input_tokens, {**base, TOKEN_TYPE: "input"})
            if record.output_tokens:
                self.tokens.add(record.output_tokens, {**base, TOKEN_TYPE: "output"})
            if record.cost_usd:
                self.cost.add(record.cost_usd, base)


_lock = threading.Lock()
_histograms: dict[int, tuple[MeterProvider, Histogram]] = {}


def _histogram() -> Histogram:
    from kitaru.otel import _metric_setup

    provider = _metric_setup.owned_meter_provider() or metrics.get_meter_provider()
    found = _histograms.get(id(provider))
    if found is not None and found[0] is provider:
        return found[1]
    with _lock:
        histogram = provider.get_meter(attr.TRACER_NAME).create_histogram(
            TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
        )
        # Keyed by identity with the provider kept alive next to it, so an id is never reused
        # by another provider while its entry exists; providers are few (one per configure()).
        _histograms[id(provider)] = (provider, histogram)
        return histogram


def record_chat_tokens(
    *,
    provider: str,
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    operation: str = "chat",
) -> None:
    """Record one model request's tokens on ``gen_ai.client.token.usage`` (never raises)."""
    try:
        attributes: dict[str, Any] = {OPERATION: operation, PROVIDER: provider}
        if model:
            attributes[REQUEST_MODEL] = model
            attributes[RESPONSE_MODEL] = model
        histogram = _histogram()
        histogram.record(input_tokens, {**attributes, TOKEN_TYPE: "input"})
        histogram.record(output_tokens, {**attributes, TOKEN_TYPE: "output"})
    except Exception:  # telemetry never breaks the run
        logger.debug("kitaru: could not record gen_ai.client.token.usage", exc_info=True)
