"""Every published figure's label, unit, direction and definition: the one source of truth.

docs/figures.md is generated from here (`python -m services.reporting.figures_doc`, checked
in CI), and so are the reporting API's OpenAPI descriptions, the Grafana panels'
descriptions and units, and the monthly report pack's labels and definitions page. The
wording follows the programme's definitions (domain.md, which lives outside the
repository), so a reader never needs that file. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.reporting.domain.trial import BEST_TRIAL
from shared.measures import MEASURES


class Unit(StrEnum):
    """What a figure counts or measures; `fraction` is a rate or share from 0 to 1."""

    CLINICIANS = "clinicians"
    CLASSES = "classes"
    SITES = "sites"
    PATIENTS = "patients"
    REMINDERS = "reminders"
    FRACTION = "fraction"
    RMDQ_POINTS = "RMDQ points"
    POINTS = "points"
    VERDICT = "verdict"


GRAFANA_UNITS = {Unit.FRACTION: "percentunit", Unit.VERDICT: "string"}
"""Grafana's unit for a figure's unit (every count and score: "none", a plain number)."""


@dataclass(frozen=True)
class FigureDefinition:
    """One figure: `name` as the API, CSV and /metrics (with `ibest_`) name it."""

    name: str
    label: str
    """Plain English, what a board paper or a dashboard shows."""
    unit: Unit
    higher_is_better: bool | None
    """None: neither (a count of people due, a denominator)."""
    definition: str
    section: str

    @property
    def anchor(self) -> str:
        """The figure's heading anchor in docs/figures.md."""
        return self.name.replace(".", "").replace("<", "").replace(">", "").lower()

    @property
    def grafana_unit(self) -> str:
        return GRAFANA_UNITS.get(self.unit, "none")

    @property
    def direction(self) -> str:
        if self.higher_is_better is None:
            return "neither"
        return "higher is better" if self.higher_is_better else "lower is better"


FUNNEL = "Clinician funnel"
CLASSES = "Classes and sites"
PATIENTS = "Patients and follow-up"
SURVEYS = "Delivery surveys"
WORKING = "Against the trial"
SUSTAINED = "Sites that keep going"
OUTCOMES = "Patient outcomes"
OPERATIONS = "Operations"

TIMEPOINT_WORDS = {"group_end": "group end", "month_3": "3 months", "month_12": "12 months"}
SURVEY_WORDS = {"month_4": "4-month", "month_12": "12-month"}
SURVEY_DUE = {"month_4": (122, 14, 42), "month_12": (365, 28, 56)}
FOLLOWUP_DUE = {"month_3": (91, 14, 42), "month_12": (364, 28, 56)}
PERIOD_DAYS = {"6_months": 182, "12_months": 364}
PLACE = "A clinician counts at the trust and site of their latest enrolment (by event time)."
CONTROL = (
    "Published below national level under disclosure control: 0 stays 0, 1 to 7 is shown "
    "as *, other counts are rounded to the nearest 5."
)
RATE_CONTROL = (
    "Below national level it is computed from the rounded counts, given to the precision "
    "its rounded denominator supports, and suppressed (*) when 1 to 7 people are behind it."
)


