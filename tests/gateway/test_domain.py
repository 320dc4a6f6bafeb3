"""The gateway's pure rules: keys, the token bucket, dead-letter reading, derived events."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from deploy.nats.generate import RAW_EVENTS
from services.gateway.domain.keys import bearer_token, key_id_of, mint_key, verify
from services.gateway.domain.ratelimit import RateLimiter, TokenBucket
from services.gateway.domain.rejections import from_dead_letter, reasons_from_text
from services.gateway.domain.results import DERIVED_EVENTS
from shared.envelope import EVENT_TYPES

T = datetime(2026, 3, 2, tzinfo=UTC)


def test_keys_verify_only_with_their_own_secret_while_active() -> None:
    key, token = mint_key("RTH", T)
    other, other_token = mint_key("RTH", T)
    assert key_id_of(token) == key.key_id and key.key_id != other.key_id
    assert verify(token, key) and not verify(other_token, key) and not verify(token, None)
    assert not verify(token, other)
    assert not verify(token, replace(key, revoked_at=T))
    assert key_id_of("ibk_short_x") is None
    assert bearer_token("bearer  abc ") == "abc" and bearer_token("Token abc") is None


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=10, burst=2, tokens=2, updated=0)
    assert [bucket.take(0) for _ in range(3)] == [0, 0, 0.1]
    assert bucket.take(0.1) == 0
    assert bucket.take(100) == 0 and bucket.tokens == 1  # capped at the burst
    now = [0.0]
    limiter = RateLimiter(0.5, 1, lambda: now[0])
    assert limiter.take("RTH") == 0 and limiter.take("RTH") == 2
    now[0] = 2.0
    assert limiter.take("RTH") == 0


def test_a_dead_letter_belongs_to_the_trust_of_its_original_subject() -> None:
    body = json.dumps(
        {"id": "e1", "trustcode": "RXF", "type": "uk.nhs.ibest.module.started.v1"}
    ).encode()
    letter = from_dead_letter(
        {
            "Ibest-Dlq-Subject": "ibest.v1.RTH.module.started",
            "Ibest-Dlq-Trust": "RXF",
            "Ibest-Dlq-Error": "x",
        },
        body,
        "ibest.deadletter.enrolment",
        T,
        4,
    )
    assert letter is not None and letter.trust == "RTH" and letter.event_type == "module.started"
    assert letter.reasons[0].by == "enrolment"
    # without the subject header: the envelope's trust
    fallback = from_dead_letter({}, body, "ibest.deadletter.enrolment", T, 5)
    assert fallback is not None and fallback.trust == "RXF" and fallback.event_id == "e1"
    assert from_dead_letter({}, b"nonsense", "ibest.deadletter.enrolment", T, 6) is None


def test_derived_events_are_those_no_trust_may_publish_on_nats() -> None:
    assert {t.name for t in EVENT_TYPES} - set(RAW_EVENTS) == DERIVED_EVENTS


def test_a_dead_letter_error_splits_into_one_reason_per_field() -> None:
    reasons = reasons_from_text(
        "enrolment",
        "data.course_version: '9' is unknown (known: 1; see GET /v1/courses); "
        "time: naive; not a field rule",
    )
    assert [(r.field, r.message) for r in reasons] == [
        ("data.course_version", "'9' is unknown (known: 1; see GET /v1/courses)"),
        ("time", "naive; not a field rule"),
    ]
    assert [(r.field, r.message) for r in reasons_from_text("x", "boom")] == [("event", "boom")]


def test_the_dead_letter_headers_read_are_those_the_backbone_writes() -> None:
    from ibest.backbone import deadletters as backbone
    from services.gateway.domain import rejections as ours

    for name in ("H_EVENT_ID", "H_TYPE", "H_TRUST", "H_CONSUMER", "H_ERROR", "H_SUBJECT"):
        assert getattr(ours, name) == getattr(backbone, name), name
