"""The monthly pack as a printable document (HTML, and PDF through WeasyPrint) and as a
zip of CSVs.

Every value is printed exactly as the API publishes it (`shown`): counts as integers,
rates and shares as the fractions the API gives, `*` for a suppressed value, `\N{EN DASH}` for an
undefined one; a key on each page says so. The PDF is A4 and tagged (PDF/UA-1): headings,
tables and charts carry their structure, and every chart has a text alternative. Labels
and definitions come from domain/figure_definitions.py.
"""

from __future__ import annotations

import base64
import csv
import io
import threading
import zipfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any

from services.reporting.domain.figure_definitions import (
    CONTROL,
    FIGURES,
    RATE_CONTROL,
    definition_of,
    label_of,
)
from services.reporting.domain.months import month_rows
from services.reporting.domain.tables import comparison_rows, flatten, funnel_rows, to_csv
from services.reporting.domain.trial import BEST_TRIAL
from services.reporting.pack import FOLLOWUP_FUNNELS, Pack
from services.reporting.pack_charts import (
    Chart,
    comparison_chart,
    funnel_chart,
    series_chart,
)

SUPPRESSED_KEY = (
    "* suppressed: 1 to 7 people (NHS disclosure control; other counts below national level "
    "are rounded to the nearest 5). \N{EN DASH} not defined (nobody to count). Rates and "
    "shares are fractions: 0.85 is 85%."
)
LEAGUE = (
    "clinicians_enrolled",
    "clinicians_completed",
    "classes_started",
    "patients_baseline",
    "followup_rate_month_12",
    "rmdq_improvement_month_12",
)
SITE_COLUMNS = (
    "clinicians_enrolled",
    "clinicians_completed",
    "classes_started",
    "patients_baseline",
    "followup_rate_month_3",
    "followup_rate_month_12",
)
SERIES_COLUMNS = (
    "clinicians_enrolled",
    "clinicians_started",
    "clinicians_completed",
    "classes_started",
    "sites_running_classes",
    "patients_baseline",
    "followup_rate_month_3",
    "followup_rate_month_12",
)
SURVEY_ROWS = tuple(
    f"{f}_{s}"
    for s in ("month_4", "month_12")
    for f in (
        "delivery_survey_due",
        "delivery_reported",
        "delivery_response_rate",
        "clinicians_delivering",
    )
)
SUSTAINED_ROWS = tuple(
    f"sites_{f}_{p}"
    for p in ("6_months", "12_months")
    for f in ("eligible", "sustained", "sustained_rate")
)
FOLLOWUP_ROWS = tuple(
    f"{f}_{tp}"
    for tp in ("month_3", "month_12")
    for f in ("followup_due", "patients", "followup_rate")
)
COMPLETENESS_ROWS = ("rmdq_followup_completeness_month_3", "rmdq_followup_completeness_month_12")
CSS = """
@page { size: A4; margin: 16mm 14mm 18mm;
  @bottom-left { content: "BeST rollout monthly report: " string(place) ", " string(month);
    font-family: "DejaVu Sans", sans-serif; font-size: 7pt; color: #425563; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages);
    font-family: "DejaVu Sans", sans-serif; font-size: 7pt; color: #425563; } }
body { font-family: "DejaVu Sans", sans-serif; font-size: 8.5pt; color: #212b32; }
h1 { string-set: place attr(data-place); color: #005eb8; font-size: 18pt; margin: 0 0 4pt; }
h1 + p { string-set: month attr(data-month); }
h2 { color: #005eb8; font-size: 12.5pt; break-before: page; margin-top: 0; }
h2.first { break-before: avoid; }
h3 { font-size: 10pt; margin: 10pt 0 4pt; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0 8pt; }
caption { text-align: left; font-weight: bold; padding-bottom: 3pt; }
th, td { border-bottom: 0.5pt solid #d8dde0; padding: 2pt 4pt; text-align: left;
  vertical-align: top; }
td.fig { text-align: right; white-space: nowrap; }
th.fig { text-align: right; }
td.name { white-space: nowrap; }
thead th { background: #e8edee; }
figure { margin: 6pt 0; break-inside: avoid; }
figure img { width: 100%; }
figcaption { font-size: 7.5pt; color: #425563; }
p.key { font-size: 7pt; color: #425563; }
dl dt { font-weight: bold; margin-top: 5pt; }
dl dd { margin: 1pt 0 0 0; }
table.small { font-size: 7pt; }
"""


def shown(value: Any) -> str:
    """A published value as the API gives it: integers, the API's fractions, `*`, `\N{EN DASH}`."""
    if value is None:
        return "\N{EN DASH}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _month_words(month: str) -> str:
    return datetime.strptime(month, "%Y-%m").strftime("%B %Y")


