"""The CloudEvents 1.0 envelope (structured JSON mode) and the one parser of the contract.

`parse_event(subject, body, received=...)` is what every consumer runs on bytes from the
wire: it enforces the size bound, the envelope, the event type's payload model, the subject
rules, the reviewed reference data (the course catalogue) and a believable time against when
the platform received the event (`shared.eventtime`), and raises `ContractError` naming each
field and the rule it broke. It is the platform's one verdict on an event: every consumer,
the reporting rebuild and the gateway apply it alike, so no service counts what another
rejects (domain.md, "One verdict per event").
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from shared import events as ev
from shared.catalogue import catalogue
from shared.codes import code_of_pydantic
from shared.eventtime import DEFAULT_TIME_BOUNDS, TimeBounds, time_problem
from shared.identifiers import TRUST_CODE_PATTERN, SiteCode, TrustCode

SPEC_VERSION = "1.0"
CONTRACT_VERSION = "v1"
TYPE_PREFIX = "uk.nhs.ibest."
SUBJECT_PREFIX = "ibest.v1."
MAX_EVENT_BYTES = 64 * 1024
"""Largest event accepted, in bytes; the events stream enforces the same bound."""


@dataclass(frozen=True)
class EventType:
    """One event type of the contract: its aggregate, verb and payload model."""

    aggregate: str
    verb: str
    payload: type[ev.Payload]
    summary: str

    @property
    def name(self) -> str:
        """`<aggregate>.<verb>`, the short name used in subjects and docs."""
        return f"{self.aggregate}.{self.verb}"

    @property
    def ce_type(self) -> str:
        """The CloudEvents `type` attribute."""
        return f"{TYPE_PREFIX}{self.name}.{CONTRACT_VERSION}"

    def subject(self, trustcode: str) -> str:
        return f"{SUBJECT_PREFIX}{trustcode}.{self.name}"


EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        "clinician",
        "enrolled",
        ev.ClinicianEnrolled,
        "A clinician registered on a course version at a site.",
    ),
    EventType("module", "started", ev.ModuleStarted, "A clinician opened a course module."),
    EventType("module", "completed", ev.ModuleCompleted, "A clinician finished a course module."),
    EventType(
        "clinician",
        "training_started",
        ev.TrainingStarted,
        "Derived by enrolment: an enrolled clinician began their course version.",
    ),
    EventType(
        "clinician",
        "training_completed",
        ev.TrainingCompleted,
        "Derived by enrolment: every required module of the version completed.",
    ),
    EventType(
        "clinician",
        "intention_reported",
        ev.IntentionReported,
        "A clinician's answer on intending to deliver BeST.",
    ),
    EventType(
        "clinician",
        "delivery_reported",
        ev.DeliveryReported,
        "A clinician's report of actually delivering BeST.",
    ),
    EventType("class", "started", ev.ClassStarted, "A BeST class began at a site."),
    EventType(
        "patient",
        "assessed",
        ev.PatientAssessed,
        "A patient's scores at one timepoint (a later one for the same timepoint corrects it).",
    ),
    EventType(
        "outcome",
        "recorded",
        ev.OutcomeRecorded,
        "Derived by outcomes: a follow-up compared with the patient's baseline.",
    ),
    EventType("notification", "sent", ev.NotificationSent, "A reminder left the platform."),
    EventType(
        "notification",
        "failed",
        ev.NotificationFailed,
        "A reminder could not be delivered, with the reason.",
    ),
)
BY_CE_TYPE: dict[str, EventType] = {t.ce_type: t for t in EVENT_TYPES}
BY_NAME: dict[str, EventType] = {t.name: t for t in EVENT_TYPES}
BY_PAYLOAD: dict[type[ev.Payload], EventType] = {t.payload: t for t in EVENT_TYPES}

D = TypeVar("D", bound=ev.Payload)


class CloudEvent(BaseModel, Generic[D]):
    """A contract event: CloudEvents 1.0 attributes, our two extensions, and typed data.

    Other attributes (the optional `subject` and `dataschema`, any extension such as
    `traceparent`) are tolerated, as the CloudEvents spec asks of a receiver, and not kept:
    `parse_event` checks their names and values (`_attribute_errors`), the model drops them.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    specversion: Literal["1.0"]
    id: uuid.UUID = Field(description="Chosen by the producer; the idempotency key.")
    source: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="URI reference naming the producing system, e.g. /trusts/RTH/lms."
    )
    type: Annotated[str, StringConstraints(pattern=r"^uk\.nhs\.ibest\.[a-z_]+\.[a-z_]+\.v\d+$")]
    time: AwareDatetime = Field(description="RFC 3339 with an offset; naive times are invalid.")
    datacontenttype: Literal["application/json"] = Field(
        default="application/json", description="Optional; JSON is the default."
    )
    trustcode: TrustCode
    sitecode: SiteCode
    data: D

    @property
    def event_type(self) -> EventType:
        return BY_CE_TYPE[self.type]

    @property
    def subject(self) -> str:
        """The NATS subject this event is published on."""
        return self.event_type.subject(self.trustcode)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


