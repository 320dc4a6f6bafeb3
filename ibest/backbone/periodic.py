"""The one periodic loop: a pass every `interval` seconds, jittered, until stopped.

Every background pass of a service (outbox relay, retention purge, notifications'
scheduler, reporting's metrics snapshot, the trust-share watch) runs through `every`, so
they behave alike: a failing pass is logged and the next one runs on time (one bad pass
is not fatal, and a loop never dies silently); the wait is jittered, so the instances of
a service started together do not hit the database in step; a pass never overlaps the
next; and the loop ends when `stop` is set or its task is cancelled (shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

JITTER = 0.1
"""Each wait is `interval` times a factor drawn from [1 - JITTER, 1 + JITTER]."""


async def every(
    what: str,
    interval: float,
    job: Callable[[], Awaitable[object]],
    *,
    wait_first: bool = False,
    jitter: float = JITTER,
    stop: asyncio.Event | None = None,
) -> None:
    """Run `job` every `interval` seconds until `stop` is set (or the task is cancelled).

    `wait_first`: the first pass comes one interval after the start (a service restarting
    in a loop does not repeat the pass at every start). A pass that raises is logged with
    `what` and the next pass runs after the usual wait."""
    stop = stop or asyncio.Event()
    first = True
    while not stop.is_set():
        if not (first and not wait_first):
            delay = interval * random.uniform(1 - jitter, 1 + jitter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
        first = False
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: pass failed; the next pass will retry", what)
