"""From entity contributions to per-site totals, and from totals to the named figures.

A site's totals are a fold over the contributions of that site's entities (never over
events). Trust and national totals are sums of site totals. Figures that depend on the
reading time (follow-ups due) are derived from the due dates still pending in the totals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.reporting.domain.facts import Contribution
from services.reporting.domain.working import ClassSpan, against_trial, rmdq_names, sites_sustained
from shared.events import Profession
from shared.followup import FOLLOW_UPS, Timepoint
from shared.measures import MEASURES
from shared.surveys import SURVEYS

REMINDER_OUTCOMES = ("sent", "failed")
"""Operations figures `reminders_sent` / `reminders_failed` (not domain.md definitions)."""
STAGES = ("enrolled", "started", "completed", "intending", "delivering")
PROFESSIONS = tuple(p.value for p in Profession)
FOLLOW_UP_NAMES = tuple(tp.value for tp in FOLLOW_UPS)
OUTCOME_TIMEPOINTS = (Timepoint.GROUP_END.value, *FOLLOW_UP_NAMES)
MEASURE_NAMES = tuple(m.value for m in MEASURES)
SURVEY_NAMES = tuple(s.value for s in SURVEYS)
SURVEY_FIGURES = tuple(
    f"{figure}_{s}"
    for s in SURVEY_NAMES
    for figure in (
        "delivery_survey_due",
        "delivery_reported",
        "delivery_response_rate",
        "clinicians_delivering",
    )
)
"""The delivery survey figures (domain.md, "Clinicians' delivery surveys"), per survey."""

Figures = dict[str, Any]
Summary = dict[str, Any]


def _bump(counts: dict[str, int], key: str, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by


def fold_site(
    site: str,
    trust: str,
    clinicians: Iterable[Contribution],
    patients: Iterable[Contribution],
    classes: Iterable[Contribution],
    notifications: Iterable[Contribution] = (),
) -> Summary:
    """The totals of one site from the current contributions of the entities counted there."""
    class_list = list(classes)
    stages: dict[str, dict[str, int]] = {s: {} for s in STAGES}
    surveys = _no_surveys()
    facilitating = 0
    for c in clinicians:
        for stage in STAGES:
            if c[stage]:
                _bump(stages[stage], c["profession"])
        # .get: a contribution stored before the surveys were counted lacks them.
        for name, survey in c.get("surveys", {}).items():
            acc = surveys[name]
            if survey["answered"]:
                acc["answered"] += 1
                acc["delivering"] += int(survey["delivering"])
            else:
                _bump(acc["pending_due"], survey["due"])
        facilitating += int(c.get("facilitating", False))
    recorded = dict.fromkeys(FOLLOW_UP_NAMES, 0)
    pending: dict[str, dict[str, int]] = {tp: {} for tp in FOLLOW_UP_NAMES}
    changes: dict[tuple[str, str], list[float]] = {}
    squares: dict[tuple[str, str], list[float]] = {}
    improved: dict[tuple[str, str], int] = {}
    baseline = 0
    for p in patients:
        baseline += 1
        for tp in FOLLOW_UP_NAMES:
            if p["recorded"][tp]:
                recorded[tp] += 1
            else:
                _bump(pending[tp], p["due"][tp])
        for tp, measures in p["outcomes"].items():
            for m, o in measures.items():
                changes.setdefault((m, tp), []).append(o["change"])
                squares.setdefault((m, tp), []).append(o["change"] * o["change"])
                improved[(m, tp)] = improved.get((m, tp), 0) + int(o["improved"])
    outcomes: dict[str, dict[str, dict[str, float]]] = {}
    for (m, tp), values in sorted(changes.items()):
        outcomes.setdefault(m, {})[tp] = {
            "n": len(values),
            "sum_change": math.fsum(values),
            "improved": improved[(m, tp)],
            "sum_sq_change": math.fsum(squares[(m, tp)]),
        }
    reminders = dict.fromkeys(REMINDER_OUTCOMES, 0)
    for n in notifications:
        reminders[n["outcome"]] += 1
    class_dates = [c["date"] for c in class_list if c.get("date")]
    return {
        "trust": trust,
        "site": site,
        "clinicians": stages,
        "classes_started": len(class_list),
        "patients_baseline": baseline,
        "recorded": recorded,
        "pending_due": pending,
        "outcomes": outcomes,
        "reminders": reminders,
        "surveys": surveys,
        "clinicians_facilitating": facilitating,
        "class_dates": {"first": min(class_dates), "last": max(class_dates)}
        if class_dates
        else None,
    }


def _no_surveys() -> dict[str, dict[str, Any]]:
    """Per survey: clinicians who answered it, whose answer says delivering, and the due
    dates (ISO) of those who have not answered, with how many fall due on each."""
    return {s: {"answered": 0, "delivering": 0, "pending_due": {}} for s in SURVEY_NAMES}


@dataclass
class OutcomeTotals:
    n: int = 0
    changes: list[float] = field(default_factory=list)  # per-site sums, fsum'd at the end
    improved: int = 0
    squares: list[float] = field(default_factory=list)  # per-site sums of squared changes

    @property
    def sum_sq_change(self) -> float:
        return math.fsum(sorted(self.squares))

    @property
    def sum_change(self) -> float:
        return math.fsum(sorted(self.changes))


@dataclass
class Totals:
    """Counts of one level (site, trust or national), summed from site summaries."""

    clinicians: dict[str, dict[str, int]] = field(
        default_factory=lambda: {s: dict.fromkeys(PROFESSIONS, 0) for s in STAGES}
    )
    classes_started: int = 0
    sites_running_classes: int = 0
    patients_baseline: int = 0
    recorded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FOLLOW_UP_NAMES, 0))
    pending_due: dict[str, dict[str, int]] = field(
        default_factory=lambda: {tp: {} for tp in FOLLOW_UP_NAMES}
    )
    outcomes: dict[tuple[str, str], OutcomeTotals] = field(default_factory=dict)
    reminders: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REMINDER_OUTCOMES, 0))
    surveys: dict[str, dict[str, Any]] = field(default_factory=_no_surveys)
    clinicians_facilitating: int = 0
    class_spans: list[ClassSpan] = field(default_factory=list)
    """Per site running classes: its first and latest class start dates."""

    def due(self, timepoint: str, today: date) -> int:
        """Recorded follow-ups plus those pending whose due date has arrived by `today`."""
        arrived = sum(
            n for day, n in self.pending_due[timepoint].items() if date.fromisoformat(day) <= today
        )
        return self.recorded[timepoint] + arrived

    def survey_due(self, survey: str, today: date) -> int:
        """Clinicians who answered the survey plus those whose due date has arrived."""
        held = self.surveys[survey]
        arrived: int = sum(
            n for day, n in held["pending_due"].items() if date.fromisoformat(day) <= today
        )
        return int(held["answered"]) + arrived

    def survey_answered(self, survey: str) -> int:
        return int(self.surveys[survey]["answered"])

    def survey_delivering(self, survey: str) -> int:
        return int(self.surveys[survey]["delivering"])

    def outcome(self, measure: str, timepoint: str) -> OutcomeTotals:
        return self.outcomes.get((measure, timepoint), OutcomeTotals())


def total(summaries: Iterable[Summary]) -> Totals:
    """Sum site summaries (in site order; float sums are rounded exactly, so they never
    depend on the order anyway)."""
    t = Totals()
    for s in sorted(summaries, key=lambda s: str(s["site"])):
        add_site(t, s)
    return tidy(t)


def add_site(t: Totals, s: Summary, sign: int = 1) -> None:
    """Add one site's summary to a level's totals, in place (`sign` -1: take it out).

    Counts add and subtract; a float total keeps each site's value (its negation when taken
    out) and is rounded once, exactly (`OutcomeTotals.sum_change`), so taking a site out
    and putting its new summary in gives bit for bit the sum of the sites as they are now
    (`domain.moved`). `tidy` then drops what no site counts any more."""
    for stage, by_prof in s["clinicians"].items():
        for prof, n in by_prof.items():
            t.clinicians[stage][prof] = t.clinicians[stage].get(prof, 0) + sign * n
    t.classes_started += sign * s["classes_started"]
    t.sites_running_classes += sign * int(s["classes_started"] > 0)
    t.patients_baseline += sign * s["patients_baseline"]
    for tp in FOLLOW_UP_NAMES:
        t.recorded[tp] += sign * s["recorded"][tp]
        for day, n in s["pending_due"][tp].items():
            _bump(t.pending_due[tp], day, sign * n)
    for m, by_tp in s["outcomes"].items():
        for tp, o in by_tp.items():
            acc = t.outcomes.setdefault((m, tp), OutcomeTotals())
            acc.n += sign * o["n"]
            acc.changes.append(sign * o["sum_change"])
            acc.improved += sign * o["improved"]
            acc.squares.append(sign * o.get("sum_sq_change", 0.0))
    # .get: a summary stored before reminders were counted lacks them until recomputed.
    for outcome, n in s.get("reminders", {}).items():
        t.reminders[outcome] += sign * n
    for name, survey in s.get("surveys", {}).items():  # likewise
        held = t.surveys[name]
        held["answered"] += sign * survey["answered"]
        held["delivering"] += sign * survey["delivering"]
        for day, n in survey["pending_due"].items():
            _bump(held["pending_due"], day, sign * n)
    # .get: summaries stored before "is it working?" lack these until recomputed.
    t.clinicians_facilitating += sign * s.get("clinicians_facilitating", 0)
    if s.get("class_dates"):
        span = ClassSpan(
            date.fromisoformat(s["class_dates"]["first"]),
            date.fromisoformat(s["class_dates"]["last"]),
        )
        if sign > 0:
            t.class_spans.append(span)
        else:
            t.class_spans.remove(span)


def tidy(t: Totals) -> Totals:
    """`t` without what no site counts (a due date with nobody pending, an outcome no
    patient has, a profession outside `PROFESSIONS` at zero) and with its class spans in
    order: one form for the same sites' totals, however they were added up (`add_site`)."""
    for stage, by_prof in t.clinicians.items():
        t.clinicians[stage] = {p: n for p, n in by_prof.items() if n or p in PROFESSIONS}
    t.pending_due = {
        tp: {day: n for day, n in days.items() if n} for tp, days in t.pending_due.items()
    }
    for held in t.surveys.values():
        held["pending_due"] = {day: n for day, n in held["pending_due"].items() if n}
    t.outcomes = {key: o for key, o in t.outcomes.items() if o.n or o.improved}
    t.class_spans.sort(key=lambda span: (span.first, span.last))
    return t


