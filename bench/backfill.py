"""End to end: a backfill of realistic events through all four services, timed until the
reporting API reflects every one of them, with the ceiling measured in the same run.

    .venv/bin/python -m bench.backfill [--clinicians 6000] [--patients 13000] [--batch 500]

The events are the simulator's rollout (ibest.simulate.model: clinicians enrolling at every
trust's sites, starting and completing modules, reporting intention and delivery, classes,
patients with a baseline and follow-ups), built through the contract (`new_event`) with no
duplicates or invalid events, and published as raw CloudEvents with `Nats-Msg-Id`. The
defaults give about 100,000 raw events; completion and outcomes reach reporting only as
events derived by enrolment and outcomes, so the clock stops when the raw national figures
equal what the plan implies for enrolment, completion, classes, patients and outcomes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from typing import Any

import httpx
import nats

from bench.ceiling import ceiling
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
    platform_services,
    servers,
)
from ibest.backbone.settings import Settings
from ibest.simulate.model import Planned, SimulationOptions, plan_rollout
from ibest.simulate.runner import course_modules
from ibest.simulate.trusts import load_trusts


def plan(clinicians: int, patients: int) -> list[Planned]:
    options = SimulationOptions(
        seed=8,
        clinicians=clinicians,
        patients=patients,
        duplicate_rate=0.0,
        invalid_rate=0.0,
        progress=False,
    )
    modules, _ = course_modules(Settings(), options.course_version)
    return plan_rollout(options, load_trusts(), modules).events


def expected_figures(events: list[Planned]) -> dict[str, int]:
    """National figures the plan implies (every event valid, every follow-up has a baseline)."""
    raws = [json.loads(p.body) for p in events]
    modules_done: Counter[str] = Counter()
    started: set[str] = set()
    enrolled: set[str] = set()
    baseline: set[str] = set()
    followed: dict[str, set[str]] = {"month_3": set(), "month_12": set()}
    outcome_n = 0
    classes = 0
    for raw in raws:
        name = raw["type"][len("uk.nhs.ibest.") : -3]
        data = raw["data"]
        if name == "clinician.enrolled":
            enrolled.add(data["clinician_ref"])
        elif name == "module.started":
            started.add(data["clinician_ref"])
        elif name == "module.completed":
            started.add(data["clinician_ref"])
            modules_done[data["clinician_ref"]] += 1
        elif name == "class.started":
            classes += 1
        elif name == "patient.assessed":
            key = f"{raw['trustcode']}:{data['patient_ref']}"
            if data["timepoint"] == "baseline":
                baseline.add(key)
            else:
                outcome_n += len(data["measures"])
                if data["timepoint"] in followed:
                    followed[data["timepoint"]].add(key)
    required = max(modules_done.values(), default=0)
    return {
        "clinicians_enrolled": len(enrolled),
        "clinicians_started": len(started & enrolled),
        "clinicians_completed": sum(
            1 for c, n in modules_done.items() if n == required and c in enrolled
        ),
        "classes_started": classes,
        "patients_baseline": len(baseline),
        "patients_month_3": len(followed["month_3"]),
        "patients_month_12": len(followed["month_12"]),
        "outcomes_n": outcome_n,
    }


def observed(figures: dict[str, Any]) -> dict[str, int]:
    out = {
        k: int(figures[k])
        for k in (
            "clinicians_enrolled",
            "clinicians_started",
            "clinicians_completed",
            "classes_started",
            "patients_baseline",
            "patients_month_3",
            "patients_month_12",
        )
    }
    out["outcomes_n"] = sum(
        int(o["n"]) for by_tp in figures["outcomes"].values() for o in by_tp.values()
    )
    return out


async def publish(nats_url: str, events: list[Planned], batch: int) -> float:
    nc = await nats.connect(nats_url, name="bench-backfill")
    js = nc.jetstream()
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        await asyncio.gather(
            *[
                js.publish(p.subject, p.body, headers={"Nats-Msg-Id": p.msg_id}, timeout=30)
                for p in events[i : i + batch]
            ]
        )
    took = time.perf_counter() - start
    await nc.drain()
    return took


async def backfill(
    nats_url: str,
    reporting: str,
    events: list[Planned],
    batch: int,
    want: dict[str, int],
    timeout: float,
) -> dict[str, float]:
    counts0 = db_counts_now()
    cpu0 = cpu_now()
    start = time.perf_counter()
    publishing = asyncio.create_task(publish(nats_url, events, batch))
    last: dict[str, int] = {}
    async with httpx.AsyncClient(
        base_url=reporting, timeout=30, headers={"Authorization": f"Bearer {RAW_TOKEN}"}
    ) as api:
        while True:
            await asyncio.sleep(0.5)
            figures = (await api.get("/v1/national", params={"raw": "true"})).json()["figures"]
            last = observed(figures)
            if last == want:
                break
            elapsed = time.perf_counter() - start
            if elapsed > timeout:
                raise TimeoutError(f"after {elapsed:.0f}s reporting shows {last}, want {want}")
            if int(elapsed) % 30 == 0:
                print(f"  {elapsed:5.0f}s  {last}", flush=True)
    took = time.perf_counter() - start
    published = await publishing
    cpu = cpu_since(cpu0)
    print(database_work(db_counts_since(counts0), len(events), cpu))
    return {
        "seconds": took,
        "publish_seconds": published,
        **{f"cpu_{k}": v for k, v in cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clinicians", type=int, default=6000)
    parser.add_argument("--patients", type=int, default=13000)
    parser.add_argument("--batch", type=int, default=500, help="publish acks awaited per batch")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    events = plan(args.clinicians, args.patients)
    want = expected_figures(events)
    print(f"machine: {machine()}; {load()} at start")
    print(f"planned {len(events):,} raw events: {dict(Counter(p.name for p in events))}")
    print(f"expected national figures: {want}")
    with servers() as (nats_url, mongo_url):
        pub, con = asyncio.run(ceiling(nats_url, len(events), args.batch))
        print(f"ceiling: publish {pub:,.0f} events/s, consume {con:,.0f} events/s")
        asyncio.run(fresh_streams(nats_url))
        with platform_services(nats_url, mongo_url) as urls:
            result = asyncio.run(
                backfill(nats_url, urls["reporting"], events, args.batch, want, args.timeout)
            )
    rate = len(events) / result["seconds"]
    print(f"machine: {machine()}; {load()} at end")
    print(
        f"backfill: {len(events):,} raw events reflected by reporting in "
        f"{result['seconds']:.1f}s = {rate:,.0f} events/s "
        f"(publishing alone took {result['publish_seconds']:.1f}s)"
    )
    print(f"ratio to the ceiling: {rate / pub:.3f} of publish, {rate / con:.3f} of consume")
    print(
        "CPU seconds used during the backfill: "
        + ", ".join(f"{k[4:]} {v:.1f}" for k, v in result.items() if k.startswith("cpu_"))
    )


if __name__ == "__main__":
    main()