AnyEvent = CloudEvent[Any]


class _Envelope(BaseModel):
    """The envelope alone, to validate attributes before choosing the payload model."""

    model_config = ConfigDict(strict=True, extra="ignore")

    specversion: Literal["1.0"]
    id: uuid.UUID
    source: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    type: str
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    trustcode: TrustCode
    sitecode: SiteCode
    data: dict[str, Any]


CONTRACT_ATTRIBUTES = frozenset(_Envelope.model_fields)
"""The attributes a stored event keeps; any other is checked, tolerated and dropped."""
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,20}")
"""CloudEvents attribute names: lower-case letters and digits, at most 20 characters."""


def _attribute_errors(raw: dict[str, Any]) -> list[FieldError]:
    """The optional attributes and extensions of `raw` (anything but the contract's own):
    each must be a CloudEvents name with a string, number or boolean value (null: absent)."""
    errors = []
    for name, value in raw.items():
        if name in CONTRACT_ATTRIBUTES:
            continue
        if not _ATTRIBUTE_NAME.fullmatch(name):
            errors.append(
                FieldError(
                    name[:64],
                    "is not a CloudEvents attribute name (a-z and 0-9, at most 20 characters)",
                    "attribute-name",
                )
            )
        elif value is not None and not isinstance(value, str | int | float | bool):
            errors.append(
                FieldError(
                    name,
                    "an optional or extension attribute must be a string, number or boolean",
                    "attribute-value",
                )
            )
    return errors


@dataclass(frozen=True)
class FieldError:
    """One broken rule: the dotted field path, what rule it broke, and the rule's stable code.

    `code` is what an integration engine matches on (docs/errors.md lists every code); the
    `rule` text is for people and may be reworded.
    """

    field: str
    rule: str
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


REUSED_ID = FieldError("id", "id already used for a different event", "reused-id")
"""The one rule that needs state: an id a trust already used for other content (the gateway's
ledger and every consumer's judge it per trust; domain.md, "One verdict per event")."""


