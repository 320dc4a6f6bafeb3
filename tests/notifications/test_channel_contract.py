"""Notifications' `Channel` port, held to one contract: every assertion here runs against the
in-memory fake (tests/fakes/notifications.py `FakeChannel`), which the use-case tests send
through, and against `SmtpChannel` talking SMTP to a real server the test starts (aiosmtpd,
tests/mailbox.py): a message reaches each of its addresses with its subject, its body and
its reminder id as reference, and a failure reaches the use case as one of the port's two
errors (`PermanentSendError`: record and stop; `TransientSendError`: try again later) with
nothing delivered, so the scheduler's retry-or-give-up rules hold for the real channel."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message

import pytest

from ibest.local.processes import free_port
from services.notifications.adapters.channels import SmtpChannel
from services.notifications.ports import (
    Channel,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
)
from services.notifications.settings import NotificationSettings
from shared.events import ReminderKind
from tests.fakes.notifications import FakeChannel
from tests.mailbox import smtp_server

Delivered = list[tuple[list[str], str, str, str]]
"""Each message that arrived: (addresses, subject, body, reference)."""


@dataclass
class World:
    channel: Channel
    delivered: Callable[[], Delivered]
    refuse: Callable[[str, str], None]
    """The next send to this address meets this SMTP answer (e.g. "550 5.1.1 ...")."""
    unreachable: Callable[[], Channel]
    """A channel whose server cannot be reached."""


@pytest.fixture(params=["fake", "smtp"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "fake":
        fake = FakeChannel()

        def fake_refuse(address: str, answer: str) -> None:
            error = TransientSendError if answer.startswith("4") else PermanentSendError
            fake.fail_with = error(f"refused ({answer[:3]})")

        def fake_unreachable() -> Channel:
            down = FakeChannel()
            down.fail_with = TransientSendError("unavailable")
            return down

        yield World(
            fake,
            lambda: [(m.to, m.subject, m.body, m.reminder_id) for m in fake.sent],
            fake_refuse,
            fake_unreachable,
        )
        return
    with smtp_server() as (box, port):

        def smtp(port: int) -> SmtpChannel:
            return SmtpChannel(
                NotificationSettings(
                    IBEST_NOTIFY_CHANNEL="smtp", IBEST_SMTP_PORT=port, IBEST_SMTP_TIMEOUT=5
                )
            )

        def real_delivered() -> Delivered:
            return [
                (
                    rcpt,
                    str(m["Subject"]),
                    text(m),
                    str(m["X-IBeST-Reference"]),
                )
                for rcpt, m in box.messages
            ]

        def text(m: Message) -> str:
            """The body as sent (SMTP carries lines ending CRLF, and a final one)."""
            payload = m.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode().replace("\r\n", "\n").removesuffix("\n")

        def real_refuse(address: str, answer: str) -> None:
            box.script[address] = [answer]

        yield World(smtp(port), real_delivered, real_refuse, lambda: smtp(free_port()))


def message(reminder_id: str, *to: str) -> OutgoingMessage:
    return OutgoingMessage(
        reminder_id=reminder_id,
        kind=ReminderKind.TRAINING_START,
        to=list(to),
        template_id="t-1",
        subject="Start your BeST training",
        body="Dear colleague,\nyour course is open.",
        personalisation={"course": "BeST"},
    )


async def test_a_message_reaches_each_address_with_its_subject_body_and_reference(
    world: World,
) -> None:
    await world.channel.send(message("r1", "a@example.nhs.uk", "b@example.nhs.uk"))
    await world.channel.send(message("r2", "c@example.nhs.uk"))
    assert world.delivered() == [
        (
            ["a@example.nhs.uk", "b@example.nhs.uk"],
            "Start your BeST training",
            "Dear colleague,\nyour course is open.",
            "r1",
        ),
        (
            ["c@example.nhs.uk"],
            "Start your BeST training",
            "Dear colleague,\nyour course is open.",
            "r2",
        ),
    ]


async def test_an_address_refused_for_good_is_permanent_and_delivers_nothing(
    world: World,
) -> None:
    world.refuse("gone@example.nhs.uk", "550 5.1.1 no such mailbox")
    with pytest.raises(PermanentSendError):
        await world.channel.send(message("r1", "gone@example.nhs.uk"))
    assert world.delivered() == []


async def test_a_deferred_address_is_transient_and_delivers_nothing(world: World) -> None:
    world.refuse("busy@example.nhs.uk", "450 4.2.1 mailbox busy, try later")
    with pytest.raises(TransientSendError):
        await world.channel.send(message("r1", "busy@example.nhs.uk"))
    assert world.delivered() == []


async def test_a_server_that_cannot_be_reached_is_transient(world: World) -> None:
    with pytest.raises(TransientSendError):
        await world.unreachable().send(message("r1", "a@example.nhs.uk"))
    assert world.delivered() == []
