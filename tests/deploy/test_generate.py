"""`python -m deploy.generate`: the one command after adding a service (issue 27).

The committed files are what it generates; a service added to the registry yields its
compose entry, proxy route, scrape target, MongoDB user, NATS user and secrets, in files
that docker compose's schema and promtool accept; `--check` fails, with a diff, until then.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import declared, derived, generate, service_extras
from deploy.sections import SectionError, replace_section
from ibest import registry
from ibest.backbone.declaration import ServiceDeclaration
from ibest.local.processes import find_binary

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ServiceDeclaration(
    name="sample", port=8099, consumes=("clinician.enrolled",), proxy_path="/sample"
)
"""A throwaway service with an HTTP API behind the people's proxy."""
INPUTS = (
    "docker-compose.yml",
    ".env.example",
    "deploy/mongo/create-users.js",
    "deploy/prometheus/prometheus.yml",
    "deploy/caddy/Caddyfile",
    "deploy/gateway/Caddyfile",
    "deploy/nats/nats.conf",
    "deploy/trusts.yaml",
    "deploy/services",
)


def _copy(root: Path) -> Path:
    """The files the generator reads and writes, copied under `root`."""
    for path in INPUTS:
        source, target = ROOT / path, root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)
    return root


def test_the_committed_deployment_files_are_the_generated_ones() -> None:
    assert generate.stale() == "", "stale: run python -m deploy.generate"
    assert declared.problems() == []
    assert generate.main(["--check"]) == 0
    assert ".venv/bin/python -m deploy.generate --check" in (ROOT / ".ci" / "run").read_text()


