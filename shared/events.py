"""Event payloads (`data`) of contract version 1, one model per event type."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.followup import Timepoint
from shared.identifiers import PatientRef, Ref, SiteCode
from shared.measures import MEASURES, Measure, range_error

EMAIL_PATTERN = r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}$"
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=254)]
CourseVersion = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,15}$")]


class Payload(BaseModel):
    """Base of every `data` model: strict types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Profession(StrEnum):
    PHYSIOTHERAPIST = "physiotherapist"
    NURSE = "nurse"
    OCCUPATIONAL_THERAPIST = "occupational_therapist"
    PSYCHOLOGIST = "psychologist"
    DOCTOR = "doctor"
    OTHER = "other"


class ClinicianEnrolled(Payload):
    """A clinician registered on an iBeST course version at a site."""

    clinician_ref: Ref
    profession: Profession
    course_version: CourseVersion
    contact_email: Email | None = Field(
        default=None, description="Only for this clinician's reminders; kept by enrolment alone."
    )


class ModuleStarted(Payload):
    clinician_ref: Ref
    module_id: Ref


class ModuleCompleted(Payload):
    clinician_ref: Ref
    module_id: Ref
    quiz_score: Annotated[float, Field(ge=0, le=100)] | None = None


DERIVED_REVISION = Field(
    default=None,
    description="Absent on the first event of this clinician and course version (revision "
    "1); 2, 3, ... on each correction, when an earlier module event arrived after it was "
    "published. Each revision has its own id; consumers keep the highest revision.",
)


class TrainingStarted(Payload):
    """Derived by the enrolment service: an enrolled clinician's earliest module event (by
    event time) of a course version they enrolled on. Corrected by a higher `revision` when
    an earlier module event arrives later."""

    clinician_ref: Ref
    course_version: CourseVersion
    revision: Annotated[int, Field(ge=2)] | None = DERIVED_REVISION


class TrainingCompleted(Payload):
    """Derived by the enrolment service: every required module of the version completed, at
    the latest of the required modules' first completions. Corrected by a higher `revision`
    when an earlier completion arrives later."""

    clinician_ref: Ref
    course_version: CourseVersion
    completed_at: AwareDatetime | None = Field(
        default=None,
        description="Event time of the module event that completed the last required module; "
        "its Europe/London date times the delivery surveys (shared.surveys). Set by enrolment; "
        "absent from older events, whose event time is the same moment.",
    )
    revision: Annotated[int, Field(ge=2)] | None = DERIVED_REVISION


class IntentionReported(Payload):
    clinician_ref: Ref
    intends_to_deliver: bool
    confidence: Annotated[int, Field(ge=0, le=10)]


class DeliveryReported(Payload):
    clinician_ref: Ref
    delivering: bool
    groups_delivered: Annotated[int, Field(ge=0, le=10_000)]


class ClassStarted(Payload):
    class_id: Ref
    facilitator_refs: Annotated[list[Ref], Field(min_length=1, max_length=20)]
    planned_sessions: Annotated[int, Field(ge=1, le=6)]


Score = int | float


class Measures(Payload):
    """Scores of one assessment: whichever measures the site collected, at least one."""

    rmdq: Score | None = None
    pain_nrs: Score | None = None
    von_korff_pain: Score | None = None
    von_korff_disability: Score | None = None
    psfs: Score | None = None
    pseq: Score | None = None

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={"minProperties": 1},
    )

    @field_validator("*")
    @classmethod
    def _in_range(cls, value: Score | None, info: ValidationInfo) -> Score | None:
        if value is not None:
            problem = range_error(Measure(str(info.field_name)), value)
            if problem:
                raise PydanticCustomError("out-of-range", problem)
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> Measures:
        if not self.present():
            raise PydanticCustomError("no-measure", "an assessment must carry at least one measure")
        return self

    def present(self) -> dict[Measure, float]:
        """The measures this assessment carries, by name."""
        return {m: getattr(self, m.value) for m in MEASURES if getattr(self, m.value) is not None}


class PatientAssessed(Payload):
    patient_ref: PatientRef
    class_id: Ref | None = None
    timepoint: Timepoint
    measures: Measures


class MeasureOutcome(Payload):
    """One measure at a follow-up against the same patient's baseline."""

    baseline: float
    value: float
    change: float = Field(description="value minus baseline")
    improved: bool = Field(description="a meaningful improvement by domain.md's thresholds")


class OutcomeRecorded(Payload):
    """Derived by the outcomes service: a follow-up compared with its baseline.

    A correction of either assessment publishes a new `outcome.recorded` for the same
    patient and timepoint; consumers keep the one with the highest `revision`.
    """

    patient_ref: PatientRef
    timepoint: Literal[Timepoint.GROUP_END, Timepoint.MONTH_3, Timepoint.MONTH_12]
    baseline_time: AwareDatetime
    assessment_time: AwareDatetime
    revision: Annotated[int, Field(ge=1)] = Field(
        description="Increases with every correction of this patient's baseline or follow-up."
    )
    measures: dict[Measure, MeasureOutcome]


class ReminderKind(StrEnum):
    TRAINING_START = "training_start"
    TRAINING_CONTINUE = "training_continue"
    TRAINING_THANKS = "training_thanks"
    FOLLOW_UP_DUE = "follow_up_due"
    FOLLOW_UP_CLOSING = "follow_up_closing"
    DELIVERY_SURVEY_DUE = "delivery_survey_due"
    DELIVERY_SURVEY_CLOSING = "delivery_survey_closing"


class RecipientKind(StrEnum):
    CLINICIAN = "clinician"
    SITE_TEAM = "site_team"


class NotificationSent(Payload):
    """A reminder left the platform; addresses are never carried, only references."""

    notification_id: Ref
    kind: ReminderKind
    recipient_kind: RecipientKind
    recipient_ref: Ref | SiteCode
    template_id: Annotated[str, StringConstraints(max_length=64)]
    channel: Literal["notify", "smtp", "log"]
    sent_at: datetime


class NotificationFailed(Payload):
    notification_id: Ref
    kind: ReminderKind
    recipient_kind: RecipientKind
    recipient_ref: Ref | SiteCode
    template_id: Annotated[str, StringConstraints(max_length=64)]
    channel: Literal["notify", "smtp", "log"]
    reason: Annotated[str, StringConstraints(max_length=500)]
