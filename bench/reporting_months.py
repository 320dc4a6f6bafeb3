"""The months endpoints at national scale: p50 and p99 under concurrent clients.

    .venv/bin/python -m bench.reporting_months [--trusts 200] [--sites-per-trust 10]
        [--months 24] [--clinicians 50000] [--patients 200000] [--clients 8] [--requests 1500]

As bench/reporting_api.py does for the current figures, the national dataset is loaded
directly through the service's own code rather than by replaying events: per site, random
entity timelines over `--months` months (clinicians enrolling, starting, completing,
reporting; classes; patients with baselines and follow-ups) are folded with
`domain.months.fold_months` and their final states with `domain.figures.fold_site`, and
stored as the active generation's site documents (`summary` and the steps summed by month,
`x.m`, from which readers fold the series: what `Generation.store_counted` stores). The
months routes read only those documents, so the API does the work it would do over
replayed data. A site's series has the same size whatever
its number of patients, so fewer patients than the current-figures bench keep the load
quick without changing what a request costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
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
from bench.reporting_api import cpu_per_request, hammer, places
from services.reporting.adapters.store import MongoGenerationStore
from services.reporting.domain.figures import FOLLOW_UP_NAMES, PROFESSIONS, fold_site
from services.reporting.domain.months import (
    Steps,
    fold_months,
    months_between,
    next_month,
    steps,
)
from services.reporting.domain.parts import series_of
from shared.followup import Timepoint, follow_up_window

Timeline = list[list[Any]]


def clinician(
    rng: random.Random, months: list[str], trust: str, site: str
) -> tuple[dict[str, Any], Timeline]:
    """A clinician's final contribution and timeline (stages reached month by month)."""
    i = rng.randrange(len(months))
    state = {
        f"clinicians_{s}": 0
        for s in ("enrolled", "started", "completed", "intending", "delivering")
    }
    line: Timeline = []
    for stage, chance in (
        ("enrolled", 1.0),
        ("started", 0.6),
        ("completed", 0.67),
        ("intending", 0.8),
        ("delivering", 0.6),
    ):
        if rng.random() >= chance or i >= len(months):
            break
        state = {**state, f"clinicians_{stage}": 1}
        if line and line[-1][0] == months[i]:
            line[-1][1] = state
        else:
            line.append([months[i], state])
        i += rng.randrange(0, 3)
    final = {s.removeprefix("clinicians_"): bool(v) for s, v in state.items()}
    return ({"trust": trust, "site": site, "profession": rng.choice(PROFESSIONS), **final}, line)


def patient(
    rng: random.Random, months: list[str], trust: str, site: str
) -> tuple[dict[str, Any], Timeline]:
    i = rng.randrange(len(months))
    baseline = date.fromisoformat(f"{months[i]}-01") + timedelta(days=rng.randrange(28))
    due = {tp: follow_up_window(baseline, Timepoint(tp)).due.isoformat() for tp in FOLLOW_UP_NAMES}
    state: dict[str, Any] = {
        "patients_baseline": 1,
        "patients_month_3": 0,
        "patients_month_12": 0,
        "due_month_3": due["month_3"],
        "due_month_12": due["month_12"],
    }
    line: Timeline = [[months[i], state]]
    for tp, after in (("month_3", 3), ("month_12", 12)):
        if rng.random() < 0.7 and i + after < len(months):
            state = {**state, f"patients_{tp}": 1}
            line.append([months[i + after], state])
    recorded = {tp: bool(state[f"patients_{tp}"]) for tp in FOLLOW_UP_NAMES}
    return ({"trust": trust, "site": site, "recorded": recorded, "due": due, "outcomes": {}}, line)


def steps_by_month(lines: list[Steps]) -> dict[str, Any]:
    """Entities' steps summed by month, as a site document keeps them (`x.m`:
    `domain.parts`)."""
    out: dict[str, Any] = {}
    for line in lines:
        for month, delta, changed in line:
            into = out.setdefault(month, {"d": {}, "c": 0})
            for name, change in delta.items():
                into["d"][name] = into["d"].get(name, 0) + change
            into["c"] += int(bool(changed))
    return {m: out[m] for m in sorted(out)}


