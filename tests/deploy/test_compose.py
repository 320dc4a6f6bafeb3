"""docker-compose.yml without Docker: the compose-spec schema, then what the schema misses."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ibest.local.processes import find_binary

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    result = subprocess.run(
        [find_binary("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_healthy_dependency_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, condition in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if condition["condition"] == "service_healthy":
                assert "test" in (services[dep].get("healthcheck") or {}), (
                    f"{name} waits for {dep} to be healthy but {dep} has no healthcheck")
            if condition["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is a one-shot job"


def test_every_secret_and_named_volume_is_declared(compose: dict[str, Any]) -> None:
    secrets = compose.get("secrets", {})
    volumes = compose.get("volumes", {})
    for name, service in compose["services"].items():
        for secret in service.get("secrets", []):
            key = secret if isinstance(secret, str) else secret["source"]
            assert key in secrets, f"{name} uses undeclared secret {key}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if not source.startswith((".", "/")):
                assert source in volumes, f"{name} uses undeclared volume {source}"
            else:
                assert (ROOT / source).exists(), f"{name} mounts missing file {source}"
    for secret in secrets.values():
        path = Path(secret["file"])
        assert path.parts[:2] == ("deploy", "secrets"), "secrets live under deploy/secrets/"
        assert (ROOT / f"{path}.example").exists(), f"{path}.example documents {path}"


def test_every_image_is_pinned_and_services_are_bounded(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert re.fullmatch(r"v?\d+\.\d+\.\d+(-[a-z0-9.]+)?", tag) or "@sha256:" in image, (
            f"{name}: image {image} is not pinned to an exact version")
        assert service.get("restart") in {"unless-stopped", "always", "no"}, name
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("memory") and limits.get("cpus"), f"{name} has no resource limits"


def test_services_run_from_the_one_dockerfile_with_readiness_checks(
    compose: dict[str, Any],
) -> None:
    for port, name in enumerate(("enrolment", "outcomes", "notifications", "reporting"), 8001):
        service = compose["services"][name]
        assert service["build"]["target"] == "runtime"
        assert service["command"] == ["python", "-m", f"services.{name}"]
        check = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in check and "urllib" in check
        assert service["depends_on"]["streams-init"]["condition"] == (
            "service_completed_successfully")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") >= 2, "multi-stage build"
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.M), "runs as a non-root user"
    init = compose["services"]["streams-init"]
    assert init["command"] == ["ibest", "streams", "apply"]


def test_nats_monitoring_port_is_not_published(compose: dict[str, Any]) -> None:
    ports = " ".join(str(p) for p in compose["services"]["nats"].get("ports", []))
    assert "8222" not in ports
    conf = (ROOT / "deploy/nats/nats.conf").read_text()
    assert "sync_interval: always" in conf and '"/data/jetstream"' in conf
    assert any(v.endswith(":/data/jetstream") for v in compose["services"]["nats"]["volumes"])


def test_no_secret_value_is_committed(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", key) and not key.endswith("FILE"):
                assert str(value).startswith("${"), f"{name}: {key} has a literal value"
            assert not re.search(r"://[^:/\s]+:(?!\$\{)[^@\s]+@", str(value)), (
                f"{name}: {key} holds a password inside a URL")
    for line in (ROOT / ".env.example").read_text().splitlines():
        if re.match(r"[A-Z_]*(PASSWORD|SECRET|TOKEN|KEY)[A-Z_]*=", line):
            assert line.endswith("=change-me"), f".env.example holds a value: {line}"
    committed = {p.name for p in (ROOT / "deploy/secrets").iterdir()}
    assert committed <= {p.name for p in (ROOT / "deploy/secrets").glob("*.example")} | {
        "README.md"} | _ignored(ROOT / "deploy/secrets"), "an unignored secret file"


def _ignored(folder: Path) -> set[str]:
    """Files git ignores in `folder` (real secrets an operator created locally)."""
    git = shutil.which("git")
    if git is None:
        return set()
    out = subprocess.run([git, "status", "--ignored", "--porcelain", str(folder)], cwd=ROOT,
                         capture_output=True, text=True, check=False).stdout
    return {Path(line[3:]).name for line in out.splitlines() if line.startswith("!!")}
