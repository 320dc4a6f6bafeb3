"""The reporting API at national scale: p50 and p99 of each endpoint under concurrent clients.

    .venv/bin/python -m bench.reporting_api [--trusts 200] [--sites-per-trust 10]
        [--clinicians 50000] [--patients 1000000] [--clients 8] [--requests 1500]

Loading 1,000,000 patients by replaying events is not feasible here (see
docs/performance.md), so the national dataset is loaded directly through the service's own
code: entity contributions are made with the reporting domain's pure functions' shapes,
folded per site with `domain.figures.fold_site`, and stored as the active generation's site
summaries (`gN_sites`, exactly what `Generation.summarise` stores). Every report reads only
those summaries, so the API does exactly the work it would do over replayed data. The
reporting service then runs as its own process and each endpoint gets `--requests`
requests from `--clients` concurrent httpx clients.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import string
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from pymongo import AsyncMongoClient, InsertOne

from bench.common import (
    RAW_TOKEN,
    READ_TOKEN,
    cpu_now,
    cpu_since,
    fresh_streams,
    load,
    machine,
    national_scale,
    percentile,
    platform_services,
    servers,
)
from services.reporting.adapters.store import MongoGenerationStore
from services.reporting.domain.figures import (
    FOLLOW_UP_NAMES,
    MEASURE_NAMES,
    OUTCOME_TIMEPOINTS,
    PROFESSIONS,
    fold_site,
)
from shared.followup import Timepoint, follow_up_window


def places(trusts: int, per_trust: int, rng: random.Random) -> list[tuple[str, list[str]]]:
    alphabet = string.ascii_uppercase + string.digits
    codes: set[str] = set()
    while len(codes) < trusts:
        codes.add("R" + "".join(rng.choices(alphabet, k=2)))
    return [(t, [f"{t}{n:02d}" for n in range(1, per_trust + 1)]) for t in sorted(codes)]


def clinician(rng: random.Random, trust: str, site: str) -> dict[str, Any]:
    started = rng.random() < 0.6
    completed = started and rng.random() < 0.67
    intending = completed and rng.random() < 0.8
    return {
        "trust": trust,
        "site": site,
        "profession": rng.choice(PROFESSIONS),
        "enrolled": True,
        "started": started,
        "completed": completed,
        "intending": intending,
        "delivering": intending and rng.random() < 0.6,
    }


def patient(rng: random.Random, trust: str, site: str, first: date) -> dict[str, Any]:
    baseline = first + timedelta(days=rng.randrange(0, 730))
    outcomes: dict[str, Any] = {}
    recorded = {}
    measures = rng.sample(MEASURE_NAMES, 3)
    for tp in OUTCOME_TIMEPOINTS:
        answered = rng.random() < (0.5 if tp == "group_end" else 0.7)
        if tp in FOLLOW_UP_NAMES:
            recorded[tp] = answered
        if answered:
            outcomes[tp] = {
                m: {"change": round(rng.gauss(-3, 4), 1), "improved": rng.random() < 0.45}
                for m in measures
            }
    due = {tp: follow_up_window(baseline, Timepoint(tp)).due.isoformat() for tp in FOLLOW_UP_NAMES}
    return {"trust": trust, "site": site, "recorded": recorded, "due": due, "outcomes": outcomes}


async def load_national(
    mongo_url: str, database: str, trusts: int, per_trust: int, clinicians: int, patients: int
) -> tuple[list[tuple[str, list[str]]], float]:
    """Fold generated contributions per site and store the summaries; return the places."""
    rng = random.Random(8)
    where = places(trusts, per_trust, rng)
    sites = [(t, s) for t, ss in where for s in ss]
    started = time.perf_counter()
    per_site_c = clinicians // len(sites)
    per_site_p = patients // len(sites)
    first = date(2024, 1, 8)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    store = MongoGenerationStore(client[database])
    generation = await store.active()
    ops = []
    written: list[str] = []  # the sites, as Generation.apply_many lists them
    for trust, site in sites:
        summary = fold_site(
            site,
            trust,
            [clinician(rng, trust, site) for _ in range(per_site_c)],
            [patient(rng, trust, site, first) for _ in range(per_site_p)],
            [{"trust": trust, "site": site} for _ in range(rng.randrange(0, 12))],
        )
        written.append(site)
        ops.append(InsertOne({"_id": site, "rev": "bench", "summary": summary}))
    for i in range(0, len(ops), 200):
        await generation.sites.bulk_write(ops[i : i + 200], ordered=False)
    # As Generation.apply_many does after storing summaries: count them (readers cache
    # their view by this count) and set as_of.
    await generation.stamp_changes(datetime.now(UTC), written)
    await client.close()
    return where, time.perf_counter() - started


async def hammer(
    base: str, paths: list[str], token: str, clients: int, requests: int
) -> list[float]:
    """Latencies (ms) of `requests` GETs spread over `paths`, `clients` at a time.

    The clients' own garbage collector is off while they time requests: this process still
    holds the generated national dataset's leftovers, and a full collection here (50 - 110
    ms, measured) would be counted as the service's latency.
    """
    latencies: list[float] = []
    queue = [paths[i % len(paths)] for i in range(requests)]

    async def client() -> None:
        async with httpx.AsyncClient(
            base_url=base, timeout=120, headers={"Authorization": f"Bearer {token}"}
        ) as api:
            while queue:
                path = queue.pop()
                began = time.perf_counter()
                response = await api.get(path)
                latencies.append((time.perf_counter() - began) * 1000)
                response.raise_for_status()

    gc.collect()
    gc.disable()
    try:
        await asyncio.gather(*[client() for _ in range(clients)])
    finally:
        gc.enable()
    return latencies


def wait_for_snapshot(base: str, patients: int, timeout: float = 300) -> float:
    """Seconds until /metrics shows the loaded national `patients_baseline`."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        for line in httpx.get(f"{base}/metrics", timeout=60).text.splitlines():
            if line.startswith("ibest_patients_baseline ") and float(line.split()[1]) == patients:
                return time.perf_counter() - began
        time.sleep(0.2)  # poll interval of a bench, not synchronisation in a test
    raise SystemExit(f"the metrics snapshot did not reflect the load within {timeout:.0f}s")


