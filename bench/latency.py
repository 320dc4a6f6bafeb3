"""Steady load: latency from publishing an event to the figure changing in the reporting API.

    .venv/bin/python -m bench.latency [--rate 100] [--seconds 60] [--poll 0.02]

All four services run as processes with their default settings (batch size, fetch timeout,
reporting snapshot interval). A trust's system publishes new `clinician.enrolled` events at
a steady rate (each a new clinician, so `clinicians_enrolled` rises by one per event); a
poller reads the raw national figures every `--poll` seconds. An event's latency is the time
from its publish call to the first poll that shows the count including it, so the figures
carry up to one poll interval of resolution (and the poller's own load).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime

import httpx
import nats

from bench.common import (
    RAW_TOKEN,
    cpu_now,
    cpu_since,
    fresh_streams,
    load,
    machine,
    percentile,
    platform_services,
    servers,
)
from shared import events as ev
from shared.envelope import new_event

SITES = ("RTH01", "RTH08", "RXF01", "RJ101", "R0A02")


def enrolment(n: int) -> tuple[str, bytes, str]:
    site = SITES[n % len(SITES)]
    event = new_event(
        ev.ClinicianEnrolled(
            clinician_ref=f"lat-{uuid.uuid4().hex[:12]}",
            profession=ev.Profession.PHYSIOTHERAPIST,
            course_version="1",
        ),
        trustcode=site[:3],
        sitecode=site,
        source="/bench/latency",
        time=datetime.now(UTC),
    )
    return event.subject, event.to_json(), str(event.id)


async def steady(
    nats_url: str, reporting: str, rate: float, seconds: float, poll: float
) -> tuple[list[float], float]:
    """Latencies in seconds of every event, and the achieved publish rate."""
    total = int(rate * seconds)
    events = [enrolment(i) for i in range(total)]
    published: list[float] = []
    seen: list[float] = [0.0] * total  # when the count first included event i
    nc = await nats.connect(nats_url, name="bench-latency")
    js = nc.jetstream()
    done = asyncio.Event()

    async def poller() -> None:
        shown = 0
        async with httpx.AsyncClient(
            base_url=reporting, timeout=30, headers={"Authorization": f"Bearer {RAW_TOKEN}"}
        ) as api:
            while shown < total:
                figures = (await api.get("/v1/national", params={"raw": "true"})).json()
                count = int(figures["figures"]["clinicians_enrolled"])
                now = time.perf_counter()
                for i in range(shown, min(count, total)):
                    seen[i] = now
                shown = max(shown, count)
                await asyncio.sleep(poll)
        done.set()

    polling = asyncio.create_task(poller())
    start = time.perf_counter()
    for i, (subject, body, eid) in enumerate(events):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        published.append(time.perf_counter())
        await js.publish(subject, body, headers={"Nats-Msg-Id": eid})
    achieved = total / (time.perf_counter() - start)
    await asyncio.wait_for(done.wait(), timeout=max(120.0, seconds * 5))
    await polling
    await nc.drain()
    # The count is order-free: the k-th shown clinician is matched to the k-th published.
    return [s - p for s, p in zip(seen, published, strict=True)], achieved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--poll", type=float, default=0.1)
    args = parser.parse_args()
    print(f"machine: {machine()}; {load()} at start")
    with servers() as (nats_url, mongo_url):
        asyncio.run(fresh_streams(nats_url))
        with platform_services(nats_url, mongo_url) as urls:
            cpu0 = cpu_now()
            latencies, achieved = asyncio.run(
                steady(nats_url, urls["reporting"], args.rate, args.seconds, args.poll)
            )
            cpu = cpu_since(cpu0)
    ms = [x * 1000 for x in latencies]
    print(f"machine: {machine()}; {load()} at end")
    print(
        f"steady load: {len(ms):,} clinician.enrolled events at {achieved:.1f} events/s "
        f"(asked {args.rate:g}) for {args.seconds:g}s; national figure polled every "
        f"{args.poll * 1000:.0f} ms; default service settings"
    )
    print(
        f"publish -> figure changed: p50 {percentile(ms, 50):.0f} ms, "
        f"p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms"
    )
    print(
        "CPU seconds used during the run: "
        + ", ".join(
            f"{name} {seconds:.1f}" for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])
        )
    )


if __name__ == "__main__":
    main()
