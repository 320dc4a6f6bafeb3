"""What each reminder says: Notify personalisation, and the same text for SMTP.

Bodies name patients only by pseudonymous reference; clinicians are addressed generically.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.notifications.domain.followups import DigestLine
from shared.events import ReminderKind
from shared.followup import Timepoint
from shared.surveys import Survey

Personalisation = dict[str, str | list[str]]

TIMEPOINT_LABEL = {Timepoint.MONTH_3: "3-month", Timepoint.MONTH_12: "12-month"}
SURVEY_LABEL = {Survey.MONTH_4: "4-month", Survey.MONTH_12: "12-month"}


@dataclass(frozen=True)
class Content:
    subject: str
    body: str
    personalisation: Personalisation


def training_content(kind: ReminderKind, course_url: str, number: int = 1) -> Content:
    if kind == ReminderKind.TRAINING_START:
        subject = "Your iBeST course is waiting for you"
        lead = "You enrolled on the iBeST course but have not started it yet."
    else:
        subject = "Pick up your iBeST course where you left off"
        lead = "You started the iBeST course; the next module is waiting for you."
    body = f"{lead}\n\nContinue here: {course_url}\n"
    return Content(subject, body, {"course_url": course_url, "reminder_number": str(number)})


def thanks_content(course_version: str, intention_url: str) -> Content:
    body = (
        "Thank you for completing the iBeST course.\n\n"
        "Do you intend to deliver BeST classes? Please tell us, with how confident you feel: "
        f"{intention_url}\n"
    )
    return Content(
        "Thank you for completing iBeST",
        body,
        {"course_version": course_version, "intention_url": intention_url},
    )


def describe(line: DigestLine) -> str:
    label = TIMEPOINT_LABEL.get(line.timepoint, line.timepoint.value)
    if line.kind == ReminderKind.FOLLOW_UP_CLOSING:
        return (
            f"{line.patient_ref}: {label} follow-up window closes {line.closes.isoformat()} "
            "(not yet collected)"
        )
    return (
        f"{line.patient_ref}: {label} follow-up due {line.due.isoformat()} "
        f"(window closes {line.closes.isoformat()})"
    )


def digest_content(sitecode: str, day: str, lines: list[DigestLine]) -> Content:
    closing = [describe(x) for x in lines if x.kind == ReminderKind.FOLLOW_UP_CLOSING]
    due = [describe(x) for x in lines if x.kind != ReminderKind.FOLLOW_UP_CLOSING]
    parts = [f"BeST follow-ups for site {sitecode} on {day} ({len(lines)} patients)."]
    if closing:
        parts.append("Windows closing soon:\n" + "\n".join(f"* {x}" for x in closing))
    if due:
        parts.append("Now due:\n" + "\n".join(f"* {x}" for x in due))
    parts.append("Patients are listed by your trust's pseudonymous reference only.")
    return Content(
        f"BeST follow-ups due at {sitecode}: {len(lines)}",
        "\n\n".join(parts) + "\n",
        {
            "site": sitecode,
            "date": day,
            "count": str(len(lines)),
            "closing_list": closing or ["none"],
            "due_list": due or ["none"],
        },
    )


def survey_link(template: str, survey: Survey, clinician_ref: str) -> str:
    """The configured survey link with `{survey}` and `{clinician_ref}` filled in, so the
    system hosting the survey can tell who answered which survey."""
    return template.replace("{survey}", survey.value).replace("{clinician_ref}", clinician_ref)


def survey_content(kind: ReminderKind, survey: Survey, closes: str, survey_url: str) -> Content:
    label = SURVEY_LABEL[survey]
    if kind == ReminderKind.DELIVERY_SURVEY_CLOSING:
        subject = f"Two weeks left: your {label} iBeST delivery survey"
        lead = (
            f"We have not yet heard from you for the {label} iBeST delivery survey. "
            f"It closes on {closes}."
        )
    else:
        subject = f"Your {label} iBeST delivery survey"
        lead = (
            f"It is {label.split('-')[0]} months since you completed the iBeST course. "
            "Are you delivering BeST classes? Your answer helps the programme, whether or "
            f"not you are. The survey is open until {closes}."
        )
    body = f"{lead}\n\nAnswer here (two questions): {survey_url}\n"
    return Content(subject, body, {"survey": label, "closes": closes, "survey_url": survey_url})
