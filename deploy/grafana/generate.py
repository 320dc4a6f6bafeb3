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
    DynamicConfigValue,
    MatcherConfig,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from deploy.grafana import infinity
from deploy.grafana.words import (
    MEASURE_WORDS,
    TIMEPOINT_WORDS,
    dashboard_links,
    describe,
    docs_variable,
    figure_links,
    trust_choices,
    trust_series_names,
    unit_of,
    value_words,
)
from services.reporting.domain.figure_definitions import label_of
from services.reporting.domain.trial import BEST_TRIAL
from shared.measures import MEASURES as MEASURE_SPECS

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
STAGES = ("enrolled", "started", "completed", "intending", "delivering")
FOLLOW_UPS = ("month_3", "month_12")
SURVEYS = ("month_4", "month_12")
MEASURES = tuple(m.value for m in MEASURE_SPECS)
LOWER_IS_BETTER = {m.value: spec.lower_is_better for m, spec in MEASURE_SPECS.items()}
NATIONAL = 'trust=""'
PLACE = 'trust="$trust", site=~"$site"'
"""The drill-down selector; the site variable's "All" is `^$`, the trust's own series."""


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    return q.legend_format(legend) if legend else q


def figure_query(figure: str, selector: str, ref: str, legend: str = "") -> prometheus.Dataquery:
    """`ibest_<figure>{selector}`, its legend the figure's label (or `legend`)."""
    return query(f"ibest_{figure}{{{selector}}}", legend or label_of(figure), ref)


def by_trust(panel: Any) -> Any:
    """Name each trust's series (legend `{{trust}}`) from deploy/trusts.yaml."""
    for matcher, properties in trust_series_names():
        panel.with_override(matcher, properties)
    return panel


def trend(
    title: str,
    queries: list[Any],
    figures: tuple[str, ...],
    unit: str | None = None,
    width: int = 12,
    note: str = "",
) -> timeseries.Panel:
    """A chart of figures sharing one unit (one measure per axis), described and linked
    to their definitions."""
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit or unit_of(figures[0]))
        .height(8)
        .span(width)
        .targets(queries)
        .description(describe(*figures, note=note))
        .links(figure_links(*figures))
    )
    if any("{{trust}}" in (q._internal.legend_format or "") for q in queries):
        by_trust(panel)
    return panel


def number(title: str, expr: str, figures: tuple[str, ...], width: int = 4) -> stat.Panel:
    unit = unit_of(figures[0])
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .decimals(1 if unit == "percentunit" else 0)
        .height(4)
        .span(width)
        .with_target(query(expr))
        .description(describe(*figures))
        .links(figure_links(*figures))
    )


def data_as_of() -> stat.Panel:
    """When the newest event the figures count happened (every dashboard shows it)."""
    return (
        stat.Panel()
        .title("Data as of")
        .datasource(DATASOURCE)
        .unit("dateTimeAsLocal")
        .height(3)
        .span(24)
        .with_target(query("ibest_reporting_last_event_timestamp_seconds * 1000"))
        .description(
            "The event time of the newest event the figures count (the reports' as_of): "
            "figures describe the rollout as it stood then."
        )
    )


def stages(selector: str) -> list[prometheus.Dataquery]:
    return [figure_query(f"clinicians_{s}", selector, chr(65 + i)) for i, s in enumerate(STAGES)]


Panel = timeseries.Panel | stat.Panel | table.Panel


