"""Published figures as Prometheus gauges, from a snapshot rendered to text.

A background loop renders the snapshot when the figures change; a scrape only appends it
to the process's own metrics (no database I/O, no rendering inside a scrape). Only
disclosure-controlled values are exported below national level; suppressed ("*") and
undefined values are omitted. Series: site ones carry `trust` and `site`, trust ones
`trust`, national ones neither (docs/architecture.md, "Prometheus names").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from services.reporting.domain.figures import (
    FOLLOW_UP_NAMES,
    REMINDER_OUTCOMES,
    STAGES,
    SURVEY_FIGURES,
    Figures,
)
from services.reporting.domain.working import (
    SUSTAINED_PERIODS,
    VERDICT_FIGURE,
    VERDICTS,
    rmdq_names,
)
from services.reporting.pacing import Slices

PREFIX = "ibest_"
Labels = dict[str, str]
_HELP = {
    "sites_running_classes": "Sites where any BeST class has started.",
    "clinicians_by_profession": "Clinicians at a funnel stage, by profession.",
    "outcome_n": "Patients with the measure at baseline and the follow-up timepoint.",
    "outcome_mean_change": "Mean change (follow-up minus baseline) of the measure.",
    "outcome_improved_share": "Share of patients with a meaningful improvement.",
    "reporting_last_event_timestamp_seconds": "Event time of the newest applied event.",
    "reminders_sent": "Reminders whose latest outcome is sent (operations figure).",
    "reminders_failed": "Reminders whose latest outcome is failed (operations figure).",
    VERDICT_FIGURE: "RMDQ improvement at 12 months against the BeST trial: 1 for the "
    "place's verdict (consistent, below, above), 0 for the others.",
}
SCALARS = (
    *(f"clinicians_{s}" for s in STAGES),
    "classes_started",
    "sites_running_classes",
    "patients_baseline",
    *(f"patients_{tp}" for tp in FOLLOW_UP_NAMES),
    *(f"followup_due_{tp}" for tp in FOLLOW_UP_NAMES),
    *(f"followup_rate_{tp}" for tp in FOLLOW_UP_NAMES),
    *(f"reminders_{outcome}" for outcome in REMINDER_OUTCOMES),
    *SURVEY_FIGURES,
)
IS_IT_WORKING = (
    *(name for tp in FOLLOW_UP_NAMES for name in rmdq_names(tp)),
    *(
        f"sites_{figure}_{period}"
        for period in SUSTAINED_PERIODS
        for figure in ("sustained", "eligible", "sustained_rate")
    ),
    "clinicians_facilitating",
    "clinicians_facilitating_rate",
)
"""domain.md "Is it working?" gauges; the verdict is `ibest_rmdq_vs_trial_month_12` with a
`verdict` label, 1 for the place's verdict and 0 for the other two."""


def _number(value: Any) -> float | None:
    """A publishable value: numbers only (suppressed "*" and undefined None are omitted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _add(families: dict[str, GaugeMetricFamily], name: str, labels: Labels, value: Any) -> None:
    number = _number(value)
    if number is None:
        return
    full = PREFIX + name
    if name not in families:
        families[name] = GaugeMetricFamily(
            full,
            _HELP.get(name, f"The {name} figure (domain.md); controlled below national level."),
        )
    families[name].samples.append(Sample(full, labels, number))


def _add_level(families: dict[str, GaugeMetricFamily], labels: Labels, figures: Figures) -> None:
    """One level's samples (labels {} national, {trust}, {trust,site})."""
    for name in (*SCALARS, *IS_IT_WORKING):
        if name in figures:
            _add(families, name, labels, figures[name])
    for stage in STAGES:
        for profession, n in figures[f"clinicians_{stage}_by_profession"].items():
            _add(
                families,
                "clinicians_by_profession",
                {**labels, "stage": stage, "profession": profession},
                n,
            )
    for measure, by_tp in figures["outcomes"].items():
        for tp, o in by_tp.items():
            extra = {**labels, "measure": measure, "timepoint": tp}
            _add(families, "outcome_n", extra, o["n"])
            _add(families, "outcome_mean_change", extra, o["mean_change"])
            _add(families, "outcome_improved_share", extra, o["improved_share"])
    if figures.get(VERDICT_FIGURE) in VERDICTS:
        for v in VERDICTS:
            _add(
                families,
                VERDICT_FIGURE,
                {**labels, "verdict": v},
                int(figures[VERDICT_FIGURE] == v),
            )


