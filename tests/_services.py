"""Session fixtures for real Redis and PostgreSQL servers (127.0.0.1 only).

Each fixture uses the server named by ``KITARU_TEST_REDIS_URL`` / ``KITARU_TEST_POSTGRES_URL``
when set (a test command that started them with ``scripts/services/``), else starts its own
with ``scripts/services/start-*.sh`` in a temporary folder and stops it after the session.
When the server software is missing the tests skip, or fail with CI=true.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from _support import require as require_service

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts" / "services"

__all__ = [
    "SCRIPTS",
    "postgres_schema_url",
    "postgres_url",
    "redis_service",
    "redis_url",
    "require_service",
    "start_service",
    "stop_service",
]


def _have_postgres() -> bool:
    return bool(shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def start_service(name: str, folder: Path) -> str:
    """Run ``scripts/services/start-<name>.sh --dir folder``; its URL."""
    done = subprocess.run(
        ["bash", str(SCRIPTS / f"start-{name}.sh"), "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"start-{name}.sh failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def stop_service(name: str, folder: Path) -> None:
    """Run ``scripts/services/stop-<name>.sh --dir folder``."""
    subprocess.run(
        ["bash", str(SCRIPTS / f"stop-{name}.sh"), "--dir", str(folder)],
        capture_output=True,
        timeout=60,
        check=False,
    )


def _service_folder() -> Path:
    # PostgreSQL runs as the `postgres` user when the tests run as root: every parent folder
    # must be searchable by it, which pytest's private tmp folders are not.
    base = Path(tempfile.mkdtemp(prefix="kitaru-services-"))
    base.chmod(0o755)
    return base


class RedisService:
    """A Redis server the tests may restart (when they started it themselves)."""

    def __init__(self, url: str, folder: Path | None) -> None:
        self.url = url
        self.folder = folder

    @property
    def restartable(self) -> bool:
        """True when this session started the server (so a test may stop and start it)."""
        return self.folder is not None

    def stop(self) -> None:
        assert self.folder is not None
        stop_service("redis", self.folder)

    def start(self) -> str:
        assert self.folder is not None
        url = start_service("redis", self.folder)
        assert url == self.url, (url, self.url)
        return url


@pytest.fixture(scope="session")
def redis_service() -> Iterator[RedisService]:
    """The session's Redis server."""
    require_service(
        "redis-py", importlib.util.find_spec("redis") is not None, "pip install 'kitaru[redis]'"
    )
    given = os.environ.get("KITARU_TEST_REDIS_URL")
    if given:
        yield RedisService(given, None)
        return
    require_service(
        "Redis",
        shutil.which("redis-server") is not None,
        "run scripts/services/start-redis.sh once (it installs Debian's redis-server)",
    )
    folder = _service_folder() / "redis"
    url = start_service("redis", folder)
    try:
        yield RedisService(url, folder)
    finally:
        stop_service("redis", folder)
        shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(redis_service: RedisService) -> str:
    """URL of the session's Redis server (tests isolate themselves by key prefix)."""
    return redis_service.url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the session's PostgreSQL server (tests isolate themselves by schema)."""
    require_service(
        "psycopg",
        importlib.util.find_spec("psycopg") is not None
        and importlib.util.find_spec("psycopg_pool") is not None,
        "pip install 'kitaru[postgres]'",
    )
    given = os.environ.get("KITARU_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    require_service(
        "PostgreSQL",
        _have_postgres(),
        "run scripts/services/start-postgres.sh once (it installs Debian's postgresql)",
    )
    folder = _service_folder() / "postgres"
    url = start_service("postgres", folder)
    try:
        yield url
    finally:
        stop_service("postgres", folder)
        shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema of their own (dropped afterwards)."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
