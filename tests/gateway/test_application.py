"""Every gateway use case on in-memory fakes (no servers): keys, sending, rejections."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.gateway.api.answers import (
    STATUS_OF_REFUSAL,
    STATUS_OF_VERDICT,
    Reply,
    ingested,
    rejection_page,
)
from services.gateway.api.answers import refused as refused_reply
from services.gateway.application import Answered, DeadLetterRecorder, Ingested
from services.gateway.domain.keys import KeyRuleError
from services.gateway.domain.requests import BATCH, STRUCTURED, Refusal, Why
from services.gateway.domain.results import Verdict
from services.gateway.ports import DeadLetterMessage
from tests.fakes.gateway import FakeDeadLetterSource, ManualClock, World, world
from tests.harness import cloud_event

SENT_AT = ManualClock.now - timedelta(hours=1)
"""When the fakes' events are dated: an hour before the gateway's (fake) clock."""


def assessed(
    trust: str = "RTH",
    site: str = "RTH08",
    rmdq: int = 14,
    event_id: str | None = None,
    time: datetime = SENT_AT,
) -> dict[str, Any]:
    return cloud_event(
        "patient.assessed",
        {
            "patient_ref": f"pt-{uuid.uuid4().hex[:8]}",
            "timepoint": "baseline",
            "measures": {"rmdq": rmdq},
        },
        trust=trust,
        site=site,
        event_id=event_id,
        time=time,
    )


async def key_of(w: World, trust: str = "RTH") -> str:
    _, token = await w.admin.create(trust)
    return f"Bearer {token}"


async def send(
    w: World,
    auth: str | None,
    body: Any,
    content_type: str = BATCH,
    headers: dict[str, str] | None = None,
) -> Reply:
    """The use case's outcome as the route answers it (services/gateway/api/answers.py)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    started = w.gateway.timer()
    return ingested(
        w.gateway, await w.gateway.ingest(auth, content_type, headers or {}, raw), started
    )


async def rejections(w: World, *args: Any) -> Reply:
    """The rejections' use case as the route answers it."""
    return rejection_page(w.gateway, await w.gateway.rejections(*args))


# Keys


async def test_a_key_is_stored_only_as_its_hash_and_verifies() -> None:
    w = world()
    key, token = await w.admin.create("RTH")
    assert token.startswith(f"ibk_{key.key_id}_") and len(token) > 50
    stored = w.keys.keys[key.key_id]
    assert token not in repr(stored) and stored.key_hash != token
    assert await w.gateway.authenticate(f"Bearer {token}") == stored


async def test_a_trust_holds_at_most_two_active_keys_and_rotates_by_revoking() -> None:
    w = world()
    first, _ = await w.admin.create("RTH")
    await w.admin.create("RTH")
    with pytest.raises(KeyRuleError, match="already has 2 active keys"):
        await w.admin.create("RTH")
    await w.admin.create("RXF")  # another trust is unaffected
    await w.admin.revoke(first.key_id)
    await w.admin.create("RTH")
    listed = await w.admin.list()
    assert [(k.trust, k.active) for k in listed] == [
        ("RTH", False),
        ("RTH", True),
        ("RTH", True),
        ("RXF", True),
    ]


async def test_keys_need_a_trust_code_and_an_existing_id() -> None:
    w = world()
    with pytest.raises(KeyRuleError, match="3-character ODS trust code"):
        await w.admin.create("rth08")
    with pytest.raises(KeyRuleError, match="no key with id"):
        await w.admin.revoke("000000000000")


@pytest.mark.parametrize(
    "auth", [None, "Basic abc", "Bearer ", "Bearer nonsense", "Bearer ibk_0123456789ab_" + "A" * 43]
)
async def test_no_or_unknown_key_is_401_with_www_authenticate(auth: str | None) -> None:
    w = world()
    reply = await send(w, auth, [assessed()])
    assert reply.status == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert w.stream.stored == {}


async def test_a_revoked_key_is_refused() -> None:
    w = world()
    key, token = await w.admin.create("RTH")
    assert (await send(w, f"Bearer {token}", [assessed()])).status == 200
    await w.admin.revoke(key.key_id)
    assert (await send(w, f"Bearer {token}", [assessed()])).status == 401
    assert (await rejections(w, f"Bearer {token}", None, 10)).status == 401


async def test_a_remembered_key_is_refused_once_its_cache_time_passes_after_revocation() -> None:
    w = world(key_cache_seconds=5)
    key, token = await w.admin.create("RTH")
    assert (await send(w, f"Bearer {token}", [assessed()])).status == 200
    await w.admin.revoke(key.key_id)
    w.clock.seconds += 4.9
    assert (await send(w, f"Bearer {token}", [assessed()])).status == 200  # remembered
    w.clock.seconds += 0.2
    assert (await send(w, f"Bearer {token}", [assessed()])).status == 401


