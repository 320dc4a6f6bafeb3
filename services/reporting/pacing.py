"""Long background work that shares the event loop with requests, in slices.

The metrics snapshot recomputes and renders every level's figures once per change of the
figures: at national scale about 2.5 s of CPU (2,201 levels, 100,000 samples, measured in
docs/performance.md, issue 26). Done in one go it stopped the event loop, so every request
arriving meanwhile waited for it: the 0.5 - 1.6 s tail of the report routes. Done in slices
that give the loop back every few milliseconds, a request waits at most one slice.
"""

from __future__ import annotations

import asyncio
import time

SLICE_SECONDS = 0.005
"""Work done between two returns to the event loop: about one small request's time."""


class Slices:
    """`await slices.pause()` between steps of a long computation: it returns to the event
    loop once `seconds` of work have passed since the last return, so requests are served
    in between; otherwise it costs a clock read."""

    def __init__(self, seconds: float = SLICE_SECONDS) -> None:
        self.seconds = seconds
        self._since = time.perf_counter()

    async def pause(self) -> None:
        if time.perf_counter() - self._since >= self.seconds:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