class Section:
    """A titled row and the panels beneath it (expanded, unlike a collapsed row's)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.panels: list[Panel] = []

    def with_panel(self, panel: Panel) -> Section:
        self.panels.append(panel)
        return self


def board(title: str, uid: str, tags: list[str], description: str, since: str) -> db.Dashboard:
    """A dashboard with what every iBeST dashboard has: Europe/London time, links to the
    others, where the definitions are published."""
    return (
        db.Dashboard(title)
        .uid(uid)
        .tags(["ibest", *tags])
        .refresh("1m")
        .time(since, "now")
        .timezone("Europe/London")
        .editable()
        .description(description)
        .link(dashboard_links())
        .with_variable(docs_variable())
    )


def add_sections(
    dash: db.Dashboard, sections: list[Section], as_of: Panel | None = None
) -> db.Dashboard:
    dash.with_panel(as_of or data_as_of())
    for section in sections:
        dash.with_row(db.Row(section.title))
        for panel in section.panels:
            dash.with_panel(panel)
    return dash


def words_table(title: str, targets: list[Any], figures: tuple[str, ...], note: str) -> table.Panel:
    """A table of Prometheus series in words: labels renamed, internal ones hidden, codes
    and names of professions, measures and stages mapped to words."""
    return (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit_of(figures[0]))
        .height(8)
        .span(12)
        .targets(targets)
        .mappings(value_words())
        .description(describe(*figures, note=note))
        .links(figure_links(*figures))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {
                        "Time": True,
                        "__name__": True,
                        "job": True,
                        "instance": True,
                        "component": True,
                        "service": True,
                        "site": True,
                        "trust": True,
                    },
                    "renameByName": {
                        "stage": "Stage",
                        "profession": "Profession",
                        "measure": "Measure",
                        "timepoint": "Follow-up",
                        "Value": "Clinicians" if "profession" in title.lower() else "Patients",
                    },
                },
            )
        )
    )


def figures_rows(selector: str, place: str) -> list[Section]:
    """The programme rows shared by the national and drill-down dashboards."""
    funnel = Section("Clinician funnel").with_panel(
        trend(
            f"Clinicians by stage, {place}",
            stages(selector),
            tuple(f"clinicians_{s}" for s in STAGES),
            width=16,
        )
    )
    funnel.with_panel(
        words_table(
            "Clinicians by profession and stage (latest)",
            [
                query(f"ibest_clinicians_by_profession{{{selector}}}", "", "A")
                .instant()
                .format(PromQueryFormat.TABLE)
            ],
            ("clinicians_<stage>_by_profession",),
            "",
        ).span(8)
    )
    for stage in ("enrolled", "started", "completed"):
        figure = f"clinicians_{stage}"
        funnel.with_panel(number(label_of(figure), f"ibest_{figure}{{{selector}}}", (figure,)))
    funnel.with_panel(
        number(
            "Completed of enrolled",
            f"ibest_clinicians_completed{{{selector}}} / ibest_clinicians_enrolled{{{selector}}}",
            ("clinicians_completed", "clinicians_enrolled"),
        )
        .unit("percentunit")
        .decimals(1)
    )
    classes = Section("Classes and patients").with_panel(
        trend(
            f"Classes started, {place}",
            [figure_query("classes_started", selector, "A")],
            ("classes_started",),
            width=6,
        )
    )
    classes.with_panel(
        trend(
            f"Sites running classes, {place}",
            [figure_query("sites_running_classes", selector, "A")],
            ("sites_running_classes",),
            width=6,
            note="Trust and England only (a site's own 0 or 1 is not shown).",
        )
    )
    patients = ("patients_baseline", *(f"patients_{tp}" for tp in FOLLOW_UPS))
    classes.with_panel(
        trend(
            f"Patients at each timepoint, {place}",
            [figure_query(f, selector, chr(65 + i)) for i, f in enumerate(patients)],
            patients,
        )
    )
    rates = tuple(f"followup_rate_{tp}" for tp in FOLLOW_UPS)
    classes.with_panel(
        trend(
            f"Follow-up rate, {place}",
            [figure_query(f, selector, chr(65 + i)) for i, f in enumerate(rates)],
            rates,
        )
    )
    due = tuple(f"followup_due_{tp}" for tp in FOLLOW_UPS)
    classes.with_panel(
        trend(
            f"Follow-ups due, {place}",
            [figure_query(f, selector, chr(65 + i)) for i, f in enumerate(due)],
            due,
        )
    )
    outcomes = Section("Outcomes").with_panel(
        trend(
            f"Share meaningfully improved, by measure, {place}",
            [
                query(
                    f'ibest_outcome_improved_share{{{selector}, measure="{m}", timepoint="{tp}"}}',
                    f"{MEASURE_WORDS[m]}, {TIMEPOINT_WORDS[tp]}",
                    chr(65 + 2 * i + j),
                )
                for i, m in enumerate(MEASURES)
                for j, tp in enumerate(FOLLOW_UPS)
            ],
            ("outcomes.<measure>.<timepoint>.improved_share",),
            width=24,
        )
    )
    for m in MEASURES:
        outcomes.with_panel(
            trend(
                f"Mean change from baseline: {MEASURE_WORDS[m]}, {place}",
                [
                    query(
                        f'ibest_outcome_mean_change{{{selector}, measure="{m}", timepoint="{tp}"}}',
                        TIMEPOINT_WORDS[tp],
                        chr(65 + j),
                    )
                    for j, tp in enumerate(FOLLOW_UPS)
                ],
                ("outcomes.<measure>.<timepoint>.mean_change",),
                unit="none",
                width=8,
                note="Follow-up minus baseline: "
                + ("negative" if LOWER_IS_BETTER[m] else "positive")
                + " is better for this measure.",
            )
        )
    outcomes.with_panel(
        words_table(
            "Patients with baseline and follow-up, by measure (latest)",
            [query(f"ibest_outcome_n{{{selector}}}").instant().format(PromQueryFormat.TABLE)],
            ("outcomes.<measure>.<timepoint>.n",),
            "",
        ).span(24)
    )
    return [funnel, classes, outcomes, surveys_section(selector, place)]


def surveys_section(selector: str, place: str) -> Section:
    """Clinicians' delivery surveys at 4 and 12 months: asked, answered, delivering, so
    "not delivering" is told apart from "not asked" and "did not reply"."""
    rates = tuple(f"delivery_response_rate_{s}" for s in SURVEYS)
    section = Section("Delivery surveys (4 and 12 months after completion)").with_panel(
        trend(
            f"Survey response rate, {place}",
            [figure_query(f, selector, chr(65 + i)) for i, f in enumerate(rates)],
            rates,
        )
    )
    counts = tuple(
        f"{figure}_{s}"
        for s in SURVEYS
        for figure in ("delivery_survey_due", "delivery_reported", "clinicians_delivering")
    )
    section.with_panel(
        trend(
            f"Surveys due, answered, delivering, {place}",
            [figure_query(f, selector, chr(65 + i)) for i, f in enumerate(counts)],
            counts,
        )
    )
    return section


TRUSTS = 'trust!="", site=""'
"""Trust series: a trust label and no site (published values; 1 to 7 patients omitted)."""


def value_names(figures: tuple[str, ...]) -> dict[str, str]:
    """Prometheus's table columns (`Value #A`, ...) renamed to the figures' labels."""
    return {f"Value #{chr(65 + i)}": label_of(f) for i, f in enumerate(figures)}


def instant_tables(selector: str, figures: tuple[str, ...]) -> list[Any]:
    return [
        query(f"ibest_{f}{{{selector}}}", "", chr(65 + i)).instant().format(PromQueryFormat.TABLE)
        for i, f in enumerate(figures)
    ]


def place_table(
    title: str, selector: str, key: str, figures: tuple[str, ...], note: str
) -> table.Panel:
    """One row per place (`key`: the `trust` or `site` label), a column per figure, in
    words and each in its unit."""
    hide = {"Time", "trust", "site", "job", "instance", "component", "service", "__name__"}
    panel = (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit("none")
        .height(12)
        .span(24)
        .targets(instant_tables(selector, figures))
        .mappings(value_words())
        .description(describe(*figures, note=note))
        .links(figure_links(*figures))
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {h: True for h in sorted(hide - {key})},
                    "renameByName": {key: key.capitalize(), **value_names(figures)},
                },
            )
        )
    )
    for f in figures:
        panel.with_override(
            MatcherConfig("byName", label_of(f)), [DynamicConfigValue("unit", unit_of(f))]
        )
    return panel


def league_table() -> table.Panel:
    """Every trust's latest published figures, one row each, named."""
    return place_table(
        "Trusts: league table (published figures, latest)",
        TRUSTS,
        "trust",
        (
            "clinicians_enrolled",
            "clinicians_completed",
            "classes_started",
            "patients_baseline",
            "followup_rate_month_12",
            "rmdq_improvement_month_12",
        ),
        "Sort by any column; 1 to 7 is omitted (suppressed).",
    )


