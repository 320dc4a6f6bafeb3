"""xAPI 1.0.3 statements: what the gateway accepts as one, and what it becomes.

Read as an LRS reads a statement (the properties it may have, an Agent's one identifier, IRIs
for verbs and activities), plus two rules of this platform: a statement must carry its `id`
(a UUID: it makes a re-sent statement a duplicate) and its `timestamp` (the fact's time).
A valid statement that maps to nothing the programme counts (another verb, an activity the
catalogue does not list, an actor that is no mapped learner) is acknowledged and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.gateway.courses.domain.progress import COMPLETED, ENROLLED, STARTED, Fact
from shared.catalogue import Catalogue
from shared.keyed import keyed_event_id

VERSION = "1.0.3"
VERB = "http://adlnet.gov/expapi/verbs/"
VERBS = {
    f"{VERB}registered": ENROLLED,
    f"{VERB}launched": STARTED,
    f"{VERB}initialized": STARTED,
    f"{VERB}attempted": STARTED,
    f"{VERB}completed": COMPLETED,
    f"{VERB}passed": COMPLETED,
}
_PROPERTIES = frozenset(
    {
        "id",
        "actor",
        "verb",
        "object",
        "result",
        "context",
        "timestamp",
        "stored",
        "authority",
        "version",
        "attachments",
    }
)
_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
_NOT_CONTENT = ("stored", "authority", "version")
"""Set by an LRS, not the statement's content (xAPI: compare statements without them)."""


class StatementError(ValueError):
    """Why a statement is not valid xAPI (or lacks the id or timestamp this platform needs)."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


@dataclass(frozen=True)
class Statement:
    id: str
    timestamp: datetime
    verb: str
    activity: str | None
    """`object.id` when the object is an Activity, else None."""
    account: tuple[str, str] | None
    """The actor's account (homePage, name), when the actor is identified by one."""
    digest: str
    """Of the statement's content: the same id with another digest is a conflict (409)."""


def _iri(value: object) -> bool:
    return isinstance(value, str) and ":" in value and not any(c.isspace() for c in value)


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StatementError(field, "not-an-object", f"{field} must be a JSON object")
    return value


def read_statement(raw: object) -> Statement:
    """The statement, or StatementError naming the property and the rule it breaks."""
    statement = _object(raw, "statement")
    unknown = sorted(set(statement) - _PROPERTIES)
    if unknown:
        raise StatementError(
            unknown[0] or "statement", "unknown-property", f"{unknown[0]!r} is not an xAPI property"
        )
    statement_id = statement.get("id")
    if statement_id is None:
        raise StatementError(
            "id",
            "id-required",
            "id is required: the platform needs the sender's statement id "
            "to keep a re-sent statement a duplicate",
        )
    try:
        if not isinstance(statement_id, str):
            raise ValueError
        statement_id = str(uuid.UUID(statement_id))
    except ValueError:
        raise StatementError("id", "not-a-uuid", f"id {statement_id!r} is not a UUID") from None
    stamp = statement.get("timestamp")
    if stamp is None:
        raise StatementError(
            "timestamp", "timestamp-required", "timestamp is required: it is the time of the fact"
        )
    timestamp = _timestamp(stamp)
    account = _actor(_object(statement.get("actor"), "actor"))
    verb = _object(statement.get("verb"), "verb")
    if not _iri(verb.get("id")):
        raise StatementError("verb.id", "not-an-iri", "verb.id must be an IRI")
    target = _object(statement.get("object"), "object")
    activity = None
    if target.get("objectType", "Activity") == "Activity":
        if not _iri(target.get("id")):
            raise StatementError("object.id", "not-an-iri", "object.id must be an activity IRI")
        activity = target["id"]
    for part in ("result", "context"):
        if part in statement:
            _object(statement[part], part)
    content = {k: v for k, v in statement.items() if k not in _NOT_CONTENT}
    content["id"], content["timestamp"] = statement_id, timestamp.isoformat()
    digest = hashlib.sha256(
        json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    return Statement(statement_id, timestamp, verb["id"], activity, account, digest)


def _timestamp(stamp: object) -> datetime:
    try:
        if not isinstance(stamp, str):
            raise ValueError
        value = datetime.fromisoformat(stamp)
    except ValueError:
        raise StatementError(
            "timestamp", "not-a-time", f"timestamp {stamp!r} is not an ISO 8601 time"
        ) from None
    if value.tzinfo is None:
        raise StatementError(
            "timestamp", "no-time-zone", f"timestamp {stamp!r} needs a time zone (e.g. Z)"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00, before year 1 in UTC
        raise StatementError(
            "timestamp", "not-a-time", f"timestamp {stamp!r} is out of range"
        ) from None


def _actor(actor: dict[str, Any]) -> tuple[str, str] | None:
    kind = actor.get("objectType", "Agent")
    if kind not in ("Agent", "Group"):
        raise StatementError("actor.objectType", "invalid", "actor.objectType is Agent or Group")
    ifis = [i for i in _IFIS if i in actor]
    if kind == "Agent" and len(ifis) != 1:
        raise StatementError(
            "actor",
            "one-identifier",
            "an Agent has exactly one of mbox, mbox_sha1sum, openid, account",
        )
    if "account" not in ifis:
        return None
    account = _object(actor["account"], "actor.account")
    home, name = account.get("homePage"), account.get("name")
    if not _iri(home) or not isinstance(name, str) or not name:
        raise StatementError(
            "actor.account", "invalid", "actor.account needs homePage (an IRL) and name"
        )
    assert isinstance(home, str)
    return (home.rstrip("/"), name) if kind == "Agent" else None


@dataclass(frozen=True)
class Mapped:
    """What a statement counts as: the fact and the course version it belongs to."""

    fact: Fact
    course_version: str


def map_statement(statement: Statement, catalogue: Catalogue) -> Mapped | str:
    """The fact a statement records, or why the programme does not count it (ignored)."""
    kind = VERBS.get(statement.verb)
    if kind is None:
        return f"verb {statement.verb} is not one the programme counts"
    if statement.activity is None:
        return "the object is not an activity"
    found = catalogue.activity(statement.activity)
    if found is None:
        return f"activity {statement.activity} is not in the catalogue"
    version, module_id = found
    if kind == ENROLLED and module_id is not None:
        return f"registered on a module ({module_id}), not on the course"
    if kind != ENROLLED and module_id is None:
        return f"{statement.verb.removeprefix(VERB)} names the course, not a module"
    return Mapped(Fact(kind, statement.timestamp, module_id), version)


def statement_event_id(key: bytes, statement_id: str) -> uuid.UUID:
    """The event id of a statement: deterministic in the statement id (a re-sent statement is
    a duplicate) but keyed, so no trust that learnt or guessed a statement id can send an
    event with it first and make the platform drop the course platform's."""
    return keyed_event_id(key, "xapi-statement", statement_id)


def as_bearer(authorization: str | None) -> str | None:
    """The Authorization header as the gateway's key check reads it: `Bearer <key>` as
    sent, and HTTP Basic (what learning platforms usually send) with the key as the
    password (any user name, e.g. the key id) or as the user name with an empty password."""
    if not authorization:
        return authorization
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return authorization
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    token = password if password.startswith("ibk_") else user
    return f"Bearer {token}" if token else None
