"""The docker-compose files, checked as far as a machine without a Docker engine allows.

No container runs here, so these tests read the files as Compose would: every service has
an image with an exact tag, the images match the releases the tools build pins (Jaeger's
Go module v1.75.0 is the ``jaegertracing/jaeger:2.12.0`` image; the Collector image is the
builder manifest's release), every bind-mounted host path exists, and every configuration
file a command names is in the mounted folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "collector-config" / "docker-compose.yaml"
DEPLOY = ROOT / "deploy" / "docker-compose.yaml"
EXACT_TAG = re.compile(r"^[\w.\-/]+:[\w][\w.\-]*$")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    services = data.get("services")
    assert isinstance(services, dict) and services, f"{path}: no services"
    return data


def _go_module_version(go_mod: Path, module: str) -> str:
    match = re.search(rf"^\s*{re.escape(module)} (v[\d.]+)", go_mod.read_text(), re.M)
    assert match, f"{module} is not in {go_mod}"
    return match.group(1)


@pytest.mark.parametrize("path", [OBSERVABILITY, DEPLOY], ids=["observability", "deploy"])
def test_every_service_has_an_exact_image_tag(path: Path) -> None:
    for name, service in _load(path)["services"].items():
        image = service.get("image")
        assert isinstance(image, str), f"{path.name}: service {name} has no image"
        assert EXACT_TAG.match(image), f"{name}: {image!r} has no exact tag"
        assert not image.endswith(":latest"), f"{name}: {image!r} floats"


@pytest.mark.parametrize("path", [OBSERVABILITY, DEPLOY], ids=["observability", "deploy"])
def test_bind_mounts_and_build_contexts_exist(path: Path) -> None:
    data = _load(path)
    for name, service in data["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (path.parent / source).exists(), f"{name}: mount {source} is missing"
        build = service.get("build")
        if isinstance(build, dict):
            context = path.parent / build["context"]
            assert (context / build["dockerfile"]).is_file(), f"{name}: no Dockerfile"


def test_jaeger_image_is_the_release_the_tools_build_pins() -> None:
    module = _go_module_version(
        ROOT / "scripts" / "tools" / "jaeger" / "go.mod", "github.com/jaegertracing/jaeger"
    )
    assert module == "v1.75.0"
    image = _load(OBSERVABILITY)["services"]["jaeger"]["image"]
    # Jaeger tags its v2 images 2.N for Go module release v1.(N+63).
    major, minor = (int(x) for x in image.rsplit(":", 1)[1].split(".")[:2])
    assert major == 2
    assert f"v1.{minor + 63}.0" == module, f"{image} is not the image of {module}"
    text = OBSERVABILITY.read_text() + (ROOT / "collector-config" / "jaeger.yaml").read_text()
    text += (ROOT / "collector-config" / "README.md").read_text()
    assert "v1.76" not in text


def test_collector_image_is_the_builder_release() -> None:
    manifest = yaml.safe_load((ROOT / "collector-config" / "builder.yaml").read_text())
    release = manifest["dist"]["version"].split("-", 1)[0]
    image = _load(OBSERVABILITY)["services"]["otelcol"]["image"]
    assert image == f"otel/opentelemetry-collector-contrib:{release}"


def test_config_files_named_in_commands_are_mounted() -> None:
    data = _load(OBSERVABILITY)
    named = 0
    for name, service in data["services"].items():
        command = service.get("command", [])
        words = command if isinstance(command, list) else command.split()
        for word in words:
            for found in re.findall(r"/etc/kitaru/([\w.\-/]+)", str(word)):
                assert (OBSERVABILITY.parent / found).is_file(), f"{name}: {found} missing"
                named += 1
    assert named >= 5  # otelcol (2), jaeger, tempo, prometheus


def test_grafana_provisioning_points_at_the_compose_services() -> None:
    grafana = _load(OBSERVABILITY)["services"]["grafana"]
    env = grafana["environment"]
    services = set(_load(OBSERVABILITY)["services"])
    for key in ("KITARU_GRAFANA_PROMETHEUS_URL", "KITARU_GRAFANA_JAEGER_URL"):
        host = re.match(r"https?://([\w\-]+):", env[key])
        assert host and host.group(1) in services, key
    provisioning = OBSERVABILITY.parent / "grafana" / "provisioning"
    text = "".join(p.read_text() for p in provisioning.rglob("*.y*ml"))
    for key in ("KITARU_GRAFANA_PROMETHEUS_URL", "KITARU_GRAFANA_JAEGER_URL"):
        assert key in text, f"the provisioning does not read {key}"