def endpoints(where: list[tuple[str, list[str]]], rng: random.Random) -> dict[str, list[str]]:
    trusts = [t for t, _ in where]
    sites = [(t, s) for t, ss in where for s in ss]
    picks = rng.sample(trusts, 20)
    site_picks = rng.sample(sites, 20)
    return {
        "GET /v1/national": ["/v1/national"],
        "GET /v1/trusts": ["/v1/trusts"],
        "GET /v1/trusts/{t}": [f"/v1/trusts/{t}" for t in picks],
        "GET /v1/trusts/{t}/sites/{s}": [f"/v1/trusts/{t}/sites/{s}" for t, s in site_picks],
        "GET /v1/funnel/followup_rate_month_3": ["/v1/funnel/followup_rate_month_3"],
        "GET /v1/funnel/improved_share (rmdq, month_3)": [
            "/v1/funnel/improved_share?measure=rmdq&timepoint=month_3"
        ],
        "GET /v1/trusts/{t}?raw=true": [f"/v1/trusts/{t}?raw=true" for t in picks],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    national_scale(parser, patients=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1500, help="per endpoint")
    args = parser.parse_args()
    print(f"machine: {machine()}; {load()} at start")
    rows: list[tuple[str, int, float, float]] = []
    with servers() as (nats_url, mongo_url):
        asyncio.run(fresh_streams(nats_url))
        with platform_services(nats_url, mongo_url, ("reporting",)) as urls:
            run_endpoints(args, mongo_url, urls["reporting"], rows)
    print(f"machine: {machine()}; {load()} at end; {args.clients} concurrent clients")


def run_endpoints(
    args: argparse.Namespace, mongo_url: str, base: str, rows: list[tuple[str, int, float, float]]
) -> None:
    prefix = os.environ["IBEST_DB_PREFIX"]  # set by platform_services for the services
    where, took = asyncio.run(
        load_national(
            mongo_url,
            f"{prefix}_reporting",
            args.trusts,
            args.sites_per_trust,
            args.clinicians,
            args.patients,
        )
    )
    print(
        f"loaded {args.trusts} trusts, {args.trusts * args.sites_per_trust} sites, "
        f"{args.clinicians:,} clinicians, {args.patients:,} patients as site summaries "
        f"in {took:.0f}s"
    )
    listed = httpx.get(
        f"{base}/v1/trusts", timeout=300, headers={"Authorization": f"Bearer {READ_TOKEN}"}
    ).json()["trusts"]
    if len(listed) != args.trusts:
        raise SystemExit(f"the API lists {len(listed)} trusts, not {args.trusts}")
    # The service's metrics snapshot is recomputed in the background once the figures
    # change; measured apart, so the endpoints are timed in the steady state.
    snapshot = wait_for_snapshot(
        base,
        args.patients // (args.trusts * args.sites_per_trust) * args.trusts * args.sites_per_trust,
    )
    print(
        f"metrics snapshot of every level reflected the load {snapshot:.1f}s after it "
        "(recomputed at most every IBEST_REPORTING_SNAPSHOT_SECONDS while figures change)"
    )
    rng = random.Random(1)
    for name, paths in endpoints(where, rng).items():
        token = RAW_TOKEN if "raw=true" in name else READ_TOKEN
        # The first request of each path builds its answer; timed apart, alone.
        cold = asyncio.run(hammer(base, paths, token, 1, len(paths)))
        before, clients = cpu_now(), time.process_time()
        ms = asyncio.run(hammer(base, paths, token, args.clients, args.requests))
        used = cpu_per_request(cpu_since(before), time.process_time() - clients, len(ms))
        rows.append((name, len(ms), percentile(ms, 50), percentile(ms, 99)))
        print(
            f"  {name:<48} n={len(ms):<5} p50 {rows[-1][2]:8.1f} ms  "
            f"p99 {rows[-1][3]:8.1f} ms  (first request per path, alone: max "
            f"{max(cold):.1f} ms)\n{used}",
            flush=True,
        )


def cpu_per_request(used: dict[str, float], clients: float, requests: int) -> str:
    """Where a timed phase's CPU went, per request: each process the bench started (the
    service, the database) and the bench's own clients (this process: sending, reading and
    inflating the answers), so a route's time can be told apart from the clients'."""
    per = {**used, "bench clients": clients}
    return "    CPU per request: " + ", ".join(
        f"{name} {seconds / max(requests, 1) * 1000:.2f} ms" for name, seconds in per.items()
    )


if __name__ == "__main__":
    main()