# Sending


async def test_one_structured_event_is_accepted_then_a_duplicate() -> None:
    w = world()
    auth = await key_of(w)
    event = assessed()
    first = await send(w, auth, event, STRUCTURED)
    assert first.status == 200
    assert first.body == {"results": [{"id": event["id"], "status": "accepted", "errors": []}]}
    again = await send(w, auth, event, "application/cloudevents+json; charset=utf-8")
    assert again.status == 200 and again.body["results"][0]["status"] == "duplicate"
    assert list(w.stream.stored) == [event["id"]]
    assert w.metrics.seen[-1] == ("RTH", 200, ["duplicate"])


async def test_a_batch_stores_exactly_the_valid_events_and_says_why_for_the_others() -> None:
    w = world()
    auth = await key_of(w)
    good = [assessed(), assessed()]
    bad_range = assessed(rmdq=25)
    not_object = ["not", "an", "event"]
    batch = [good[0], bad_range, not_object, good[1]]
    reply = await send(w, auth, batch)
    assert reply.status == 422
    results = reply.body["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "accepted"]
    assert results[1]["id"] == bad_range["id"]
    assert [e["field"] for e in results[1]["errors"]] == ["data.measures.rmdq"]
    assert results[2]["errors"][0]["field"] == "event"
    assert set(w.stream.stored) == {good[0]["id"], good[1]["id"]}
    # the refusals are the trust's rejections, with the reason
    rows = (await rejections(w, auth, None, 100)).body["rejections"]
    assert {r["id"] for r in rows} == {bad_range["id"], ""}
    assert all(r["rejected_by"] == ["gateway"] for r in rows)


async def test_an_event_of_another_trust_or_a_derived_one_is_403_and_nothing_is_stored() -> None:
    w = world()
    auth = await key_of(w)
    for sneaky in (
        assessed(trust="RXF", site="RXF01"),
        assessed(site="RXF01"),
        cloud_event("outcome.recorded", {}),
    ):
        reply = await send(w, auth, [assessed(), sneaky])
        assert reply.status == 403, sneaky
        assert reply.body["results"][0]["errors"][0]["field"] == "request"
        assert reply.body["results"][1]["status"] == "rejected"
    assert w.stream.stored == {}


async def test_binary_mode_event_is_accepted() -> None:
    w = world()
    auth = await key_of(w)
    event = assessed()
    headers = {f"ce-{k}": v for k, v in event.items() if k not in ("data", "datacontenttype")}
    reply = await send(w, auth, event["data"], "application/json", headers)
    assert reply.status == 200, reply.body
    assert str(w.stream.stored[event["id"]].id) == event["id"]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "words"),
    [
        ("text/plain", b"hello", 415, "is not accepted"),
        (None, b"{}", 415, "is not accepted"),
        (BATCH, b"{not json", 400, "not JSON: Expecting property name"),
        (STRUCTURED, b"\xff\xfe", 400, "not UTF-8"),
        (BATCH, b"{}", 400, "must be a JSON array"),
        (BATCH, b"[]", 400, "empty"),
        (BATCH, json.dumps([{}] * 501).encode(), 413, "limit is 500"),
        (STRUCTURED, b"[" * 100_000, 400, "nested too deeply"),
    ],
)
async def test_unreadable_requests_are_refused_whole(
    content_type: str | None, body: bytes, status: int, words: str
) -> None:
    w = world()
    reply = await send(w, await key_of(w), body, content_type or "")
    assert reply.status == status and words in reply.body["detail"], reply.body
    assert w.stream.stored == {}


async def test_a_trust_over_its_rate_gets_429_with_retry_after_then_may_send() -> None:
    w = world(rate=2, burst=3)
    auth, other = await key_of(w), await key_of(w, "RXF")
    assert [(await send(w, auth, [assessed()])).status for _ in range(3)] == [200] * 3
    limited = await send(w, auth, [assessed()])
    assert limited.status == 429 and limited.headers["Retry-After"] == "1"
    assert (await send(w, other, [assessed("RXF", "RXF01")])).status == 200  # per trust
    w.clock.seconds += 0.5
    assert (await send(w, auth, [assessed()])).status == 200


async def test_stream_down_mid_batch_is_503_and_only_stored_events_say_accepted() -> None:
    w = world()
    auth = await key_of(w)
    w.stream.fail_after = 2
    batch = [assessed() for _ in range(5)]
    reply = await send(w, auth, batch)
    assert reply.status == 503 and reply.headers["Retry-After"] == "7"
    accepted = {r["id"] for r in reply.body["results"] if r["status"] == "accepted"}
    assert accepted == set(w.stream.stored) and len(accepted) == 2
    others = [r for r in reply.body["results"] if r["status"] != "accepted"]
    assert all("unreachable" in r["errors"][0]["message"] for r in others)
    w.stream.fail_after = None
    resent = await send(w, auth, batch)
    assert resent.status == 200
    assert (
        sorted(r["status"] for r in resent.body["results"]) == ["accepted"] * 3 + ["duplicate"] * 2
    )


