"""A real SMTP server (aiosmtpd) for tests: what it received, with scripted refusals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from ibest.local.processes import free_port


@dataclass
class Mailbox:
    """What the SMTP server received (recipients, raw bytes); `script` gives answers per
    recipient for failure tests (e.g. ["550 5.1.1 no such mailbox", "250"])."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    script: dict[str, list[str]] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        answers = self.script.get(address)
        if answers:
            answer = answers.pop(0)
            if answer != "250":
                return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 Message accepted"

    @property
    def messages(self) -> list[tuple[list[str], Message]]:
        return [(rcpt, message_from_bytes(raw)) for rcpt, raw in self.received]

    def to(self, address: str) -> list[Message]:
        return [m for rcpt, m in self.messages if address in rcpt]

    def count_to(self, address: str) -> int:
        return sum(address in rcpt for rcpt, _ in self.received)

    def references(self) -> list[str]:
        return [str(m["X-IBeST-Reference"]) for _, m in self.messages]


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on a free loopback port, and what it received, stopped at the end."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()
