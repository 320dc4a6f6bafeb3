"""The first answers after a change of one site, at national scale, in process (issue 26).

    .venv/bin/python -m bench.reporting_change [--trusts 200] [--sites-per-trust 10]
        [--clinicians 50000] [--patients 1000000] [--changes 5]

The national dataset is loaded as `bench.reporting_api` loads it (2,000 site summaries on a
throwaway SecantusDB). Then, in this process, the reports (`Reporting` over the MongoDB
store) answer `/v1/national` and `/v1/trusts` once (the steady state, as the service holds
it between changes), and `--changes` times one site's summary changes (one clinician more,
stored as the store's writers store a summary: a new summary and a new `rev`, then the
generation's stamp moved) and the first `/v1/national` after it is timed, CPU and wall,
then the first `/v1/trusts`. The first answer's time is the view's read of the summaries
(timed apart), the national and trust totals, and the national figures with their
secondary suppression (every trust's published figures). At the end every answer is
checked against a fresh reader's (a full read and sum).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import os
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from bench.common import load, machine, national_scale, servers
from bench.reporting_api import load_national
from ibest.backbone.clock import utc_now
from services.reporting.adapters.store import MongoGenerationStore
from services.reporting.api.encoding import json_body
from services.reporting.reports import Reporting


async def timed(answer: Any) -> tuple[float, float]:
    """(CPU ms of this process, wall ms) of awaiting `answer`."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await answer
    return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


def encoding_costs(answer: dict[str, Any]) -> str:
    """Where `/v1/trusts`'s bytes cost: encoding its JSON and gzipping it (once per view in
    the service: `api.encoding`), and inflating it (every request, in the client)."""
    began = time.process_time()
    body = json_body(answer)
    encoded = time.process_time()
    gzipped = gzip.compress(body, compresslevel=6, mtime=0)
    compressed = time.process_time()
    for _ in range(20):
        gzip.decompress(gzipped)
    inflated = time.process_time()
    return (
        f"  /v1/trusts: {len(body):,} bytes of JSON, {len(gzipped):,} gzipped; in the "
        f"service, once per view: JSON {(encoded - began) * 1000:.0f} ms, gzip "
        f"{(compressed - encoded) * 1000:.0f} ms CPU; in every client, per request: "
        f"inflating {(inflated - compressed) / 20 * 1000:.1f} ms CPU"
    )


async def run(args: argparse.Namespace, mongo_url: str) -> None:
    database = f"bench_change_{os.getpid()}"
    where, took = await load_national(
        mongo_url,
        database,
        args.trusts,
        args.sites_per_trust,
        args.clinicians,
        args.patients,
    )
    print(f"loaded {sum(len(s) for _, s in where)} site summaries in {took:.0f}s")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    store = MongoGenerationStore(client[database])
    reports = Reporting(store, utc_now, [])
    cpu, wall = await timed(reports.national(False))
    print(f"  first /v1/national after the load: {cpu:.0f} ms CPU, {wall:.0f} ms wall")
    cpu, wall = await timed(reports.trusts(False))
    print(f"  then /v1/trusts: {cpu:.0f} ms CPU, {wall:.0f} ms wall")
    print(encoding_costs(await reports.trusts(False)))
    generation = await store.active()
    rng = random.Random(26)
    for _ in range(args.changes):
        site = rng.choice([s for _, ss in where for s in ss])
        doc = await generation.sites.find_one({"_id": site})
        assert doc is not None
        summary = doc["summary"]
        summary["clinicians"]["enrolled"]["physiotherapist"] = (
            summary["clinicians"]["enrolled"].get("physiotherapist", 0) + 1
        )
        await generation.sites.update_one(
            {"_id": site}, {"$set": {"summary": summary, "rev": uuid.uuid4().hex}}
        )
        await generation.stamp_changes(datetime.now(UTC), [site])
        v_cpu, v_wall = await timed(reports.view())
        cpu, wall = await timed(reports.national(False))
        t_cpu, t_wall = await timed(reports.trusts(False))
        print(
            f"  one site changed ({site}): first /v1/national {v_cpu + cpu:.0f} ms CPU, "
            f"{v_wall + wall:.0f} ms wall (the view's read {v_cpu:.0f} ms CPU, {v_wall:.0f} "
            f"ms wall; the figures {cpu:.0f} ms CPU); then /v1/trusts {t_cpu:.0f} ms CPU, "
            f"{t_wall:.0f} ms wall",
            flush=True,
        )
    fresh = Reporting(store, utc_now, [])
    for raw in (False, True):
        if await reports.national(raw) != await fresh.national(raw):
            raise SystemExit(f"national (raw={raw}) differs from a fresh reader's")
        if await reports.trusts(raw) != await fresh.trusts(raw):
            raise SystemExit(f"trusts (raw={raw}) differ from a fresh reader's")
    print("  every answer equals a fresh reader's (full read and sum)")
    await client.drop_database(database)
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    national_scale(parser, patients=1_000_000)
    parser.add_argument("--changes", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}; {load()} at start")
    with servers(with_db=True) as (_, mongo_url):
        asyncio.run(run(args, mongo_url))
    print(f"machine: {machine()}; {load()} at end")


if __name__ == "__main__":
    main()