def test_a_service_added_to_the_registry_gets_every_deployment_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy(tmp_path / "checkout")
    monkeypatch.setattr(registry, "SERVICES", (*registry.SERVICES, SAMPLE))
    assert generate.main(["--check", "--root", str(root)]) == 1
    diff = capsys.readouterr().out
    for stale in (
        "docker-compose.yml",
        "deploy/mongo/create-users.js",
        "deploy/prometheus/prometheus.yml",
        "deploy/caddy/Caddyfile",
        "deploy/nats/nats.conf",
    ):
        assert f"+++ b/{stale}" in diff, f"{stale} is not reported stale"
    assert "+  sample:\n" in diff and "+          - sample:8099\n" in diff

    assert generate.main(["--root", str(root)]) == 0
    assert generate.main(["--check", "--root", str(root)]) == 0
    compose: dict[str, Any] = yaml.safe_load((root / "docker-compose.yml").read_text())
    entry = compose["services"]["sample"]
    assert entry["command"] == ["python", "-m", "services.sample"]
    assert entry["environment"]["NATS_USER"] == "sample"
    assert entry["environment"]["MONGODB_USERNAME"] == "ibest-sample"
    assert entry["environment"]["NATS_URL"].startswith("tls://")  # the shared settings
    assert {"source": "nats_password_sample", "target": "nats_password"} in entry["secrets"]
    assert {"source": "mongo_password_sample", "target": "mongo_password"} in entry["secrets"]
    assert "nats_ca" in entry["secrets"] and "platform_id_key" in entry["secrets"]
    assert "127.0.0.1:8099/readyz" in " ".join(entry["healthcheck"]["test"])
    assert entry["depends_on"]["mongo-init"]["condition"] == "service_completed_successfully"
    assert entry["cap_drop"] == ["ALL"] and entry["read_only"] is True
    assert "mongo_password_sample" in compose["services"]["mongo-init"]["secrets"]
    for secret in ("nats_password_sample", "mongo_password_sample"):
        assert compose["secrets"][secret] == {"file": f"./deploy/secrets/{secret}"}
    users = (root / "deploy/mongo/create-users.js").read_text()
    assert '"forms", "sample"];' in users
    prometheus = yaml.safe_load((root / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "ibest-services")
    assert job["static_configs"][0]["targets"][-1] == "sample:8099"
    caddy = (root / "deploy/caddy/Caddyfile").read_text()
    assert "handle_path /sample/* {\n\t\treverse_proxy sample:8099\n\t}" in caddy
    assert caddy.index("handle /sample/metrics* {") < caddy.index("handle_path /sample/*")
    assert 'user: "sample"' in (root / "deploy/nats/nats.conf").read_text()
    secrets = root / "deploy" / "secrets"
    assert (secrets / "nats_password_sample").read_text().strip()
    assert (secrets / "mongo_password_sample").read_text().strip()
    assert "NATS_PASSWORD_SAMPLE" in (secrets / "nats_passwords.conf").read_text()

    # The generated files stay valid: the compose-spec schema, promtool.
    for argv in (
        [
            find_binary("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(root / "docker-compose.yml"),
        ],
        [
            shutil.which("promtool") or "promtool",
            "check",
            "config",
            "--syntax-only",
            str(root / "deploy/prometheus/prometheus.yml"),
        ],
    ):
        run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 0, run.stdout + run.stderr


def test_a_port_changed_in_a_declaration_is_stale_everywhere_it_is_written() -> None:
    moved = [
        replace(s, port=s.port + 100) if s.name in {"reporting", "gateway"} else s
        for s in registry.SERVICES
    ]
    diff = generate.stale(services=moved)
    assert "+          - reporting:8104" in diff and "+          - gateway:8105" in diff
    assert "+\t\treverse_proxy reporting:8104" in diff
    assert "urlopen('http://127.0.0.1:8104/readyz'" in diff
    # the gateway's TLS front is written by hand: the check names it
    assert "Caddy routes to gateway:8005, not its port 8105" in declared.problems(moved)


def test_an_extras_file_the_generator_cannot_use_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sample.yml").write_text("environment:\n  NATS_USER: someone-else\n")
    with pytest.raises(service_extras.ExtrasError, match="NATS_USER"):
        service_extras.load("sample", tmp_path)
    (tmp_path / "sample.yml").write_text("environment: {IBEST_X: y}\n")
    with pytest.raises(service_extras.ExtrasError, match="block mapping"):
        service_extras.load("sample", tmp_path)
    (tmp_path / "sample.yml").write_text("ports: ['8099:8099']\n")
    with pytest.raises(service_extras.ExtrasError, match="audit_log, environment"):
        service_extras.load("sample", tmp_path)
    assert service_extras.load("absent", tmp_path) == service_extras.ServiceExtras()


def test_a_file_without_its_markers_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SectionError, match="BEGIN GENERATED routes"):
        replace_section("handle {\n}\n", "routes", ["x"], "deploy/caddy/Caddyfile")
    root = _copy(tmp_path / "checkout")
    caddyfile = root / "deploy/caddy/Caddyfile"
    caddyfile.write_text(caddyfile.read_text().replace("END GENERATED routes", "END"))
    assert generate.main(["--check", "--root", str(root)]) == 2
    assert "deploy/caddy/Caddyfile: needs exactly one" in capsys.readouterr().err
    text = "a\n# BEGIN GENERATED s (tool)\nold\n# END GENERATED s\nb\n"
    assert replace_section(text, "s", ["new"], "f") == (
        "a\n# BEGIN GENERATED s (tool)\nnew\n# END GENERATED s\nb\n"
    )


def test_a_generated_entry_that_does_not_read_back_as_declared_is_refused() -> None:
    extras = {s.name: service_extras.load(s.name) for s in registry.SERVICES}
    text = generate.expected()["docker-compose.yml"]
    generate.verify_compose(text, registry.SERVICES, extras)
    for broken in (
        text.replace("IBEST_SMTP_HOST: mailpit", "IBEST_SMTP_HOST: elsewhere"),
        text.replace("      - forms_id_key\n", ""),
        text.replace("\n  forms:\n", "\n  forms:\n    <<: *service\n  forms:\n", 1),
    ):
        with pytest.raises(generate.GenerationError):
            generate.verify_compose(broken, registry.SERVICES, extras)


def test_an_extras_block_keeps_its_comments_at_any_indent(tmp_path: Path) -> None:
    (tmp_path / "sample.yml").write_text(
        "environment:\n# why X\n    IBEST_X: x\n      # why Y\n    IBEST_Y: y\n# the secrets\n"
        "secrets: [sample_key]\n"
    )
    loaded = service_extras.load("sample", tmp_path)
    assert loaded.environment == (
        "# why X",
        "IBEST_X: x",
        "  # why Y",
        "IBEST_Y: y",
        "# the secrets",
    )
    entry = "\n".join(derived.compose_service(SAMPLE, loaded))
    anchors = "x: &service {}\nx-env: &service-env {}\nx-health: &service-health {}\n"
    parsed = yaml.safe_load(f"{anchors}services:\n{entry}\n")
    assert parsed["services"]["sample"]["environment"] == {
        "NATS_USER": "sample",
        "MONGODB_USERNAME": "ibest-sample",
        "IBEST_X": "x",
        "IBEST_Y": "y",
    }
    assert "sample_key" in parsed["services"]["sample"]["secrets"]
