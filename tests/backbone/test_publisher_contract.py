"""The backbone's one `Publisher` port, held to one contract: every assertion here runs
against the in-memory fake (tests/fakes/publisher.py), which every use-case test publishes
through, and against `EventPublisher` on the real nats-server's events stream, so what the
use cases rely on is what the stream does (the pattern of tests/reporting/test_store.py):
a (trust, id) is stored once and its first content kept, a repeat is told apart (False), the
same id from another trust is another event, `publish_many` answers per event in order, a
subject whose share of the store is full refuses for good (None, in `refused`), and a
stream that cannot be reached stores nothing and says so (raises; None per event)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext

from ibest.backbone import compat
from ibest.backbone.publisher import EventPublisher, Publisher
from ibest.backbone.settings import Settings
from ibest.backbone.streams import ensure_streams
from shared.envelope import BY_NAME, AnyEvent, parse_event
from shared.examples import example
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY, cloud_event, stream_events

Held = list[tuple[str, str, str]]
"""What the stream holds, in order: (trust, id, content as JSON with sorted keys)."""


@dataclass
class World:
    publisher: Publisher
    held: Callable[[], Awaitable[Held]]
    share: Callable[[int], Awaitable[None]]
    """Let each subject hold at most this many events from now on."""
    unreachable: Callable[[], Awaitable[Publisher]]
    """A publisher whose stream cannot be reached."""


def content(event: AnyEvent | dict[str, Any]) -> str:
    doc = event if isinstance(event, dict) else json.loads(event.to_json())
    return json.dumps({k: v for k, v in doc.items() if not k.startswith("_")}, sort_keys=True)


@pytest.fixture(params=["fake", "jetstream"])
async def world(
    request: pytest.FixtureRequest, nats_url: str, js: JetStreamContext, settings: Settings
) -> AsyncIterator[World]:
    if request.param == "fake":
        fake = FakePublisher()

        async def fake_held() -> Held:
            return [(e.trustcode, str(e.id), content(e)) for e in fake.held]

        async def fake_share(limit: int) -> None:
            fake.per_subject = limit

        async def fake_down() -> Publisher:
            fake.down = True
            return fake

        yield World(fake, fake_held, fake_share, fake_down)
        return

    compat.apply()  # as every service process does when it starts (ibest.backbone.runtime)

    async def real_held() -> Held:
        return [(e["trustcode"], e["id"], content(e)) for e in await stream_events(js, ">")]

    async def real_share(limit: int) -> None:
        await ensure_streams(js, settings.model_copy(update={"events_per_subject": limit}), {})

    async def real_down() -> Publisher:
        nc = await nats.connect(nats_url)
        await nc.close()  # every publish now meets a closed connection
        return EventPublisher(nc.jetstream(), "contract", attempts=2, timeout=1, id_key=ID_KEY)

    real = EventPublisher(js, "contract", attempts=2, timeout=5, id_key=ID_KEY)
    yield World(real, real_held, real_share, real_down)


def event(name: str = "module.started", trust: str = "RTH", event_id: str = "") -> AnyEvent:
    """A valid event as a trust sends it (`name` of the contract's examples' payload)."""
    data = example(BY_NAME[name]).data.model_dump(mode="json")
    raw = cloud_event(name, data, trust=trust, site=f"{trust}01", event_id=event_id or None)
    return parse_event(None, json.dumps(raw).encode())


def row(e: AnyEvent) -> tuple[str, str, str]:
    return (e.trustcode, str(e.id), content(e))


async def test_an_event_is_stored_once_per_trust_and_a_repeat_is_told_apart(world: World) -> None:
    first = event()
    assert await world.publisher.publish(first) is True
    assert await world.publisher.publish(first) is False  # the platform's own re-publishing
    other_content = event(event_id=str(first.id)).model_copy(update={"sitecode": "RTH02"})
    assert await world.publisher.publish(other_content) is False  # the first content stays
    same_id_other_trust = event(event_id=str(first.id), trust="RNU")
    assert await world.publisher.publish(same_id_other_trust) is True  # another trust's event
    exact = event()
    assert await world.publisher.publish(exact, exact.to_json()) is True  # its exact bytes
    assert await world.held() == [row(first), row(same_id_other_trust), row(exact)]


async def test_publish_many_answers_per_event_in_order(world: World) -> None:
    before, a, b = event(), event(), event("clinician.enrolled")
    assert await world.publisher.publish(before) is True
    answers = await world.publisher.publish_many(
        [(a, None), (b, b.to_json()), (before, None), (a, None)]
    )
    assert answers == [True, True, False, False]
    assert await world.publisher.publish_many([]) == []
    assert await world.held() == [row(before), row(a), row(b)]


async def test_a_full_share_of_the_store_refuses_for_good_and_only_that_subject(
    world: World,
) -> None:
    await world.share(2)
    kept = [event(), event()]
    assert await world.publisher.publish_many([(e, None) for e in kept]) == [True, True]
    refused: set[int] = set()
    over, elsewhere, other_trust = event(), event("clinician.enrolled"), event(trust="RNU")
    answers = await world.publisher.publish_many(
        [(over, None), (elsewhere, None), (other_trust, None)], refused
    )
    assert answers == [None, True, True]
    assert refused == {0}
    assert await world.held() == [*map(row, kept), row(elsewhere), row(other_trust)]


async def test_a_stream_that_cannot_be_reached_stores_nothing_and_says_so(
    world: World,
) -> None:
    down = await world.unreachable()
    with pytest.raises(Exception):  # noqa: B017 - any error: what the use cases catch
        await down.publish(event())
    refused: set[int] = set()
    assert await down.publish_many([(event(), None), (event(), None)], refused) == [None, None]
    assert refused == set()  # not refused for good: to be sent again
    assert await world.held() == []