def ratio(numerator: float, denominator: float, places: int = 3) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, places)


def raw_figures(t: Totals, today: date, *, with_sites_running: bool) -> Figures:
    """Exact figures of one level, keyed by the API's names (domain.md definitions)."""
    f: Figures = {}
    for stage in STAGES:
        f[f"clinicians_{stage}"] = sum(t.clinicians[stage].values())
    for stage in STAGES:
        f[f"clinicians_{stage}_by_profession"] = dict(t.clinicians[stage])
    f["classes_started"] = t.classes_started
    if with_sites_running:
        f["sites_running_classes"] = t.sites_running_classes
    f["patients_baseline"] = t.patients_baseline
    for tp in FOLLOW_UP_NAMES:
        f[f"patients_{tp}"] = t.recorded[tp]
    for tp in FOLLOW_UP_NAMES:
        f[f"followup_due_{tp}"] = t.due(tp, today)
    for tp in FOLLOW_UP_NAMES:
        f[f"followup_rate_{tp}"] = ratio(t.recorded[tp], t.due(tp, today))
    f["outcomes"] = {
        m: {
            tp: {
                "n": (o := t.outcome(m, tp)).n,
                "mean_change": ratio(o.sum_change, o.n, 2),
                "improved_share": ratio(o.improved, o.n),
            }
            for tp in OUTCOME_TIMEPOINTS
        }
        for m in MEASURE_NAMES
    }
    for outcome in REMINDER_OUTCOMES:
        f[f"reminders_{outcome}"] = t.reminders[outcome]
    for s in SURVEY_NAMES:
        due, answered = t.survey_due(s, today), t.survey_answered(s)
        f[f"delivery_survey_due_{s}"] = due
        f[f"delivery_reported_{s}"] = answered
        f[f"delivery_response_rate_{s}"] = ratio(answered, due)
        f[f"clinicians_delivering_{s}"] = t.survey_delivering(s)
    f.update(working_raw(t, today, with_sites_running=with_sites_running))
    return f


def working_raw(t: Totals, today: date, *, with_sites_running: bool) -> Figures:
    """Exact "is it working?" figures of one level (domain.md): RMDQ against the trial,
    sites that keep going (trust and national only) and clinicians facilitating."""
    f: Figures = {}
    for tp in FOLLOW_UP_NAMES:
        o = t.outcome("rmdq", tp)
        f.update(against_trial(tp, o.n, o.sum_change, o.sum_sq_change))
        f[rmdq_names(tp)[3]] = ratio(o.n, t.due(tp, today))
    if with_sites_running:
        for period, (sustained, eligible) in sites_sustained(t.class_spans, today).items():
            f[f"sites_sustained_{period}"] = sustained
            f[f"sites_eligible_{period}"] = eligible
            f[f"sites_sustained_rate_{period}"] = ratio(sustained, eligible)
    f["clinicians_facilitating"] = t.clinicians_facilitating
    f["clinicians_facilitating_rate"] = ratio(
        t.clinicians_facilitating, sum(t.clinicians["completed"].values())
    )
    return f