def metric_families(
    levels: Iterable[tuple[Labels, Figures]], last_event: float | None
) -> list[Metric]:
    """Gauge families for figures at each level (labels {} national, {trust}, {trust,site})."""
    families: dict[str, GaugeMetricFamily] = {}
    for labels, figures in levels:
        _add_level(families, labels, figures)
    if last_event is not None:
        _add(families, "reporting_last_event_timestamp_seconds", {}, last_event)
    return list(families.values())


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def exposition(levels: Iterable[tuple[Labels, Figures]], last_event: float | None) -> bytes:
    """The figures as Prometheus exposition text, rendered once per change of the figures.

    At national scale that is about 100,000 samples. Kept as objects, they were most of what
    the garbage collector walks on each full pass (140 - 170 ms, measured: the tail of every
    report's latency); kept as bytes, a scrape copies them and the collector skips them.
    """
    return _render(metric_families(levels, last_event))


def _render(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


Rendered = list[tuple[str, str, list[str]]]
"""A level's samples as text: per family, its name, its `# HELP` and `# TYPE` lines and its
sample lines."""


def _rendered(families: dict[str, GaugeMetricFamily]) -> Rendered:
    """prometheus_client's own rendering of a few families, split back into families."""
    out: Rendered = []
    for line in _render(list(families.values())).decode().splitlines(keepends=True):
        if line.startswith("# HELP "):
            out.append((line.split(" ", 3)[2], line, []))
        elif line.startswith("# TYPE "):
            name, header, lines = out[-1]
            out[-1] = (name, header + line, lines)
        else:
            out[-1][2].append(line)
    return out


async def sliced_exposition(
    levels: Iterable[tuple[Labels, Figures]],
    last_event: float | None,
    slices: Slices,
    known: dict[tuple[tuple[str, str], ...], tuple[Figures, Rendered]] | None = None,
) -> bytes:
    """`exposition`, byte for byte, a level at a time, giving the event loop back between
    levels (`slices`).

    Rendering every level at national scale takes over a second of CPU (issue 26): at once,
    it stopped every request for that long. And building all 100,000 samples as objects
    before rendering them made the collector walk them (young collections of 50 - 150 ms,
    measured). Here each level's few samples are rendered by prometheus_client itself and
    kept as lines of text (which the collector does not track), grouped by family; the
    families are then written in the order they first appeared, each with its `# HELP` and
    `# TYPE` lines once, as the whole render does. `known` keeps each level's text from the
    previous snapshot: a level whose figures are unchanged (most, after a batch) is not
    rendered again."""
    headers: dict[str, str] = {}
    lines: dict[str, list[str]] = {}
    fresh: dict[tuple[tuple[str, str], ...], tuple[Figures, Rendered]] = {}

    def take(rendered: Rendered) -> None:
        for name, header, sample_lines in rendered:
            headers.setdefault(name, header)
            lines.setdefault(name, []).extend(sample_lines)

    for labels, figures in levels:
        key = tuple(labels.items())
        before = (known or {}).get(key)
        if before is not None and before[0] == figures:
            rendered = before[1]
        else:
            level: dict[str, GaugeMetricFamily] = {}
            _add_level(level, labels, figures)
            rendered = _rendered(level)
        fresh[key] = (figures, rendered)
        take(rendered)
        await slices.pause()
    if last_event is not None:
        level = {}
        _add(level, "reporting_last_event_timestamp_seconds", {}, last_event)
        take(_rendered(level))
    if known is not None:
        known.clear()
        known.update(fresh)
    return "".join(headers[name] + "".join(lines[name]) for name in headers).encode()
