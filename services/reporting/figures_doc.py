"""docs/figures.md, generated from the figure definitions (domain/figure_definitions.py).

`python -m services.reporting.figures_doc` rewrites it; `--check` fails when it is stale
(CI and tests/reporting/test_figure_definitions.py). The OpenAPI descriptions take their
glossary from here too, so the API, the docs and the dashboards say the same thing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.reporting.domain.figure_definitions import FIGURES, SECTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "figures.md"
DOC_LINK = "docs/figures.md"


def render() -> str:
    """The whole of docs/figures.md."""
    lines = [
        "# Figures: what each published number means",
        "",
        "Generated from `services/reporting/domain/figure_definitions.py` by "
        "`python -m services.reporting.figures_doc`; do not edit by hand.",
        "The reporting API, its CSVs, `/metrics` (as `ibest_<name>`), the Grafana dashboards "
        "and the monthly report pack use these names, labels and definitions.",
        "",
        "Rates and shares are fractions from 0 to 1 (3 places); means have 2 places. "
        "National figures are exact; below national level every figure is published under "
        "NHS disclosure control (0 stays 0, 1 to 7 is `*`, other counts rounded to 5; a "
        "rate or mean over 1 to 7 people is `*`).",
        "",
    ]
    for section in SECTIONS:
        lines += [f"## {section}", ""]
        for d in FIGURES.values():
            if d.section != section:
                continue
            lines += [
                f"### {d.name}",
                "",
                f"**{d.label}** ({d.unit.value}; {d.direction}).",
                "",
                d.definition,
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def glossary() -> str:
    """One line per figure for the OpenAPI descriptions."""
    return "\n".join(
        f"- `{d.name}`: {d.label} ({d.unit.value}; {d.direction}). {d.definition}"
        for d in FIGURES.values()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/figures.md")
    parser.add_argument("--check", action="store_true", help="fail if docs/figures.md is stale")
    args = parser.parse_args(argv)
    current = DOC.read_text() if DOC.exists() else ""
    if current == render():
        return 0
    if args.check:
        print(f"{DOC} is stale: run python -m services.reporting.figures_doc", file=sys.stderr)
        return 1
    DOC.write_text(render())
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
