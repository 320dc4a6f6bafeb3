"""The clinical risk management file as data: docs/safety/hazard-log.yaml, the DCB0129 risk
matrix, and the safety case generated from them (docs/safety/safety-case.md).

`python -m ibest.safety` rewrites the safety case; `python -m ibest.safety --check` fails
when the committed one is stale. tests/governance/test_hazard_log.py checks the log itself
(every hazard controlled, every named test collected, every risk read from the matrix).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
HAZARD_LOG = ROOT / "docs" / "safety" / "hazard-log.yaml"
SAFETY_CASE = ROOT / "docs" / "safety" / "safety-case.md"

SEVERITIES = ("minor", "significant", "considerable", "major", "catastrophic")
LIKELIHOODS = ("very low", "low", "medium", "high", "very high")
MATRIX: dict[str, tuple[int, int, int, int, int]] = {
    # likelihood: risk for minor, significant, considerable, major, catastrophic (DCB0129)
    "very high": (3, 4, 4, 5, 5),
    "high": (2, 3, 3, 4, 5),
    "medium": (2, 2, 3, 3, 4),
    "low": (1, 2, 2, 3, 4),
    "very low": (1, 1, 2, 2, 3),
}
RISK_MEANING = {
    1: "acceptable",
    2: "acceptable where further reduction is impractical",
    3: "undesirable: accepted only with the clinical safety officer's agreement",
    4: "unacceptable",
    5: "unacceptable",
}


def risk(severity: str, likelihood: str) -> int:
    """The DCB0129 risk rating (1 to 5) of a severity and a likelihood."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    if likelihood not in MATRIX:
        raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}")
    return MATRIX[likelihood][SEVERITIES.index(severity)]


@dataclass(frozen=True)
class Rating:
    severity: str
    likelihood: str
    risk: int

    @property
    def computed(self) -> int:
        return risk(self.severity, self.likelihood)


def rating(raw: dict[str, Any]) -> Rating:
    return Rating(str(raw["severity"]), str(raw["likelihood"]), int(raw["risk"]))


def load(path: Path = HAZARD_LOG) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(log: dict[str, Any]) -> str:
    """The safety case: what the hazard log says, for a clinical safety officer to read."""
    hazards: list[dict[str, Any]] = log["hazards"]
    out = [
        "# Clinical safety case (generated from hazard-log.yaml: do not edit by hand)",
        "",
        "Regenerate with `python -m ibest.safety`; CI fails when this file is stale",
        "(`tests/governance/test_hazard_log.py`).",
        "",
        _cell(log["scope"]),
        "",
        "## Claim",
        "",
        _cell(log["claim"]),
        "",
        "## Risk matrix (DCB0129)",
        "",
        "| likelihood \\ severity | " + " | ".join(SEVERITIES) + " |",
        "|---|" + "---|" * len(SEVERITIES),
    ]
    for likelihood in reversed(LIKELIHOODS):
        out.append(f"| {likelihood} | " + " | ".join(str(r) for r in MATRIX[likelihood]) + " |")
    out += [
        "",
        "Risk: " + "; ".join(f"{k} {v}" for k, v in RISK_MEANING.items()) + ".",
        "",
        "## Hazards",
        "",
        "| id | hazard | initial risk | residual risk | controls |",
        "|---|---|---|---|---|",
    ]
    for h in hazards:
        initial, residual = rating(h["initial"]), rating(h["residual"])
        out.append(
            f"| {h['id']} | {_cell(h['title'])} | {initial.risk} ({initial.severity}, "
            f"{initial.likelihood}) | {residual.risk} ({residual.severity}, "
            f"{residual.likelihood}) | {len(h['controls'])} |"
        )
    for h in hazards:
        out += [
            "",
            f"### {h['id']}: {_cell(h['title'])}",
            "",
            f"- **Causes:** {'; '.join(_cell(c) for c in h['causes'])}",
            f"- **Effect:** {_cell(h['effect'])}",
            f"- **Harm:** {_cell(h['harm'])}",
        ]
        if h.get("decision"):
            out.append(f"- **Decision:** {_cell(h['decision'])}")
        if h.get("residual_note"):
            out.append(f"- **Residual:** {_cell(h['residual_note'])}")
        out.append("- **Controls:**")
        for c in h["controls"]:
            evidence = [f"`{t}`" for t in c.get("tests", [])]
            evidence += [
                f"`{k['file']}`" + (f" (`{k['setting']}`)" if k.get("setting") else "")
                for k in c.get("config", [])
            ]
            out.append(f"  - {_cell(c['control'])} Evidence: {', '.join(evidence)}.")
        for todo in h.get("todo", []):
            out.append(f"  - To do: {_cell(todo)}")
    out += ["", "## Residual risk", "", _cell(log["conclusion"]), ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = render(load())
    if "--check" in argv:
        if SAFETY_CASE.read_text() != text:
            print(f"{SAFETY_CASE} is stale: run python -m ibest.safety", file=sys.stderr)
            return 1
        return 0
    SAFETY_CASE.write_text(text)
    print(f"wrote {SAFETY_CASE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
