"""The README's "See it live in one minute" commands, run as written, each step checked.

The commands are read from the README's first ``bash`` block under that heading. Two things
differ from a user's shell: the port 8765 becomes a free one (tests never use fixed ports),
and ``kitaru`` / ``python`` are this test's interpreter's (the
project's virtualenv), found first on ``PATH`` as after activating it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from _support import free_port, require_server_deps

pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## See it live in one minute", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "no bash block in the README's 'See it live' section"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_commands_are_the_ones_this_test_checks() -> None:
    commands = readme_commands()
    assert [c.split()[0] for c in commands] == ["kitaru", "export", "python", "kitaru", "kitaru"]
    assert commands[0].endswith("&") and "8765" in commands[0]


def test_see_it_live_sequence(tmp_path: Path) -> None:
    require_server_deps()
    port = str(free_port())
    commands = [c.replace("8765", port) for c in readme_commands()]
    # The project's virtualenv first on PATH, as after `. .venv/bin/activate`.
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kitaru").exists() and (bin_dir / "python").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITARU_", "OTEL_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["KITARU_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env.pop("CI", None)

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )

    server_cmd, export_cmd, run_cmd, watch_cmd, list_cmd = commands
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        ["bash", "-c", "exec " + server_cmd.rstrip("&").strip()],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        # 1. the server answers, with its web view
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)

        # 2. export: the later commands read KITARU_SERVER_URL from it
        name, value = shlex.split(export_cmd.removeprefix("export "))[0].split("=", 1)
        assert (name, value) == ("KITARU_SERVER_URL", url)
        env[name] = value

        # 3. the quick start: its result, and its execution ID with the command to watch it
        done = run(run_cmd)
        assert done.returncode == 0, done.stderr
        assert "result: Report: Notes about otters" in done.stdout
        exec_id = re.search(rf"^execution ({UUID})$", done.stdout, re.M)
        assert exec_id, done.stdout
        exec_id = exec_id.group(1)
        assert f"watch it with: kitaru events {exec_id} --server-url {url}" in done.stderr

        # 4. kitaru events --latest finds that run and replays its lanes (into a pipe: lines)
        watched = run(watch_cmd)
        assert watched.returncode == 0, watched.stderr
        assert f"watching the newest execution: {exec_id}" in watched.stderr
        assert "build_report" in watched.stdout
        assert "Writing draft" in watched.stdout
        assert "completed" in watched.stdout + watched.stderr

        # 5. the list names the server it read, and holds the run
        listed = run(list_cmd)
        assert listed.returncode == 0, listed.stderr
        assert f"executions in the kitaru server at {url}" in listed.stderr
        row = next(line for line in listed.stdout.splitlines() if line.startswith(exec_id))
        assert row.split()[1:3] == ["report_flow", "completed"]

        # 6. the browser address the README gives serves the web view
        page = httpx.get(url + "/", follow_redirects=True, timeout=10)
        assert page.status_code == 200 and 'src="/ui/app.js"' in page.text
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
        log.close()
