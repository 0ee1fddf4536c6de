"""Adapter usage lands in the durable record per checkpoint, and replays reuse it at no cost."""

from __future__ import annotations

from typing import Any

import kitaru
from conftest import require_framework
from kitaru.client import KitaruClient

require_framework("pydantic_ai", "pydantic-ai")

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import ModelResponse, TextPart  # noqa: E402
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402
from pydantic_ai.usage import RequestUsage  # noqa: E402

from kitaru.adapters.pydantic_ai import KitaruAgent  # noqa: E402

BODIES: list[str] = []


def scripted(model: str, inp: int, out: int, cached: int) -> KitaruAgent[None, str]:
    def answer(messages: list[Any], info: AgentInfo) -> ModelResponse:
        BODIES.append(model)
        usage = RequestUsage(input_tokens=inp, output_tokens=out, cache_read_tokens=cached)
        return ModelResponse(parts=[TextPart(model)], usage=usage, model_name=model)

    return KitaruAgent(Agent(FunctionModel(answer, model_name=model), name=model.replace("-", "")))


PLAN = scripted("plan-model", 120, 30, 20)
WRITE = scripted("write-model", 40, 8, 0)


@kitaru.flow
def two_calls(topic: str) -> str:
    return PLAN.run_sync(topic).output + "+" + WRITE.run_sync(topic).output


def _usage(record: Any, step: str) -> list[tuple[Any, ...]]:
    (cp,) = [c for c in record.checkpoints if c.name == step]
    return [
        (u.model, u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reused) for u in cp.usage
    ]


def test_adapter_usage_is_recorded_per_checkpoint_and_reused_on_replay() -> None:
    BODIES.clear()
    handle = two_calls.run("otters")
    assert handle.wait() == "plan-model+write-model"
    client = KitaruClient()
    record = client.executions.get(handle.exec_id)
    assert _usage(record, "planmodel_pydantic_ai") == [("plan-model", 120, 30, 20, False)]
    assert _usage(record, "writemodel_pydantic_ai") == [("write-model", 40, 8, 0, False)]
    summary = record.usage_summary()
    assert summary["total"]["total_tokens"] == 120 + 30 + 40 + 8
    assert sum(v["total_tokens"] for v in summary["by_checkpoint"].values()) == 198

    BODIES.clear()
    again = client.executions.replay(handle.exec_id, from_="writemodel_pydantic_ai")
    assert again.wait() == "plan-model+write-model"
    assert BODIES == ["write-model"]  # only the second call ran
    replayed = client.executions.get(again.exec_id)
    assert _usage(replayed, "planmodel_pydantic_ai") == [("plan-model", 120, 30, 20, True)]
    assert _usage(replayed, "writemodel_pydantic_ai") == [("write-model", 40, 8, 0, False)]
    s2 = replayed.usage_summary()
    assert s2["total"]["reused_input_tokens"] == 120
    assert s2["total"]["input_tokens"] == 160
