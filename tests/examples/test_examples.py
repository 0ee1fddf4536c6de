"""Every example runs as a script and prints what its header comment promises."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

# Examples that watch live events start a server: skip without it, fail in CI.
from _support import require_server_deps as require_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def run(
    script: str, *args: str, timeout: float = 90, **env: str
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)  # KITARU_*/OTEL_* already cleaned, KITARU_HOME per test
    full_env.update(env)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def exec_id_of(stdout: str) -> str:
    found = re.search(rf"^execution ({UUID})", stdout, re.MULTILINE)
    assert found, stdout
    return found.group(1)


def test_every_example_has_a_test_and_a_header() -> None:
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert len(scripts) >= 7
    tests = [name for name in globals() if name.startswith("test_")]
    untested = [s for s in scripts if not any(t.startswith(f"test_{s[:-3]}") for t in tests)]
    assert untested == []
    for name in scripts:
        text = (EXAMPLES / name).read_text()
        assert text.startswith('"""'), f"{name} needs a header docstring"
        assert "Run" in text.split('"""')[1], f"{name}'s header should say how to run it"


@pytest.mark.server
def test_quickstart() -> None:
    require_server()
    out = run("quickstart.py").stdout
    exec_id_of(out)
    lines = out.splitlines()
    assert lines[1:] == [
        "kitaru.checkpoint.progress build_report Collecting notes",
        "kitaru.checkpoint.progress build_report Writing draft",
        "result: Report: Notes about otters",
        "status: completed",
    ]


@pytest.mark.server
def test_custom_events() -> None:
    require_server()
    out = run("custom_events.py").stdout
    lines = out.splitlines()[1:]
    assert lines == [
        "training.batch.completed #1 batch=1 rows=400 loss=1.0 "
        "message='Batch 1 of 3 finished' checkpoint=train_model",
        "training.batch.completed #2 batch=2 rows=400 loss=0.5 "
        "message='Batch 2 of 3 finished' checkpoint=train_model",
        "training.batch.completed #3 batch=3 rows=400 loss=0.333 "
        "message='Batch 3 of 3 finished' checkpoint=train_model",
        "kitaru.checkpoint.returned #4 checkpoint=train_model",
        "result: model-ready",
    ]


@pytest.mark.server
def test_fanout() -> None:
    require_server()
    out = run("fanout.py").stdout
    lanes = re.findall(
        r"^lane (\S+)\s+(\S+)\s+events=(\d+) percent=(\S+)\s+last=(.*) id=(\S+)$", out, re.M
    )
    fetches = sorted(lane for lane in lanes if lane[0].startswith("fetch_page"))
    assert [lane[0] for lane in fetches] == [
        "fetch_page",
        "fetch_page_2",
        "fetch_page_3",
        "fetch_page_4",
    ]
    for _, status, events, percent, last, corr in fetches:
        assert (status, events, percent) == ("returned", "5", "100%")
        assert re.fullmatch(r"'\w+: part 3 of 3'", last)
        assert re.fullmatch(r"kitaru\.checkpoint:fetch_page:[0-9a-f]{32}", corr)
    assert sorted(last.split(":")[0].strip("'") for *_, last, _ in fetches) == sorted(
        ["alpha", "beta", "gamma", "delta"]
    )
    assert "lanes: 5 correlation IDs: 5" in out
    assert "result: 19" in out


@pytest.mark.server
def test_dashboard_consumer() -> None:
    require_server()
    out = run("dashboard_consumer.py").stdout
    pushes = [line for line in out.splitlines() if line.startswith("push: ")]
    # Every shard lane is pushed when it starts, at each quarter, and when it ends.
    for shard in ("index_shard", "index_shard_2", "index_shard_3"):
        mine = [p.split(" | ")[0].removeprefix("push: ") for p in pushes if p.split()[1] == shard]
        end = "failed" if shard == "index_shard_3" else "returned"
        assert mine == [
            f"{shard} running",
            f"{shard} running 25%",
            f"{shard} running 50%",
            f"{shard} running 75%",
            f"{shard} running 100%",
            f"{shard} {end} 100%",
        ], mine
    assert pushes[-1] == "push: merge returned | running=0 returned=3 failed=1"
    assert "lane index_shard_3 failed 100% (RuntimeError) events=6" in out
    assert re.search(r"^snapshot: cursor=\S+ lanes=4$", out, re.M)
    assert "snapshot restores the same lanes: True" in out
    assert "result: 10" in out
    assert "corrupt" not in out  # the exception's text never travels with live events


def test_export_to_jaeger_without_a_collector() -> None:
    out = run("export_to_jaeger.py").stdout
    exec_id = exec_id_of(out)
    assert f"trace ID {uuid.UUID(exec_id).hex}" in out
    assert "spans: 1 flow + 2 checkpoints" in out
    assert "nothing was exported" in out


