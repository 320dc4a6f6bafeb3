"""The one clock type: what time it is, injected so tests move time instead of waiting.

A module of its own (no framework import) so a domain or application module can take a
`Clock` without pulling in the runtime (FastAPI, FastStream).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock: now, timezone-aware UTC."""
    return datetime.now(UTC)
