"""The backbone's outbox relay and optimistic-concurrency retry, on in-memory fakes."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from ibest.backbone.concurrency import ConcurrentUpdate, retry_on_conflict
from ibest.backbone.outbox import (
    OutboxEntry,
    OutboxRelay,
    OutboxSettings,
)
from shared.envelope import BY_NAME
from shared.examples import example
from tests.fakes.outbox import FakeOutbox
from tests.fakes.publisher import FakePublisher


def entry(name: str) -> OutboxEntry:
    return OutboxEntry.of(example(BY_NAME[name]))


def backlog(service: str) -> float | None:
    return REGISTRY.get_sample_value("ibest_outbox_backlog", {"service": service})


async def test_the_relay_publishes_clears_and_reports_its_backlog() -> None:
    store, publisher = FakeOutbox(), FakePublisher()
    relay = OutboxRelay(store, publisher, "relay-test", OutboxSettings(interval=1, limit=1))
    started, completed = entry("clinician.training_started"), entry("outcome.recorded")
    store.put("a", [started])
    store.put("b", [completed])
    publisher.failures = 1
    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert backlog("relay-test") == 1 and await store.entries("a") == [started]
    assert await relay.relay_once() == 1  # limit 1: one aggregate a pass
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0 and backlog("relay-test") == 0
    assert [str(e.id) for e in publisher.published] == [started.id, completed.id]
    assert started.event() == publisher.published[0]  # byte for byte what was stored


async def test_publish_many_clears_only_what_it_published() -> None:
    store, publisher = FakeOutbox(), FakePublisher()
    relay = OutboxRelay(store, publisher, "relay-test", OutboxSettings(interval=1, limit=10))
    one, two = entry("clinician.training_started"), entry("clinician.training_completed")
    store.put("a", [one, two])
    assert await relay.publish_many([("a", (one,))]) == 1
    assert await store.entries("a") == [two]


async def test_retry_on_conflict_retries_then_lets_the_last_conflict_through() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConcurrentUpdate("lost a race")
        return "stored"

    assert await retry_on_conflict(flaky, 3) == "stored" and calls == 3
    calls = -100
    with pytest.raises(ConcurrentUpdate):
        await retry_on_conflict(flaky, 5)
    assert calls == -95
