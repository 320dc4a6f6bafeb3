"""Retention enforced by the platform: a background loop that runs a service's purge.

A purge is `async def purge(now) -> int` (records removed): it takes the time as an
argument, so tests drive it with any clock instead of waiting, and it is idempotent, so
two instances running it at once only repeat each other's deletions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from ibest.backbone.clock import Clock
from ibest.backbone.periodic import every

log = logging.getLogger(__name__)

Purge = Callable[[datetime], Awaitable[int]]


def purge_loop(
    what: str, purge: Purge, clock: Clock, interval: float
) -> Callable[[], Awaitable[None]]:
    """A background loop (ServiceContext `background`) running `purge` every `interval`
    seconds, the first time one interval after start-up (a service restarting in a loop
    does not purge at every start). Logs counts only, never what was removed."""

    async def purge_once() -> None:
        removed = await purge(clock())
        if removed:
            log.info("retention: removed %d %s past their retention period", removed, what)

    async def loop() -> None:
        await every(f"retention of {what}", interval, purge_once, wait_first=True)

    return loop
