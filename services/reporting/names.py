"""Trust names for people to read, from deploy/trusts.yaml (the one list of trusts).

The reports, the monthly pack and the dashboards name a trust as "Oxford University
Hospitals (RTH)" rather than by its code alone. The service image carries the file
(Dockerfile); `IBEST_REPORTING_TRUSTS_FILE` points elsewhere. A trust missing from the file
is shown by its code: the figures never depend on names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_TRUSTS_FILE = Path(__file__).resolve().parents[2] / "deploy" / "trusts.yaml"


@dataclass(frozen=True)
class Names:
    """Trust code -> name."""

    trusts: dict[str, str] = field(default_factory=dict)

    def trust(self, code: str) -> str:
        return self.trusts.get(code, code)

    def trust_with_code(self, code: str) -> str:
        name = self.trusts.get(code)
        return f"{name} ({code})" if name else code


def load_names(path: Path | None = None) -> Names:
    """Read the trusts file; a missing file gives no names (codes are shown)."""
    path = path or DEFAULT_TRUSTS_FILE
    if not path.exists():
        return Names()
    raw = yaml.safe_load(path.read_text()) or {}
    return Names({str(t["code"]): str(t["name"]) for t in raw.get("trusts", [])})