def _funnel() -> list[FigureDefinition]:
    stages = {
        "enrolled": (
            "Clinicians enrolled",
            "Clinicians (each once nationally, by their pseudonymous reference) who "
            "registered on the iBeST course.",
        ),
        "started": (
            "Clinicians started",
            "Enrolled clinicians who started at least one module of the course version "
            "they enrolled on (a module started or completed).",
        ),
        "completed": (
            "Clinicians completed",
            "Enrolled clinicians who completed every required module of the course "
            "version they enrolled on.",
        ),
        "intending": (
            "Clinicians intending to deliver",
            "Enrolled clinicians whose latest intention report (asked at course "
            "completion) says they intend to deliver BeST.",
        ),
        "delivering": (
            "Clinicians delivering (self-reported)",
            "Enrolled clinicians whose latest delivery report, in or outside a survey "
            "window, says they deliver BeST.",
        ),
    }
    out = [
        FigureDefinition(
            f"clinicians_{stage}",
            label,
            Unit.CLINICIANS,
            True,
            f"{text} The stages are cumulative: every completed clinician started, every "
            f"started clinician enrolled. {PLACE} {CONTROL}",
            FUNNEL,
        )
        for stage, (label, text) in stages.items()
    ]
    out.append(
        FigureDefinition(
            "clinicians_<stage>_by_profession",
            "Clinicians at each stage by profession",
            Unit.CLINICIANS,
            True,
            "Each funnel stage split by the profession of the latest enrolment "
            f"(physiotherapist, nurse, occupational therapist, psychologist, other). {CONTROL}",
            FUNNEL,
        )
    )
    out.append(
        FigureDefinition(
            "clinicians_facilitating",
            "Clinicians facilitating classes (observed)",
            Unit.CLINICIANS,
            True,
            "Completed clinicians named as a facilitator of at least one class, counted at "
            "the clinician's place; beside the self-reported delivering figure so the two "
            f"can be compared. {CONTROL}",
            FUNNEL,
        )
    )
    out.append(
        FigureDefinition(
            "clinicians_facilitating_rate",
            "Share of completed clinicians facilitating",
            Unit.FRACTION,
            True,
            f"Clinicians facilitating over clinicians completed, to 3 places. {RATE_CONTROL}",
            FUNNEL,
        )
    )
    return out


def _classes() -> list[FigureDefinition]:
    return [
        FigureDefinition(
            "classes_started",
            "Classes started",
            Unit.CLASSES,
            True,
            f"BeST group classes started, each counted once at its site. {CONTROL}",
            CLASSES,
        ),
        FigureDefinition(
            "sites_running_classes",
            "Sites running classes",
            Unit.SITES,
            True,
            "Sites where at least one class has started (trust and national figures only). "
            + CONTROL,
            CLASSES,
        ),
    ]


def _patients() -> list[FigureDefinition]:
    out = [
        FigureDefinition(
            "patients_baseline",
            "Patients assessed at baseline",
            Unit.PATIENTS,
            True,
            "Patients with a baseline assessment (before their first group session), counted "
            f"at the site of their baseline. {CONTROL}",
            PATIENTS,
        )
    ]
    for tp, (days, before, after) in FOLLOWUP_DUE.items():
        words = TIMEPOINT_WORDS[tp]
        out += [
            FigureDefinition(
                f"patients_{tp}",
                f"Patients followed up at {words}",
                Unit.PATIENTS,
                True,
                f"Patients with a baseline and a {words} follow-up recorded. {CONTROL}",
                PATIENTS,
            ),
            FigureDefinition(
                f"followup_due_{tp}",
                f"Follow-ups due at {words}",
                Unit.PATIENTS,
                None,
                f"Patients with a baseline whose {words} follow-up has fallen due ({days} days "
                f"after the baseline, collectable from {before} days before to {after} days "
                f"after, Europe/London dates) or is already recorded. {CONTROL}",
                PATIENTS,
            ),
            FigureDefinition(
                f"followup_rate_{tp}",
                f"Follow-up rate at {words}",
                Unit.FRACTION,
                True,
                f"Follow-ups recorded over follow-ups due at {words}, to 3 places. The trial "
                f"collected {BEST_TRIAL.followup_completeness:.0%} at 12 months; missing "
                f"follow-ups were earlier phases' known weak point. {RATE_CONTROL}",
                PATIENTS,
            ),
        ]
    return out


