"""Reporting's `EventHistory` port, held to one contract: every assertion here runs against
the in-memory fake (tests/fakes/reporting.py `FakeEventHistory`), which the use-case tests
rebuild from, and against `StreamHistory` reading the real nats-server's events stream:
a rebuild gets the consumed events in the order stored, none of another type, an id its
trust reused for other content skipped (as the live consumer dead-letters it), the same id
from another trust and a later identical copy passed on (applying is idempotent).
Invalid bytes are the adapter's alone to skip (the fake holds parsed events): the
real-server rebuild tests prove that."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.reporting.adapters.replay import StreamHistory
from services.reporting.ports import EventHistory
from shared.envelope import BY_NAME, parse_event
from shared.examples import example
from tests.fakes.reporting import FakeEventHistory
from tests.harness import cloud_event, publish_raw

Raw = dict[str, Any]


@dataclass
class World:
    store: Callable[[list[Raw]], Awaitable[EventHistory]]
    """Store these events as a trust sent them, in order; the history that reads them."""


@pytest.fixture(params=["fake", "jetstream"])
async def world(
    request: pytest.FixtureRequest, js: JetStreamContext, settings: Settings
) -> AsyncIterator[World]:
    if request.param == "fake":

        async def fake_store(raws: list[Raw]) -> EventHistory:
            return FakeEventHistory(parse_event(None, json.dumps(r).encode()) for r in raws)

        yield World(fake_store)
        return

    async def real_store(raws: list[Raw]) -> EventHistory:
        for n, raw in enumerate(raws):  # each its own message: the stream keeps every copy
            assert await publish_raw(js, raw, msg_id=f"copy-{n}-{raw['id']}")
        return StreamHistory(js, idle_timeout=10)

    yield World(real_store)


def raw(name: str, event_id: str, trust: str = "RTH", **data: Any) -> Raw:
    payload = example(BY_NAME[name]).data.model_dump(mode="json") | data
    return cloud_event(name, payload, trust=trust, site=f"{trust}01", event_id=event_id)


async def read(history: EventHistory, consumes: list[str]) -> list[tuple[str, str, str]]:
    """(trust, id, clinician) of each event read."""
    return [(e.trustcode, str(e.id), e.data.clinician_ref) async for e in history.stored(consumes)]


async def test_a_rebuild_replays_what_the_live_consumer_applied_in_stored_order(
    world: World,
) -> None:
    ids = [f"0000000{n}-0000-4000-8000-000000000000" for n in range(5)]
    first = raw("clinician.enrolled", ids[0], clinician_ref="c1")
    history = await world.store(
        [
            first,
            raw("module.started", ids[1]),  # not asked for
            raw("clinician.enrolled", ids[0], clinician_ref="c2"),  # id reused: skipped
            raw("clinician.enrolled", ids[0], trust="RNU", clinician_ref="c3"),  # RNU's own
            raw("clinician.enrolled", ids[2], clinician_ref="c4"),
            dict(first),  # a later identical copy: passed on
        ]
    )
    assert await read(history, ["clinician.enrolled"]) == [
        ("RTH", ids[0], "c1"),
        ("RNU", ids[0], "c3"),
        ("RTH", ids[2], "c4"),
        ("RTH", ids[0], "c1"),
    ]
    module = example(BY_NAME["module.started"]).data.clinician_ref
    assert await read(history, ["module.started"]) == [("RTH", ids[1], module)]
    assert await read(history, []) == []
