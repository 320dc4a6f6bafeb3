"""Dashboards reading the reporting API through the Infinity data source plugin
(yesoreyeram-infinity-datasource, provisioned as uid `reporting` with a read-scope token).

The grafana-foundation-sdk has no Infinity builder, so `InfinityQuery` is one: a target
whose JSON is the plugin's query model (type, source, url, url_options, root_selector,
columns). Months answers are read as CSV (one row per month); funnels as JSON. Figures read
as numbers leave a gap for a suppressed `*` (never a zero); tables read them as text and map
`*` to "suppressed (1 to 7)".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, timeseries, xychart
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    MatcherConfig,
    VariableOption,
)
from grafana_foundation_sdk.models.xychart import SeriesMapping, XYShowMode

from deploy.grafana.words import (
    MEASURE_WORDS,
    TIMEPOINT_WORDS,
    dashboard_links,
    describe,
    docs_variable,
    figure_links,
    trust_choices,
    unit_of,
    value_words,
)
from services.reporting.domain.figure_definitions import label_of

REPORTING = DataSourceRef(type_val="yesoreyeram-infinity-datasource", uid="reporting")
MONTH_FORMAT = "2006-01"
"""Go layout of the API's months (YYYY-MM), for Infinity's timestamp columns."""
STAGES = ("enrolled", "started", "completed", "intending", "delivering")
FOLLOW_UPS = ("month_3", "month_12")


@dataclass
class InfinityQuery(cogvariants.Dataquery, cogbuilder.Builder[cogvariants.Dataquery]):
    """One Infinity target (the plugin's query model)."""

    ref_id: str
    url: str
    kind: str  # "csv" or "json"
    columns: list[tuple[str, str]]  # (selector, type: string, number, timestamp, boolean)
    params: dict[str, str] = field(default_factory=dict)
    root_selector: str = ""

    def to_json(self) -> dict[str, Any]:
        headers = [{"key": "Accept", "value": "text/csv"}] if self.kind == "csv" else []
        return {
            "refId": self.ref_id,
            "datasource": REPORTING.to_json(),
            "type": self.kind,
            "source": "url",
            "parser": "backend",
            "format": "table",
            "url": self.url,
            "url_options": {
                "method": "GET",
                "data": "",
                "params": [{"key": k, "value": v} for k, v in self.params.items()],
                "headers": headers,
            },
            "root_selector": self.root_selector,
            "columns": [
                {
                    "selector": s,
                    "text": words(s),
                    "type": t,
                    **({"timestampFormat": MONTH_FORMAT} if t == "timestamp" else {}),
                }
                for s, t in self.columns
            ],
        }

    def build(self) -> InfinityQuery:
        return self


COLUMN_WORDS = {
    "month": "Month",
    "trustcode": "Trust",
    "sitecode": "Site",
    "as_of": "Data as of",
    "value": "Published rate",
    "denominator": "Denominator (published)",
    "outside_95": "Outside the 95% limits",
    "outside_99_8": "Outside the 99.8% limits",
    "national": "England",
    "lower_95": "95% lower limit",
    "upper_95": "95% upper limit",
    "lower_99_8": "99.8% lower limit",
    "upper_99_8": "99.8% upper limit",
}


def words(selector: str) -> str:
    """A column's name as people read it: the figure's label, or the field in words."""
    return COLUMN_WORDS.get(selector) or label_of(selector)


def months_query(
    url: str, figures: list[str], ref: str = "A", *, as_text: bool = False
) -> InfinityQuery:
    """A months route as CSV: the month as time, then the figures."""
    kind = "string" if as_text else "number"
    return InfinityQuery(ref, url, "csv", [("month", "timestamp"), *((f, kind) for f in figures)])


def suppressed_mapping() -> list[Any]:
    """`*` as "suppressed (1 to 7)", trust codes as names, and the API's words."""
    return value_words()


MONTHLY_NOTE = (
    "By event time: each month as it stood at its end (Europe/London). Gaps: suppressed (1 to 7)."
)


def monthly(title: str, url: str, figures: list[str], width: int = 12) -> timeseries.Panel:
    """A month-by-month chart of figures sharing one unit; a suppressed value is a gap
    (never drawn as 0)."""
    return (
        timeseries.Panel()
        .title(title)
        .datasource(REPORTING)
        .unit(unit_of(figures[0]))
        .height(8)
        .span(width)
        .span_nulls(False)
        .with_target(months_query(url, figures))
        .description(describe(*figures, note=MONTHLY_NOTE))
        .links(figure_links(*figures))
    )


def as_of_panel() -> stat.Panel:
    """When the newest event the figures count happened (GET /v1/national's as_of)."""
    return (
        stat.Panel()
        .title("Data as of")
        .datasource(REPORTING)
        .unit("string")
        .height(3)
        .span(24)
        .with_target(InfinityQuery("A", "/v1/national", "csv", [("as_of", "string")]))
        .description(
            "The event time of the newest event the figures count (UTC): the figures "
            "describe the rollout as it stood then."
        )
    )


def board(title: str, uid: str, tags: list[str], description: str, since: str) -> db.Dashboard:
    """An Infinity dashboard with what every iBeST dashboard has: data as of, links to the
    others, where the definitions are published."""
    return (
        db.Dashboard(title)
        .uid(uid)
        .tags(["ibest", *tags])
        .time(since, "now")
        .timezone("Europe/London")
        .editable()
        .description(description)
        .link(dashboard_links())
        .with_variable(docs_variable())
        .with_panel(as_of_panel())
    )


MONTH_TABLE = [
    *(f"clinicians_{s}" for s in STAGES),
    "classes_started",
    "sites_running_classes",
    "patients_baseline",
    *(f"patients_{tp}" for tp in FOLLOW_UPS),
    *(f"followup_due_{tp}" for tp in FOLLOW_UPS),
    *(f"followup_rate_{tp}" for tp in FOLLOW_UPS),
]


def month_panels(url: str, place: str, *, sites_running: bool = True) -> list[Any]:
    """Funnel, classes, patients and follow-up rates month by month, and the table."""
    sites = (
        [monthly(f"Sites running classes by month, {place}", url, ["sites_running_classes"])]
        if sites_running
        else []
    )
    month_figures = [f for f in MONTH_TABLE if sites_running or f != "sites_running_classes"]
    return [
        monthly(
            f"Clinician funnel by month, {place}",
            url,
            [f"clinicians_{s}" for s in STAGES],
            width=24,
        ),
        monthly(f"Classes started by month, {place}", url, ["classes_started"]),
        *sites,
        monthly(
            f"Patients with a baseline and follow-ups recorded, {place}",
            url,
            ["patients_baseline", *(f"patients_{tp}" for tp in FOLLOW_UPS)],
        ),
        monthly(f"Follow-ups due, {place}", url, [f"followup_due_{tp}" for tp in FOLLOW_UPS]),
        monthly(
            f"Follow-up rate (recorded over due), {place}",
            url,
            [f"followup_rate_{tp}" for tp in FOLLOW_UPS],
        ),
        table.Panel()
        .title(f"Month by month as published, {place}")
        .datasource(REPORTING)
        .height(10)
        .span(24)
        .mappings(suppressed_mapping())
        .unit("none")
        .with_target(months_query(url, month_figures, as_text=True))
        .description(describe(*month_figures, note="Suppressed values read as suppressed."))
        .links(figure_links(*month_figures)),
    ]


def months_national() -> db.Dashboard:
    dash = board(
        "iBeST rollout by month (England)",
        "ibest-months",
        ["programme", "months"],
        "From the reporting API (GET /v1/national/months): each figure as it stood at the "
        "end of each month by event time, so a backfill or rebuild shows the months it "
        "describes. National: exact.",
        "now-2y",
    )
    for panel in month_panels("/v1/national/months", "England"):
        dash.with_panel(panel)
    return dash


def trust_variable() -> db.CustomVariable:
    """The trusts of deploy/trusts.yaml, shown by name (the value is the code)."""
    return db.CustomVariable("trust").label("Trust").values(trust_choices())


def months_trust() -> db.Dashboard:
    dash = board(
        "iBeST rollout by month (trust)",
        "ibest-trust-months",
        ["programme", "months"],
        "One trust month by month (GET /v1/trusts/{trust}/months), disclosure-controlled: "
        "counts of 1 to 7 suppressed, others rounded to 5, each value on its own.",
        "now-2y",
    )
    dash.with_variable(trust_variable())
    for panel in month_panels("/v1/trusts/$trust/months", "${trust:text}"):
        dash.with_panel(panel)
    return dash


COMPARED = (
    "followup_rate_month_3",
    "followup_rate_month_12",
    "clinicians_completed",
    "delivery_response_rate_month_4",
    "delivery_response_rate_month_12",
)
"""Funnels of GET /v1/funnel/{figure} (which takes no measure or timepoint)."""
FIGURE_WORDS = {
    **{f: label_of(f) for f in COMPARED if f != "clinicians_completed"},
    "clinicians_completed": "Clinicians completed of enrolled",
}
MEASURE_CHOICES = ("rmdq", "pain_nrs", "von_korff_pain", "von_korff_disability", "psfs", "pseq")
TIMEPOINT_CHOICES = ("month_3", "month_12", "group_end")
LIMIT_COLUMNS = ("national", "lower_95", "upper_95", "lower_99_8", "upper_99_8")
IMPROVED = ("/v1/funnel/improved_share", {"measure": "$measure", "timepoint": "$timepoint"})
FIGURE: tuple[str, dict[str, str]] = ("/v1/funnel/$figure", {})


def custom(
    name: str, label: str, values: tuple[str, ...], shown: dict[str, str]
) -> db.CustomVariable:
    """A dropdown that shows words (`text : value`) and passes the API's name."""
    return (
        db.CustomVariable(name)
        .label(label)
        .values(",".join(f"{shown[v]} : {v}" for v in values))
        .current(VariableOption(selected=True, text=shown[values[0]], value=values[0]))
    )


def funnel_queries(
    url: str, params: dict[str, str]
) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    return [
        InfinityQuery(
            "A",
            url,
            "json",
            [("trustcode", "string"), ("denominator", "number"), ("value", "number")],
            params,
            "trusts",
        ),
        InfinityQuery(
            "B",
            url,
            "json",
            [("denominator", "number"), *((c, "number") for c in LIMIT_COLUMNS)],
            params,
            "limits",
        ),
    ]


def xy(frame: int, y: str) -> xychart.XYSeriesConfig:
    def matcher(id_val: str, options: object) -> xychart.MatcherConfig:
        return xychart.MatcherConfig().id(id_val).options(options)

    return (
        xychart.XYSeriesConfig()
        .frame(xychart.XychartXYSeriesConfigFrame().matcher(matcher("byIndex", frame)))
        .x(xychart.XychartXYSeriesConfigX().matcher(matcher("byName", words("denominator"))))
        .y(xychart.XychartXYSeriesConfigY().matcher(matcher("byName", words(y))))
    )


def funnel_plot(title: str, url: str, params: dict[str, str], figure: str) -> xychart.Panel:
    plot = (
        xychart.Panel()
        .title(title)
        .datasource(REPORTING)
        .unit("percentunit")
        .links(figure_links(figure))
        .height(12)
        .span(24)
        .mapping(SeriesMapping.MANUAL)
        .show(XYShowMode.POINTS)
        .targets(funnel_queries(url, params))
        .series([xy(0, "value"), *(xy(1, c) for c in LIMIT_COLUMNS)])
        .description(
            "Points: trusts (value from rounded counts, to the precision its "
            "rounded denominator supports). Lines: national value and its 95% "
            "and 99.8% control limits by denominator."
        )
    )
    for column in LIMIT_COLUMNS:
        plot.with_override(
            MatcherConfig("byName", words(column)), [DynamicConfigValue("custom.show", "lines")]
        )
    return plot


def trust_tables(what: str, url: str, params: dict[str, str], figure: str) -> list[table.Panel]:
    """The trusts outside 99.8% (flags judged on exact values) and every trust."""
    rows = InfinityQuery(
        "A",
        url,
        "json",
        [
            ("trustcode", "string"),
            ("value", "string"),
            ("denominator", "string"),
            ("outside_95", "string"),
            ("outside_99_8", "string"),
        ],
        params,
        "trusts",
    )
    return [
        table.Panel()
        .title(f"Trusts outside the 99.8% limits: {what}")
        .datasource(REPORTING)
        .unit("none")
        .links(figure_links(figure))
        .height(8)
        .span(12)
        .mappings(suppressed_mapping())
        .with_target(rows)
        .with_transformation(
            DataTransformerConfig(
                id_val="filterByValue",
                options={
                    "type": "include",
                    "match": "any",
                    "filters": [
                        {
                            "fieldName": words("outside_99_8"),
                            "config": {"id": "equal", "options": {"value": "true"}},
                        }
                    ],
                },
            )
        )
        .description(
            "Judged on the exact value against the limits for the exact "
            "denominator; the value shown is the published one."
        ),
        table.Panel()
        .title(f"Every trust: {what}")
        .datasource(REPORTING)
        .unit("none")
        .links(figure_links(figure))
        .height(8)
        .span(12)
        .mappings(suppressed_mapping())
        .with_target(rows)
        .description("Each trust's published rate and denominator; flags judged on exact values."),
    ]


def comparison() -> db.Dashboard:
    dash = board(
        "iBeST trusts compared (funnel plot)",
        "ibest-comparison",
        ["programme", "comparison"],
        "Each trust's published value against its published denominator, with the national "
        "line and the 95% and 99.8% limits (GET /v1/funnel/...). Flags are judged on exact "
        "values; a suppressed trust is listed, not plotted.",
        "now-30d",
    )
    dash.with_variable(custom("figure", "Figure", COMPARED, FIGURE_WORDS))
    dash.with_variable(
        custom("measure", "Measure (improved share)", MEASURE_CHOICES, MEASURE_WORDS)
    )
    dash.with_variable(
        custom("timepoint", "Timepoint (improved share)", TIMEPOINT_CHOICES, TIMEPOINT_WORDS)
    )
    dash.with_panel(
        funnel_plot("Funnel plot: ${figure:text} by trust", *FIGURE, "followup_rate_month_12")
    )
    for panel in trust_tables("${figure:text}", *FIGURE, "followup_rate_month_12"):
        dash.with_panel(panel)
    improved = "outcomes.<measure>.<timepoint>.improved_share"
    dash.with_panel(
        funnel_plot(
            "Funnel plot: share meaningfully improved (${measure:text}, ${timepoint:text}) "
            "by trust",
            *IMPROVED,
            improved,
        )
    )
    for panel in trust_tables("improved ${measure:text}, ${timepoint:text}", *IMPROVED, improved):
        dash.with_panel(panel)
    return dash


DASHBOARDS = {
    "ibest-months": months_national,
    "ibest-trust-months": months_trust,
    "ibest-comparison": comparison,
}
"""Dashboards on the reporting API (generate.py adds them to its own)."""


def infinity_targets(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Infinity query of a generated dashboard: panel targets and variable queries."""
    found = [
        t
        for p in board.get("panels", [])
        for t in p.get("targets", [])
        if t.get("datasource", {}).get("type") == REPORTING.type_val
    ]
    for v in board.get("templating", {}).get("list", []):
        if isinstance(v.get("query"), dict) and "infinityQuery" in v["query"]:
            found.append(v["query"]["infinityQuery"])
    return found
