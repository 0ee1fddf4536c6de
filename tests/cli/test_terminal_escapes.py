"""Producer text never reaches a terminal as control characters (plain lines, live lanes).

Kind, checkpoint name, message and data of an event carry escape sequences (a window title
by OSC, clear screen, an OSC 8 hyperlink, a cursor move, BEL, a C1 CSI). ``kitaru events``
must show them as visible escapes; ``--json`` keeps them exactly, JSON-escaped.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pexpect
import pytest
from _cli_kit import KITARU, ServerProcess, base_env, start_server

from kitaru import _wire

pytestmark = pytest.mark.server

TITLE = "\u001b]0;PWNED\u0007\u001b[2J"
LINK = "\u001b]8;;https://evil.example/\u001b\\click\u001b]8;;\u001b\\"
MOVE = "\u001b[10A\u009b31m\u0007"
KIND = "evil" + TITLE
NAME = "cp" + MOVE
MESSAGE = "msg" + TITLE + LINK
CORR = "kitaru.checkpoint:cp:" + "0" * 32

# The CLI's own styling: SGR colours, cursor visibility and moves, line erases (rich).
OWN_CSI = re.compile(rb"\x1b\[[0-9;?]*[mAKGhlBCDJH]")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


def _event(exec_id: str, index: int, kind: str, **payload: object) -> dict[str, object]:
    return {
        "exec_id": exec_id,
        "kind": kind,
        "correlation_id": CORR,
        "index": index,
        "checkpoint_id": "cp-1",
        "checkpoint_name": NAME,
        "step_name": NAME,
        "ts": time.time(),
        "payload": {
            "kitaru": {"source": "kitaru", "checkpoint_name": NAME, "correlation_id": CORR},
            **payload,
        },
    }


def _hostile_execution(url: str, *, finished: bool) -> str:
    exec_id = str(uuid.uuid4())
    with httpx.Client(base_url=url, timeout=10) as c:
        body = {
            "exec_id": exec_id,
            "flow_name": "flow" + TITLE,
            "flow_ref": None,
            "status": "running",
            "created_at": time.time(),
        }
        assert c.post(_wire.PATH_EXECUTIONS, json=body).status_code == 201
        events = [
            _event(exec_id, 0, "kitaru.checkpoint.started", status="started"),
            _event(
                exec_id,
                1,
                "kitaru.checkpoint.progress",
                message=MESSAGE,
                data={"percent": 0.5, "note": TITLE},
            ),
            _event(exec_id, 2, KIND, message=MESSAGE, data={"x": LINK}),
        ]
        r = c.post(_wire.path_events(exec_id), content=orjson.dumps(events))
        assert r.status_code == 200, r.text
        if finished:
            r = c.post(
                _wire.path_finish(exec_id),
                json={"status": "completed", "output": None, "error_type": None},
            )
            assert r.status_code == 200, r.text
    return exec_id


def _assert_no_producer_controls(raw: bytes) -> None:
    rest = OWN_CSI.sub(b"", raw)
    assert b"\x1b" not in rest, rest[max(0, rest.find(b"\x1b") - 40) : rest.find(b"\x1b") + 40]
    assert b"\x07" not in rest
    assert b"\x1b]" not in raw  # no OSC at all: no title, no hyperlink
    assert b"\x1b[2J" not in raw and b"\x1b[10A" not in raw
    text = raw.decode("utf-8", "replace")
    assert not any(0x80 <= ord(ch) <= 0x9F for ch in text)


def test_plain_lines_show_producer_escapes_as_visible_text(server: ServerProcess) -> None:
    exec_id = _hostile_execution(server.url, finished=True)
    proc = subprocess.run(
        [*KITARU, "events", exec_id, "--plain"],
        env=base_env(KITARU_SERVER_URL=server.url),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    _assert_no_producer_controls(proc.stdout)
    _assert_no_producer_controls(proc.stderr)
    out = proc.stdout.decode()
    # What was sent is still readable, as escapes.
    assert "msg\\x1b]0;PWNED\\x07\\x1b[2J" in out
    assert "evil\\x1b]0;PWNED" in out
    assert "cp\\x1b[10A\\x9b31m\\x07" in out


def test_json_lines_keep_the_producer_text_exactly(server: ServerProcess) -> None:
    exec_id = _hostile_execution(server.url, finished=True)
    proc = subprocess.run(
        [*KITARU, "events", exec_id, "--json"],
        env=base_env(KITARU_SERVER_URL=server.url),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"\x1b" not in proc.stdout and b"\x07" not in proc.stdout  # JSON escapes them
    events = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [e["kind"] for e in events][-1] == KIND
    assert events[-1]["payload"]["message"] == MESSAGE
    assert events[-1]["checkpoint_name"] == NAME
    assert events[-1]["payload"]["data"] == {"x": LINK}


def test_live_lanes_show_producer_escapes_as_visible_text(server: ServerProcess) -> None:
    exec_id = _hostile_execution(server.url, finished=False)
    child = pexpect.spawn(
        KITARU[0],
        [*KITARU[1:], "events", exec_id],
        env=base_env(
            KITARU_SERVER_URL=server.url, TERM="xterm-256color", COLUMNS="160", LINES="40"
        ),
        dimensions=(40, 160),
        timeout=60,
    )
    try:
        # The running lane with its (escaped) message is on screen...
        child.expect(re.escape(b"msg\\x1b]0;PWNED"))
        seen = (child.before or b"") + (child.after or b"")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            r = c.post(
                _wire.path_finish(exec_id),
                json={"status": "completed", "output": None, "error_type": None},
            )
            assert r.status_code == 200, r.text
        child.expect(pexpect.EOF)
        seen += child.before or b""
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, seen[-2000:]
    assert OWN_CSI.search(seen), "the live view drew no styling at all"
    _assert_no_producer_controls(seen)