def national() -> db.Dashboard:
    dash = board(
        "iBeST national overview",
        "ibest-national",
        ["programme"],
        "England's figures (exact; never suppressed), and every trust's published figures.",
        "now-30d",
    )
    trusts = Section("Trusts").with_panel(
        trend(
            "Clinicians completed by trust (published)",
            [query('ibest_clinicians_completed{trust!="", site=""}', "{{trust}}")],
            ("clinicians_completed",),
            width=24,
        )
    )
    trusts.with_panel(league_table())
    return add_sections(dash, [*figures_rows(NATIONAL, "England"), trusts])


def sites_table() -> table.Panel:
    """Each site of the chosen trust, one row each."""
    return place_table(
        "Sites of the trust (published figures, latest)",
        'trust="$trust", site!=""',
        "site",
        (
            "clinicians_enrolled",
            "clinicians_completed",
            "classes_started",
            "patients_baseline",
            "followup_rate_month_3",
            "followup_rate_month_12",
        ),
        "One row per site; 1 to 7 is omitted (suppressed).",
    )


def drilldown() -> db.Dashboard:
    dash = board(
        "iBeST trust and site",
        "ibest-trust-site",
        ["programme"],
        "One trust, or one of its sites. Counts of 1 to 7 are suppressed and others rounded "
        "to 5 (NHS disclosure control).",
        "now-30d",
    )
    dash.with_variable(db.CustomVariable("trust").label("Trust").values(trust_choices()))
    dash.with_variable(
        db.QueryVariable("site")
        .label("Site (All: the whole trust)")
        .datasource(DATASOURCE)
        .query('label_values(ibest_clinicians_enrolled{trust="$trust"}, site)')
        .include_all(True)
        .all_value("^$")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )
    sites = Section("Sites").with_panel(sites_table())
    return add_sections(dash, [*figures_rows(PLACE, "${trust:text} $site"), sites])


