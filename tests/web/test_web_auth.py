"""With server auth, the page's API and the stream refuse access without a valid token."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from _webkit import WAIT_MS, connection_is, screenshot

from _support import require_server_deps
from kitaru import _wire

pytestmark = [pytest.mark.server]

TOKEN = "the-api-token"


def _new_execution(c: httpx.Client) -> str:
    exec_id = str(uuid.uuid4())
    r = c.post(
        _wire.PATH_EXECUTIONS,
        json={"exec_id": exec_id, "flow_name": "guarded", "status": "running", "created_at": 1.0},
    )
    assert r.status_code == 201, r.text
    corr = "kitaru.checkpoint:cp:" + "cd" * 16
    event = {
        "exec_id": exec_id,
        "kind": "kitaru.checkpoint.progress",
        "correlation_id": corr,
        "index": 0,
        "checkpoint_name": "cp",
        "payload": {
            "kitaru": {"source": "kitaru", "checkpoint_name": "cp", "correlation_id": corr},
            "message": "secret progress",
            "data": {"percent": 0.5},
        },
    }
    r = c.post(_wire.path_events(exec_id), content=orjson.dumps([event]))
    assert r.status_code == 200, r.text
    return exec_id


def _read_token(url: str, **body: Any) -> dict[str, Any]:
    r = httpx.post(
        url + _wire.PATH_STREAM_TOKENS, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_api_and_stream_refuse_missing_wrong_and_expired_tokens(
    make_server: Callable[..., Any],
) -> None:
    require_server_deps()
    from kitaru.server._tokens import StreamTokens

    server = make_server(token=TOKEN)
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as c:
        exec_id = _new_execution(c)
    grant = _read_token(server.url, ttl=120)
    read = grant["token"]
    assert read.startswith("kitaru-read.v1.") and grant["scope"] == "read"
    assert time.time() < grant["expires_at"] <= time.time() + 121
    expired, _ = StreamTokens(TOKEN, clock=lambda: time.time() - 3600).issue(60)
    forged, _ = StreamTokens("another-api-token").issue(60)
    tampered = read[:-4] + ("AAAA" if not read.endswith("AAAA") else "BBBB")

    reads = [
        _wire.PATH_INFO,
        _wire.PATH_EXECUTIONS,
        _wire.path_execution(exec_id),
        _wire.path_snapshot(exec_id),
        _wire.path_stream(exec_id),
    ]
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        for path in reads:
            assert anon.get(path).status_code == 401, path
            for bad in ("nope", expired, forged, tampered):
                r = anon.get(path, headers={"Authorization": f"Bearer {bad}"})
                assert r.status_code == 401, (path, bad)
                assert "secret progress" not in r.text
            # A valid read token opens every reading route (the stream is tested below).
            if path != _wire.path_stream(exec_id):
                ok = anon.get(path, headers={"Authorization": f"Bearer {read}"})
                assert ok.status_code == 200, (path, ok.text)
        # The stream's ?token= (for EventSource) takes the same checks.
        stream = _wire.path_stream(exec_id)
        for bad in ("nope", expired, forged, tampered):
            assert anon.get(stream, params={"token": bad}).status_code == 401, bad
        with anon.stream("GET", stream, params={"token": read}) as resp:
            assert resp.status_code == 200
            first = next(resp.iter_lines())
            assert first.startswith("retry:")
        # Read-only means read-only: no writes, no minting of further tokens.
        h = {"Authorization": f"Bearer {read}"}
        assert anon.post(_wire.path_events(exec_id), content=b"[]", headers=h).status_code == 403
        assert anon.post(_wire.PATH_STREAM_TOKENS, json={}, headers=h).status_code == 403
        assert anon.post(_wire.path_heartbeat(exec_id), headers=h).status_code == 403
        assert anon.post(_wire.PATH_STREAM_TOKENS, json={}).status_code == 401
        # A ttl beyond the cap is refused.
        r = anon.post(
            _wire.PATH_STREAM_TOKENS,
            json={"ttl": 10**9},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 400 and "ttl" in r.text
        # The page's own files hold no data and need no token.
        assert anon.get(_wire.PATH_UI).status_code == 200
        assert anon.get("/ui/app.js").status_code == 200


def test_tokens_survive_a_restart_with_the_same_api_token_only(
    make_server: Callable[..., Any], tmp_path: Any
) -> None:
    first = make_server(token=TOKEN, db=tmp_path / "a.db")
    read = _read_token(first.url)["token"]
    first.stop()
    same = make_server(token=TOKEN, db=tmp_path / "a.db")
    other = make_server(token="rotated-token", db=tmp_path / "a.db")
    h = {"Authorization": f"Bearer {read}"}
    assert httpx.get(same.url + _wire.PATH_EXECUTIONS, headers=h).status_code == 200
    assert httpx.get(other.url + _wire.PATH_EXECUTIONS, headers=h).status_code == 401


def test_without_server_auth_the_exchange_gives_no_token(
    make_server: Callable[..., Any],
) -> None:
    server = make_server()
    r = httpx.post(server.url + _wire.PATH_STREAM_TOKENS)
    assert r.status_code == 200
    assert r.json()["token"] is None


@pytest.mark.browser
def test_the_page_needs_a_token_and_keeps_the_api_token_out_of_urls(
    make_server: Callable[..., Any], browser_page: tuple[Any, Any]
) -> None:
    server = make_server(token=TOKEN)
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as c:
        exec_id = _new_execution(c)
    page, log = browser_page

    # No token: a sign-in form, and no data.
    page.goto(f"{server.url}/ui/executions/{exec_id}")
    page.locator("#signin").wait_for(timeout=WAIT_MS)
    assert page.locator("#lanes").count() == 0
    assert "secret progress" not in page.content()

    # A wrong token: refused, still no data.
    page.goto(f"{server.url}/ui/#token=wrong-token")
    page.locator("#signin").wait_for(timeout=WAIT_MS)
    assert "refused" in (page.locator("#signin-reason").text_content() or "")
    screenshot(page, "web-sign-in.png")
    assert page.locator("tr.execution-row").count() == 0
    page.fill("#token-input", "still-wrong")
    page.click("#signin button")
    page.wait_for_function(
        "() => document.getElementById('signin-error').textContent.includes('refused')",
        timeout=WAIT_MS,
    )

    # The right token, typed into the form: the list appears.
    page.fill("#token-input", TOKEN)
    page.click("#signin button")
    page.locator(f'tr[data-exec-id="{exec_id}"]').wait_for(timeout=WAIT_MS)

    # Opened with #token=: the page trades it for a read token and drops it from the URL.
    page.goto(f"{server.url}/ui/executions/{exec_id}#token={TOKEN}")
    connection_is(page, "live")
    page.locator("#lanes .lane-message").wait_for(timeout=WAIT_MS)
    assert page.locator("#lanes .lane-message").text_content() == "secret progress"
    assert TOKEN not in page.url
    stored = page.evaluate("sessionStorage.getItem('kitaru.readToken')")
    assert "kitaru-read.v1." in stored and TOKEN not in stored
    assert not [u for u in log.requests if TOKEN in u]
    assert [u for u in log.requests if "/events/stream" in u and "token=kitaru-read.v1." in u]

    # A reload (API token gone from memory) keeps working with the stored read token.
    page.reload()
    connection_is(page, "live")
    assert page.locator("#lanes .lane-message").text_content() == "secret progress"

    # A read token that expired (or was tampered with) is refused: back to sign-in.
    page.evaluate(
        """() => sessionStorage.setItem('kitaru.readToken', JSON.stringify({
            token: 'kitaru-read.v1.1.0000000000000000.forged', expiresAt: Date.now() / 1000 + 600
        }))"""
    )
    page.goto(f"{server.url}/ui/executions/{exec_id}")
    page.locator("#signin").wait_for(timeout=WAIT_MS)
    assert "expired" in (page.locator("#signin-reason").text_content() or "")
    assert page.locator("#lanes").count() == 0
