"""Hostile and bad events on every subject, against all four services running at once.

Every bad event is dead-lettered by every service consuming its subject, with reason
`invalid` and an error naming the field; good events interleaved with them are all applied
(the figures are exact); nothing good is dead-lettered.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from nats.js.errors import APIError

from ibest.backbone.deadletters import H_MSG_ID, DeadLetter
from ibest.backbone.settings import Settings
from services.enrolment.service import SPEC as ENROLMENT
from services.notifications.service import SPEC as NOTIFICATIONS
from services.outcomes.service import SPEC as OUTCOMES
from services.reporting.service import SPEC as REPORTING
from shared.envelope import MAX_EVENT_BYTES
from tests.faults.stack import RAW_TOKEN, READ_TOKEN, reporting_script, subset
from tests.harness import dead_letters, publish_raw, running_service, wait_for
from tests.hostile.badevents import BASES, BadEvent, generate

SPECS = (ENROLMENT, OUTCOMES, NOTIFICATIONS, REPORTING)
CONSUMERS = {name: [s.name for s in SPECS if name in s.consumes] for name in BASES}


def duplicates_with_other_content(good: list[dict[str, Any]]) -> list[BadEvent]:
    """For the first good event of some types: the same id, different content."""
    out = []
    for name, change in (
        ("clinician.enrolled", {"profession": "doctor"}),
        ("patient.assessed", {"measures": {"rmdq": 3}}),
        ("clinician.intention_reported", {"confidence": 1}),
    ):
        original = next(e for e in good if e["type"] == f"uk.nhs.ibest.{name}.v1")
        twin = {**original, "data": {**original["data"], **change}}
        out.append(
            BadEvent(
                "duplicate_id",
                name,
                f"ibest.v1.{twin['trustcode']}.{name}",
                json.dumps(twin).encode(),
                "id",
                f"dup-{twin['id']}",
            )
        )
    return out


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{RAW_TOKEN}:raw,{READ_TOKEN}:read")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")


@pytest.mark.slow
async def test_every_bad_event_is_dead_lettered_with_its_reason_and_good_ones_count(
    settings: Settings, js: JetStreamContext, tokens: None
) -> None:
    script = reporting_script(clinicians=40, patients=30)
    bad = generate(per_kind=1, extra=30)
    assert {b.event_type for b in bad} == set(BASES)
    async with AsyncExitStack() as stack:
        urls = {
            spec.name: await stack.enter_async_context(running_service(spec, settings))
            for spec in SPECS
        }
        for i, good in enumerate(script.events):  # interleave: a bad one after each good one
            await publish_raw(js, good)
            for b in bad[i :: len(script.events)]:
                await publish_raw(js, b.body, subject=b.subject, msg_id=b.msg_id)
        dups = duplicates_with_other_content(script.events)
        for b in dups:
            await publish_raw(js, b.body, subject=b.subject, msg_id=b.msg_id)
        bad += dups
        expected = {(consumer, b.msg_id): b for b in bad for consumer in CONSUMERS[b.event_type]}

        async def all_dead_lettered() -> list[DeadLetter]:
            letters = await dead_letters(js)
            got = {(d.consumer, d.headers.get(H_MSG_ID)) for d in letters}
            return letters if set(expected) <= got else []

        letters = await wait_for(all_dead_lettered, 60, "every bad event dead-lettered")
        async with httpx.AsyncClient(
            base_url=urls["reporting"], headers={"Authorization": f"Bearer {RAW_TOKEN}"}
        ) as api:

            async def exact() -> bool:
                figures = (await api.get("/v1/national")).json()["figures"]
                return subset(figures, script.expected) == script.expected

            await wait_for(exact, 60, "good events interleaved with bad ones all applied")
    seen: set[tuple[str, str | None]] = set()
    for letter in letters:
        key = (letter.consumer, letter.headers.get(H_MSG_ID))
        assert key in expected, f"a good event was dead-lettered: {letter}"
        assert key not in seen, f"dead-lettered twice: {key}"
        seen.add(key)
        b = expected[key]
        assert letter.reason == "invalid", (b.kind, letter.error)
        assert b.field in letter.error, (b.kind, b.event_type, b.field, letter.error)
        assert letter.subject == b.subject and letter.data == b.body
    assert len(seen) == len(expected) >= len(bad)


async def test_oversized_events_are_refused_at_publish(
    settings: Settings, js: JetStreamContext
) -> None:
    event = json.loads(json.dumps(BASES["patient.assessed"]))
    event["data"]["padding"] = "x" * MAX_EVENT_BYTES
    with pytest.raises(APIError) as refused:
        await publish_raw(js, event)
    assert refused.value.err_code == 10054 or "size" in str(refused.value).lower()
    info = await js.stream_info("IBEST_EVENTS")
    assert info.state.messages == 0
