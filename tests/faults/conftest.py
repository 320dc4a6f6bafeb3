"""Fixtures of the fault tests: every child process a test starts is stopped at its end;
a real SMTP server counts what the notifications service sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.stack import Processes
from tests.mailbox import Mailbox, smtp_server


@pytest.fixture
def procs() -> Iterator[Processes]:
    owned = Processes()
    yield owned
    owned.close()


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real (aiosmtpd) SMTP server on a free port, and what it received."""
    with smtp_server() as server:
        yield server
