"""Reporting's resident memory under distinct valid queries, against its caches' bound.

    .venv/bin/python -m bench.memory [--trusts 50] [--sites-per-trust 10] [--months 24]
        [--queries 10000] [--clients 4]

Loads a national dataset as bench/reporting_months.py does (site summaries and monthly
series through the service's own code), then asks 10,000 distinct valid questions, each
once: `from`/`to` month ranges at national, trust and site level, published and raw. Every
answer is new, so each is computed and cached: the caches fill to their bounds and must stay
there. Every 1,000 queries it prints the reporting process's resident memory (VmRSS) beside
the bound on what the caches account (`views.ANSWER_BYTES_KEPT` of answers, as the Python
objects they are, plus `views.ENCODED_BYTES_KEPT` of encoded answers): after the first
thousands the RSS should level off below the starting RSS plus that bound. The machine is
shared: load averages are printed at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
from pathlib import Path

import httpx

from bench.common import (
    RAW_TOKEN,
    READ_TOKEN,
    SERVICE_PROCS,
    fresh_streams,
    load,
    machine,
    platform_services,
    servers,
)
from bench.reporting_months import load_national
from services.reporting.views import ANSWER_BYTES_KEPT, ENCODED_BYTES_KEPT

MIB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def distinct_queries(
    where: list[tuple[str, list[str]]], months: list[str], n: int, rng: random.Random
) -> list[tuple[str, str]]:
    """`n` distinct (path, token) queries: month ranges at every level, published or raw."""
    ranges = [(a, b) for a, b in itertools.combinations_with_replacement(months, 2)]
    places = ["/v1/national/months"]
    places += [f"/v1/trusts/{t}/months" for t, _ in where]
    places += [f"/v1/trusts/{t}/sites/{s}/months" for t, ss in where for s in ss]
    seen: set[tuple[str, str]] = set()
    while len(seen) < n:
        place = rng.choice(places)
        start, end = rng.choice(ranges)
        raw = rng.random() < 0.25
        path = f"{place}?from={start}&to={end}" + ("&raw=true" if raw else "")
        seen.add((path, RAW_TOKEN if raw else READ_TOKEN))
    queries = sorted(seen)
    rng.shuffle(queries)
    return queries


async def ask(base: str, queries: list[tuple[str, str]], clients: int, pid: int) -> None:
    pending = iter(enumerate(queries))
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:

        async def worker() -> None:
            for i, (path, token) in pending:
                reply = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                if reply.status_code != 200:
                    raise SystemExit(f"{path}: {reply.status_code} {reply.text[:200]}")
                if (i + 1) % 1000 == 0:
                    print(
                        f"  {i + 1:>6} queries: RSS {rss_bytes(pid) / MIB:7.1f} MiB ({load()})",
                        flush=True,
                    )

        await asyncio.gather(*(worker() for _ in range(clients)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trusts", type=int, default=50)
    parser.add_argument("--sites-per-trust", type=int, default=10)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--clinicians", type=int, default=10_000)
    parser.add_argument("--patients", type=int, default=40_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    print(f"machine: {machine()}; {load()} at start")
    with servers() as (nats_url, mongo_url):
        asyncio.run(fresh_streams(nats_url))
        with platform_services(nats_url, mongo_url, ("reporting",)) as urls:
            base = urls["reporting"]
            proc = SERVICE_PROCS["reporting"].proc
            assert proc is not None
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
            national = httpx.get(
                f"{base}/v1/national/months",
                timeout=300,
                headers={"Authorization": f"Bearer {READ_TOKEN}"},
            ).json()
            months = [m["month"] if isinstance(m, dict) else m for m in national["months"]]
            start_rss = rss_bytes(proc.pid)
            bound = ANSWER_BYTES_KEPT + ENCODED_BYTES_KEPT
            print(
                f"loaded {args.trusts} trusts x {args.sites_per_trust} sites, {args.months} "
                f"months in {took:.0f}s; RSS {start_rss / MIB:.1f} MiB; caches' bound "
                f"{bound / MIB:.0f} MiB (answers {ANSWER_BYTES_KEPT / MIB:.0f} + encoded "
                f"{ENCODED_BYTES_KEPT / MIB:.0f})"
            )
            queries = distinct_queries(where, months, args.queries, random.Random(30))
            asyncio.run(ask(base, queries, args.clients, proc.pid))
            end_rss = rss_bytes(proc.pid)
            verdict = "within" if end_rss <= start_rss + bound else "OVER"
            print(
                f"after {len(queries):,} distinct queries: RSS {end_rss / MIB:.1f} MiB, "
                f"{(end_rss - start_rss) / MIB:+.1f} MiB, {verdict} start + bound "
                f"({(start_rss + bound) / MIB:.1f} MiB)"
            )
    print(f"machine: {machine()}; {load()} at end")


if __name__ == "__main__":
    main()