async def test_an_id_repeated_in_one_request_is_stored_once() -> None:
    w = world()
    auth = await key_of(w)
    event = assessed()
    reply = await send(w, auth, [event, event])
    assert [r["status"] for r in reply.body["results"]] == ["accepted", "duplicate"]
    assert len(w.stream.attempts) == 1


async def test_ids_belong_to_their_trust_and_a_reused_one_is_refused_however_late() -> None:
    w = world()
    rth, rkb = await key_of(w, "RTH"), await key_of(w, "RKB")
    event = assessed()
    theirs = {**assessed("RKB", "RKB01"), "id": event["id"]}
    assert [r["status"] for r in (await send(w, rth, [event])).body["results"]] == ["accepted"]
    assert [r["status"] for r in (await send(w, rkb, [theirs])).body["results"]] == ["accepted"]
    w.stream.window.clear()  # the stream's duplicate window has passed
    again = await send(w, rth, [event])
    assert [r["status"] for r in again.body["results"]] == ["duplicate"]
    other = {**event, "data": {**event["data"], "measures": {"rmdq": 3}}}
    refused = await send(w, rth, [other])
    assert refused.status == 422
    assert refused.body["results"][0]["errors"] == [
        {"field": "id", "code": "reused-id", "message": "id already used for a different event"}
    ]
    assert len(w.stream.published) == 2  # neither the late copy nor the other content
    [(row, _)] = await w.rejections.since("RTH", w.clock.now - timedelta(days=1), 10)
    assert (row.id, row.rejected_by) == (event["id"], ["gateway"])


async def test_the_id_ledger_down_is_503_and_nothing_is_stored() -> None:
    w = world()
    auth = await key_of(w)

    async def down(trust: str, ids: Any) -> dict[str, str]:
        raise ConnectionError("database unreachable")

    w.gateway.ledger.known = down  # type: ignore[method-assign]
    reply = await send(w, auth, [assessed(), assessed()])
    assert reply.status == 503 and w.stream.published == []
    assert {r["status"] for r in reply.body["results"]} == {"rejected"}


# Rejections


async def test_rejections_are_per_trust_newest_first_and_since_filters() -> None:
    w = world()
    rth, rxf = await key_of(w), await key_of(w, "RXF")
    first = assessed(rmdq=99)
    await send(w, rth, [first])
    w.clock.now += timedelta(hours=1)
    second = assessed(rmdq=-1)
    await send(w, rth, [second])
    await send(w, rxf, [assessed("RXF", "RXF01", rmdq=77)])
    rows = (await rejections(w, rth, None, 100)).body["rejections"]
    assert [r["id"] for r in rows] == [second["id"], first["id"]]
    since = (w.clock.now - timedelta(minutes=1)).isoformat()
    assert [r["id"] for r in (await rejections(w, rth, since, 100)).body["rejections"]] == [
        second["id"]
    ]
    assert len((await rejections(w, rxf, None, 100)).body["rejections"]) == 1
    bad = await rejections(w, rth, "yesterday", 100)
    assert bad.status == 400 and "RFC 3339" in bad.body["detail"]
    naive = await rejections(w, rth, "2026-03-01T00:00:00", 100)
    assert naive.status == 400


def dead_letter(
    consumer: str, body: dict[str, Any], seq: int, error: str, headers: dict[str, str] | None = None
) -> DeadLetterMessage:
    trust = body.get("trustcode", "RTH")
    return DeadLetterMessage(
        headers={
            "Ibest-Dlq-Consumer": consumer,
            "Ibest-Dlq-Error": error,
            "Ibest-Dlq-Subject": f"ibest.v1.{trust}.patient.assessed",
            **(headers or {}),
        },
        data=json.dumps(body).encode(),
        subject=f"ibest.deadletter.{consumer}",
        received_at=world().clock.now + timedelta(seconds=seq),
        seq=seq,
    )


