"""docs/configuration.md lists every IBEST_* setting the code reads: every settings class's
environment names (pydantic aliases), every direct read of the environment, and each
declared service's `IBEST_<NAME>_PORT` (read through the registry, `ports_from`)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from pydantic_settings import BaseSettings

from ibest import registry

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULES = (
    "ibest.backbone.settings",
    "services.enrolment.settings",
    "services.outcomes.settings",
    "services.notifications.settings",
    "services.reporting.settings",
    "services.gateway.settings",
    "services.gateway.courses.settings",
    "services.forms.settings",
)
CODE = ("shared", "ibest", "services", "deploy")
DIRECT = re.compile(r"""(?:environ\.get\(|environ\[|getenv\()\s*["'](IBEST_[A-Z0-9_]+)["']""")


def settings_names() -> set[str]:
    names: set[str] = set()
    for module in SETTINGS_MODULES:
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, type) and issubclass(value, BaseSettings):
                for field in value.model_fields.values():
                    if field.alias and field.alias.startswith("IBEST_"):
                        names.add(field.alias)
    return names


def direct_names() -> set[str]:
    return {
        name
        for top in CODE
        for path in (ROOT / top).rglob("*.py")
        for name in DIRECT.findall(path.read_text())
    }


def test_every_ibest_setting_the_code_reads_is_documented() -> None:
    documented = set(
        re.findall(r"`(IBEST_[A-Z0-9_]+)`", (ROOT / "docs/configuration.md").read_text())
    )
    ports = {f"IBEST_{name.upper()}_PORT" for name in registry.names()}
    read = settings_names() | direct_names() | ports
    assert len(read) > 80 and {"IBEST_GATEWAY_PORT", "IBEST_LOG_LEVEL"} <= read
    assert sorted(read - documented) == []
