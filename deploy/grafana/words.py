"""What the dashboards say to people, from the one source of each word.

Figure labels, units and definitions come from services/reporting/domain/figure_definitions.py
(the same source as docs/figures.md, the API's OpenAPI and the monthly pack); trust names
from deploy/trusts.yaml. Every panel is described in words, links to its figures'
definitions, and shows trusts by name.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models.dashboard import (
    DashboardLink,
    DashboardLinkType,
    DynamicConfigValue,
    MatcherConfig,
    ValueMap,
    ValueMappingResult,
)

from services.reporting.domain.figure_definitions import definition_of, label_of
from services.reporting.names import load_names
from shared.events import Profession
from shared.measures import MEASURES

NAMES = load_names()
"""deploy/trusts.yaml's trust names, by code."""
DOCS_VARIABLE = "figures_doc"
"""A hidden constant on every dashboard: where docs/figures.md is published. Panel links
append each figure's anchor; an operator sets it (deploy/README.md, "Dashboards")."""
DOCS_DEFAULT = "/public/ibest/figures.html"
SUPPRESSED_TEXT = "suppressed (1 to 7)"
MEASURE_WORDS = {
    m.value: spec.title.split(" (")[0].replace(",", "") for m, spec in MEASURES.items()
}
"""Measures in words, without commas (a dropdown's options are comma-separated)."""
TIMEPOINT_WORDS = {"group_end": "group end", "month_3": "3 months", "month_12": "12 months"}
PROFESSION_WORDS = {p.value: p.value.replace("_", " ").capitalize() for p in Profession}
STAGE_WORDS = {
    "enrolled": "Enrolled",
    "started": "Started",
    "completed": "Completed",
    "intending": "Intending to deliver",
    "delivering": "Delivering",
}


def trust_name(code: str) -> str:
    return NAMES.trust_with_code(code)


def describe(*figures: str, note: str = "") -> str:
    """A panel's description: each figure's label and definition, then any note."""
    parts = [f"{label_of(f)}: {definition_of(f).definition}" for f in dict.fromkeys(figures)]
    return " ".join([*parts, note]).strip()


def unit_of(figure: str) -> str:
    return definition_of(figure).grafana_unit


def figure_links(*figures: str) -> list[cogbuilder.Builder[DashboardLink]]:
    """A link per figure to its definition in docs/figures.md."""
    return [
        db.DashboardLink(f"Definition: {label_of(f)}")
        .type(DashboardLinkType.LINK)
        .url(f"${{{DOCS_VARIABLE}}}#{definition_of(f).anchor}")
        .target_blank(True)
        for f in dict.fromkeys(figures)
    ]


def docs_variable() -> db.ConstantVariable:
    return (
        db.ConstantVariable(DOCS_VARIABLE)
        .label("Where the figure definitions are published")
        .value(DOCS_DEFAULT)
    )


def dashboard_links() -> db.DashboardLink:
    """Every iBeST dashboard, one menu away from each other."""
    return (
        db.DashboardLink("iBeST dashboards")
        .type(DashboardLinkType.DASHBOARDS)
        .tags(["ibest"])
        .as_dropdown(True)
        .keep_time(True)
        .include_vars(False)
    )


def value_words() -> list[Any]:
    """Value mappings for tables: `*`, trust codes, measures, timepoints, professions and
    stages in words."""
    words: dict[str, str] = {"*": SUPPRESSED_TEXT}
    words.update({code: trust_name(code) for code in NAMES.trusts})
    words.update(MEASURE_WORDS)
    words.update(TIMEPOINT_WORDS)
    words.update(PROFESSION_WORDS)
    words.update(STAGE_WORDS)
    return [ValueMap({k: ValueMappingResult(text=v) for k, v in words.items()})]


def trust_series_names() -> list[tuple[MatcherConfig, list[DynamicConfigValue]]]:
    """Overrides naming each trust's series (legend `{{trust}}` gives its code)."""
    return [
        (MatcherConfig("byName", code), [DynamicConfigValue("displayName", trust_name(code))])
        for code in NAMES.trusts
    ]


def trust_choices() -> str:
    """A custom variable's values, `name : code`: the dropdown shows names."""
    return ",".join(f"{trust_name(code)} : {code}" for code in NAMES.trusts)
