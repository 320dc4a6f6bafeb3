"""Bad events for every subject, generated with hypothesis, each with the field its dead
letter's reason must name.

The batch is generated up front (hypothesis drives a collector, derandomised so a run is
repeatable), published once against running services, then every dead letter is checked.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.envelope import EVENT_TYPES, EventType
from shared.examples import example

NHS_NUMBERS = ["9434765919", "943 476 5919", "4010232137"]
# Valid base events, one per type, as a trust would write them (no null fields).
BASES: dict[str, dict[str, Any]] = {t.name: json.loads(example(t).to_json()) for t in EVENT_TYPES}
# Out-of-range values per event type: (dotted data field, strategy of bad values).
OUT_OF_RANGE: dict[str, list[tuple[str, st.SearchStrategy[Any]]]] = {
    "patient.assessed": [
        ("measures.rmdq", st.integers(25, 10_000) | st.integers(-10_000, -1)),
        ("measures.pain_nrs", st.integers(11, 1000)),
        ("measures.psfs", st.floats(10.01, 1e6)),
        ("measures.pseq", st.integers(61, 1000)),
        ("measures.rmdq", st.floats(0.1, 23.9).filter(lambda x: x != int(x))),
    ],
    "module.completed": [("quiz_score", st.floats(100.01, 1e9) | st.floats(-1e9, -0.01))],
    "clinician.intention_reported": [("confidence", st.integers(11, 10**6))],
    "clinician.delivery_reported": [("groups_delivered", st.integers(max_value=-1))],
    "class.started": [("planned_sessions", st.integers(7, 10**6) | st.integers(max_value=0))],
    "outcome.recorded": [("revision", st.integers(max_value=0))],
}
# A reference that breaks the pattern (stands in for a range where a type has no numbers).
BAD_REFS = st.sampled_from(
    ["", " padded", "a@b.example", "x" * 65, "../../etc/passwd", "名前", "a b"]
)


@dataclass(frozen=True)
class BadEvent:
    """One bad message: raw bytes on a subject, and what its dead letter must name."""

    kind: str
    event_type: str
    subject: str
    body: bytes
    field: str
    msg_id: str


def _subject(name: str, trust: str = "RTH") -> str:
    return f"ibest.v1.{trust}.{name}"


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        data = data.setdefault(p, {})
    data[last] = value


def _wrong_type(value: Any) -> st.SearchStrategy[Any]:
    """Values of some other JSON type than `value` (never null: optional fields take it)."""
    if isinstance(value, bool):
        return st.sampled_from(["true", 1, 0, [True]])
    if isinstance(value, int | float):
        return st.sampled_from([str(value), [value], {"v": value}, True])
    if isinstance(value, str):
        return st.integers() | st.just(True) | st.just([value]) | st.just({"value": value})
    if isinstance(value, list):
        return st.sampled_from(["a-ref", 3, {"0": "a"}])
    return st.sampled_from(["text", 7, ["list"]])


KINDS = [
    "malformed",
    "wrong_type",
    "missing",
    "range",
    "unknown_version",
    "unknown_type",
    "trust_mismatch",
    "envelope",
    "padding",
    "nhs_number",
]


def kinds_of(etype: EventType) -> list[str]:
    """The bad kinds that apply to a type (only patient events carry a patient reference)."""
    return [
        k
        for k in KINDS
        if k != "nhs_number" or etype.name in ("patient.assessed", "outcome.recorded")
    ]


@st.composite
def bad_events(
    draw: st.DrawFn, etype: EventType | None = None, kind: str | None = None
) -> BadEvent:
    etype = etype or draw(st.sampled_from(EVENT_TYPES))
    name = etype.name
    event = copy.deepcopy(BASES[name])
    kind = kind or draw(st.sampled_from(kinds_of(etype)))
    event["id"] = str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"bad/{name}/{kind}/{draw(st.integers(0, 2**64))}")
    )
    msg_id = f"bad-{event['id']}"
    data = event["data"]
    subject = _subject(name)
    field: str
    if kind == "malformed":
        body = json.dumps(event).encode()
        cut = draw(st.integers(1, len(body) - 1))
        broken = draw(
            st.sampled_from(
                [body[:cut], b"\xff\xfe" + body, body.replace(b'"', b"'", 1), b"[" + body + b"]"]
            )
        )
        return BadEvent(kind, name, subject, broken, "event", msg_id)
    if kind == "wrong_type":
        key = draw(st.sampled_from(sorted(data)))
        data[key] = draw(_wrong_type(data[key]))
        field = f"data.{key}"
    elif kind == "missing":
        required = [k for k, f in etype.payload.model_fields.items() if f.is_required()]
        key = draw(st.sampled_from(required))
        del data[key]
        field = f"data.{key}"
    elif kind == "range":
        options = OUT_OF_RANGE.get(name)
        if options:
            path, values = draw(st.sampled_from(options))
            _set(data, path, draw(values))
        else:
            path = next(k for k in data if k.endswith("_ref") or k.endswith("_id"))
            data[path] = draw(BAD_REFS)
        field = f"data.{path}"
    elif kind == "unknown_version":
        event["type"] = etype.ce_type[:-1] + str(draw(st.integers(2, 99)))
        field = "type"
    elif kind == "unknown_type":
        event["type"] = draw(
            st.sampled_from(
                [
                    "uk.nhs.ibest.patient.deleted.v1",
                    "uk.nhs.ibest.clinician.erased.v1",
                    "com.example.other.v1",
                ]
            )
        )
        field = "type"
    elif kind == "trust_mismatch":
        subject = _subject(name, draw(st.sampled_from(["RXF", "R0A", "RGT"])))
        field = "subject"
    elif kind == "envelope":
        attr, bad = draw(
            st.sampled_from(
                [
                    ("trustcode", "rth"),
                    ("sitecode", "RXF01"),
                    ("time", "2026-03-02T09:30:00"),
                    ("specversion", "0.3"),
                    ("id", "not-a-uuid"),
                    ("datacontenttype", "text/xml"),
                    ("source", ""),
                ]
            )
        )
        event[attr] = bad
        field = attr
        if attr == "trustcode":  # keep the subject honest, so the envelope is what fails
            subject = _subject(name, "rth")
    elif kind == "nhs_number":
        data["patient_ref"] = draw(st.sampled_from(NHS_NUMBERS))
        field = "data.patient_ref"
    else:  # padding: an unknown field making the event just under the 64 KiB limit
        size = draw(st.integers(50_000, 60_000))
        data["padding"] = "x" * size
        field = "data.padding"
    body = json.dumps(event).encode()
    return BadEvent(kind, name, subject, body, field, msg_id)


def _collect(strategy: st.SearchStrategy[BadEvent], n: int) -> list[BadEvent]:
    out: list[BadEvent] = []

    @settings(
        max_examples=n,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(bad: BadEvent) -> None:
        out.append(bad)

    collect()
    return out


def generate(per_kind: int, extra: int) -> list[BadEvent]:
    """`per_kind` of every (event type, kind) pair, then `extra` drawn freely; the same on
    every run."""
    out: list[BadEvent] = []
    for etype in EVENT_TYPES:
        for kind in kinds_of(etype):
            out += _collect(bad_events(etype, kind), per_kind)
    out += _collect(bad_events(), extra)
    unique = {b.msg_id: b for b in out}  # hypothesis may replay an example
    return list(unique.values())
