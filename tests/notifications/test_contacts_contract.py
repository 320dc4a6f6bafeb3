"""Notifications' `ContactDirectory` port, held to one contract: every assertion here runs
against the in-memory fake (tests/fakes/notifications.py `FakeContacts`), which the
use-case tests send reminders through, and against `NatsContactDirectory` asking the real
enrolment service (its contact RPC over the real nats-server, its records in the real
database, filled by the `clinician.enrolled` events it consumed): the email a clinician
enrolled with, None for one who gave none or is unknown, and `ContactUnavailable` (never a
None that would look like "no email") when enrolment cannot answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.enrolment.service import build_spec
from services.notifications.adapters.contacts import NatsContactDirectory
from services.notifications.ports import ContactDirectory, ContactUnavailable
from shared.envelope import BY_NAME
from shared.examples import example
from tests.fakes.notifications import FakeContacts
from tests.harness import cloud_event, publish_raw, running_service, wait_for


@dataclass
class World:
    directory: ContactDirectory
    enrolled: Callable[[list[tuple[str, str | None]]], Awaitable[None]]
    """Enrol each (clinician, contact email or None); return once enrolment holds them."""
    stop: Callable[[], Awaitable[None]]
    """Enrolment stops answering."""


@pytest.fixture(params=["fake", "enrolment"])
async def world(
    request: pytest.FixtureRequest, settings: Settings, js: JetStreamContext, nc: NatsClient
) -> AsyncIterator[World]:
    if request.param == "fake":
        fake = FakeContacts()

        async def fake_enrolled(clinicians: list[tuple[str, str | None]]) -> None:
            fake.emails.update({ref: email for ref, email in clinicians if email})

        async def fake_stop() -> None:
            fake.down = True

        yield World(fake, fake_enrolled, fake_stop)
        return

    directory = NatsContactDirectory(nc, timeout=2)
    async with AsyncExitStack() as running:
        await running.enter_async_context(running_service(build_spec(), settings))

        async def real_enrolled(clinicians: list[tuple[str, str | None]]) -> None:
            for ref, email in clinicians:
                await publish_raw(js, enrolment(ref, email))
            last = next(ref for ref, email in reversed(clinicians) if email)
            await wait_for(lambda: directory.email_of(last), what="enrolment to hold the email")

        yield World(directory, real_enrolled, running.aclose)


def enrolment(ref: str, email: str | None) -> dict[str, object]:
    data = example(BY_NAME["clinician.enrolled"]).data.model_dump(mode="json")
    return cloud_event("clinician.enrolled", {**data, "clinician_ref": ref, "contact_email": email})


async def test_the_email_a_clinician_enrolled_with_and_none_otherwise(world: World) -> None:
    await world.enrolled(
        [("c-none", None), ("c-one", "one@example.nhs.uk"), ("c-two", "two@example.nhs.uk")]
    )
    assert await world.directory.email_of("c-one") == "one@example.nhs.uk"
    assert await world.directory.email_of("c-two") == "two@example.nhs.uk"
    assert await world.directory.email_of("c-none") is None  # enrolled without an email
    assert await world.directory.email_of("c-unknown") is None  # never enrolled


async def test_an_enrolment_that_cannot_answer_is_unavailable_never_no_email(
    world: World,
) -> None:
    await world.enrolled([("c-one", "one@example.nhs.uk")])
    await world.stop()
    with pytest.raises(ContactUnavailable):
        await world.directory.email_of("c-one")
    with pytest.raises(ContactUnavailable):
        await world.directory.email_of("c-unknown")