async def load_national(
    mongo_url: str,
    database: str,
    trusts: int,
    per_trust: int,
    span: int,
    clinicians: int,
    patients: int,
) -> tuple[list[tuple[str, list[str]]], float]:
    rng = random.Random(18)
    where = places(trusts, per_trust, rng)
    sites = [(t, s) for t, ss in where for s in ss]
    today = datetime.now(UTC).strftime("%Y-%m")
    first = today
    for _ in range(span - 1):
        year, mon = int(first[:4]), int(first[5:])
        first = f"{year - (mon == 1):04d}-{(mon - 2) % 12 + 1:02d}"
    months = months_between(first, today)
    assert len(months) == span and next_month(months[-1]) > today
    started = time.perf_counter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    generation = await MongoGenerationStore(client[database]).active()
    ops = []
    written: list[str] = []  # the sites, as Generation.apply_many lists them
    for trust, site in sites:
        cs = [clinician(rng, months, trust, site) for _ in range(clinicians // len(sites))]
        ps = [patient(rng, months, trust, site) for _ in range(patients // len(sites))]
        ks = [
            (m := rng.choice(months), [[m, {"classes_started": 1}]])
            for _ in range(rng.randrange(0, 12))
        ]
        summary = fold_site(
            site,
            trust,
            [c for c, _ in cs],
            [p for p, _ in ps],
            [{"trust": trust, "site": site} for _ in ks],
        )
        lines = [steps(line) or [] for _, line in [*cs, *ps, *ks]]
        by_month = steps_by_month(lines)
        assert series_of(by_month) == fold_months(lines)
        written.append(site)
        ops.append(InsertOne({"_id": site, "n": 1, "summary": summary, "x": {"m": by_month}}))
    for i in range(0, len(ops), 100):
        await generation.sites.bulk_write(ops[i : i + 100], ordered=False)
    await generation.stamp_changes(datetime.now(UTC), written)
    await client.close()
    return where, time.perf_counter() - started


def endpoints(
    where: list[tuple[str, list[str]]], months: list[str], rng: random.Random
) -> dict[str, list[str]]:
    trusts = [t for t, _ in where]
    sites = [(t, s) for t, ss in where for s in ss]
    picks = rng.sample(trusts, 20)
    site_picks = rng.sample(sites, 20)
    return {
        # The current figures' route, timed beside them under the same load for reference.
        "GET /v1/national (reference)": ["/v1/national"],
        "GET /v1/national/months": ["/v1/national/months"],
        "GET /v1/trusts/{t}/months": [f"/v1/trusts/{t}/months" for t in picks],
        "GET /v1/trusts/{t}/sites/{s}/months": [
            f"/v1/trusts/{t}/sites/{s}/months" for t, s in site_picks
        ],
        "GET /v1/trusts/{t}/months?from&to (12 months)": [
            f"/v1/trusts/{t}/months?from={months[6]}&to={months[17]}" for t in picks
        ],
        "GET /v1/trusts/{t}/months?raw=true": [f"/v1/trusts/{t}/months?raw=true" for t in picks],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    national_scale(parser, patients=200_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1500, help="per endpoint")
    args = parser.parse_args()
    print(f"machine: {machine()}; {load()} at start")
    with servers() as (nats_url, mongo_url):
        asyncio.run(fresh_streams(nats_url))
        with platform_services(nats_url, mongo_url, ("reporting",)) as urls:
            base = urls["reporting"]
            where, took = asyncio.run(
                load_national(
                    mongo_url,
                    f"{os.environ['IBEST_DB_PREFIX']}_reporting",
                    args.trusts,
                    args.sites_per_trust,
                    args.months,
                    args.clinicians,
                    args.patients,
                )
            )
            print(
                f"loaded {args.trusts} trusts, {args.trusts * args.sites_per_trust} sites, "
                f"{args.months} months, {args.clinicians:,} clinicians, "
                f"{args.patients:,} patients as site summaries and series in {took:.0f}s"
            )
            started = time.perf_counter()
            national = httpx.get(
                f"{base}/v1/national/months",
                timeout=300,
                headers={"Authorization": f"Bearer {READ_TOKEN}"},
            ).json()
            print(
                "first /v1/national/months after the load (every site read and its series "
                f"folded): {(time.perf_counter() - started) * 1000:.1f} ms"
            )
            if len(national["months"]) != args.months:
                raise SystemExit(f"{len(national['months'])} months, not {args.months}")
            rng = random.Random(1)
            for name, paths in endpoints(where, national["months"], rng).items():
                token = RAW_TOKEN if "raw=true" in name else READ_TOKEN
                cold = asyncio.run(hammer(base, paths, token, 1, len(paths)))
                before, clients = cpu_now(), time.process_time()
                ms = asyncio.run(hammer(base, paths, token, args.clients, args.requests))
                used = cpu_per_request(cpu_since(before), time.process_time() - clients, len(ms))
                print(
                    f"  {name:<48} n={len(ms):<5} p50 {percentile(ms, 50):8.1f} ms  "
                    f"p99 {percentile(ms, 99):8.1f} ms  (first request per path, alone: "
                    f"max {max(cold):.1f} ms)\n{used}",
                    flush=True,
                )
            for line in asyncio.run(
                changes(base, mongo_url, f"{os.environ['IBEST_DB_PREFIX']}_reporting", where)
            ):
                print(line, flush=True)
    print(f"machine: {machine()}; {load()} at end; {args.clients} concurrent clients")


async def changes(
    base: str, mongo_url: str, database: str, where: list[tuple[str, list[str]]], times: int = 5
) -> list[str]:
    """The first `/v1/national/months?raw=true` after one site's change, `times` times: a
    clinician enrolled in the latest month at a random site (its step and its summary, as
    the writer stores them), the generation stamped, then the first answer timed and checked
    to have moved by exactly that one clinician (the reader folds again only that site)."""
    rng = random.Random(26)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    generation = await MongoGenerationStore(client[database]).active()
    lines: list[str] = []
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {RAW_TOKEN}"}, timeout=300
    ) as http:

        async def enrolled() -> int:
            answer = (await http.get("/v1/national/months?raw=true")).json()
            return int(answer["figures"]["clinicians_enrolled"][-1])

        for _ in range(times):
            before = await enrolled()
            site = rng.choice([s for _, ss in where for s in ss])
            month = datetime.now(UTC).strftime("%Y-%m")
            await generation.sites.update_one(
                {"_id": site},
                {
                    "$inc": {
                        f"x.m.{month}.d.clinicians_enrolled": 1,
                        "summary.clinicians.enrolled.physiotherapist": 1,
                    },
                    "$set": {"rev": rng.getrandbits(62)},
                },
            )
            await generation.stamp_changes(datetime.now(UTC), [site])
            started = time.perf_counter()
            after = await enrolled()
            took = (time.perf_counter() - started) * 1000
            if after != before + 1:
                raise SystemExit(f"after a change at {site}: {after} enrolled, not {before + 1}")
            lines.append(
                f"  one site changed ({site}): first /v1/national/months?raw=true {took:.1f} ms "
                "(exact: moved by the one clinician)"
            )
    await client.close()
    return lines


if __name__ == "__main__":
    main()