def _cell(value: Any, level: str) -> str:
    return f'<td class="fig" data-level="{level}">{escape(shown(value))}</td>'


def _table(
    caption: str, headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = ""
) -> str:
    fig = ' class="fig"'
    head = "".join(
        f'<th scope="col"{fig if i else ""}>{escape(h)}</th>' for i, h in enumerate(headers)
    )
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    klass = f' class="{cls}"' if cls else ""
    return (
        f"<table{klass}><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _figure(chart: Chart, caption: str) -> str:
    data = base64.b64encode(chart.svg.encode()).decode()
    return (
        f'<figure><img src="data:image/svg+xml;base64,{data}" alt="{escape(chart.alt)}"/>'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _row_name(name: str) -> str:
    return f'<th scope="row" class="name">{escape(name)}</th>'


def _named_rows(names: Iterable[str], figures: dict[str, Any], level: str) -> list[list[str]]:
    return [
        [f'<th scope="row">{escape(label_of(n))}</th>', _cell(figures.get(n), level)] for n in names
    ]


def html(pack: Pack) -> str:
    """The whole pack as one HTML document (what the PDF is printed from)."""
    level = "national" if pack.trustcode is None else "trust"
    month, last = _month_words(pack.month), _month_words(pack.previous_month)
    as_of = pack.as_of.strftime("%d %B %Y %H:%M UTC") if pack.as_of else "no data yet"
    used: list[str] = []
    parts: list[str] = []

    def use(*names: str) -> None:
        used.extend(n for n in names if n not in used)

    parts.append(
        f'<h1 data-place="{escape(pack.place)}">BeST rollout: monthly report</h1>'
        f'<p data-month="{escape(month)}"><strong>{escape(pack.place)}</strong>, figures at '
        f"the end of {escape(month)}. Data as of {escape(as_of)} (the newest event "
        f"applied). Published figures only: {escape(SUPPRESSED_KEY)}</p>"
    )
    # Headline
    parts.append('<h2 class="first">Headline</h2>')
    rows = []
    for r in pack.headline:
        use(r.figure)
        rows.append(
            [
                f'<th scope="row">{escape(label_of(r.figure))}</th>',
                _cell(r.this_month, level),
                _cell(r.last_month, level),
                _cell(r.change, level)
                if r.change is not None
                else '<td class="fig">\N{EN DASH}</td>',
            ]
        )
    parts.append(
        _table(
            f"Headline figures, {pack.place}: end of {month} against end of {last}",
            ["Figure", f"End of {month}", f"End of {last}", "Change"],
            rows,
        )
    )
    parts.append(
        '<p class="key">Change is shown only when neither month\'s published value is '
        "suppressed. Counts below national level are rounded to 5, so their changes are "
        "multiples of 5.</p>"
    )
    # Over time
    series = pack.series
    parts.append("<h2>The rollout over time</h2>")
    charts = (
        (
            ("clinicians_enrolled", "clinicians_started", "clinicians_completed"),
            "Clinicians",
            "The clinician funnel at the end of each month.",
            False,
        ),
        (("classes_started",), "Classes", "Classes started by the end of each month.", False),
        (
            ("sites_running_classes",),
            "Sites",
            "Sites running classes at the end of each month.",
            False,
        ),
        (
            FOLLOWUP_FUNNELS,
            "Follow-up rate (%)",
            f"Follow-up rates against the trial's {BEST_TRIAL.followup_completeness:.0%}.",
            True,
        ),
    )
    for names, axis, caption, percent in charts:
        use(*names)
        parts.append(
            _figure(series_chart(series, names, axis, pack.place, percent=percent), caption)
        )
    columns = [c for c in SERIES_COLUMNS if c in series["figures"]]
    use(*columns)
    parts.append(
        _table(
            f"Month by month, {pack.place}",
            ["Month", *(label_of(c) for c in columns)],
            (
                [f'<th scope="row">{m}</th>']
                + [_cell(series["figures"][c][i], level) for c in columns]
                for i, m in enumerate(series["months"])
            ),
            "small",
        )
    )
    # Follow-up and outcomes against the trial
    parts.append("<h2>Follow-up and outcomes against the trial</h2>")
    parts.append(
        f"<p>The BeST trial ({escape(BEST_TRIAL.reference)}) collected "
        f"{BEST_TRIAL.followup_completeness:.0%} of 12-month follow-ups; its group programme "
        f"improved RMDQ by {BEST_TRIAL.rmdq_improvement.mean} points (95% CI "
        f"{BEST_TRIAL.rmdq_improvement.low} to {BEST_TRIAL.rmdq_improvement.high}). "
        f"Current figures, as of {escape(as_of)}.</p>"
    )
    use(*FOLLOWUP_ROWS, *COMPLETENESS_ROWS)
    parts.append(
        _table(
            f"Follow-up, {pack.place}",
            ["Figure", "Value"],
            _named_rows((*FOLLOWUP_ROWS, *COMPLETENESS_ROWS), pack.current, level),
        )
    )
    comp = pack.comparison
    parts.append(
        _figure(
            comparison_chart(comp, pack.names.trusts, pack.place),
            "RMDQ improvement at 12 months with 95% CI; shaded: the trial's interval.",
        )
    )
    use(
        "rmdq_improvement_month_12",
        "rmdq_improvement_ci_low_month_12",
        "rmdq_improvement_ci_high_month_12",
        "rmdq_vs_trial_month_12",
    )
    comp_rows = [
        [
            '<th scope="row">England</th>',
            *(
                _cell(comp["national"][k], "national")
                for k in ("n", "improvement", "ci_low", "ci_high", "vs_trial")
            ),
        ]
    ]
    for t in comp["trusts"]:
        if pack.trustcode is not None and t["trustcode"] != pack.trustcode:
            continue
        if pack.trustcode is None and t["vs_trial"] not in ("below", "above"):
            continue  # the national pack lists the exceptions; every trust is in the CSVs
        comp_rows.append(
            [
                _row_name(pack.names.trust_with_code(t["trustcode"])),
                *(
                    _cell(t[k], "trust")
                    for k in ("n", "improvement", "ci_low", "ci_high", "vs_trial")
                ),
            ]
        )
    parts.append(
        _table(
            "RMDQ improvement at 12 months against the trial"
            + (" (England and every trust below or above it)" if pack.trustcode is None else ""),
            ["Place", "Patients", "Improvement", "95% CI low", "95% CI high", "Against the trial"],
            comp_rows,
        )
    )
    # Funnel plot comparison
    parts.append("<h2>Comparing trusts fairly: follow-up rates</h2>")
    for figure in FOLLOWUP_FUNNELS:
        funnel = pack.followup_funnels[figure]
        parts.append(
            _figure(
                funnel_chart(funnel, pack.trustcode, pack.place),
                f"{label_of(figure)}: each trust against England with 95% and 99.8% limits, "
                "which widen for small trusts; a trust outside 99.8% is flagged.",
            )
        )
    funnel = pack.followup_funnels["followup_rate_month_12"]
    flagged_rows = [
        [
            _row_name(pack.names.trust_with_code(t["trustcode"])),
            _cell(t["value"], "trust"),
            _cell(t["denominator"], "trust"),
            f"<td>{escape(shown(t['outside_95']))}</td>",
            f"<td>{escape(shown(t['outside_99_8']))}</td>",
        ]
        for t in funnel["trusts"]
        if t["trustcode"] == pack.trustcode or (pack.trustcode is None and t["outside_95"] is True)
    ]
    parts.append(
        _table(
            f"{label_of('followup_rate_month_12')} (England: "
            f"{shown(funnel['national']['value'])})"
            + (
                f": the trusts outside the 95% limits, {len(flagged_rows)} of "
                f"{len(funnel['trusts'])} (every trust: the zip's CSVs)"
                if pack.trustcode is None
                else ""
            ),
            ["Trust", "Rate", "Due", "Outside 95%", "Outside 99.8%"],
            flagged_rows,
            "small",
        )
    )
    # Sites, surveys
    parts.append("<h2>Sites that keep going, and delivery surveys</h2>")
    use(*SUSTAINED_ROWS, *SURVEY_ROWS)
    parts.append(
        _table(
            f"Sites that keep going, {pack.place} (current)",
            ["Figure", "Value"],
            _named_rows(SUSTAINED_ROWS, pack.current, level),
        )
    )
    parts.append(
        _table(
            f"Clinicians' delivery surveys, {pack.place} (current)",
            ["Figure", "Value"],
            _named_rows(SURVEY_ROWS, pack.current, level),
        )
    )
    # League table or sites
    if pack.trustcode is None:
        parts.append("<h2>Trusts</h2>")
        use(*LEAGUE)
        parts.append(
            _table(
                "Every trust's published figures (current)",
                ["Code", "Trust", *(label_of(c) for c in LEAGUE)],
                (
                    [
                        f"<td>{escape(p['trustcode'])}</td>",
                        f'<td class="name">{escape(p["name"])}</td>',
                        *(_cell(p["figures"].get(c), "trust") for c in LEAGUE),
                    ]
                    for p in pack.places
                ),
                "small",
            )
        )
    else:
        parts.append("<h2>Sites</h2>")
        use(*SITE_COLUMNS)
        parts.append(
            _table(
                f"Each site of {pack.place} (current)",
                ["Site", *(label_of(c) for c in SITE_COLUMNS)],
                (
                    [
                        f"<td>{escape(p['sitecode'])}</td>",
                        *(_cell(p["figures"].get(c), "site") for c in SITE_COLUMNS),
                    ]
                    for p in pack.places
                ),
                "small",
            )
        )
    # Definitions
    parts.append(
        f"<h2>Definitions</h2><p>Every figure below national level is published under NHS "
        f"disclosure control. Counts: {escape(CONTROL.split(': ', 1)[1])} Rates, shares and "
        f"means: {escape(RATE_CONTROL[0].lower() + RATE_CONTROL[1:])} Every definition: "
        f"docs/figures.md.</p><dl>"
    )
    for name in used:
        d = definition_of(name)
        text = d.definition.replace(f" {CONTROL}", "").replace(f" {RATE_CONTROL}", "")
        parts.append(
            f"<dt>{escape(label_of(name))}</dt><dd>{escape(text)} "
            f"({escape(d.unit.value)}; {escape(d.direction)}.)</dd>"
        )
    parts.append("</dl>")
    title = f"BeST rollout monthly report: {pack.place}, {month}"
    return (
        f'<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8"/>'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"{''.join(parts)}</body></html>"
    )


def pdf(pack: Pack, document: str | None = None) -> bytes:
    """The pack as an A4, tagged PDF (PDF/UA-1) through WeasyPrint."""
    from weasyprint import HTML  # imported here: only the pack needs it, and it is slow

    result: bytes = HTML(string=document or html(pack)).write_pdf(
        pdf_variant="pdf/ua-1", pdf_tags=True
    )
    return result


def csv_zip(pack: Pack) -> bytes:
    """The pack's tables as CSVs in one zip (values as the API publishes them)."""
    level = "national" if pack.trustcode is None else "trust"
    files: dict[str, str] = {}
    files["headline.csv"] = to_csv(
        [
            {
                "level": level,
                "trustcode": pack.trustcode or "",
                "sitecode": "",
                "as_of": pack.as_of.isoformat() if pack.as_of else "",
                "figure": r.figure,
                "label": label_of(r.figure),
                f"end_of_{pack.month}": r.this_month,
                f"end_of_{pack.previous_month}": r.last_month,
                "change": r.change,
            }
            for r in pack.headline
        ]
    )
    files["month_by_month.csv"] = to_csv(month_rows(pack.series))
    stamp = pack.as_of.isoformat() if pack.as_of else ""
    place_rows = [
        {
            "level": level,
            "trustcode": pack.trustcode or "",
            "sitecode": "",
            "as_of": stamp,
            "name": pack.place,
            **dict(flatten(pack.current)),
        }
    ]
    for p in pack.places:
        place_rows.append(
            {
                "level": "trust" if pack.trustcode is None else "site",
                "trustcode": p.get("trustcode", pack.trustcode),
                "sitecode": p.get("sitecode", ""),
                "as_of": stamp,
                "name": p.get("name", p.get("sitecode", "")),
                **dict(flatten(p["figures"])),
            }
        )
    files["trusts.csv" if pack.trustcode is None else "sites.csv"] = to_csv(place_rows)
    for figure, funnel in pack.followup_funnels.items():
        rows = [r for r in funnel_rows(funnel, stamp) if r["level"] != "limit"]
        files[f"funnel_{figure}.csv"] = to_csv(rows)
    files["rmdq_against_trial_month_12.csv"] = to_csv(comparison_rows(pack.comparison, stamp))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["figure", "label", "unit", "direction", "definition"])
    for d in FIGURES.values():
        writer.writerow([d.name, d.label, d.unit.value, d.direction, d.definition])
    files["definitions.csv"] = out.getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buffer.getvalue()


def file_name(pack: Pack, extension: str) -> str:
    place = pack.trustcode or "national"
    return f"best-monthly-{pack.month}-{place}.{extension}"


MEDIA = {"pdf": "application/pdf", "html": "text/html; charset=utf-8", "zip": "application/zip"}
"""The pack's formats and their media types."""
_RENDERING = threading.Lock()
"""matplotlib's pyplot keeps global state: one pack is drawn at a time."""


def render(pack: Pack, extension: str) -> bytes:
    """The pack in one format (`pdf`, `html` or `zip`); safe to call from worker threads."""
    with _RENDERING:
        if extension == "zip":
            return csv_zip(pack)
        document = html(pack)
        return document.encode() if extension == "html" else pdf(pack, document)