def test_export_to_jaeger_sends_the_trace_over_otlp() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "otel"))
    try:
        from otlp_sink import OtlpSink
    finally:
        sys.path.pop(0)
    sink = OtlpSink()
    try:
        out = run(
            "export_to_jaeger.py",
            OTEL_EXPORTER_OTLP_ENDPOINT=sink.url,
            KITARU_TRACE_URL_TEMPLATE="http://127.0.0.1:16686/trace/{trace_id}",
        ).stdout
        spans = sink.spans()
    finally:
        sink.close()
    trace_id = uuid.UUID(exec_id_of(out)).hex
    assert f"trace link http://127.0.0.1:16686/trace/{trace_id}" in out
    assert f"spans sent to {sink.url}" in out
    assert {s.trace_id.hex() for s in spans} == {trace_id}
    assert sorted(s.name for s in spans) == sorted(
        ["kitaru.flow rag", "kitaru.checkpoint retrieve", "kitaru.checkpoint answer"]
    )


def test_export_to_jaeger_with_the_collector_down() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    out = run("export_to_jaeger.py", OTEL_EXPORTER_OTLP_ENDPOINT=closed, timeout=60).stdout
    assert "result: answer from 3 documents" in out
    assert f"trace ID {uuid.UUID(exec_id_of(out)).hex}" in out


def test_replay() -> None:
    out = run("replay.py").stdout
    ids = re.findall(rf"^execution ({UUID}) (\w+)", out, re.M)
    assert [status for _, status in ids] == ["failed", "completed"]
    first, second = ids[0][0], ids[1][0]
    assert "first run failed: ValueError" in out
    assert f"execution {second} completed (replay of {first})" in out
    after = out.split(f"execution {second}")[1]
    assert re.findall(r"^  (\w+)\s+(\w+)$", after, re.M) == [
        ("download", "replayed"),
        ("parse", "completed"),
        ("publish", "completed"),
    ]
    assert "replay result: 10" in out
    assert "download ran 1 time(s)" in out


def test_replay_docstring_commands_work_as_written() -> None:
    # The two terminal commands of the example's docstring, run as written (``kitaru`` is
    # this interpreter's ``-m kitaru.cli``; EXEC_ID the ID the first command printed).
    doc = (EXAMPLES / "replay.py").read_text().split('"""')[1]
    commands = [line.split("#")[0].strip() for line in doc.splitlines() if "examples/" in line]
    commands = [c for c in commands if c.startswith(("python ", "REPLAY_EXAMPLE_FIXED"))]
    assert len(commands) == 2, commands
    first = commands[0].split()
    assert first[:2] == ["python", "examples/replay.py"]
    exec_id = run("replay.py", *first[2:]).stdout.strip().splitlines()[-1]
    assert re.fullmatch(UUID, exec_id)
    assignment, *argv = commands[1].replace("EXEC_ID", exec_id).split()
    name, value = assignment.split("=", 1)
    assert argv[0] == "kitaru"
    env = dict(os.environ)
    env[name] = value
    result = subprocess.run(
        [sys.executable, "-m", "kitaru.cli", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"replaying {exec_id} as " in result.stdout
    assert re.search(r"^  status\s+completed$", result.stdout, re.M), result.stdout


@pytest.mark.server
def test_demo() -> None:
    require_server()
    out = run("demo.py", "--speed", "0.1").stdout
    exec_id = exec_id_of(out)
    trace_id = uuid.UUID(exec_id).hex
    assert "result: Digest of 4 sources" in out
    tree = out[out.index(f"trace {trace_id}") :].splitlines()
    assert tree[1].startswith("kitaru.flow research_digest [completed]")
    steps = sorted(
        found.group(1)
        for line in tree[2:8]
        if (found := re.match(r"^[├└]─ kitaru\.checkpoint (\w+) \[returned\]", line))
    )
    assert steps == sorted(
        ["plan", "read_source", "read_source_2", "read_source_3", "read_source_4", "summarize"]
    )
    assert f"execution {exec_id} completed" in out
    assert f"trace ID  {trace_id}" in out


@pytest.mark.server
def test_demo_script_runs_without_a_terminal_and_stops_its_server(tmp_path: Path) -> None:
    require_server()
    env = dict(os.environ, CI="true", DEMO_SPEED="0.2", PY=sys.executable, TMPDIR=str(tmp_path))
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    url = re.search(r"server at (http://127\.0\.0\.1:(\d+))", out)
    assert url, out
    exec_id = re.search(rf"==> kitaru events ({UUID})", out).group(1)  # type: ignore[union-attr]
    # The watcher's plain lines: every lane started and returned, with progress in between.
    for step in ("plan", "read_source", "read_source_2", "read_source_3", "summarize"):
        assert re.search(rf"^\S+ {step} started$", out, re.M), step
        assert re.search(rf"^\S+ {step} returned in \d+\.\ds$", out, re.M), step
    assert re.search(r"^\S+ read_source_4 progress 100% volunteer reports: page 6 of 6$", out, re.M)
    assert f"execution {exec_id} completed · 6 lanes: 6 returned" in out
    assert f"trace ID  {uuid.UUID(exec_id).hex}" in out
    assert "kitaru.flow research_digest [completed]" in out
    assert "\x1b[" not in out  # no terminal, no escape codes
    # The trap stopped the server and removed the demo's temporary folder.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(url.group(2)))) != 0
    assert list(tmp_path.iterdir()) == []
