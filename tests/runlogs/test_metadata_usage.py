"""``kitaru.log`` metadata and ``kitaru.record_usage`` cost per checkpoint (local database mode)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

import kitaru
from kitaru import KitaruClient, checkpoint, flow
from kitaru.cli import main
from kitaru.exceptions import KitaruContextError, KitaruUsageError

# -- metadata ---------------------------------------------------------------------------------


@checkpoint
def judge() -> float:
    kitaru.log(score=0.9, model="m")
    kitaru.log(score=0.95, notes={"tries": [1, 2]})  # repeated calls merge
    return 0.95


@flow
def judged() -> float:
    kitaru.log(dataset="dev")
    return judge()


def test_metadata_in_record_and_executions_get(capsys: pytest.CaptureFixture[str]) -> None:
    handle = judged.run()
    handle.wait()
    record = KitaruClient().executions.get(handle.exec_id)
    assert record.metadata == {"dataset": "dev"}
    attempt = record.checkpoint("judge").attempts[0]
    assert attempt.metadata == {"score": 0.95, "model": "m", "notes": {"tries": [1, 2]}}

    capsys.readouterr()
    assert main(["executions", "get", handle.exec_id]) == 0
    out = capsys.readouterr().out
    assert "(flow)  dataset=dev" in out
    assert 'judge  score=0.95  model=m  notes={"tries":[1,2]}' in out

    assert main(["executions", "get", handle.exec_id, "--json"]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data["metadata"] == {"dataset": "dev"}
    assert data["checkpoints"][0]["attempts"][0]["metadata"]["score"] == 0.95


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"x": object()}, "'x'"),
        ({"ok": 1, "bad": {"inner": {1, 2}}}, "'bad'"),
        ({"nan": float("nan")}, "'nan'"),
        ({"keys": {1: "a"}}, "'keys'"),
    ],
)
def test_not_json_safe_is_a_clear_error(fields: dict[str, Any], named: str) -> None:
    seen: list[BaseException] = []

    @checkpoint
    def bad() -> int:
        try:
            kitaru.log(**fields)
        except KitaruUsageError as exc:
            seen.append(exc)
        return 1

    @flow
    def f() -> int:
        return bad()

    f()
    assert len(seen) == 1
    assert named in str(seen[0]) and "JSON-safe" in str(seen[0])


def test_log_and_record_usage_outside_a_flow() -> None:
    with pytest.raises(KitaruContextError, match="inside a @flow"):
        kitaru.log(score=1)
    with pytest.raises(KitaruContextError, match="inside a @flow"):
        kitaru.record_usage("m", input_tokens=1)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"input_tokens": -1}, "input_tokens"),
        ({"output_tokens": 1.5}, "output_tokens"),
        ({"cache_read_tokens": True}, "cache_read_tokens"),
        ({"cost_usd": "free"}, "cost_usd"),
        ({"cost_usd": float("inf")}, "cost_usd"),
    ],
)
def test_record_usage_checks_its_arguments(kwargs: dict[str, Any], named: str) -> None:
    @flow
    def f() -> None:
        kitaru.record_usage("m", **kwargs)

    with pytest.raises(KitaruUsageError, match=named):
        f()


# -- cost per checkpoint: a scripted fake adapter -----------------------------------------------

SCRIPT = [
    {"model": "fake-large", "input_tokens": 120, "output_tokens": 30, "cost_usd": 0.006},
    {
        "model": "fake-small",
        "input_tokens": 40,
        "output_tokens": 8,
        "cache_read_tokens": 16,
        "cost_usd": 0.0004,
    },
]


def fake_adapter_call(n: int) -> str:
    """What an adapter does after a model call: report the usage through one function."""
    usage = SCRIPT[n]
    kitaru.record_usage(
        usage["model"],
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cache_read_tokens=usage.get("cache_read_tokens", 0),
        cost_usd=usage["cost_usd"],
    )
    return f"answer {n}"


@checkpoint
def plan() -> str:
    return fake_adapter_call(0)


@checkpoint
def write(plan_text: str) -> str:
    return fake_adapter_call(1) + " after " + plan_text


@flow
def agent() -> str:
    return write(plan())


def test_usage_per_checkpoint_sums_to_the_execution_and_replay_reuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = KitaruClient()
    first = agent.run()
    first.wait()
    record = client.executions.get(first.exec_id)
    plan_usage = record.checkpoint("plan").usage
    write_usage = record.checkpoint("write").usage
    assert [
        (u.model, u.input_tokens, u.output_tokens, u.cost_usd, u.reused) for u in plan_usage
    ] == [("fake-large", 120, 30, 0.006, False)]
    assert [(u.model, u.cache_read_tokens, u.reused) for u in write_usage] == [
        ("fake-small", 16, False)
    ]
    summary = record.usage_summary()
    per_cp = summary["by_checkpoint"]
    assert sum(v["total_tokens"] for v in per_cp.values()) == summary["total"]["total_tokens"]
    assert summary["total"]["total_tokens"] == 120 + 30 + 40 + 8
    assert summary["total"]["cost_usd"] == pytest.approx(0.0064)
    assert summary["total"]["reused_input_tokens"] == 0

    replay = client.executions.replay(first.exec_id, from_="write")
    replay.wait()
    again = client.executions.get(replay.exec_id)
    reused = again.checkpoint("plan")
    assert reused.status == "replayed"
    assert [
        (u.model, u.input_tokens, u.output_tokens, u.cost_usd, u.reused, u.reused_cost_usd)
        for u in reused.usage
    ] == [("fake-large", 120, 30, 0.0, True, 0.006)]
    rerun = again.checkpoint("write")
    assert [(u.input_tokens, u.cost_usd, u.reused) for u in rerun.usage] == [(40, 0.0004, False)]
    s2 = again.usage_summary()
    assert sum(v["total_tokens"] for v in s2["by_checkpoint"].values()) == 198
    assert s2["total"]["total_tokens"] == 198
    assert s2["total"]["reused_input_tokens"] == 120
    assert s2["total"]["reused_output_tokens"] == 30
    assert s2["total"]["cost_usd"] == pytest.approx(0.0004)  # only the re-run cost anything
    assert s2["total"]["reused_cost_usd"] == pytest.approx(0.006)

    capsys.readouterr()
    assert main(["executions", "get", replay.exec_id]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("  plan ")]
    assert rows == [["plan", "fake-large", "1", "120", "30", "0", "0.0000", "yes", "(0.0060)"]]
    assert "incurred cost 0.0004 USD" in out
    assert main(["executions", "get", replay.exec_id, "--json"]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data["usage_summary"]["total"]["reused_input_tokens"] == 120
    assert data["checkpoints"][0]["usage"][0]["reused"] is True


def test_retried_attempts_count_separately() -> None:
    calls = {"n": 0}

    @checkpoint(retries=1)
    def flaky() -> int:
        calls["n"] += 1
        kitaru.record_usage("m", input_tokens=10, output_tokens=1, cost_usd=0.01)
        kitaru.record_usage("m", input_tokens=5, output_tokens=1, cost_usd=0.01)
        if calls["n"] == 1:
            raise ValueError("retry me")
        return 1

    @flow
    def f() -> int:
        return flaky()

    handle = f.run()
    handle.wait()
    cp = KitaruClient().executions.get(handle.exec_id).checkpoint("flaky")
    assert [(u.attempt, u.input_tokens, u.calls) for u in cp.usage] == [(1, 15, 2), (2, 15, 2)]
    total = KitaruClient().executions.get(handle.exec_id).usage_summary()["total"]
    assert total["input_tokens"] == 30 and total["cost_usd"] == pytest.approx(0.04)


def test_cache_hit_reports_reused_tokens() -> None:
    @checkpoint(cache=True)
    def cached_call(q: str) -> str:
        kitaru.record_usage("m", input_tokens=7, output_tokens=2, cost_usd=0.2)
        return q

    @flow
    def f() -> str:
        return cached_call("same")

    client = KitaruClient()
    a = f.run()
    a.wait()
    b = f.run()
    b.wait()
    hit = client.executions.get(b.exec_id).checkpoint("cached_call")
    assert hit.status == "cached"
    assert [(u.input_tokens, u.cost_usd, u.reused, u.reused_cost_usd) for u in hit.usage] == [
        (7, 0.0, True, 0.2)
    ]


def test_first_and_later_reports_add_up_the_same_way() -> None:
    @checkpoint
    def calls_models() -> int:
        kitaru.record_usage("a", input_tokens=3, cache_read_tokens=1)  # cost not known yet
        kitaru.record_usage("a", output_tokens=2, cost_usd=0.5)
        kitaru.record_usage("b", input_tokens=4)
        return 1

    @flow
    def f() -> int:
        return calls_models()

    handle = f.run()
    handle.wait()
    cp = KitaruClient().executions.get(handle.exec_id).checkpoint("calls_models")
    got = {
        u.model: (
            u.attempt,
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cost_usd,
            u.calls,
        )
        for u in cp.usage
    }
    assert got == {"a": (1, 3, 2, 1, 0.5, 2), "b": (1, 4, 0, 0, None, 1)}