def ops(
    title: str, queries: list[Any], unit: str, description: str, width: int = 12
) -> timeseries.Panel:
    """An operations chart (not a programme figure): described, in its unit."""
    return (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(8)
        .span(width)
        .targets(queries)
        .description(description)
    )


def operations() -> db.Dashboard:
    dash = board(
        "iBeST operations",
        "ibest-operations",
        ["operations"],
        "Events in and out per service, errors, dead letters, lag, latency, the gateway and "
        "freshness. Alerts: deploy/prometheus/rules/ibest.yml; where they go: "
        "deploy/alertmanager.",
        "now-6h",
    )
    flow = Section("Event flow").with_panel(
        ops(
            "Events consumed per second",
            [query("ibest:events_consumed:rate5m", "{{service}}")],
            "ops",
            "Events each service applied per second (5-minute rate).",
        )
    )
    flow.with_panel(
        ops(
            "Events published per second",
            [query("ibest:events_published:rate5m", "{{service}}")],
            "ops",
            "Events each service published per second (derived events, outbox relays).",
        )
    )
    flow.with_panel(
        ops(
            "Services up",
            [query('up{job="ibest-services"}', "{{component}}")],
            "bool_yes_no",
            "1 when Prometheus could scrape the service's /metrics at the last attempt.",
            width=24,
        )
    )
    errors = Section("Errors").with_panel(
        ops(
            "Handler error ratio",
            [query("ibest:handler_error_ratio:rate5m", "{{service}}")],
            "percentunit",
            "Share of handled events that raised (each is retried, then dead-lettered).",
        )
    )
    errors.with_panel(
        ops(
            "Dead letters in the last hour",
            [query("ibest:dead_letters:increase1h", "{{service}}")],
            "none",
            "Events rejected (dead-lettered) per service in the last hour: "
            "`ibest deadletters list` shows why.",
        )
    )
    errors.with_panel(
        trend(
            "Reminders sent and failed (England)",
            [
                figure_query("reminders_sent", NATIONAL, "A"),
                figure_query("reminders_failed", NATIONAL, "B"),
            ],
            ("reminders_sent", "reminders_failed"),
        )
    )
    errors.with_panel(
        ops(
            "Retries per second",
            [query("sum by (service) (rate(ibest_events_retried_total[5m]))", "{{service}}")],
            "ops",
            "Events redelivered after a transient failure, per second.",
            width=24,
        )
    )
    gateway = Section("Gateway (trusts' front door)").with_panel(
        ops(
            "Gateway requests per second by status",
            [query("ibest:gateway_requests:rate5m", "{{status}}")],
            "reqps",
            "Requests trusts send to the gateway, by HTTP status class (2xx, 4xx, 5xx).",
        )
    )
    gateway.with_panel(
        ops(
            "Gateway latency p95",
            [query("ibest:gateway_latency_seconds:p95", "95th percentile")],
            "s",
            "95th percentile of the time the gateway takes to answer a request.",
        )
    )
    gateway.with_panel(
        ops(
            "Gateway refusals per second",
            [query("ibest:gateway_refusals:rate5m", "{{reason}}")],
            "reqps",
            "Requests refused: too many requests (429), unknown or wrong keys (401/403), "
            "events rejected by the contract (422).",
            width=24,
        )
    )
    forms = Section("Forms (surveys and questionnaires people answer)").with_panel(
        ops(
            "Forms pages per second by status",
            [query("ibest:forms_responses:rate5m", "{{status}}")],
            "reqps",
            "The forms' answers by HTTP status class: 2xx and 3xx answered, 4xx refused (a "
            "link that does not work, an expired form, answers to correct, too many "
            "requests), 5xx failed (answers not sent).",
            width=24,
        )
    )
    lag = Section("Lag and latency").with_panel(
        ops(
            "Consumer lag (events pending)",
            [query("ibest:consumer_lag:messages", "{{service}}")],
            "none",
            "Events stored but not yet applied by each service (from "
            "prometheus-nats-exporter: JetStream consumer num_pending).",
        )
    )
    lag.with_panel(
        ops(
            "Processing latency p95 (stream arrival to stored)",
            [query("ibest:processing_latency_seconds:p95", "{{service}}")],
            "s",
            "95th percentile of the time from an event's arrival in the stream to its "
            "effect being stored.",
        )
    )
    lag.with_panel(
        ops(
            "Seconds since each service applied an event",
            [query("ibest:seconds_since_last_applied", "{{service}}")],
            "s",
            "How long ago each service last applied an event.",
        )
    )
    lag.with_panel(
        ops(
            "Freshness of the reports (age of the newest applied event)",
            [query("time() - ibest_reporting_last_event_timestamp_seconds", "reports")],
            "s",
            "Seconds between now and the event time of the newest event the figures count.",
        )
    )
    return add_sections(dash, [flow, errors, gateway, forms, lag])


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


