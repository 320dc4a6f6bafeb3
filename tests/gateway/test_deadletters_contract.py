"""The gateway's `DeadLetterSource` port, held to one contract: every assertion here runs
against the in-memory fake (tests/fakes/gateway.py `FakeDeadLetterSource`), which the
use-case tests record later rejections from, and against `JetStreamDeadLetters` bound to
the durable `gateway` consumer of the real nats-server's dead-letter stream: each dead
letter comes once, in the order stored, with its subject, headers and bytes as stored and a
stream sequence that only grows (a rejection row's id is `dlq:<seq>`); an empty stream gives
an empty batch, not an error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.backbone.streams import DEADLETTER_PREFIX
from services.gateway.adapters.deadletters import JetStreamDeadLetters
from services.gateway.ports import DeadLetterMessage, DeadLetterSource
from tests.fakes.gateway import FakeDeadLetterSource

Letter = tuple[str, dict[str, str], bytes]
"""A dead letter as a consumer stores it: subject, headers, the event's bytes."""


@dataclass
class World:
    source: DeadLetterSource
    store: Callable[[list[Letter]], Awaitable[None]]


@pytest.fixture(params=["fake", "jetstream"])
async def world(
    request: pytest.FixtureRequest, js: JetStreamContext, settings: Settings
) -> AsyncIterator[World]:
    if request.param == "fake":
        fake = FakeDeadLetterSource()

        async def fake_store(letters: list[Letter]) -> None:
            for subject, headers, data in letters:
                seq = len(fake.pending) + len(fake.acked) + 1
                fake.pending.append(
                    DeadLetterMessage(headers, data, subject, datetime.now(UTC), seq)
                )

        yield World(fake, fake_store)
        return

    real = JetStreamDeadLetters(js, batch=100, wait=0.3)

    async def real_store(letters: list[Letter]) -> None:
        for subject, headers, data in letters:
            await js.publish(subject, data, headers=headers)

    try:
        yield World(real, real_store)
    finally:
        await real.close()


def letter(n: int, consumer: str = "enrolment") -> Letter:
    headers = {"Ibest-Error": f"reason {n}", "Ibest-Consumer": consumer}
    return (f"{DEADLETTER_PREFIX}.{consumer}", headers, f'{{"id": "e{n}"}}'.encode())


async def drain(source: DeadLetterSource) -> list[DeadLetterMessage]:
    """Fetch and acknowledge until a fetch comes back empty, as the recorder's loop does."""
    fetched: list[DeadLetterMessage] = []
    while batch := await source.fetch():
        fetched.extend(batch)
        await source.ack(batch)
    return fetched


async def test_each_dead_letter_comes_once_in_order_as_stored(world: World) -> None:
    assert await world.source.fetch() == []  # nothing stored: an empty batch
    started = datetime.now(UTC)
    stored = [letter(n, "outcomes" if n % 3 else "enrolment") for n in range(25)]
    await world.store(stored)
    fetched = await drain(world.source)
    assert [
        (m.subject, {k: m.headers[k] for k in h}, m.data)
        for m, (_, h, _) in zip(fetched, stored, strict=True)
    ] == stored
    seqs = [m.seq for m in fetched]
    assert seqs == sorted(set(seqs))  # distinct and growing
    assert all(
        started - timedelta(seconds=5) <= m.received_at <= datetime.now(UTC) for m in fetched
    )
    assert all(m.received_at.tzinfo is not None for m in fetched)

    later = [letter(99)]
    await world.store(later)
    again = await drain(world.source)  # only what came since: the acknowledged do not return
    assert [m.data for m in again] == [later[0][2]]
    assert again[0].seq > seqs[-1]
