"""Arbitrary bodies, headers and content types at POST /v1/events over real HTTP: never a
500, and nothing stored that breaks the contract or belongs to another trust.

The requests are generated up front by hypothesis (derandomised, so a run is repeatable),
sent to a running gateway, then the stream is read back and judged with parse_event.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.js import JetStreamContext

from services.gateway.domain.results import DERIVED_EVENTS
from shared.envelope import EVENT_TYPES, parse_event
from shared.examples import example
from tests.gateway.conftest import KeyMaker
from tests.harness import platform_msg_id, stream_events

SENT_BY_TRUSTS = [
    json.loads(example(t).to_json()) for t in EVENT_TYPES if t.name not in DERIVED_EVENTS
]
CONTENT_TYPES = [
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/json",
    "application/cloudevents+json; charset=utf-8",
    "text/plain",
    "application/xml",
    "",
    "multipart/form-data",
]
ATTRIBUTES = [
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "trustcode",
    "sitecode",
    "data",
    "subject",
    "extra",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
    str.strip
)


@st.composite
def events(draw: st.DrawFn) -> Any:
    """A valid RTH event with a fresh id, often broken in one or two places."""
    event: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from(SENT_BY_TRUSTS))))
    event["id"] = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)), version=4))
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(ATTRIBUTES))
        action = draw(st.sampled_from(["set", "delete", "data"]))
        if action == "delete":
            event.pop(name, None)
        elif action == "set":
            event[name] = draw(json_values | st.sampled_from(["RXF", "RXF01", "RTH", "1.0"]))
        elif isinstance(event.get("data"), dict) and event["data"]:
            key = draw(st.sampled_from(sorted(event["data"])))
            event["data"][key] = draw(json_values)
    return draw(st.just(event) | json_values.filter(lambda v: not isinstance(v, list)))


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    content_type = draw(st.sampled_from(CONTENT_TYPES) | header_text)
    kind = draw(st.sampled_from(["one", "batch", "binary", "bytes"]))
    headers = {"Content-Type": content_type} if content_type else {}
    if kind == "one":
        body = json.dumps(draw(events())).encode()
    elif kind == "batch":
        body = json.dumps(draw(st.lists(events(), max_size=6))).encode()
    elif kind == "binary":
        event = draw(events())
        if isinstance(event, dict):
            for name, value in event.items():
                if name != "data" and name.isascii() and name.isalnum():
                    text = value if isinstance(value, str) else json.dumps(value)
                    headers[f"ce-{name}"] = quote(text, safe=" :/+-._")  # the binding's rule
            body = json.dumps(event.get("data")).encode()
        else:
            body = json.dumps(event).encode()
    else:
        body = draw(st.binary(max_size=200))
    headers.update(
        draw(
            st.dictionaries(
                st.sampled_from(["ce-specversion", "ce-id", "ce-x", "X-Other", "Content-Encoding"]),
                header_text,
                max_size=2,
            )
        )
    )
    return headers, body


def landmarks() -> list[tuple[dict[str, str], bytes]]:
    """One request per answer the generator is meant to reach, so the run covers each."""
    valid = {**SENT_BY_TRUSTS[0], "id": str(uuid.uuid4())}
    other = {**valid, "id": str(uuid.uuid4()), "trustcode": "RXF", "sitecode": "RXF01"}
    broken = {**valid, "id": str(uuid.uuid4()), "time": "yesterday"}
    one = {"Content-Type": "application/cloudevents+json"}
    return [
        (one, json.dumps(valid).encode()),
        (one, json.dumps(other).encode()),
        (one, json.dumps(broken).encode()),
        (one, b"{"),
        ({"Content-Type": "text/csv"}, b""),
    ]


def generate(n: int) -> list[tuple[dict[str, str], bytes]]:
    out: list[tuple[dict[str, str], bytes]] = landmarks()

    @settings(
        max_examples=n,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests())
    def collect(request: tuple[dict[str, str], bytes]) -> None:
        out.append(request)

    collect()
    return out


@pytest.mark.slow
async def test_arbitrary_requests_never_500_and_never_store_an_invalid_event(
    gateway: str, new_key: KeyMaker, js: JetStreamContext
) -> None:
    auth = await new_key("RTH")
    accepted: set[str] = set()
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        for headers, body in generate(300):
            reply = await client.post(
                "/v1/events", content=body, headers={**headers, "Authorization": auth}
            )
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
            assert reply.status_code in {200, 400, 403, 413, 415, 422}, (
                headers,
                body,
                reply.status_code,
                reply.text,
            )
            if reply.status_code in (200, 422, 403):
                for result in reply.json()["results"]:
                    assert set(result) == {"id", "status", "errors"}
                    if result["status"] == "accepted":
                        accepted.add(result["id"])
    # every kind of answer was reached, including stored events
    assert {200, 400, 403, 415, 422} <= set(statuses), statuses
    stored = await stream_events(js, ">")
    assert {e["id"] for e in stored} == accepted
    for e in stored:
        raw = {k: v for k, v in e.items() if not k.startswith("_")}
        event = parse_event(e["_subject"], json.dumps(raw).encode())
        assert event.trustcode == "RTH" and e["_msg_id"] == platform_msg_id(e)
