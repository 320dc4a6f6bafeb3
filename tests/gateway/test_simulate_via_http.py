"""The simulator sends a rollout through the gateway (`ibest simulate --via http`)."""

from __future__ import annotations

from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from ibest.simulate.model import SimulationOptions
from ibest.simulate.runner import build_plan, run_simulation
from services.gateway.bootstrap import key_admin


async def test_a_simulated_rollout_through_the_gateway_stores_its_valid_events_once(
    gateway: str, settings: Settings, js: JetStreamContext
) -> None:
    options = SimulationOptions(
        seed=11,
        clinicians=60,
        patients=40,
        progress=False,
        trusts=4,
        via="http",
        gateway_url=gateway,
    )
    plan, _ = build_plan(settings, options)
    valid = {p.msg_id for p in plan.events if p.valid}
    summary = await run_simulation(settings, options)
    assert summary.published == len(plan.events)
    assert summary.stored == len(valid) == (await js.stream_info(EVENTS_STREAM)).state.messages
    assert summary.refused == summary.invalid_sent > 0
    assert summary.duplicates_dropped == summary.duplicates_sent > 0
    assert "via http" in summary.lines()[0]
    async with key_admin(settings) as admin:
        keys = await admin.list()
    assert len(keys) == 4 and not any(k.active for k in keys)  # minted for the run, revoked
