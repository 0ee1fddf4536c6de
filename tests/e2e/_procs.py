"""Process helpers for kitaru's end-to-end tests against real observability tools.

Starts the binaries that ``scripts/tools/build-tools.sh`` builds into ``.tools/bin/``
(``jaeger``, ``otelcol``, ``victoria-logs``) and Debian's ``prometheus`` on free 127.0.0.1
ports, waits until they listen, and stops them again. Every process gets its own process group and
log file; a failed start raises with the tail of that log.

When a tool is missing, :func:`require_tool` skips the test, or fails it when the
environment variable ``CI`` is ``true`` (CI must have built the tools).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
CONFIG_DIR = REPO_ROOT / "collector-config"
BUILD_HINT = (
    "run scripts/tools/build-tools.sh"
    " (builds .tools/bin/jaeger, .tools/bin/otelcol and .tools/bin/victoria-logs,"
    " installs prometheus)"
)

T = TypeVar("T")


# --------------------------------------------------------------------------- tools


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def find_tool(name: str) -> Path | None:
    """``.tools/bin/<name>`` if it is there, else ``<name>`` on PATH, else None."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    return Path(found) if found else None


def require_tool(name: str) -> Path:
    """The tool's path; skips the test when it is missing, or fails it when CI=true."""
    path = find_tool(name)
    if path is not None:
        return path
    message = f"{name!r} not found in {TOOLS_BIN} or on PATH: {BUILD_HINT}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# --------------------------------------------------------------------------- ports and waiting


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports (all held open together while picking)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
    proc: ManagedProcess | None = None,
) -> T:
    """Polls ``check`` until it returns something truthy; returns that.

    Raises AssertionError after ``timeout`` seconds, or as soon as ``proc`` has exited,
    with the tail of its log.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last_error = exc
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"{proc.name} exited with code {proc.poll()} while waiting for {what}\n"
                f"{proc.log_tail()}"
            )
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            tail = f"\n{proc.log_tail()}" if proc is not None else ""
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}{detail}{tail}")
        time.sleep(interval)


def wait_for_port(
    host: str, port: int, *, timeout: float = 15.0, proc: ManagedProcess | None = None
) -> None:
    wait_until(
        lambda: port_open(host, port), timeout=timeout, what=f"{host}:{port} to listen", proc=proc
    )


# --------------------------------------------------------------------------- HTTP


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of a GET; HTTP errors are returned, not raised."""
    request = urllib.request.Request(url, headers={"Accept": "application/json, text/plain, */*"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_get_json(url: str, *, timeout: float = 5.0) -> tuple[int, Any]:
    status, body = http_get(url, timeout=timeout)
    try:
        return status, json.loads(body or b"null")
    except ValueError:
        return status, None


# --------------------------------------------------------------------------- processes


@dataclass
class ManagedProcess:
    """A started binary in its own process group, with its output in ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=str(cwd or REPO_ROOT),
                start_new_session=True,
            )
        return cls(name=name, argv=[str(a) for a in argv], log_path=log_path, popen=popen)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_text().splitlines()[-lines:]
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(text)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to the process group, SIGKILL after ``timeout`` seconds."""
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout=5)
        return self.popen.returncode

    def _signal(self, sig: signal.Signals) -> None:
        # The group this Popen created (start_new_session): the tool and nothing else.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- Jaeger


@dataclass
class Jaeger:
    """A running Jaeger v2 (in-memory) started from collector-config/jaeger.yaml."""

    process: ManagedProcess
    host: str
    otlp_grpc_port: int
    otlp_http_port: int
    query_http_port: int
    query_grpc_port: int

    @property
    def otlp_grpc_endpoint(self) -> str:
        """host:port, for the collector's otlp_grpc exporter."""
        return f"{self.host}:{self.otlp_grpc_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://{self.host}:{self.otlp_http_port}"

    @property
    def query_url(self) -> str:
        return f"http://{self.host}:{self.query_http_port}"

    def get_trace(self, trace_id: str | int) -> list[dict[str, Any]] | None:
        """Spans of a trace from ``/api/v3/traces/<id>`` (OTLP JSON, flattened), or None.

        Each returned span dict gets a ``"resource"`` key with its resource attributes
        (as a plain dict) added for convenience.
        """
        tid = trace_id if isinstance(trace_id, str) else format(trace_id, "032x")
        status, body = http_get_json(f"{self.query_url}/api/v3/traces/{tid}")
        if status != 200 or not isinstance(body, dict):
            return None
        spans: list[dict[str, Any]] = []
        for rs in body.get("result", {}).get("resourceSpans", []):
            resource = attributes_dict(rs.get("resource", {}).get("attributes", []))
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    spans.append({**span, "resource": resource})
        return spans or None

    def wait_for_trace(
        self,
        trace_id: str | int,
        *,
        timeout: float = 15.0,
        min_spans: int = 1,
    ) -> list[dict[str, Any]]:
        """Polls until the trace has at least ``min_spans`` spans; returns them."""

        def check() -> list[dict[str, Any]] | None:
            spans = self.get_trace(trace_id)
            return spans if spans and len(spans) >= min_spans else None

        return wait_until(
            check,
            timeout=timeout,
            interval=0.2,
            what=f"trace {trace_id} in Jaeger",
            proc=self.process,
        )


def attributes_dict(attributes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """OTLP JSON ``[{"key": k, "value": {"stringValue": v}}]`` -> ``{k: v}``."""
    out: dict[str, Any] = {}
    for attr in attributes:
        value = attr.get("value", {})
        if "stringValue" in value:
            out[attr["key"]] = value["stringValue"]
        elif "boolValue" in value:
            out[attr["key"]] = value["boolValue"]
        elif "intValue" in value:
            out[attr["key"]] = int(value["intValue"])
        elif "doubleValue" in value:
            out[attr["key"]] = float(value["doubleValue"])
        else:
            out[attr["key"]] = value
    return out


def start_jaeger(log_dir: Path, *, host: str = "127.0.0.1", timeout: float = 20.0) -> Jaeger:
    binary = require_tool("jaeger")
    grpc_port, http_port, query_http, query_grpc = free_ports(4, host)
    env = {
        "KITARU_JAEGER_OTLP_GRPC_ENDPOINT": f"{host}:{grpc_port}",
        "KITARU_JAEGER_OTLP_HTTP_ENDPOINT": f"{host}:{http_port}",
        "KITARU_JAEGER_QUERY_HTTP_ENDPOINT": f"{host}:{query_http}",
        "KITARU_JAEGER_QUERY_GRPC_ENDPOINT": f"{host}:{query_grpc}",
    }
    proc = ManagedProcess.start(
        "jaeger", [binary, "--config", CONFIG_DIR / "jaeger.yaml"], log_dir=log_dir, env=env
    )
    try:
        for port in (grpc_port, query_http):
            wait_for_port(host, port, timeout=timeout, proc=proc)
    except BaseException:
        proc.stop()
        raise
    return Jaeger(proc, host, grpc_port, http_port, query_http, query_grpc)


# --------------------------------------------------------------------------- Collector


@dataclass
class Otelcol:
    """A running kitaru collector (collector-config/otelcol.yaml [+ overlays])."""

    process: ManagedProcess
    host: str
    otlp_grpc_port: int
    otlp_http_port: int
    prometheus_port: int
    telemetry_port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def otlp_grpc_endpoint(self) -> str:
        """host:port for an OTLP/gRPC exporter (insecure)."""
        return f"{self.host}:{self.otlp_grpc_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """Base URL for OTLP/HTTP, e.g. for OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://{self.host}:{self.otlp_http_port}"

    @property
    def otlp_http_traces_url(self) -> str:
        return f"{self.otlp_http_endpoint}/v1/traces"

    @property
    def metrics_url(self) -> str:
        """The prometheus exporter's scrape URL (span metrics)."""
        return f"http://{self.host}:{self.prometheus_port}/metrics"

    @property
    def prometheus_target(self) -> str:
        return f"{self.host}:{self.prometheus_port}"

    def scrape(self) -> str:
        status, body = http_get(self.metrics_url)
        assert status == 200, f"scraping {self.metrics_url}: HTTP {status}"
        return body.decode()


# Fast settings for tests: decide sampling and flush span metrics within about a second.
FAST_OTELCOL_ENV = {
    "KITARU_OTELCOL_DECISION_WAIT": "1s",
    "KITARU_OTELCOL_DECISION_WAIT_AFTER_ROOT": "200ms",
    "KITARU_OTELCOL_SPANMETRICS_FLUSH_INTERVAL": "1s",
    "KITARU_OTELCOL_BATCH_TIMEOUT": "100ms",
    "KITARU_OTELCOL_SAMPLE_PERCENT": "100",
    "KITARU_OTELCOL_LOG_LEVEL": "info",
}


def start_otelcol(
    log_dir: Path,
    *,
    jaeger_endpoint: str,
    victorialogs_url: str | None = None,
    env: Mapping[str, str] | None = None,
    extra_configs: Sequence[Path] = (),
    name: str = "otelcol",
    host: str = "127.0.0.1",
    timeout: float = 20.0,
) -> Otelcol:
    """Starts the collector with FAST_OTELCOL_ENV, then ``env`` on top, on free ports.

    Without ``victorialogs_url`` its logs pipeline points at a port nobody listens on (never
    the default port, which another VictoriaLogs on this machine may use).
    """
    binary = require_tool("otelcol")
    grpc_port, http_port, prom_port, telemetry_port, nowhere = free_ports(5, host)
    full_env = {
        **FAST_OTELCOL_ENV,
        "KITARU_OTELCOL_GRPC_ENDPOINT": f"{host}:{grpc_port}",
        "KITARU_OTELCOL_HTTP_ENDPOINT": f"{host}:{http_port}",
        "KITARU_OTELCOL_PROMETHEUS_ENDPOINT": f"{host}:{prom_port}",
        "KITARU_OTELCOL_TELEMETRY_HOST": host,
        "KITARU_OTELCOL_TELEMETRY_PORT": str(telemetry_port),
        "KITARU_OTELCOL_JAEGER_ENDPOINT": jaeger_endpoint,
        "KITARU_OTELCOL_VICTORIALOGS_URL": victorialogs_url or f"http://{host}:{nowhere}",
        **(env or {}),
    }
    argv: list[str | os.PathLike[str]] = [binary, "--config", CONFIG_DIR / "otelcol.yaml"]
    for extra in extra_configs:
        argv += ["--config", extra]
    proc = ManagedProcess.start(name, argv, log_dir=log_dir, env=full_env)
    try:
        for port in (http_port, grpc_port, prom_port):
            wait_for_port(host, port, timeout=timeout, proc=proc)
    except BaseException:
        proc.stop()
        raise
    return Otelcol(proc, host, grpc_port, http_port, prom_port, telemetry_port, full_env)


# --------------------------------------------------------------------------- VictoriaLogs


@dataclass
class VictoriaLogs:
    """A running VictoriaLogs single node (OTLP/HTTP ingestion, LogsQL queries, web UI)."""

    process: ManagedProcess
    host: str
    port: int

    @property
    def url(self) -> str:
        """Base URL: the Collector's ``KITARU_OTELCOL_VICTORIALOGS_URL``."""
        return f"http://{self.host}:{self.port}"

    def ui_url(self, query: str) -> str:
        """The built-in web UI, opened on ``query``."""
        return f"{self.url}/select/vmui/#/?" + urllib.parse.urlencode({"query": query})

    def query(self, logsql: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Log entries matching a LogsQL query (``/select/logsql/query``), oldest first."""
        qs = urllib.parse.urlencode({"query": logsql, "limit": str(limit)})
        status, body = http_get(f"{self.url}/select/logsql/query?{qs}")
        if status != 200:
            raise AssertionError(f"LogsQL {logsql!r}: HTTP {status}: {body[:500]!r}")
        rows = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        return sorted(rows, key=lambda row: str(row.get("_time", "")))


def start_victorialogs(
    work_dir: Path, *, host: str = "127.0.0.1", timeout: float = 20.0
) -> VictoriaLogs:
    """Starts VictoriaLogs on a free port with its data in ``work_dir``; returns once healthy."""
    binary = require_tool("victoria-logs")
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(host)
    argv = [
        binary,
        f"-httpListenAddr={host}:{port}",
        f"-storageDataPath={work_dir / 'data'}",
        "-loggerLevel=WARN",
        "-retentionPeriod=1d",
    ]
    proc = ManagedProcess.start("victoria-logs", argv, log_dir=work_dir)
    store = VictoriaLogs(proc, host, port)
    try:
        wait_until(
            lambda: http_get(f"{store.url}/health", timeout=1)[0] == 200,
            timeout=timeout,
            what="victoria-logs /health",
            proc=proc,
        )
    except BaseException:
        proc.stop()
        raise
    return store


# --------------------------------------------------------------------------- Prometheus


@dataclass
class Prometheus:
    """A running Prometheus scraping the given targets."""

    process: ManagedProcess
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the ``data.result`` list (raises on an API error)."""
        qs = urllib.parse.urlencode({"query": promql})
        status, body = http_get_json(f"{self.url}/api/v1/query?{qs}")
        if status != 200 or not isinstance(body, dict) or body.get("status") != "success":
            raise AssertionError(f"PromQL {promql!r}: HTTP {status}: {body}")
        return list(body["data"]["result"])

    def wait_first_scrape(self, timeout: float = 20.0) -> None:
        """Waits until every target has been scraped once (Prometheus starts scraping a few
        seconds after it is ready: its service discovery publishes targets every 5 s)."""

        def scraped() -> bool:
            status, body = http_get_json(f"{self.url}/api/v1/targets?state=active")
            if status != 200 or not isinstance(body, dict):
                return False
            targets = body.get("data", {}).get("activeTargets", [])
            return bool(targets) and all(
                not t.get("lastScrape", "").startswith("0001-") for t in targets
            )

        wait_until(
            scraped,
            timeout=timeout,
            interval=0.2,
            what="prometheus' first scrape",
            proc=self.process,
        )

    def query_exemplars(self, promql: str, start: float, end: float) -> list[dict[str, Any]]:
        qs = urllib.parse.urlencode({"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}"})
        status, body = http_get_json(f"{self.url}/api/v1/query_exemplars?{qs}")
        if status != 200 or not isinstance(body, dict) or body.get("status") != "success":
            raise AssertionError(f"exemplars {promql!r}: HTTP {status}: {body}")
        return list(body["data"])


def prometheus_config(targets: Sequence[str], *, scrape_interval: str = "1s") -> str:
    """collector-config/prometheus.yml with its span-metrics target replaced by ``targets``.

    The collector self-telemetry and kitaru server jobs get no targets; everything else stays
    as in the file.
    """
    text = (CONFIG_DIR / "prometheus.yml").read_text()
    default_target = '"127.0.0.1:8889"'
    assert default_target in text, (
        "collector-config/prometheus.yml no longer scrapes 127.0.0.1:8889"
    )
    text = text.replace(default_target, ", ".join(f'"{t}"' for t in targets))
    text = text.replace('["127.0.0.1:8888"]', "[]")
    text = text.replace('["127.0.0.1:8765"]', "[]")  # no kitaru server in these tests
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("scrape_interval:", "evaluation_interval:")):
            indent = line[: len(line) - len(line.lstrip())]
            key = stripped.split(":", 1)[0]
            line = f"{indent}{key}: {scrape_interval}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def kitaru_server_scrape_config(target: str, token: str, *, interval: str = "1s") -> str:
    """collector-config/prometheus.yml's ``kitaru-server`` job alone, aimed at ``target``.

    The job (and its bearer-token setting) is taken from the shipped file, so the test scrapes
    the server the way the documentation tells operators to.
    """
    import yaml

    shipped = yaml.safe_load((CONFIG_DIR / "prometheus.yml").read_text())
    (job,) = [j for j in shipped["scrape_configs"] if j["job_name"] == "kitaru-server"]
    job["static_configs"] = [{"targets": [target]}]
    job["scrape_interval"] = interval
    job["authorization"] = {"type": "Bearer", "credentials": token}
    config = {"global": {"scrape_interval": interval}, "scrape_configs": [job]}
    return str(yaml.safe_dump(config, sort_keys=False))


def start_prometheus(
    work_dir: Path,
    targets: Sequence[str],
    *,
    scrape_interval: str = "1s",
    host: str = "127.0.0.1",
    timeout: float = 20.0,
    wait_scraped: bool = True,
    config_text: str | None = None,
) -> Prometheus:
    """Starts Prometheus on a free port with collector-config/prometheus.yml aimed at
    ``targets`` (or with ``config_text``); returns once it is ready and (``wait_scraped``) has
    scraped every target."""
    binary = require_tool("prometheus")
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / "prometheus.yml"
    config.write_text(
        config_text
        if config_text is not None
        else prometheus_config(targets, scrape_interval=scrape_interval)
    )
    port = free_port(host)
    argv = [
        binary,
        f"--config.file={config}",
        f"--web.listen-address={host}:{port}",
        f"--storage.tsdb.path={work_dir / 'data'}",
        "--enable-feature=exemplar-storage",
        "--log.level=warn",
    ]
    proc = ManagedProcess.start("prometheus", argv, log_dir=work_dir)
    prom = Prometheus(proc, host, port)
    try:
        wait_until(
            lambda: http_get(f"{prom.url}/-/ready", timeout=1)[0] == 200,
            timeout=timeout,
            what="prometheus /-/ready",
            proc=proc,
        )
        if wait_scraped:
            prom.wait_first_scrape(timeout=timeout)
    except BaseException:
        proc.stop()
        raise
    return prom