async def test_dead_letters_of_several_services_make_one_row_for_the_event() -> None:
    w = world()
    auth = await key_of(w)
    event = assessed()
    other_trust = assessed("RXF", "RXF01")
    source = FakeDeadLetterSource(
        [
            dead_letter("outcomes", event, 1, "data.class_id: is not a known class"),
            dead_letter("reporting", event, 2, "data.class_id: is not a known class"),
            dead_letter("outcomes", event, 1, "data.class_id: is not a known class"),  # again
            dead_letter("enrolment", other_trust, 3, "boom"),
        ]
    )
    recorder = DeadLetterRecorder(source, w.rejections)
    assert await recorder.run_once() == 4
    assert await recorder.run_once() == 0
    assert len(source.acked) == 4
    rows = (await rejections(w, auth, None, 100)).body["rejections"]
    assert len(rows) == 1
    assert rows[0]["id"] == event["id"] and rows[0]["type"] == "patient.assessed"
    assert rows[0]["rejected_by"] == ["outcomes", "reporting"]
    assert rows[0]["reasons"][0] == {
        "by": "outcomes",
        "field": "data.class_id",
        "code": "invalid",  # the contract accepts the bytes: a service's own refusal
        "message": "is not a known class",
    }


async def test_dead_letter_headers_name_the_event_when_the_bytes_cannot() -> None:
    w = world()
    auth = await key_of(w)
    letter = DeadLetterMessage(
        headers={
            "Ibest-Dlq-Consumer": "enrolment",
            "Ibest-Dlq-Error": "event: is not JSON",
            "Ibest-Dlq-Event-Id": "",
            "Ibest-Dlq-Type": "unknown",
            "Ibest-Dlq-Trust": "RTH",
            "Ibest-Dlq-Subject": "ibest.v1.RTH.module.started",
        },
        data=b"\xff garbage",
        subject="ibest.deadletter.enrolment",
        received_at=w.clock.now,
        seq=9,
    )
    await DeadLetterRecorder(FakeDeadLetterSource([letter]), w.rejections).run_once()
    rows = (await rejections(w, auth, None, 100)).body["rejections"]
    assert rows == [
        {
            "id": "",
            "type": "unknown",
            "received_at": w.clock.now.isoformat().replace("+00:00", "Z"),
            "rejected_by": ["enrolment"],
            "reasons": [
                {"by": "enrolment", "field": "event", "code": "not-json", "message": "is not JSON"}
            ],
        }
    ]


async def test_an_event_dated_beyond_the_tolerance_or_before_the_programme_is_refused() -> None:
    """The time rule against the gateway's clock (shared.eventtime): 5 minutes ahead is
    accepted, a second more is `future-time`, before 2015 `before-programme`; nothing
    refused reaches the stream."""
    w = world()
    auth = await key_of(w)
    now = w.clock.now
    ok = assessed(time=now + timedelta(minutes=5))
    ahead = assessed(time=now + timedelta(minutes=5, seconds=1))
    far = assessed(time=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    early = assessed(time=datetime(2014, 12, 31, 23, 59, tzinfo=UTC))
    ancient = assessed(time=datetime(1, 1, 1, tzinfo=UTC))
    reply = await send(w, auth, [ok, ahead, far, early, ancient])
    results = reply.body["results"]
    assert [r["status"] for r in results] == ["accepted", *["rejected"] * 4]
    rules = [[(e["field"], e["message"]) for e in r.get("errors", [])] for r in results]
    assert rules[0] == []
    expected = ["in the future"] * 2 + ["before the programme"] * 2
    for refused, words in zip(rules[1:], expected, strict=True):
        assert [f for f, _ in refused] == ["time"] and words in refused[0][1]
    assert [str(e.id) for e in w.stream.stored.values()] == [ok["id"]]


# Outcomes: the use cases answer in the domain's words; HTTP statuses are the edge's


async def test_the_use_cases_answer_domain_outcomes_the_edge_gives_statuses() -> None:
    w = world()
    auth = await key_of(w)
    no_key = await w.gateway.ingest(None, BATCH, {}, b"[]")
    assert no_key == Ingested("", Refusal(Why.NO_KEY, no_key.outcome.detail))  # type: ignore[union-attr]
    unreadable = await w.gateway.ingest(auth, BATCH, {}, b"{not json")
    assert isinstance(unreadable.outcome, Refusal) and unreadable.trust == "RTH"
    assert unreadable.outcome.why is Why.UNREADABLE
    stored = await w.gateway.ingest(auth, BATCH, {}, json.dumps([assessed()]).encode())
    assert isinstance(stored.outcome, Answered) and stored.outcome.verdict is Verdict.STORED
    bad = await w.gateway.ingest(auth, BATCH, {}, json.dumps([assessed(rmdq=99)]).encode())
    assert isinstance(bad.outcome, Answered) and bad.outcome.verdict is Verdict.REJECTED
    assert [STATUS_OF_VERDICT[v] for v in Verdict] == [200, 422, 403, 503, 507]
    assert {STATUS_OF_REFUSAL[w] for w in Why} == {400, 401, 413, 415, 429}
    page = await w.gateway.rejections(auth, "yesterday", 10)
    assert isinstance(page, Refusal) and page.why is Why.INVALID
    assert refused_reply(page).status == 400 and refused_reply(page).body["type"].endswith(
        "invalid-request"
    )