def working() -> db.Dashboard:
    """Is it working? Outcomes against the BeST trial (values from
    services/reporting/domain/trial.py), sites that keep going, observed delivery."""
    trial = BEST_TRIAL.rmdq_improvement
    dash = board(
        "iBeST: is it working?",
        "ibest-working",
        ["programme", "outcomes"],
        f"Patients' RMDQ improvement against the BeST trial ({trial.mean} points, 95% CI "
        f"{trial.low} to {trial.high}; {BEST_TRIAL.reference}), sites still running classes, "
        "clinicians observed facilitating. England exact; trusts disclosure-controlled "
        "(1 to 7 patients: not shown).",
        "now-90d",
    )
    m12 = "rmdq_improvement_{}month_12"
    mean, low, high = (m12.format(""), m12.format("ci_low_"), m12.format("ci_high_"))
    band_note = f"Shaded: the trial's 95% CI ({trial.low} to {trial.high})."
    outcomes = Section("Outcomes against the trial").with_panel(
        shaded(
            trend(
                "RMDQ improvement at 12 months, England, with 95% CI",
                [
                    figure_query(mean, NATIONAL, "A", "England"),
                    figure_query(low, NATIONAL, "B", "95% CI lower limit"),
                    figure_query(high, NATIONAL, "C", "95% CI upper limit"),
                    figure_query(
                        "rmdq_improvement_month_3", NATIONAL, "D", "At 3 months (early signal)"
                    ),
                ],
                (mean, low, high, "rmdq_improvement_month_3"),
                note=band_note,
            ),
            band(trial.low, trial.high),
        )
    )
    outcomes.with_panel(
        shaded(
            trend(
                "RMDQ improvement at 12 months by trust, with 95% CI",
                [
                    query(f"ibest_{mean}{{{TRUSTS}}}", "{{trust}}", "A"),
                    query(f"ibest_{low}{{{TRUSTS}}}", "{{trust}} lower limit", "B"),
                    query(f"ibest_{high}{{{TRUSTS}}}", "{{trust}} upper limit", "C"),
                ],
                (mean, low, high, "rmdq_vs_trial_month_12"),
                note=band_note,
            ),
            band(trial.low, trial.high),
        )
    )
    verdicts = (mean, low, high, "rmdq_vs_trial_month_12")
    outcomes.with_panel(
        table.Panel()
        .title("Trusts against the trial at 12 months (latest)")
        .datasource(DATASOURCE)
        .unit("none")
        .height(8)
        .span(24)
        .targets(
            [
                query(f"ibest_{mean}{{{TRUSTS}}}", "", "A").instant().format(PromQueryFormat.TABLE),
                query(f"ibest_{low}{{{TRUSTS}}}", "", "B").instant().format(PromQueryFormat.TABLE),
                query(f"ibest_{high}{{{TRUSTS}}}", "", "C").instant().format(PromQueryFormat.TABLE),
                query(f"ibest_rmdq_vs_trial_month_12{{{TRUSTS}}} == 1", "", "D")
                .instant()
                .format(PromQueryFormat.TABLE),
            ]
        )
        .mappings(value_words())
        .description(describe(*verdicts))
        .links(figure_links(*verdicts))
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {
                        "Time": True,
                        "site": True,
                        "Value #D": True,
                        "__name__": True,
                        "job": True,
                        "instance": True,
                        "component": True,
                        "service": True,
                    },
                    "renameByName": {
                        "trust": "Trust",
                        "Value #A": label_of(mean),
                        "Value #B": "95% CI lower limit",
                        "Value #C": "95% CI upper limit",
                        "verdict": "Against the trial",
                    },
                },
            )
        )
    )
    completeness = Section("Follow-up completeness").with_panel(
        shaded(
            trend(
                "RMDQ at baseline and follow-up, of patients due (England)",
                [
                    figure_query(f"rmdq_followup_completeness_{tp}", NATIONAL, chr(65 + i))
                    for i, tp in enumerate(FOLLOW_UPS)
                ],
                tuple(f"rmdq_followup_completeness_{tp}" for tp in FOLLOW_UPS),
                note=f"Line: the trial's {BEST_TRIAL.followup_completeness:.0%} at 12 months.",
            ),
            band(BEST_TRIAL.followup_completeness, 1.01),
        )
    )
    completeness.with_panel(
        shaded(
            trend(
                "12-month completeness by trust",
                [query(f"ibest_rmdq_followup_completeness_month_12{{{TRUSTS}}}", "{{trust}}")],
                ("rmdq_followup_completeness_month_12",),
                note=f"Line: the trial's {BEST_TRIAL.followup_completeness:.0%}.",
            ),
            band(BEST_TRIAL.followup_completeness, 1.01),
        )
    )
    sites_counts = tuple(
        f"sites_{f}_{p}" for p in ("6_months", "12_months") for f in ("sustained", "eligible")
    )
    sites = Section("Sites that keep going").with_panel(
        trend(
            "Sites still running classes (England)",
            [figure_query(f, NATIONAL, chr(65 + i)) for i, f in enumerate(sites_counts)],
            sites_counts,
        )
    )
    sustained = tuple(f"sites_sustained_rate_{p}" for p in ("6_months", "12_months"))
    sites.with_panel(
        trend(
            "Share of eligible sites sustained (England)",
            [figure_query(f, NATIONAL, chr(65 + i)) for i, f in enumerate(sustained)],
            sustained,
        )
    )
    observed = ("clinicians_facilitating", "clinicians_delivering", "clinicians_completed")
    delivery = Section("Observed and reported delivery").with_panel(
        trend(
            "Clinicians facilitating classes beside those reporting delivering (England)",
            [figure_query(f, NATIONAL, chr(65 + i)) for i, f in enumerate(observed)],
            observed,
        )
    )
    delivery.with_panel(
        trend(
            "Share of completed clinicians (England)",
            [
                figure_query("clinicians_facilitating_rate", NATIONAL, "A"),
                query(
                    f"ibest_clinicians_delivering{{{NATIONAL}}} / "
                    f"ibest_clinicians_completed{{{NATIONAL}}}",
                    "Delivering (self-reported) of completed",
                    "B",
                ),
            ],
            ("clinicians_facilitating_rate", "clinicians_delivering"),
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
