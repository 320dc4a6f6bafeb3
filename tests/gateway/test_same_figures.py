"""Events sent through the gateway give exactly the figures of the same events on NATS."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ibest.backbone.settings import Settings
from ibest.backbone.streams import DEADLETTER_STREAM, EVENTS_STREAM, ensure_streams
from ibest.registry import consumers
from services.enrolment.service import SPEC as ENROLMENT
from services.gateway.bootstrap import key_admin
from services.gateway.service import build_spec
from services.gateway.settings import GatewaySettings
from services.notifications.service import SPEC as NOTIFICATIONS
from services.outcomes.service import SPEC as OUTCOMES
from services.reporting.service import SPEC as REPORTING
from tests.harness import dead_letters, publish_raw, running_service, wait_for
from tests.platform.test_end_to_end import NOW, TOKEN, scripted_rollout

Figures = dict[str, Any]


async def figures_from(settings: Settings, send: Callable[[], Awaitable[None]]) -> Figures:
    """Run the four services, send the events, and return national and per-trust figures
    once completion and outcomes have been derived."""
    await send()
    async with AsyncExitStack() as stack:
        for spec in (ENROLMENT, OUTCOMES, NOTIFICATIONS):
            await stack.enter_async_context(running_service(spec, settings, lambda: NOW))
        reporting = await stack.enter_async_context(
            running_service(REPORTING, settings, lambda: NOW)
        )
        async with httpx.AsyncClient(
            base_url=reporting, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as api:

            async def national() -> Figures | None:
                figures: Figures = (await api.get("/v1/national")).json()["figures"]
                done = (
                    figures["clinicians_completed"] == 5
                    and figures["outcomes"]["rmdq"]["month_3"]["n"] == 6
                )
                return figures if done else None

            figures = await wait_for(national, 90, "completion and outcomes derived")
            return {
                "national": figures,
                **{t: (await api.get(f"/v1/trusts/{t}")).json()["figures"] for t in ("RTH", "RXF")},
                "RTH08": (await api.get("/v1/trusts/RTH/sites/RTH08")).json()["figures"],
            }


async def fresh(js: JetStreamContext, settings: Settings) -> Settings:
    for name in (EVENTS_STREAM, DEADLETTER_STREAM):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(name)
    await ensure_streams(js, settings, consumers())
    return settings.model_copy(update={"db_prefix": f"t{uuid.uuid4().hex[:10]}"})


@pytest.mark.slow
async def test_figures_through_the_gateway_equal_figures_through_nats(
    settings: Settings,
    js: JetStreamContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{TOKEN}:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")
    events = list(reversed(scripted_rollout()))  # every follow-up before its baseline

    async def on_nats() -> None:
        for event in events:
            assert await publish_raw(js, event)

    via_nats = await figures_from(settings, on_nats)
    assert await dead_letters(js) == []

    settings = await fresh(js, settings)
    async with running_service(build_spec(GatewaySettings()), settings) as gateway:

        async def over_https() -> None:
            async with key_admin(settings) as admin:
                keys = {t: f"Bearer {(await admin.create(t))[1]}" for t in ("RTH", "RXF")}
            async with httpx.AsyncClient(base_url=gateway) as client:
                for trust in keys:  # batches of 7, in the same (worst) order per trust
                    mine = [e for e in events if e["trustcode"] == trust]
                    for i in range(0, len(mine), 7):
                        reply = await client.post(
                            "/v1/events",
                            json=mine[i : i + 7],
                            headers={
                                "Authorization": keys[trust],
                                "Content-Type": "application/cloudevents-batch+json",
                            },
                        )
                        assert reply.status_code == 200, reply.text
                        assert {r["status"] for r in reply.json()["results"]} == {"accepted"}

        via_gateway = await figures_from(settings, over_https)
    assert await dead_letters(js) == []
    assert via_gateway == via_nats
