"""Long background work that shares the event loop with requests, in slices.

The metrics snapshot recomputes and renders every level's figures once per change of the
figures: at national scale about 2.5 s of CPU (2,201 levels, 100,000 samples, measured in
docs/performance.md, issue 26). Done in one go it stopped the event loop, so every request
arriving meanwhile waited for it: the 0.5 - 1.6 s tail of the report routes. Done in slices
that give the loop back every few milliseconds, a request waits at most one slice; and
resting between slices keeps the snapshot to about half of the process's time while it
runs, so requests in flight meanwhile are slowed, not stopped (one run with 5 ms slices and
no rest, load 5: the routes timed while the snapshot ran had p99 95 - 165 ms).
"""

from __future__ import annotations

import asyncio
import time

SLICE_SECONDS = 0.002
"""Work done between two returns to the event loop: less than one small request's time."""
REST_SECONDS = 0.002
"""Time given to the loop after each slice: the snapshot takes at most about half."""


class Slices:
    """`await slices.pause()` between steps of a long computation: once `seconds` of work
    have passed since the last return to the event loop, it returns to it for `rest`
    seconds, so requests are served in between; otherwise it costs a clock read."""

    def __init__(self, seconds: float = SLICE_SECONDS, rest: float = REST_SECONDS) -> None:
        self.seconds = seconds
        self.rest = rest
        self._since = time.perf_counter()

    async def pause(self) -> None:
        if time.perf_counter() - self._since >= self.seconds:
            await asyncio.sleep(self.rest)
            self._since = time.perf_counter()
