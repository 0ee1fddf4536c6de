"""``kitaru server start``: options, defaults and the refusal to listen openly without a token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from _support import require_server_deps
from kitaru.cli import _server as cli_server
from kitaru.cli import main


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    require_server_deps()
    import kitaru.server

    calls: dict[str, Any] = {}

    def fake_serve(**kwargs: Any) -> None:
        calls.update(kwargs)

    monkeypatch.setattr(kitaru.server, "serve", fake_serve)
    return calls


def test_defaults_match_the_server() -> None:
    require_server_deps()
    import kitaru.server

    assert cli_server.DEFAULT_HOST == kitaru.server.DEFAULT_HOST == "127.0.0.1"
    assert cli_server.DEFAULT_PORT == kitaru.server.DEFAULT_PORT == 8765


def test_start_passes_every_option(captured: dict[str, Any], tmp_path: Path) -> None:
    rc = main(
        [
            "server",
            "start",
            "--port",
            "9999",
            "--db",
            str(tmp_path / "x.db"),
            "--token",
            "t",
            "--no-streaming",
            "--lost-after",
            "2.5",
            "--ping-interval",
            "0.5",
            "--max-events-per-execution",
            "100",
            "--retain-ended",
            "60",
        ]
    )
    assert rc == 0
    assert captured["host"] == "127.0.0.1" and captured["port"] == 9999
    assert captured["db"] == str(tmp_path / "x.db") and captured["token"] == "t"
    assert captured["streaming"] is False and captured["lost_after"] == 2.5
    assert captured["ping_interval"] == 0.5 and captured["max_events_per_execution"] == 100
    assert captured["retain_ended"] == 60.0 and captured["allow_insecure_remote"] is False


def test_start_defaults(captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITARU_API_TOKEN", "from-env")
    assert main(["server", "start"]) == 0
    assert captured["port"] == 8765 and captured["token"] == "from-env"
    assert captured["streaming"] is True and captured["lost_after"] == 30.0
    assert "db" not in captured  # the server's default: KITARU_HOME/server.db


def test_refuses_a_public_address_without_a_token(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    require_server_deps()
    rc = main(["server", "start", "--host", "0.0.0.0", "--db", str(tmp_path / "s.db")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "0.0.0.0" in err and "--token" in err and "--allow-insecure-remote" in err
    assert not (tmp_path / "s.db").exists()


def test_public_address_is_allowed_with_a_token_or_explicitly(captured: dict[str, Any]) -> None:
    assert main(["server", "start", "--host", "0.0.0.0", "--token", "t"]) == 0
    assert main(["server", "start", "--host", "0.0.0.0", "--allow-insecure-remote"]) == 0
    assert captured["allow_insecure_remote"] is True


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1", True),
        ("127.5.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("build-box", False),
    ],
)
def test_loopback_detection(host: str, ok: bool) -> None:
    require_server_deps()
    from kitaru import KitaruUsageError
    from kitaru.server import check_bind_address

    if ok:
        check_bind_address(host, None, allow_insecure_remote=False)
    else:
        with pytest.raises(KitaruUsageError, match="without an API token"):
            check_bind_address(host, None, allow_insecure_remote=False)
    check_bind_address(host, "token", allow_insecure_remote=False)
    check_bind_address(host, None, allow_insecure_remote=True)


@pytest.mark.parametrize(
    "argv",
    [
        ["server", "start", "--lost-after", "-1"],
        ["server", "start", "--lost-after", "soon"],
        ["server", "start", "--port", "70000"],
        ["server", "start", "--max-events-per-execution", "0"],
        ["server"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"lost_after": 0}, "lost_after"),
        ({"ping_interval": -1}, "ping_interval"),
        ({"retain_ended": float("nan")}, "retain_ended"),
        ({"max_events_per_execution": 0}, "max_events_per_execution"),
        ({"read_batch": True}, "read_batch"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_settings_name_the_option(options: dict[str, Any], named: str, tmp_path: Path) -> None:
    require_server_deps()
    from kitaru import KitaruUsageError
    from kitaru.server import create_app

    with pytest.raises(KitaruUsageError, match=named):
        create_app(db=tmp_path / "s.db", **options)
