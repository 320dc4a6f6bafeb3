"""The dashboards speak English: every panel has a title in words, a description, a unit and
links to its figures' definitions; no visible label is a raw field or metric name; trusts
are named from deploy/trusts.yaml; every dashboard shows "data as of" and links to the
others. Checked on the generated JSON (what Grafana loads)."""

from __future__ import annotations

import json
import re
from typing import Any

from deploy.grafana.generate import DASHBOARDS, OUT
from deploy.grafana.words import DOCS_VARIABLE
from services.reporting.domain.figure_definitions import FIGURES

RAW_NAME = re.compile(r"[a-z0-9]+_[a-z0-9_]+")
"""What a field or metric name looks like (`followup_rate_month_3`, `outside_99_8`)."""
TEMPLATE = re.compile(r"\{\{[a-z_]+\}\}|\$\{[a-z_]+(:text)?\}|\$[a-z_]+")
"""Grafana's own placeholders, filled in with words (or a code) when shown."""


def boards() -> dict[str, dict[str, Any]]:
    return {name: json.loads((OUT / f"{name}.json").read_text()) for name in DASHBOARDS}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def visible(text: str) -> str:
    return TEMPLATE.sub("", text)


def labels_of(panel: dict[str, Any]) -> list[str]:
    """Every label a reader sees: legends, Infinity columns, renamed table columns."""
    found = [t.get("legendFormat", "") for t in panel.get("targets", [])]
    found += [c["text"] for t in panel.get("targets", []) for c in t.get("columns", [])]
    for transformation in panel.get("transformations", []):
        found += list(transformation["options"].get("renameByName", {}).values())
    return found


def test_every_panel_is_titled_in_words_described_and_has_a_unit() -> None:
    for name, board in boards().items():
        for panel in panels(board):
            title = panel["title"]
            where = f"{name}: {title}"
            assert " " in title and not RAW_NAME.search(visible(title)), where
            assert len(panel.get("description", "")) > 20, where
            assert "domain.md" not in panel["description"], where  # not in the repository
            assert panel["fieldConfig"]["defaults"].get("unit"), where
            for label in labels_of(panel):
                assert not RAW_NAME.search(visible(label)), (where, label)


def test_no_table_shows_prometheus_internals() -> None:
    for name, board in boards().items():
        for panel in panels(board):
            prometheus = [
                t
                for t in panel.get("targets", [])
                if t.get("format") == "table" and t["datasource"]["type"] == "prometheus"
            ]
            if panel["type"] != "table" or not prometheus:
                continue
            organize = [t for t in panel["transformations"] if t["id"] == "organize"]
            assert organize, (name, panel["title"])
            hidden = organize[0]["options"]["excludeByName"]
            assert hidden.get("__name__") and hidden.get("Time"), (name, panel["title"])


def test_programme_panels_link_to_their_definitions_and_trusts_are_named() -> None:
    linked = 0
    for name, board in boards().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert DOCS_VARIABLE in variables, name
        assert any(link["type"] == "dashboards" for link in board["links"]), name
        assert panels(board)[0]["title"] == "Data as of", name
        if name == "ibest-operations":
            continue
        for panel in panels(board)[1:]:
            links = panel.get("links", [])
            assert links, (name, panel["title"])
            for link in links:
                anchor = link["url"].removeprefix(f"${{{DOCS_VARIABLE}}}#")
                assert anchor in {d.anchor for d in FIGURES.values()}, link
                linked += 1
        if "trust" in variables:
            assert "Oxford University Hospitals (RTH) : RTH" in variables["trust"]["query"], name
    assert linked > 50
    national = boards()["ibest-national"]
    by_trust = next(p for p in panels(national) if p["title"].startswith("Clinicians completed by"))
    names = {
        o["matcher"]["options"]: o["properties"][0]["value"]
        for o in by_trust["fieldConfig"]["overrides"]
    }
    assert names["RTH"] == "Oxford University Hospitals (RTH)"
    assert any(p["title"].startswith("Trusts: league table") for p in panels(national))
    drill = boards()["ibest-trust-site"]
    assert any(p["title"].startswith("Sites of the trust") for p in panels(drill))


def test_one_measure_per_axis() -> None:
    """A chart's figures share one unit: its queries read figures of one kind."""
    for name, board in boards().items():
        for panel in panels(board):
            if panel["type"] != "timeseries":
                continue
            # a ratio of two counts (`a / b`) is a fraction, whatever it divides
            exprs = [t.get("expr", "") for t in panel["targets"] if " / " not in t.get("expr", "")]
            columns = [c["selector"] for t in panel["targets"] for c in t.get("columns", [])]
            names = re.findall(r"ibest_([a-z0-9_]+)\{", " ".join(exprs)) + [
                c for c in columns if c != "month"
            ]
            units = {FIGURES[n].unit for n in names if n in FIGURES}
            assert len(units) <= 1, (name, panel["title"], units)
