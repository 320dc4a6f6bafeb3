"""Issue 25's property once end to end, over real NATS and the real database: one generated
history (tests/platform/order.py) published in time order, then (fresh streams and
databases) shuffled with redelivered copies and consumed in small batches by enrolment,
outcomes and reporting; every figure the reporting API answers (current and monthly, every
level, raw and published) is the same, and so is the latest derived event of each
clinician and patient in the stream."""

from __future__ import annotations

import contextlib
import random
import uuid
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ibest.backbone.settings import Settings
from ibest.backbone.streams import DEADLETTER_STREAM, EVENTS_STREAM, ensure_streams
from ibest.registry import consumers
from services.enrolment.service import SPEC as ENROLMENT
from services.outcomes.service import SPEC as OUTCOMES
from services.reporting.service import SPEC as REPORTING
from tests.harness import dead_letters, publish_raw, running_service, stream_events, wait_for
from tests.platform.order import CATALOGUE, NOW, SITES, histories, latest_facts, time_ordered
from tests.reporting import dataset as ds

TOKEN = "order-e2e"
CONSUMERS = ("enrolment", "outcomes", "reporting")


async def idle(js: JetStreamContext) -> bool:
    for name in CONSUMERS:
        info = await js.consumer_info(EVENTS_STREAM, name)
        if info.num_pending or info.num_ack_pending:
            return False
    return True


async def answers(api: httpx.AsyncClient) -> dict[str, Any]:
    """Every current and monthly answer, raw and published, at every level."""
    paths = ["/v1/national"]
    for trust in sorted({s[:3] for s in SITES}):
        paths.append(f"/v1/trusts/{trust}")
        paths += [f"/v1/trusts/{trust}/sites/{s}" for s in SITES if s[:3] == trust]
    out: dict[str, Any] = {}
    for path in paths:
        for tail in ("", "/months"):
            for raw in ("true", "false"):
                response = await api.get(path + tail, params={"raw": raw})
                out[f"{path}{tail} raw={raw}"] = (response.status_code, response.json())
    return out


async def platform_after(
    js: JetStreamContext, settings: Settings, sends: list[tuple[dict[str, Any], str]]
) -> tuple[dict[str, Any], dict[Any, Any]]:
    """Publish (event, message id) in order, run the three services until every consumer is
    idle and the answers stand still; the answers and the latest derived facts."""
    for event, msg_id in sends:
        await publish_raw(js, event, msg_id=msg_id)
    async with AsyncExitStack() as stack:
        for spec in (ENROLMENT, OUTCOMES):
            await stack.enter_async_context(running_service(spec, settings, lambda: NOW))
        reporting = await stack.enter_async_context(
            running_service(REPORTING, settings, lambda: NOW)
        )
        api = await stack.enter_async_context(
            httpx.AsyncClient(base_url=reporting, headers={"Authorization": f"Bearer {TOKEN}"})
        )
        previous: dict[str, Any] = {}

        async def settled() -> dict[str, Any] | None:
            nonlocal previous
            if not await idle(js):
                return None
            now = await answers(api)
            stable = now == previous and await idle(js)
            previous = now
            return now if stable else None

        final = await wait_for(settled, 120, "every consumer idle and the answers settled")
    names = ("clinician.training_started", "clinician.training_completed", "outcome.recorded")
    stored = [e for name in names for e in await stream_events(js, name)]
    derived = [ds.parsed({k: v for k, v in e.items() if not k.startswith("_")}) for e in stored]
    return final, latest_facts(derived)


async def fresh(js: JetStreamContext, settings: Settings) -> Settings:
    for name in (EVENTS_STREAM, DEADLETTER_STREAM):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(name)
    await ensure_streams(js, settings, consumers())
    return settings.model_copy(update={"db_prefix": f"t{uuid.uuid4().hex[:10]}"})


@settings(
    max_examples=1,
    phases=[Phase.generate],
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.slow
@given(history=histories((4, 4), (3, 3), (2, 2)).filter(lambda h: len(h) >= 45))
async def test_a_shuffled_duplicated_batched_history_ends_as_the_time_ordered_one(
    history: list[dict[str, Any]],
    settings: Settings,
    js: JetStreamContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.envelope.catalogue", lambda: CATALOGUE)
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{TOKEN}:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")
    by_id = {e["id"]: e for e in history}
    in_time = [by_id[str(e.id)] for e in time_ordered([ds.parsed(e) for e in history])]
    expected = await platform_after(js, settings, [(e, e["id"]) for e in in_time])

    rng = random.Random(25)
    copies = [(e, f"{e['id']}-again") for e in rng.sample(history, 8)]  # redelivered
    shuffled = [*((e, e["id"]) for e in history), *copies]
    rng.shuffle(shuffled)
    small = (await fresh(js, settings)).model_copy(update={"batch_size": 7})
    got = await platform_after(js, small, shuffled)

    national = expected[0]["/v1/national raw=true"][1]["figures"]
    assert national["clinicians_enrolled"] == 4 and national["patients_baseline"] == 3
    assert len(expected[0]["/v1/national/months raw=true"][1]["months"]) >= 13
    assert got[1] == expected[1]  # the latest derived facts
    for name, answer in expected[0].items():
        assert got[0][name] == answer, name
    assert await dead_letters(js) == []
