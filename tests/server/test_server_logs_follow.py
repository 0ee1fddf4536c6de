"""``kitaru executions logs --follow`` on a running execution, across a server restart."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from _support import ServerProcess, clean_env, free_port, require_server_deps, stop_process

pytestmark = [pytest.mark.server, pytest.mark.slow]

PRODUCER = """
import logging, os, sys, time
from kitaru import checkpoint, flow

GATE = os.environ["TEST_GATE"]

log = logging.getLogger("ticker")
log.setLevel(logging.INFO)

@checkpoint
def ticker() -> int:
    while not os.path.exists(GATE):  # the test opens the gate once the follower is connected
        time.sleep(0.02)
    for n in range(15):
        log.info("tick %d", n)
        time.sleep(0.2)
    return 15

@flow
def ticking() -> int:
    return ticker()

handle = ticking.run()
print(handle.exec_id, flush=True)
handle.wait()
"""


def test_follow_streams_resumes_after_restart_and_exits(tmp_path: Path) -> None:
    require_server_deps()
    db, server_log = tmp_path / "server.db", tmp_path / "server.log"
    port = free_port()
    server = ServerProcess(db, port, server_log, ping_interval=0.5)
    script = tmp_path / "producer.py"
    script.write_text(PRODUCER)
    gate = tmp_path / "gate"
    env = clean_env(KITARU_SERVER_URL=server.url, TEST_GATE=str(gate))
    producer = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    follower: subprocess.Popen[bytes] | None = None
    try:
        assert producer.stdout is not None
        exec_id = producer.stdout.readline().decode().strip()
        follower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kitaru.cli",
                "executions",
                "logs",
                exec_id,
                "--follow",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        received: list[tuple[float, dict[str, object]]] = []

        def read() -> None:
            assert follower is not None and follower.stdout is not None
            for raw in follower.stdout:
                received.append((time.time(), orjson.loads(raw)))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(2.5)  # the follower starts and connects while the checkpoint waits
        assert received == []
        gate.touch()
        deadline = time.monotonic() + 20
        while len(received) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(received) >= 4, "no lines while the execution runs"
        first_arrival, first = received[0]
        assert first["message"] == "tick 0"
        # Restart the server on the same port and database mid-stream.
        server.stop()
        time.sleep(0.6)
        server = ServerProcess(db, port, server_log, ping_interval=0.5)
        assert follower.wait(timeout=60) == 0, follower.stderr.read() if follower.stderr else ""
        reader.join(timeout=5)
        messages = [str(line["message"]) for _, line in received]
        assert messages == [f"tick {n}" for n in range(15)]  # none repeated, none skipped
        # Lines arrive while the execution runs: the first one before the last was even logged
        # (2.8 s later), not all at the end.
        assert first_arrival < float(received[-1][1]["ts"])  # type: ignore[arg-type]
        assert producer.wait(timeout=60) == 0
    finally:
        for proc in (producer, follower):
            if proc is not None and proc.poll() is None:
                stop_process(proc)
        server.stop()
