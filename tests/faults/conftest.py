"""Fixtures of the fault tests: every child process a test starts is stopped at its end;
a real SMTP server counts what the notifications service sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from ibest.local.processes import free_port
from tests.faults.stack import Mailbox, Processes


@pytest.fixture
def procs() -> Iterator[Processes]:
    owned = Processes()
    yield owned
    owned.close()


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real (aiosmtpd) SMTP server on a free port, and what it received."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()
