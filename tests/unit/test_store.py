"""The embedded SQLite store under concurrent threads and processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import kitaru
from kitaru import checkpoint, flow


def test_kitaru_home_holds_the_database(tmp_path, monkeypatch):
    home = tmp_path / "custom-home"
    monkeypatch.setenv("KITARU_HOME", str(home))
    from kitaru.runtime import reset_runtime

    reset_runtime()

    @flow
    def f() -> int:
        return 1

    assert f() == 1
    assert (home / "kitaru.db").exists()
    assert kitaru.KitaruClient().executions.list()[0].status == "completed"


def test_concurrent_fanout_threads_write_consistently():
    @checkpoint
    def item(i: int) -> dict:
        return {"i": i}

    @flow
    def wide(n: int) -> int:
        return len(item.map(range(n), max_concurrency=16))

    handles = [wide.run(40) for _ in range(4)]
    assert [h.wait(timeout=60) for h in handles] == [40] * 4
    client = kitaru.KitaruClient()
    for h in handles:
        record = client.executions.get(h.exec_id)
        assert record.status == "completed"
        assert len(record.checkpoints) == 40
        assert sorted(c.load_output()["i"] for c in record.checkpoints) == list(range(40))


SCRIPT = textwrap.dedent(
    """
    import sys
    from kitaru import checkpoint, flow

    @checkpoint
    def item(i: int) -> int:
        return i

    @flow
    def proc_flow(tag: str) -> int:
        return sum(item.map(range(25)))

    for _ in range(3):
        assert proc_flow(sys.argv[1]) == 300
    print("ok")
    """
)


def test_two_processes_share_one_file(tmp_path, monkeypatch):
    home = tmp_path / "shared-home"
    monkeypatch.setenv("KITARU_HOME", str(home))
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for tag in ("a", "b")
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        assert out.decode().strip() == "ok"
    from kitaru.runtime import reset_runtime

    reset_runtime()
    runs = kitaru.KitaruClient().executions.list(flow="proc_flow", limit=100)
    assert len(runs) == 6
    client = kitaru.KitaruClient()
    for run in runs:
        record = client.executions.get(run.exec_id)
        assert record.status == "completed"
        assert len(record.checkpoints) == 25


def test_client_errors():
    client = kitaru.KitaruClient()
    import pytest

    with pytest.raises(kitaru.KitaruStateError, match="no execution"):
        client.executions.get("00000000-0000-4000-8000-000000000000")
    with pytest.raises(kitaru.KitaruUsageError, match="exec_id"):
        client.executions.get(" ")
    with pytest.raises(kitaru.KitaruUsageError, match="status"):
        client.executions.list(status="done")
    with pytest.raises(kitaru.KitaruUsageError, match="limit"):
        client.executions.list(limit=0)


def test_watching_in_local_mode_raises_before_any_lookup():
    import pytest

    client = kitaru.KitaruClient()
    with pytest.raises(kitaru.KitaruFeatureNotAvailableError, match="server"):
        client.executions.events("does-not-exist")
    with pytest.raises(kitaru.KitaruFeatureNotAvailableError):
        client.executions.aevents("does-not-exist")
