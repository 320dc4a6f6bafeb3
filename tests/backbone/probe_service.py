"""A minimal service for backbone tests, runnable as a real process:
`python -m tests.backbone.probe_service` (ports and URLs from the environment).

Each enrolment increments a per-event call counter, slowly, so a test can stop the process
while events are in flight and then check nothing was lost or applied twice.
"""

from __future__ import annotations

import asyncio
import os

from ibest.backbone.consumer import handlers
from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from shared.envelope import AnyEvent


async def wire(ctx: ServiceContext) -> Wiring:
    delay = float(os.environ.get("PROBE_DELAY", "0"))

    async def on_enrolled(event: AnyEvent) -> None:
        await asyncio.sleep(delay)  # simulated work, so events are in flight at SIGTERM
        await ctx.db["calls"].update_one({"_id": str(event.id)}, {"$inc": {"n": 1}}, upsert=True)

    async def apply(events: list[AnyEvent]) -> None:  # one event: a batch of one
        for event in events:
            await on_enrolled(event)

    return Wiring(handlers=handlers(["clinician.enrolled"], apply))


SPEC = ServiceSpec("enrolment", ["clinician.enrolled"], wire)

if __name__ == "__main__":
    from ibest.backbone.serve import serve

    serve(SPEC)