class ContractError(ValueError):
    """An event that breaks the contract. It is never retried: it is dead-lettered."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))

    @classmethod
    def one(cls, field: str, rule: str, code: str = "invalid") -> ContractError:
        return cls([FieldError(field, rule, code)])


class RepeatedKey(ValueError):
    """A JSON object names one key twice. Parsers disagree on which value counts (Python's
    and Pydantic's take the last, others the first), so such an event is refused."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(repeated_key_rule(key))


def repeated_key_rule(key: str) -> str:
    return (
        f"repeats the key {key!r} in one JSON object; each key may appear once "
        "(parsers disagree on which value would count)"
    )


def refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` for `json.loads`: the object, or `RepeatedKey`."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RepeatedKey(key)
            seen.add(key)
    return found


def loads_once_keyed(body: bytes | str) -> Any:
    """`json.loads` that refuses an object with a repeated key (`RepeatedKey`): every path
    that reads an event reads it this way, so no two parsers can disagree about it."""
    return json.loads(body, object_pairs_hook=refuse_repeated_keys)


def _field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        field = ".".join(p for p in (prefix, loc) if p) or prefix or "event"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a field of this event type in contract v1"
        out.append(FieldError(field, msg, code_of_pydantic(err)))
    return out


_VERSIONED = (ev.ClinicianEnrolled, ev.TrainingStarted, ev.TrainingCompleted)
_MODULE_EVENTS = (ev.ModuleStarted, ev.ModuleCompleted)


def _reference_errors(data: ev.Payload) -> list[FieldError]:
    """Rules against the reviewed reference data shipped with the contract (the catalogue).

    Only rules that need no state live here; they hold for the event alone, so every
    consumer, whatever it has seen before, reaches the same verdict.
    """
    problem: str | None = None
    field = code = ""
    if isinstance(data, _VERSIONED):
        field, problem = (
            "data.course_version",
            catalogue().course_version_error(data.course_version),
        )
        code = "unknown-course-version"
    elif isinstance(data, _MODULE_EVENTS):
        field, problem = "data.module_id", catalogue().module_error(data.module_id)
        code = "unknown-module"
    return [FieldError(field, problem, code)] if problem else []


def parse_event(
    subject: str | None,
    body: bytes,
    decoded: dict[str, Any] | None = None,
    *,
    received: datetime | None = None,
    bounds: TimeBounds = DEFAULT_TIME_BOUNDS,
) -> AnyEvent:
    """Validate one event from the wire; `subject` is checked against it when given.

    `decoded` is `body` already parsed as a JSON object, when the caller has it (the gateway
    reads a batch's events once), to spare a second parse; the verdict is the same, so the
    caller must have parsed it refusing repeated keys (`refuse_repeated_keys`).
    `received` is when the platform received the event: the gateway's clock as it stores
    it, the stream's stored timestamp for a consumer and a rebuild, so every one of them
    judges its time alike (`shared.eventtime`); without it only the programme's start is
    checked (an event the platform builds from events already judged).
    """
    if len(body) > MAX_EVENT_BYTES:
        raise ContractError.one(
            "event", f"is {len(body)} bytes; the limit is {MAX_EVENT_BYTES}", "too-large"
        )
    if decoded is not None:
        raw: Any = decoded
    else:
        try:
            raw = loads_once_keyed(body)
        except RepeatedKey as exc:
            raise ContractError.one("event", str(exc), "duplicate-key") from None
        except RecursionError:
            raise ContractError.one("event", "is nested too deeply to read", "too-deep") from None
        except ValueError as exc:  # not UTF-8, not JSON, or an integer of over 4,300 digits
            raise ContractError.one("event", f"is not valid JSON: {exc}", "not-json") from None
    if not isinstance(raw, dict):
        raise ContractError.one(
            "event", "must be a JSON object (CloudEvents structured mode)", "not-an-object"
        )
    errors: list[FieldError] = _attribute_errors(raw)
    valid = None if errors else _valid_in_one_pass(subject, body, raw)
    if valid is not None:
        return _believable(valid, received, bounds)
    env: _Envelope | None = None
    try:
        env = _Envelope.model_validate_json(body)
    except ValidationError as exc:
        errors.extend(_field_errors(exc))
    ce_type = raw.get("type")
    etype = BY_CE_TYPE.get(ce_type) if isinstance(ce_type, str) else None
    if etype is None and "type" in raw:
        known = ", ".join(sorted(BY_CE_TYPE))
        shown = repr(raw["type"])[:80]
        errors.append(
            FieldError(
                "type", f"unknown event type or version {shown}; known: {known}", "unknown-type"
            )
        )
    data: ev.Payload | None = None
    if etype is not None and isinstance(raw.get("data"), dict):
        try:
            data = etype.payload.model_validate_json(json.dumps(raw["data"]))
        except ValidationError as exc:
            errors.extend(_field_errors(exc, "data"))
    if env is not None and etype is not None:
        if not env.sitecode.startswith(env.trustcode):
            errors.append(
                FieldError(
                    "sitecode", f"must begin with the trust code {env.trustcode}", "wrong-site"
                )
            )
        expected = etype.subject(env.trustcode)
        if subject is not None and subject != expected:
            errors.append(
                FieldError(
                    "subject",
                    f"{subject!r} does not match the event: expected {expected!r} (the subject's "
                    "trust and event must equal the envelope's trustcode and type)",
                    "subject-mismatch",
                )
            )
    if data is not None:
        errors.extend(_reference_errors(data))
    if errors or env is None or data is None:
        raise ContractError(errors or [FieldError("event", "is not a valid event")])
    return _believable(
        _TYPED_EVENTS[env.type].model_construct(**{**env.model_dump(), "data": data}),
        received,
        bounds,
    )


def _believable(event: AnyEvent, received: datetime | None, bounds: TimeBounds) -> AnyEvent:
    """The event, if its time is believable (`shared.eventtime`); else its one refusal."""
    problem = time_problem(event.time, received, bounds)
    if problem is not None:
        raise ContractError.one("time", *problem)
    return event


_TYPED_EVENTS: dict[str, type[CloudEvent[Any]]] = {
    t.ce_type: CloudEvent[t.payload]  # type: ignore[name-defined]
    for t in EVENT_TYPES
}


def _valid_in_one_pass(subject: str | None, body: bytes, raw: dict[str, Any]) -> AnyEvent | None:
    """The common case, a valid event, checked in one validation of the typed model (the full
    check below validates the envelope and the payload apart, to name every broken rule).
    Only an event that passes every rule is returned here; anything else, None, is judged in
    full, so the verdict and its reasons are the full check's."""
    ce_type = raw.get("type")
    model = _TYPED_EVENTS.get(ce_type) if isinstance(ce_type, str) else None
    if model is None:
        return None
    try:
        event = model.model_validate_json(body)
    except ValidationError:
        return None
    expected = BY_CE_TYPE[event.type].subject(event.trustcode)
    if (
        not event.sitecode.startswith(event.trustcode)
        or (subject is not None and subject != expected)
        or _reference_errors(event.data)
    ):
        return None
    return event


@dataclass(frozen=True)
class EventLabel:
    """What can be told of a message even when it breaks the contract: its short type name
    (`unknown` when neither the envelope nor the subject names a contract event), CloudEvent
    id and trust code (empty when unreadable). Never any reference from the payload."""

    name: str
    event_id: str
    trustcode: str


UNKNOWN_TYPE = "unknown"
_TRUST = re.compile(TRUST_CODE_PATTERN)


def label_event(subject: str | None, body: bytes) -> EventLabel:
    """Best-effort label of a message for logs, metrics and dead-letter headers: from the
    envelope where it is readable, else from the subject. Never raises."""
    raw: Any = None
    if len(body) <= MAX_EVENT_BYTES:
        try:
            raw = json.loads(body)
        except (ValueError, RecursionError):  # not UTF-8, not JSON, a 4,300-digit number
            raw = None
    raw = raw if isinstance(raw, dict) else {}
    parts = (subject or "").split(".")
    from_subject = ".".join(parts[3:]) if subject and subject.startswith(SUBJECT_PREFIX) else ""
    ce_type = raw.get("type")
    etype = BY_CE_TYPE.get(ce_type) if isinstance(ce_type, str) else None
    name = etype.name if etype else from_subject if from_subject in BY_NAME else UNKNOWN_TYPE
    event_id = ""
    if isinstance(raw.get("id"), str):
        try:
            event_id = str(uuid.UUID(raw["id"]))
        except ValueError:
            event_id = ""
    trust = raw.get("trustcode")
    if not (isinstance(trust, str) and _TRUST.fullmatch(trust)):
        trust = parts[2] if len(parts) > 2 and _TRUST.fullmatch(parts[2]) else ""
    return EventLabel(name, event_id, trust)


def new_event(
    payload: ev.Payload,
    *,
    trustcode: str,
    sitecode: str,
    source: str,
    time: datetime,
    event_id: uuid.UUID | None = None,
) -> AnyEvent:
    """Build a valid event around `payload` (validated like anything read from the wire)."""
    etype = BY_PAYLOAD[type(payload)]
    raw = {
        "specversion": SPEC_VERSION,
        "id": str(event_id or uuid.uuid4()),
        "source": source,
        "type": etype.ce_type,
        "time": time.isoformat(),
        "datacontenttype": "application/json",
        "trustcode": trustcode,
        "sitecode": sitecode,
        "data": payload.model_dump(mode="json", exclude_none=True),
    }
    return parse_event(None, json.dumps(raw).encode())
