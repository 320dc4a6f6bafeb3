"""The ceiling: raw nats-py JetStream publishing (async, batched) and pull consumption.

    .venv/bin/python -m bench.ceiling [--events 100000] [--batch 500]

Prints events per second for each; no platform code is involved beyond stream setup,
so this is what NATS itself allows on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime

import nats
from nats.js.api import ConsumerConfig

from bench.common import machine, servers
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, ensure_streams
from ibest.registry import consumers


def sample_events(n: int) -> list[tuple[str, bytes, str]]:
    out = []
    now = datetime.now(UTC).isoformat()
    for i in range(n):
        eid = str(uuid.uuid4())
        body = json.dumps(
            {
                "specversion": "1.0",
                "id": eid,
                "source": "/bench",
                "time": now,
                "type": "uk.nhs.ibest.module.started.v1",
                "datacontenttype": "application/json",
                "trustcode": "RTH",
                "sitecode": "RTH08",
                "data": {"clinician_ref": f"c{i % 5000}", "module_id": "m01"},
            }
        ).encode()
        out.append(("ibest.v1.RTH.module.started", body, eid))
    return out


async def publish_all(
    js: nats.js.JetStreamContext, events: list[tuple[str, bytes, str]], batch: int
) -> float:
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        acks = [
            js.publish(s, b, headers={"Nats-Msg-Id": eid}) for s, b, eid in events[i : i + batch]
        ]
        await asyncio.gather(*acks)
    return time.perf_counter() - start


async def publish_async_all(
    js: nats.js.JetStreamContext, events: list[tuple[str, bytes, str]], batch: int
) -> float:
    """nats-py's `publish_async`: no task and no timer per event, one wait per `batch` acks
    (each event still has its own ack). The fastest raw publishing nats-py offers, and how
    the gateway stores a request's events (`EventPublisher.publish_many`)."""
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        acks = [
            await js.publish_async(s, b, headers={"Nats-Msg-Id": eid})
            for s, b, eid in events[i : i + batch]
        ]
        await asyncio.gather(*acks)
    return time.perf_counter() - start


async def consume_all(js: nats.js.JetStreamContext, n: int, batch: int) -> float:
    sub = await js.pull_subscribe(
        "ibest.v1.>",
        durable="bench-ceiling",
        stream=EVENTS_STREAM,
        config=ConsumerConfig(max_ack_pending=batch * 4),
    )
    got = 0
    start = time.perf_counter()
    while got < n:
        msgs = await sub.fetch(batch, timeout=5)
        for m in msgs:
            await m.ack()
        got += len(msgs)
    return time.perf_counter() - start


async def ceiling(nats_url: str, n: int, batch: int) -> tuple[float, float]:
    """(publish events/s, consume events/s) on a fresh events stream."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for name in (EVENTS_STREAM,):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    # Benches publish far more per trust than a real trust's share allows.
    await ensure_streams(
        js, Settings(NATS_URL=nats_url, IBEST_EVENTS_PER_SUBJECT=10**9), consumers()
    )
    events = sample_events(n)
    pub = await publish_all(js, events, batch)
    con = await consume_all(js, n, batch)
    await nc.drain()
    return n / pub, n / con


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with servers(with_db=False) as (nats_url, _):
        pub, con = asyncio.run(ceiling(nats_url, args.events, args.batch))
    print(f"machine: {machine()}")
    print(f"ceiling publish: {pub:,.0f} events/s ({args.events:,} events, batches of {args.batch})")
    print(f"ceiling consume: {con:,.0f} events/s (pull, explicit ack)")


if __name__ == "__main__":
    main()
