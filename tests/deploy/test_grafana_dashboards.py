"""The committed dashboards are exactly what deploy/grafana/generate.py produces."""

from __future__ import annotations

import json
from pathlib import Path

from deploy.grafana.generate import DASHBOARDS, OUT, render

ROOT = Path(__file__).resolve().parents[2]


def test_committed_dashboards_equal_a_fresh_generation() -> None:
    assert sorted(p.stem for p in OUT.glob("*.json")) == sorted(DASHBOARDS)
    for name in DASHBOARDS:
        assert (OUT / f"{name}.json").read_text() == render(name), (
            f"{name}.json is out of date: run python -m deploy.grafana.generate"
        )


def test_uids_are_fixed_and_queries_use_the_provisioned_datasource() -> None:
    datasource = (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    assert "uid: prometheus" in datasource
    for name in DASHBOARDS:
        board = json.loads((OUT / f"{name}.json").read_text())
        assert board["uid"] == name
        targets = [t for p in board["panels"] for t in p.get("targets", [])]
        assert targets
        # Prometheus for operations and scraped figures; the reporting API through the
        # Infinity plugin for months and comparisons (test_grafana_infinity.py).
        assert all(
            t["datasource"]
            in (
                {"type": "prometheus", "uid": "prometheus"},
                {"type": "yesoreyeram-infinity-datasource", "uid": "reporting"},
            )
            for t in targets
        )


def test_drilldown_has_trust_and_site_variables() -> None:
    board = json.loads((OUT / "ibest-trust-site.json").read_text())
    assert [v["name"] for v in board["templating"]["list"]] == ["figures_doc", "trust", "site"]
    place = [p for p in board["panels"] if p["title"] not in ("Data as of",)]
    exprs = [t["expr"] for p in place for t in p.get("targets", [])]
    assert all("$trust" in e for e in exprs)
    sites = [p for p in place if p["title"].startswith("Sites of the trust")]
    assert all("$site" in t["expr"] for p in place if p not in sites for t in p.get("targets", []))


def test_national_overview_covers_the_issue() -> None:
    board = json.loads((OUT / "ibest-national.json").read_text())
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    for metric in (
        "ibest_clinicians_enrolled",
        "ibest_clinicians_started",
        "ibest_clinicians_completed",
        "ibest_clinicians_intending",
        "ibest_clinicians_delivering",
        "ibest_sites_running_classes",
        "ibest_patients_month_3",
        "ibest_followup_rate_month_12",
        "ibest_outcome_improved_share",
    ):
        assert f'{metric}{{trust=""' in exprs, metric


def test_is_it_working_shows_the_trials_band_and_every_figure() -> None:
    from services.reporting.domain.trial import BEST_TRIAL

    board = json.loads((OUT / "ibest-working.json").read_text())
    panels = {p["title"]: p for p in board["panels"] if p["type"] != "row"}
    exprs = " ".join(t["expr"] for p in panels.values() for t in p.get("targets", []))
    for metric in (
        "ibest_rmdq_improvement_month_12",
        "ibest_rmdq_improvement_ci_low_month_12",
        "ibest_rmdq_improvement_ci_high_month_12",
        "ibest_rmdq_followup_completeness_month_12",
        "ibest_rmdq_followup_completeness_month_3",
        "ibest_sites_sustained_6_months",
        "ibest_sites_eligible_12_months",
        "ibest_sites_sustained_rate_12_months",
        "ibest_clinicians_facilitating",
        "ibest_clinicians_delivering",
    ):
        assert f'{metric}{{trust=""' in exprs, metric
    assert 'ibest_rmdq_improvement_month_12{trust!="", site=""}' in exprs
    assert 'ibest_rmdq_vs_trial_month_12{trust!="", site=""} == 1' in exprs
    trial = BEST_TRIAL.rmdq_improvement
    by_trust = panels["RMDQ improvement at 12 months by trust, with 95% CI"]
    assert by_trust["fieldConfig"]["defaults"]["unit"] == "none"
    steps = by_trust["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, trial.low, trial.high]
    completeness = panels["12-month completeness by trust"]
    assert completeness["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == 0.85
