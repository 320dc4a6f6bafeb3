"""Steady load: latency from publishing an event to the figure changing in the reporting API.

    .venv/bin/python -m bench.latency [--rate 100] [--seconds 60] [--poll 0.02] [--mixed]

All four services run as processes with their default settings (batch size, fetch timeout,
reporting snapshot interval). A trust's system publishes new `clinician.enrolled` events at
a steady rate (each a new clinician, so `clinicians_enrolled` rises by one per event); a
poller reads the raw national figures every `--poll` seconds. An event's latency is the time
from its publish call to the first poll that shows the count including it, so the figures
carry up to one poll interval of resolution (and the poller's own load).

`--mixed` publishes the simulator's rollout instead (enrolments, module events, intentions,
classes, patient assessments, delivery reports, in its proportions), each entity's events
in order but entities interleaved at random, and judges every event that moves a national
figure by that figure: an enrolment by `clinicians_enrolled`, a clinician's first module
event after enrolling by `clinicians_started`, a class by `classes_started`, a patient's
baseline by `patients_baseline` and its first month-3 or month-12 follow-up after it by
`patients_month_3` / `_12`. The other events are published but not timed. At the end every
figure must equal what the published events imply.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import nats

from bench.common import (
    RAW_TOKEN,
    cpu_now,
    cpu_since,
    database_work,
    db_counts_now,
    db_counts_since,
    fresh_streams,
    load,
    machine,
    percentile,
    platform_services,
    servers,
)
from ibest.simulate.model import Planned
from shared import events as ev
from shared.envelope import new_event

SITES = ("RTH01", "RTH08", "RXF01", "RJ101", "R0A02")


Published = tuple[str, bytes, str, tuple[str, ...]]
"""(subject, body, event id, the national figures it moves)."""


def enrolment(n: int) -> Published:
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
    return event.subject, event.to_json(), str(event.id), ("clinicians_enrolled",)


def mixed(total: int, seed: int = 26) -> list[Published]:
    """`total` events of the simulator's rollout, entities interleaved at random, each
    with the national figure it moves (see the module's docstring)."""
    from bench.backfill import plan  # the backfill's rollout, same simulator options

    scale = max(1, round(total / 9_841 * 600)), max(1, round(total / 9_841 * 1_300))
    streams: dict[str, list[tuple[Planned, dict[str, Any], str]]] = {}
    for p in plan(*scale):
        raw = json.loads(p.body)
        data = raw["data"]
        # A clinician is one across trusts; a patient and a class are one within a trust.
        ref = data.get("clinician_ref")
        key = ref or f"{raw['trustcode']}:{data.get('patient_ref') or data.get('class_id')}"
        streams.setdefault(key, []).append((p, data, key))
    rng = random.Random(seed)
    queues = [list(reversed(s)) for s in streams.values()]
    enrolled: set[str] = set()
    moduled: set[str] = set()  # clinicians with a module event so far
    started: set[str] = set()
    baseline: set[str] = set()
    followed: set[tuple[str, str]] = set()
    waiting: dict[str, set[str]] = {}  # follow-ups published before their baseline
    out: list[Published] = []
    while queues and len(out) < total:
        queue = rng.choice(queues)
        p, data, key = queue.pop()
        if not queue:
            queues.remove(queue)
        name = p.name
        figures: list[str] = []
        if name in ("module.started", "module.completed"):
            moduled.add(key)
        if name == "clinician.enrolled" and key not in enrolled:
            enrolled.add(key)
            figures.append("clinicians_enrolled")
        if key in enrolled and key in moduled and key not in started:
            # The clinician's first module event after enrolling, or the enrolment of a
            # clinician whose module event came first: either one makes them started.
            started.add(key)
            figures.append("clinicians_started")
        if name == "class.started":
            figures.append("classes_started")
        elif name == "patient.assessed":
            timepoint = data["timepoint"]
            if timepoint == "baseline" and key not in baseline:
                baseline.add(key)
                figures.append("patients_baseline")
                # Follow-ups that came first count from their baseline on.
                for early in sorted(waiting.pop(key, set())):
                    followed.add((key, early))
                    figures.append(f"patients_{early}")
            elif timepoint in ("month_3", "month_12") and key not in baseline:
                waiting.setdefault(key, set()).add(timepoint)
            elif (
                timepoint in ("month_3", "month_12")
                and key in baseline
                and ((key, timepoint) not in followed)
            ):
                followed.add((key, timepoint))
                figures.append(f"patients_{timepoint}")
        out.append((p.subject, p.body, p.msg_id, tuple(figures)))
    return out


async def steady(
    nats_url: str, reporting: str, events: list[Published], rate: float, poll: float
) -> tuple[dict[str, list[float]], float, Counter[str]]:
    """Latencies in seconds of every timed event by the figure it moves, the achieved
    publish rate, and the national figures at the end (each must equal its timed events)."""
    total = len(events)
    published: list[float] = [0.0] * total
    seen: list[float] = [0.0] * total  # when the figure first included event i
    by_figure: dict[str, list[int]] = {}
    for i, (*_, figures) in enumerate(events):
        for figure in figures:
            by_figure.setdefault(figure, []).append(i)
    final: Counter[str] = Counter()
    nc = await nats.connect(nats_url, name="bench-latency")
    js = nc.jetstream()
    done = asyncio.Event()

    async def poller() -> None:
        shown = dict.fromkeys(by_figure, 0)
        async with httpx.AsyncClient(
            base_url=reporting, timeout=30, headers={"Authorization": f"Bearer {RAW_TOKEN}"}
        ) as api:
            while any(shown[f] < len(ids) for f, ids in by_figure.items()):
                figures = (await api.get("/v1/national", params={"raw": "true"})).json()
                now = time.perf_counter()
                for figure, ids in by_figure.items():
                    count = int(figures["figures"][figure])
                    for i in ids[shown[figure] : min(count, len(ids))]:
                        seen[i] = now
                    shown[figure] = max(shown[figure], count)
                    final[figure] = count
                await asyncio.sleep(poll)
        done.set()

    polling = asyncio.create_task(poller())
    start = time.perf_counter()
    for i, (subject, body, eid, _) in enumerate(events):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        published[i] = time.perf_counter()
        await js.publish(subject, body, headers={"Nats-Msg-Id": eid})
    achieved = total / (time.perf_counter() - start)
    await asyncio.wait_for(done.wait(), timeout=max(120.0, total / rate * 5))
    await polling
    await nc.drain()
    # Counts are order-free: the k-th shown of a figure is matched to its k-th published.
    want = Counter({figure: len(ids) for figure, ids in by_figure.items()})
    if final != want:
        raise SystemExit(f"figures are not exact: {dict(final)} != {dict(want)}")
    latencies = {f: [seen[i] - published[i] for i in ids] for f, ids in by_figure.items()}
    print(by_window(start, published, seen, [i for ids in by_figure.values() for i in ids]))
    return latencies, achieved, final


def by_window(
    start: float, published: list[float], seen: list[float], timed: list[int], width: int = 5
) -> str:
    """p50 / p99 / max per `width` seconds of publishing: a stall shows as one bad window,
    a queue that builds as windows that worsen."""
    windows: dict[int, list[float]] = {}
    for i in timed:
        windows.setdefault(int((published[i] - start) // width), []).append(
            (seen[i] - published[i]) * 1000
        )
    rows = [f"latency by {width} s window of publishing (p50 / p99 / max ms):"]
    for window, each in sorted(windows.items()):
        rows.append(
            f"  {window * width:>4}-{(window + 1) * width:<4}s n={len(each):>5}  "
            f"{percentile(each, 50):6.0f} {percentile(each, 99):6.0f} {max(each):6.0f}"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--mixed", action="store_true", help="the simulator's mix of events")
    args = parser.parse_args()
    total = int(args.rate * args.seconds)
    events = mixed(total) if args.mixed else [enrolment(i) for i in range(total)]
    print(f"machine: {machine()}; {load()} at start")
    with servers() as (nats_url, mongo_url):
        asyncio.run(fresh_streams(nats_url))
        with platform_services(nats_url, mongo_url) as urls:
            counts0 = db_counts_now()
            cpu0 = cpu_now()
            latencies, achieved, final = asyncio.run(
                steady(nats_url, urls["reporting"], events, args.rate, args.poll)
            )
            cpu = cpu_since(cpu0)
            print(database_work(db_counts_since(counts0), len(events), cpu))
    ms = [x * 1000 for values in latencies.values() for x in values]
    print(f"machine: {machine()}; {load()} at end")
    what = "mixed rollout" if args.mixed else "clinician.enrolled"
    print(
        f"steady load: {len(events):,} {what} events ({len(ms):,} timed) at {achieved:.1f} "
        f"events/s (asked {args.rate:g}) for {args.seconds:g}s; national figures polled every "
        f"{args.poll * 1000:.0f} ms; default service settings; exact at the end: {dict(final)}"
    )
    print(
        f"publish -> figure changed: p50 {percentile(ms, 50):.0f} ms, "
        f"p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms"
    )
    for figure, values in sorted(latencies.items()):
        each = [x * 1000 for x in values]
        print(
            f"  {figure:<22} n={len(each):>5}  p50 {percentile(each, 50):6.0f} ms  "
            f"p99 {percentile(each, 99):6.0f} ms  max {max(each):6.0f} ms"
        )
    print(
        "CPU seconds used during the run: "
        + ", ".join(
            f"{name} {seconds:.1f}" for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])
        )
    )


if __name__ == "__main__":
    main()
