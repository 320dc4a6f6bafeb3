"""Grafana dashboards as code (grafana-foundation-sdk, pinned to the Grafana 11.6 line).

Run `python -m deploy.grafana.generate` to rewrite deploy/grafana/dashboards/*.json; CI checks
the committed files equal a fresh generation. Uids are fixed so links and bookmarks survive.
Metric names: docs/architecture.md, "Prometheus names". National series have no `trust`
label, trust series no `site` label, so `{trust=""}` selects national figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as gcommon
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphThresholdsStyleMode
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from deploy.grafana import infinity
from services.reporting.domain.trial import BEST_TRIAL

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
STAGES = ("enrolled", "started", "completed", "intending", "delivering")
FOLLOW_UPS = ("month_3", "month_12")
SURVEYS = ("month_4", "month_12")
MEASURES = ("rmdq", "pain_nrs", "von_korff_pain", "von_korff_disability", "psfs", "pseq")
NATIONAL = 'trust=""'
PLACE = 'trust="$trust", site=~"$site"'
"""The drill-down selector; the site variable's "All" is `^$`, the trust's own series."""


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    return q.legend_format(legend) if legend else q


def trend(
    title: str, queries: list[Any], unit: str = "short", width: int = 12, description: str = ""
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(8)
        .span(width)
        .targets(queries)
    )
    return panel.description(description) if description else panel


def number(
    title: str, expr: str, unit: str = "short", width: int = 4, decimals: int = 0
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .decimals(decimals)
        .height(4)
        .span(width)
        .with_target(query(expr))
    )


def stages(selector: str) -> list[prometheus.Dataquery]:
    return [
        query(f"ibest_clinicians_{s}{{{selector}}}", s, chr(65 + i)) for i, s in enumerate(STAGES)
    ]


Panel = timeseries.Panel | stat.Panel | table.Panel


class Section:
    """A titled row and the panels beneath it (expanded, unlike a collapsed row's)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.panels: list[Panel] = []

    def with_panel(self, panel: Panel) -> Section:
        self.panels.append(panel)
        return self


def add_sections(dash: db.Dashboard, sections: list[Section]) -> db.Dashboard:
    for section in sections:
        dash.with_row(db.Row(section.title))
        for panel in section.panels:
            dash.with_panel(panel)
    return dash


def figures_rows(selector: str, place: str) -> list[Section]:
    """The programme rows shared by the national and drill-down dashboards."""
    funnel = Section("Clinician funnel").with_panel(
        trend(
            f"Clinicians by stage, {place}",
            stages(selector),
            width=16,
            description="Cumulative: every completed clinician started and enrolled.",
        )
    )
    funnel.with_panel(
        table.Panel()
        .title("By profession (latest)")
        .datasource(DATASOURCE)
        .height(8)
        .span(8)
        .with_target(
            query(f"ibest_clinicians_by_profession{{{selector}}}", "", "A")
            .instant()
            .format(PromQueryFormat.TABLE)
        )
    )
    for stage in ("enrolled", "started", "completed"):
        funnel.with_panel(number(f"Clinicians {stage}", f"ibest_clinicians_{stage}{{{selector}}}"))
    funnel.with_panel(
        number(
            "Completed of enrolled",
            f"ibest_clinicians_completed{{{selector}}} / ibest_clinicians_enrolled{{{selector}}}",
            "percentunit",
            decimals=1,
        )
    )
    classes = Section("Classes and patients").with_panel(
        trend(
            "Classes and sites running them",
            [
                query(f"ibest_classes_started{{{selector}}}", "classes started", "A"),
                query(f"ibest_sites_running_classes{{{selector}}}", "sites running classes", "B"),
            ],
        )
    )
    classes.with_panel(
        trend(
            "Patients at each timepoint",
            [
                query(f"ibest_patients_baseline{{{selector}}}", "baseline", "A"),
                *[
                    query(f"ibest_patients_{tp}{{{selector}}}", tp, chr(66 + i))
                    for i, tp in enumerate(FOLLOW_UPS)
                ],
            ],
        )
    )
    classes.with_panel(
        trend(
            "Follow-up rate (recorded over due)",
            [
                query(f"ibest_followup_rate_{tp}{{{selector}}}", tp, chr(65 + i))
                for i, tp in enumerate(FOLLOW_UPS)
            ],
            unit="percentunit",
            description="Missing follow-ups were the known weak point of earlier phases.",
        )
    )
    classes.with_panel(
        trend(
            "Follow-ups due",
            [
                query(f"ibest_followup_due_{tp}{{{selector}}}", tp, chr(65 + i))
                for i, tp in enumerate(FOLLOW_UPS)
            ],
        )
    )
    outcomes = Section("Outcomes").with_panel(
        trend(
            "Share meaningfully improved, by measure",
            [
                query(
                    f'ibest_outcome_improved_share{{{selector}, timepoint="{tp}"}}',
                    f"{{{{measure}}}} {tp}",
                    chr(65 + i),
                )
                for i, tp in enumerate(FOLLOW_UPS)
            ],
            unit="percentunit",
            description="Thresholds per measure as domain.md defines a meaningful improvement.",
        )
    )
    outcomes.with_panel(
        trend(
            "Mean change from baseline, by measure",
            [
                query(
                    f'ibest_outcome_mean_change{{{selector}, timepoint="{tp}"}}',
                    f"{{{{measure}}}} {tp}",
                    chr(65 + i),
                )
                for i, tp in enumerate(FOLLOW_UPS)
            ],
            description="Follow-up minus baseline: negative is better for RMDQ, pain and Von "
            "Korff; positive is better for PSFS and PSEQ.",
        )
    )
    outcomes.with_panel(
        table.Panel()
        .title("Patients with baseline and follow-up, by measure")
        .datasource(DATASOURCE)
        .height(8)
        .span(24)
        .with_target(
            query(f"ibest_outcome_n{{{selector}}}").instant().format(PromQueryFormat.TABLE)
        )
    )
    return [funnel, classes, outcomes, surveys_section(selector)]


def surveys_section(selector: str) -> Section:
    """Clinicians' delivery surveys at 4 and 12 months (domain.md): asked, answered,
    delivering, so "not delivering" is told apart from "not asked" and "did not reply"."""
    section = Section("Delivery surveys (4 and 12 months after completion)").with_panel(
        trend(
            "Survey response rate (answered over due)",
            [
                query(f"ibest_delivery_response_rate_{s}{{{selector}}}", s, chr(65 + i))
                for i, s in enumerate(SURVEYS)
            ],
            unit="percentunit",
            description="Completed clinicians whose survey is due (or already answered) who "
            "answered it inside its window.",
        )
    )
    section.with_panel(
        trend(
            "Surveys due, answered, delivering",
            [
                query(f"ibest_{figure}_{s}{{{selector}}}", f"{figure} {s}", chr(65 + 3 * i + j))
                for i, s in enumerate(SURVEYS)
                for j, figure in enumerate(
                    ("delivery_survey_due", "delivery_reported", "clinicians_delivering")
                )
            ],
            description="clinicians_delivering_<survey>: clinicians whose answer to that survey "
            "says they deliver BeST (clinicians_delivering counts the latest report).",
        )
    )
    return section


def national() -> db.Dashboard:
    dash = (
        db.Dashboard("iBeST national overview")
        .uid("ibest-national")
        .tags(["ibest", "programme"])
        .refresh("1m")
        .time("now-30d", "now")
        .timezone("Europe/London")
        .editable()
        .description("National figures (exact; never suppressed).")
    )
    trusts = Section("Trusts").with_panel(
        trend(
            "Clinicians completed by trust (disclosure-controlled)",
            [query('ibest_clinicians_completed{trust!="", site=""}', "{{trust}}")],
            width=24,
        )
    )
    return add_sections(dash, [*figures_rows(NATIONAL, "England"), trusts])


def drilldown() -> db.Dashboard:
    dash = (
        db.Dashboard("iBeST trust and site")
        .uid("ibest-trust-site")
        .tags(["ibest", "programme"])
        .refresh("1m")
        .time("now-30d", "now")
        .timezone("Europe/London")
        .editable()
        .description(
            "One trust, or one of its sites. Counts of 1 to 7 are suppressed "
            "and others rounded to 5 (NHS disclosure control)."
        )
    )
    dash.with_variable(
        db.QueryVariable("trust")
        .label("Trust")
        .datasource(DATASOURCE)
        .query('label_values(ibest_clinicians_enrolled{trust!=""}, trust)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )
    dash.with_variable(
        db.QueryVariable("site")
        .label("Site (All: the whole trust)")
        .datasource(DATASOURCE)
        .query('label_values(ibest_clinicians_enrolled{trust="$trust"}, site)')
        .include_all(True)
        .all_value("^$")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )
    return add_sections(dash, figures_rows(PLACE, "$trust $site"))


def operations() -> db.Dashboard:
    dash = (
        db.Dashboard("iBeST operations")
        .uid("ibest-operations")
        .tags(["ibest", "operations"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("Europe/London")
        .editable()
        .description(
            "Events in and out per service, errors, dead letters, lag, latency "
            "and freshness. Alerts: deploy/prometheus/rules/ibest.yml."
        )
    )
    flow = Section("Event flow").with_panel(
        trend(
            "Events consumed per second",
            [query("ibest:events_consumed:rate5m", "{{service}}")],
            unit="ops",
        )
    )
    flow.with_panel(
        trend(
            "Events published per second",
            [query("ibest:events_published:rate5m", "{{service}}")],
            unit="ops",
        )
    )
    flow.with_panel(
        trend("Services up", [query('up{job="ibest-services"}', "{{component}}")], width=24)
    )
    errors = Section("Errors").with_panel(
        trend(
            "Handler error ratio",
            [query("ibest:handler_error_ratio:rate5m", "{{service}}")],
            unit="percentunit",
        )
    )
    errors.with_panel(
        trend(
            "Dead letters in the last hour", [query("ibest:dead_letters:increase1h", "{{service}}")]
        )
    )
    errors.with_panel(
        trend(
            "Reminders sent and failed (national)",
            [
                query('ibest_reminders_sent{trust=""}', "sent"),
                query('ibest_reminders_failed{trust=""}', "failed"),
            ],
        )
    )
    errors.with_panel(
        trend(
            "Retries per second",
            [query("sum by (service) (rate(ibest_events_retried_total[5m]))", "{{service}}")],
            unit="ops",
            width=24,
        )
    )
    lag = Section("Lag and latency").with_panel(
        trend(
            "Consumer lag (events pending)",
            [query("ibest:consumer_lag:messages", "{{service}}")],
            description="From prometheus-nats-exporter (JetStream consumer num_pending).",
        )
    )
    lag.with_panel(
        trend(
            "Processing latency p95 (stream arrival to stored)",
            [query("ibest:processing_latency_seconds:p95", "{{service}}")],
            unit="s",
        )
    )
    lag.with_panel(
        trend(
            "Seconds since each service applied an event",
            [query("ibest:seconds_since_last_applied", "{{service}}")],
            unit="s",
        )
    )
    lag.with_panel(
        trend(
            "Freshness of the reports (age of the newest applied event)",
            [query("time() - ibest_reporting_last_event_timestamp_seconds", "reports")],
            unit="s",
        )
    )
    return add_sections(dash, [flow, errors, lag])


def band(low: float, high: float, colour: str = "green") -> db.ThresholdsConfig:
    """Thresholds shading [low, high] (the trial's interval, or its completeness line)."""
    return (
        db.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps(
            [Threshold(None, "transparent"), Threshold(low, colour), Threshold(high, "transparent")]
        )
    )


def shaded(panel: timeseries.Panel, thresholds: db.ThresholdsConfig) -> timeseries.Panel:
    return panel.thresholds(thresholds).thresholds_style(
        gcommon.GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.LINE_AND_AREA)
    )


TRUSTS = 'trust!="", site=""'
"""Trust series: a trust label and no site (published values; 1 to 7 patients omitted)."""


def working() -> db.Dashboard:
    """domain.md "Is it working?": outcomes against the BeST trial (values from
    services/reporting/domain/trial.py), sites that keep going, observed delivery."""
    trial = BEST_TRIAL.rmdq_improvement
    dash = (
        db.Dashboard("iBeST: is it working?")
        .uid("ibest-working")
        .tags(["ibest", "programme", "outcomes"])
        .refresh("1m")
        .time("now-90d", "now")
        .timezone("Europe/London")
        .editable()
        .description(
            f"Patients' RMDQ improvement against the BeST trial ({trial.mean} "
            f"points, 95% CI {trial.low} to {trial.high}; "
            f"{BEST_TRIAL.reference}), sites still running classes, clinicians "
            "observed facilitating. National exact; trusts disclosure-controlled "
            "(1 to 7 patients: not shown)."
        )
    )
    m12 = "rmdq_improvement_{}month_12"
    outcomes = Section("Outcomes against the trial").with_panel(
        shaded(
            trend(
                "RMDQ improvement at 12 months, England, with 95% CI",
                [
                    query(f"ibest_{m12.format('')}{{{NATIONAL}}}", "England", "A"),
                    query(f"ibest_{m12.format('ci_low_')}{{{NATIONAL}}}", "95% CI low", "B"),
                    query(f"ibest_{m12.format('ci_high_')}{{{NATIONAL}}}", "95% CI high", "C"),
                    query(f"ibest_rmdq_improvement_month_3{{{NATIONAL}}}", "month 3 (early)", "D"),
                ],
                description=f"Improvement = baseline - follow-up. Shaded: the trial's 95% CI "
                f"({trial.low} to {trial.high}).",
            ),
            band(trial.low, trial.high),
        )
    )
    outcomes.with_panel(
        shaded(
            trend(
                "RMDQ improvement at 12 months by trust, with 95% CI",
                [
                    query(f"ibest_{m12.format('')}{{{TRUSTS}}}", "{{trust}}", "A"),
                    query(f"ibest_{m12.format('ci_low_')}{{{TRUSTS}}}", "{{trust}} CI low", "B"),
                    query(f"ibest_{m12.format('ci_high_')}{{{TRUSTS}}}", "{{trust}} CI high", "C"),
                ],
                description="Shaded: the trial's 95% CI. A trust whose interval lies wholly under "
                "it is `below`, wholly over it `above`, otherwise `consistent`.",
            ),
            band(trial.low, trial.high),
        )
    )
    outcomes.with_panel(
        table.Panel()
        .title("Trusts against the trial at 12 months (latest)")
        .datasource(DATASOURCE)
        .height(8)
        .span(24)
        .targets(
            [
                query(f"ibest_{m12.format('')}{{{TRUSTS}}}", "", "A")
                .instant()
                .format(PromQueryFormat.TABLE),
                query(f"ibest_{m12.format('ci_low_')}{{{TRUSTS}}}", "", "B")
                .instant()
                .format(PromQueryFormat.TABLE),
                query(f"ibest_{m12.format('ci_high_')}{{{TRUSTS}}}", "", "C")
                .instant()
                .format(PromQueryFormat.TABLE),
                query(f"ibest_rmdq_vs_trial_month_12{{{TRUSTS}}} == 1", "", "D")
                .instant()
                .format(PromQueryFormat.TABLE),
            ]
        )
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
    )
    completeness = Section("Follow-up completeness").with_panel(
        shaded(
            trend(
                "RMDQ at baseline and follow-up, of patients due (England)",
                [
                    query(f"ibest_rmdq_followup_completeness_{tp}{{{NATIONAL}}}", tp, chr(65 + i))
                    for i, tp in enumerate(FOLLOW_UPS)
                ],
                unit="percentunit",
                description=f"The trial reached {BEST_TRIAL.followup_completeness:.0%} at 12 "
                "months (line).",
            ),
            band(BEST_TRIAL.followup_completeness, 1.01),
        )
    )
    completeness.with_panel(
        shaded(
            trend(
                "12-month completeness by trust",
                [query(f"ibest_rmdq_followup_completeness_month_12{{{TRUSTS}}}", "{{trust}}")],
                unit="percentunit",
                description="Against the trial's 85% (line).",
            ),
            band(BEST_TRIAL.followup_completeness, 1.01),
        )
    )
    sites = Section("Sites that keep going").with_panel(
        trend(
            "Sites still running classes (England)",
            [
                query(
                    f"ibest_sites_{figure}_{period}{{{NATIONAL}}}",
                    f"{figure} {period}",
                    chr(65 + i),
                )
                for i, (figure, period) in enumerate(
                    (f, p) for p in ("6_months", "12_months") for f in ("sustained", "eligible")
                )
            ],
            description="Eligible: 182 (364) days since a site's first class; sustained: "
            "another class started 182 (364) or more days after its first.",
        )
    )
    sites.with_panel(
        trend(
            "Share of eligible sites sustained (England)",
            [
                query(f"ibest_sites_sustained_rate_{period}{{{NATIONAL}}}", period, chr(65 + i))
                for i, period in enumerate(("6_months", "12_months"))
            ],
            unit="percentunit",
        )
    )
    delivery = Section("Observed and reported delivery").with_panel(
        trend(
            "Clinicians facilitating classes beside those reporting delivering (England)",
            [
                query(
                    f"ibest_clinicians_facilitating{{{NATIONAL}}}", "facilitating (observed)", "A"
                ),
                query(
                    f"ibest_clinicians_delivering{{{NATIONAL}}}", "delivering (self-reported)", "B"
                ),
                query(f"ibest_clinicians_completed{{{NATIONAL}}}", "completed", "C"),
            ],
            description="Facilitating: completed clinicians named as a facilitator of at least "
            "one class; delivering: their latest report says so.",
        )
    )
    delivery.with_panel(
        trend(
            "Share of completed clinicians (England)",
            [
                query(f"ibest_clinicians_facilitating_rate{{{NATIONAL}}}", "facilitating", "A"),
                query(
                    f"ibest_clinicians_delivering{{{NATIONAL}}} / "
                    f"ibest_clinicians_completed{{{NATIONAL}}}",
                    "delivering (self-reported)",
                    "B",
                ),
            ],
            unit="percentunit",
        )
    )
    return add_sections(dash, [outcomes, completeness, sites, delivery])


DASHBOARDS = {
    "ibest-national": national,
    "ibest-trust-site": drilldown,
    "ibest-operations": operations,
    "ibest-working": working,
    **infinity.DASHBOARDS,
}


def render(name: str) -> str:
    built = DASHBOARDS[name]().build()
    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the Grafana dashboards")
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    stale = [
        name
        for name in DASHBOARDS
        if not (OUT / f"{name}.json").exists() or (OUT / f"{name}.json").read_text() != render(name)
    ]
    if args.check:
        for name in stale:
            print(
                f"{OUT / name}.json is out of date: run python -m deploy.grafana.generate",
                file=sys.stderr,
            )
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (OUT / f"{name}.json").write_text(render(name))
        print(f"wrote {OUT / name}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