def _surveys() -> list[FigureDefinition]:
    out: list[FigureDefinition] = []
    for s, (days, before, after) in SURVEY_DUE.items():
        words = SURVEY_WORDS[s]
        window = (
            f"The {words} survey is due {days} days after the clinician completed the course "
            f"and answered by a report from {before} days before to {after} days after that."
        )
        out += [
            FigureDefinition(
                f"delivery_survey_due_{s}",
                f"{words.capitalize()} delivery surveys due",
                Unit.CLINICIANS,
                None,
                f"Completed clinicians whose {words} survey has fallen due, or who already "
                f"answered it. {window} {CONTROL}",
                SURVEYS,
            ),
            FigureDefinition(
                f"delivery_reported_{s}",
                f"{words.capitalize()} delivery surveys answered",
                Unit.CLINICIANS,
                True,
                f"Of the clinicians due, those who answered the {words} survey. {window} "
                + CONTROL,
                SURVEYS,
            ),
            FigureDefinition(
                f"delivery_response_rate_{s}",
                f"{words.capitalize()} survey response rate",
                Unit.FRACTION,
                True,
                f"{words.capitalize()} surveys answered over surveys due, to 3 places. "
                + RATE_CONTROL,
                SURVEYS,
            ),
            FigureDefinition(
                f"clinicians_delivering_{s}",
                f"Clinicians delivering at the {words} survey",
                Unit.CLINICIANS,
                True,
                f"Clinicians whose answer to the {words} survey (the latest report inside its "
                f"window) says they deliver BeST. {CONTROL}",
                SURVEYS,
            ),
        ]
    return out


def _working() -> list[FigureDefinition]:
    trial = BEST_TRIAL.rmdq_improvement
    out: list[FigureDefinition] = []
    for tp in ("month_3", "month_12"):
        words = TIMEPOINT_WORDS[tp]
        out += [
            FigureDefinition(
                f"rmdq_improvement_{tp}",
                f"RMDQ improvement at {words}",
                Unit.RMDQ_POINTS,
                True,
                f"Mean improvement on the Roland-Morris Disability Questionnaire (baseline "
                f"minus {words} follow-up, 0 to 24 points) of patients with an RMDQ at both, "
                f"2 places. The trial's group programme improved by {trial.mean} points at 12 "
                f"months (95% CI {trial.low} to {trial.high}). Not shown for 1 to 7 patients.",
                WORKING,
            ),
            FigureDefinition(
                f"rmdq_improvement_ci_low_{tp}",
                f"RMDQ improvement at {words}, 95% CI lower limit",
                Unit.RMDQ_POINTS,
                True,
                "Mean - 1.96 x sample standard deviation / square root of n, 2 places; none "
                "for a single patient. Not shown for 1 to 7 patients.",
                WORKING,
            ),
            FigureDefinition(
                f"rmdq_improvement_ci_high_{tp}",
                f"RMDQ improvement at {words}, 95% CI upper limit",
                Unit.RMDQ_POINTS,
                True,
                "Mean + 1.96 x sample standard deviation / square root of n, 2 places; none "
                "for a single patient. Not shown for 1 to 7 patients.",
                WORKING,
            ),
            FigureDefinition(
                f"rmdq_followup_completeness_{tp}",
                f"RMDQ follow-up completeness at {words}",
                Unit.FRACTION,
                True,
                f"Patients with an RMDQ at baseline and at {words} over the patients due that "
                f"follow-up, 3 places. The trial reached "
                f"{BEST_TRIAL.followup_completeness:.0%} at 12 months. {RATE_CONTROL}",
                WORKING,
            ),
        ]
    out.append(
        FigureDefinition(
            "rmdq_vs_trial_month_12",
            "RMDQ improvement at 12 months against the trial",
            Unit.VERDICT,
            None,
            f"consistent when the place's 95% interval overlaps the trial's {trial.low} to "
            f"{trial.high}; below when its upper limit is under {trial.low}; above when its "
            f"lower limit is over {trial.high}. Not shown for 1 to 7 patients.",
            WORKING,
        )
    )
    return out


