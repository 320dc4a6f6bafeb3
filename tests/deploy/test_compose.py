"""docker-compose.yml without Docker: the compose-spec schema, then what the schema misses."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.make_secrets import SERVICES, make
from deploy.nats.generate import all_users, password_var
from ibest import registry
from ibest.backbone.secrets import SecretError
from ibest.backbone.settings import Settings
from ibest.local.processes import find_binary
from ibest.simulate.trusts import load_trusts

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    result = subprocess.run(
        [find_binary("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_healthy_dependency_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, condition in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if condition["condition"] == "service_healthy":
                assert "test" in (services[dep].get("healthcheck") or {}), (
                    f"{name} waits for {dep} to be healthy but {dep} has no healthcheck"
                )
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


def test_every_image_is_pinned_and_services_are_bounded(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert re.fullmatch(r"v?\d+\.\d+\.\d+(-[a-z0-9.]+)?", tag) or "@sha256:" in image, (
            f"{name}: image {image} is not pinned to an exact version"
        )
        assert service.get("restart") in {"unless-stopped", "always", "no"}, name
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("memory") and limits.get("cpus"), f"{name} has no resource limits"


def test_services_run_from_the_one_dockerfile_with_readiness_checks(
    compose: dict[str, Any],
) -> None:
    for declared in registry.SERVICES:
        service = compose["services"][declared.name]
        assert service["build"]["target"] == "runtime"
        assert service["command"] == ["python", "-m", declared.package]
        check = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{declared.port}/readyz" in check and "urllib" in check
        assert service["depends_on"]["streams-init"]["condition"] == (
            "service_completed_successfully"
        )
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


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE_KEY")


def test_no_secret_is_in_an_environment_variable_or_url(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert "env_file" not in service, f"{name}: env_file hands it every variable"
        env = service.get("environment") or {}
        for key, value in env.items():
            if SECRET_NAME.search(key):
                assert key.endswith("FILE") and str(value).startswith("/run/secrets/"), (
                    f"{name}: {key} must name a secret file, not hold the secret"
                )
            assert "${NATS_PASSWORD" not in str(value) and "${MONGO" not in str(value)
            assert not re.search(r"://[^/\s@]+:[^@\s]*@", str(value)), (
                f"{name}: {key} holds credentials inside a URL"
            )
    for line in (ROOT / ".env.example").read_text().splitlines():
        assert not SECRET_NAME.search(line.split("=")[0]), f".env.example holds a secret: {line}"
    committed = {p.name for p in (ROOT / "deploy/secrets").iterdir()}
    assert committed <= {"README.md"} | _ignored(ROOT / "deploy/secrets"), (
        "an unignored secret file"
    )


def test_every_secret_file_is_made_by_the_operators_tool(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    written = set(make(tmp_path, self_signed=True, names=["localhost", "nats"]))
    for name, secret in compose["secrets"].items():
        assert Path(secret["file"]).name in written, f"make_secrets does not make {name}"
    users = {u.name for u in all_users(load_trusts())}
    for user in users:
        assert f"nats_password_{user}" in written
    conf = (tmp_path / "nats_passwords.conf").read_text()
    assert all(f"{password_var(u)}: " in conf for u in users)
    assert tmp_path.stat().st_mode & 0o777 == 0o700, "no other host user reaches a secret"
    # Again: nothing is overwritten, an existing secret stays as it is.
    before = (tmp_path / "mongo_root_password").read_text()
    assert make(tmp_path, self_signed=True, names=["localhost"]) == []
    assert (tmp_path / "mongo_root_password").read_text() == before


@pytest.mark.parametrize(
    "value",
    ["change-me", "CHANGE_ME-please-1234567", "replace-me-with-openssl-rand-hex-24", "short1234"],
)
def test_a_placeholder_secret_stops_a_service(tmp_path: Path, value: str) -> None:
    secret = tmp_path / "nats_password"
    secret.write_text(value + "\n")
    with pytest.raises(SecretError, match="NATS_PASSWORD_FILE"):
        Settings(NATS_USER="outcomes", NATS_PASSWORD_FILE=str(secret)).nats_options()
    secret.write_text("0f3a9c1e5b7d2468ace13579bdf02468ace13579bdf0\n")
    assert (
        Settings(NATS_USER="outcomes", NATS_PASSWORD_FILE=str(secret)).nats_options()["password"]
        == "0f3a9c1e5b7d2468ace13579bdf02468ace13579bdf0"
    )


@pytest.mark.parametrize("value", ["change-me", "replace-me-with-openssl-rand-hex-24"])
def test_the_image_entrypoint_refuses_a_placeholder_secret(tmp_path: Path, value: str) -> None:
    (tmp_path / "mongo_password").write_text(value)
    run = subprocess.run(
        ["sh", str(ROOT / "deploy/docker/entrypoint.sh"), "true"],
        env={"IBEST_SECRETS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert run.returncode == 1 and "placeholder" in run.stderr
    (tmp_path / "mongo_password").write_text("0f3a9c1e5b7d2468ace13579bdf02468")
    ok = subprocess.run(
        ["sh", str(ROOT / "deploy/docker/entrypoint.sh"), "true"],
        env={"IBEST_SECRETS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    for script in ("deploy/mongo/entrypoint.sh", "deploy/caddy/entrypoint.sh"):
        assert "change-?me|replace-?me|example" in (ROOT / script).read_text(), script


def test_each_service_has_its_own_least_privilege_users(compose: dict[str, Any]) -> None:
    services = compose["services"]
    script = (ROOT / "deploy/mongo/create-users.js").read_text()
    assert 'role: "readWrite", db: `${prefix}_${service}`' in script
    # readWrite on its own database, plus (for those that record) the append-only audit role
    assert script.count('role: "readWrite"') == 1, "readWrite on its own database only"
    assert script.count("roles.push(") == 1 and "{ role: auditRole" in script
    for name in SERVICES:
        env = services[name]["environment"]
        assert env["MONGODB_USERNAME"] == f"ibest-{name}" and env["NATS_USER"] == name
        assert "@" not in env["MONGODB_URL"] and "@" not in env["NATS_URL"]
        sources = {s["source"] if isinstance(s, dict) else s for s in services[name]["secrets"]}
        assert {f"nats_password_{name}", f"mongo_password_{name}"} <= sources
        assert not sources & {"mongo_root_password", "nats_passwords"}, name
        assert f'"{name}"' in script
        assert services[name]["depends_on"]["mongo-init"]["condition"] == (
            "service_completed_successfully"
        )
    init = services["mongo-init"]
    assert init["restart"] == "no" and "create-users.js" in " ".join(init["entrypoint"])
    assert services["streams-init"]["environment"]["NATS_USER"] == "admin"
    reporting = services["reporting"]
    assert reporting["environment"]["IBEST_REPORTING_TOKENS_FILE"] == (
        "/run/secrets/reporting_tokens"
    )
    assert "reporting_tokens" in reporting["secrets"]
    for name in ("enrolment", "outcomes", "notifications"):
        assert services[name]["environment"]["IBEST_SERVICE_TOKENS_FILE"] == (
            "/run/secrets/service_tokens"
        ), name
        assert "service_tokens" in services[name]["secrets"], name
    assert "ibestAuditAppend" in script and '"update"' not in script
    assert '"remove"' not in script


def test_every_container_is_unprivileged(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("cap_drop") == ["ALL"], f"{name}: cap_drop [ALL]"
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("read_only") is True, f"{name}: read_only"
        user = str(service.get("user", ""))
        if name == "volumes-init":  # root with CHOWN only, no network, exits at once
            assert service["cap_add"] == ["CHOWN"] and service["network_mode"] == "none"
            assert service["restart"] == "no"
            continue
        assert user and user.split(":")[0] not in {"0", "root"}, f"{name} runs as root"


def test_tls_for_nats_clients_and_the_published_http_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    conf = (ROOT / "deploy/nats/nats.conf").read_text()
    assert re.search(r"^tls \{\n  cert_file: \"/etc/nats/tls/tls.crt\"", conf, re.M)
    targets = {s["target"] for s in services["nats"]["secrets"]}
    assert {"/etc/nats/tls/tls.crt", "/etc/nats/tls/tls.key", "/etc/nats/passwords.conf"} <= targets
    for name in (*SERVICES, "streams-init"):
        env = {**services[name]["environment"]}
        assert env["NATS_URL"].startswith("tls://"), name
        assert env["NATS_TLS_CA_FILE"] == "/run/secrets/nats_ca", name
    published = {
        name: service["ports"] for name, service in services.items() if service.get("ports")
    }
    assert set(published) == {"nats", "proxy", "gateway-tls"}, (
        "only NATS and the two TLS proxies (people; trusts' systems) are published"
    )
    gateway_caddy = (ROOT / "deploy/gateway/Caddyfile").read_text()
    assert "tls /run/secrets/gateway_tls_cert /run/secrets/gateway_tls_key" in gateway_caddy
    assert published["gateway-tls"] == ["${GATEWAY_HTTPS_PORT:-443}:9443"]
    caddy = (ROOT / "deploy/caddy/Caddyfile").read_text()
    assert "tls /run/secrets/tls.crt /run/secrets/tls.key" in caddy
    assert re.findall(r"^(\S+) \{", caddy, re.M) == [":8443"], "one site, TLS only"
    for path in ("/prometheus/*", "/mailpit/*"):
        block = caddy.split(f"handle {path} {{")[1].split("reverse_proxy")[0]
        assert "basic_auth" in block and "{$PROXY_PASSWORD_HASH}" in block, path
    assert "--web.external-url=/prometheus/" in services["prometheus"]["command"]
    assert services["mailpit"]["environment"]["MP_WEBROOT"] == "/mailpit/"


def test_compose_runs_the_nats_server_release_the_tests_run(compose: dict[str, Any]) -> None:
    version = subprocess.run(
        [find_binary("nats-server"), "--version"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    tested = re.search(r"v(\d+\.\d+\.\d+)", version)
    assert tested, version
    assert compose["services"]["nats"]["image"] == f"nats:{tested.group(1)}-alpine"


def _ignored(folder: Path) -> set[str]:
    """Files git ignores in `folder` (real secrets an operator created locally)."""
    git = shutil.which("git")
    if git is None:
        return set()
    out = subprocess.run(
        [git, "status", "--ignored", "--porcelain", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {Path(line[3:]).name for line in out.splitlines() if line.startswith("!!")}
