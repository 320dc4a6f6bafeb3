"""The trusts and sites of the rollout, read from deploy/trusts.yaml (the one list).

The NATS permission generator and the simulator both read it, so a trust added there gets
its publisher user and appears in demo data with no other change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from shared.identifiers import SITE_CODE_PATTERN, TRUST_CODE_PATTERN

DEFAULT_TRUSTS_FILE = Path(__file__).resolve().parents[2] / "deploy" / "trusts.yaml"


@dataclass(frozen=True)
class Trust:
    code: str
    name: str
    sites: tuple[str, ...]


def load_trusts(path: Path = DEFAULT_TRUSTS_FILE) -> list[Trust]:
    """Parse and check the trusts file: ODS-shaped codes, sites that begin with their trust."""
    raw = yaml.safe_load(path.read_text())
    trusts: list[Trust] = []
    seen: set[str] = set()
    for entry in raw["trusts"]:
        code = str(entry["code"])
        sites = tuple(str(s) for s in entry["sites"])
        if not re.fullmatch(TRUST_CODE_PATTERN, code):
            raise ValueError(f"{path}: trust code {code!r} is not 3 letters or digits")
        if code in seen:
            raise ValueError(f"{path}: trust {code} is listed twice")
        seen.add(code)
        if not sites:
            raise ValueError(f"{path}: trust {code} has no sites")
        for site in sites:
            if not re.fullmatch(SITE_CODE_PATTERN, site) or not site.startswith(code):
                raise ValueError(f"{path}: site {site!r} must be 5 characters beginning {code}")
        trusts.append(Trust(code, str(entry["name"]), sites))
    return trusts