def _sustained() -> list[FigureDefinition]:
    out: list[FigureDefinition] = []
    for period, days in PERIOD_DAYS.items():
        words = period.replace("_", " ")
        out += [
            FigureDefinition(
                f"sites_eligible_{period}",
                f"Sites eligible at {words}",
                Unit.SITES,
                None,
                f"Sites whose first class started {days} days or more ago (trust and national "
                f"only). {CONTROL}",
                SUSTAINED,
            ),
            FigureDefinition(
                f"sites_sustained_{period}",
                f"Sites sustained at {words}",
                Unit.SITES,
                True,
                f"Eligible sites that started another class {days} or more days after their "
                f"first: is BeST becoming self-seeding? {CONTROL}",
                SUSTAINED,
            ),
            FigureDefinition(
                f"sites_sustained_rate_{period}",
                f"Share of eligible sites sustained at {words}",
                Unit.FRACTION,
                True,
                f"Sites sustained over sites eligible at {words}, 3 places. {RATE_CONTROL}",
                SUSTAINED,
            ),
        ]
    return out


def _outcomes() -> list[FigureDefinition]:
    better = "; ".join(
        f"{spec.title}: {'lower' if spec.lower_is_better else 'higher'} is better"
        for spec in MEASURES.values()
    )
    return [
        FigureDefinition(
            "outcomes.<measure>.<timepoint>.n",
            "Patients with the measure at baseline and follow-up",
            Unit.PATIENTS,
            True,
            "Patients with that measure at both baseline and that follow-up (group end, 3 or "
            f"12 months; the latest correction of each). {CONTROL}",
            OUTCOMES,
        ),
        FigureDefinition(
            "outcomes.<measure>.<timepoint>.mean_change",
            "Mean change from baseline",
            Unit.POINTS,
            None,
            "The mean of the patients' changes, follow-up minus baseline, 2 places; its good "
            f"direction depends on the measure ({better}). Not shown for 1 to 7 patients.",
            OUTCOMES,
        ),
        FigureDefinition(
            "outcomes.<measure>.<timepoint>.improved_share",
            "Share meaningfully improved",
            Unit.FRACTION,
            True,
            "The share of those patients whose change is a meaningful improvement: in the "
            "better direction by at least the measure's points threshold (RMDQ 5, pain 2, "
            "PSFS 2, PSEQ 7) or, where it applies, 30% of the baseline; no change is never "
            f"an improvement. 3 places. {RATE_CONTROL}",
            OUTCOMES,
        ),
    ]


def _operations() -> list[FigureDefinition]:
    return [
        FigureDefinition(
            f"reminders_{outcome}",
            f"Reminders {outcome}",
            Unit.REMINDERS,
            outcome == "sent",
            f"An operations figure: reminders whose latest outcome (by event time) is "
            f"{outcome}, at the site of that outcome. {CONTROL}",
            OPERATIONS,
        )
        for outcome in ("sent", "failed")
    ]


FIGURES: dict[str, FigureDefinition] = {
    d.name: d
    for d in (
        *_funnel(),
        *_classes(),
        *_patients(),
        *_surveys(),
        *_working(),
        *_sustained(),
        *_outcomes(),
        *_operations(),
    )
}
SECTIONS = (FUNNEL, CLASSES, PATIENTS, SURVEYS, WORKING, SUSTAINED, OUTCOMES, OPERATIONS)


def definition_of(name: str) -> FigureDefinition:
    """The definition of a figure name as the API gives it: a plain name,
    `clinicians_completed_by_profession`, or a dotted outcome `outcomes.rmdq.month_3.n`."""
    if name in FIGURES:
        return FIGURES[name]
    if name.startswith("clinicians_") and name.endswith("_by_profession"):
        return FIGURES["clinicians_<stage>_by_profession"]
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "outcomes":
        return FIGURES[f"outcomes.<measure>.<timepoint>.{parts[3]}"]
    raise KeyError(f"no definition for figure {name!r}")


def label_of(name: str) -> str:
    """A figure's label in words; an outcome's names its measure and timepoint."""
    found = definition_of(name)
    parts = name.split(".")
    if parts[0] == "outcomes" and len(parts) == 4 and not parts[1].startswith("<"):
        measure = next(s.title for m, s in MEASURES.items() if m.value == parts[1])
        return f"{found.label}, {measure}, {TIMEPOINT_WORDS[parts[2]]}"
    return found.label
