"""Reporting's write cost per event as one site grows to 20,000 patients (issue 26).

    .venv/bin/python -m bench.site_size [--patients 20000] [--batch 250] [--window 4000]

One site's patients arrive in batches, as the reporting consumer applies them: each patient
a baseline assessment, then a month-3 outcome (`outcome.recorded`, float measures), through
the contract and reporting's own store (`MongoGeneration.apply_many`) on a throwaway
SecantusDB. Per window of patients it prints the database commands, documents and bytes
written per event (PyMongo command monitoring, `bench.dbcount`) and the time per event. The
store is exact if the cost per event stays flat while the site grows: the end checks the
site's figures against what was published.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from bench.common import load, machine, servers
from bench.dbcount import Counting
from services.reporting.adapters.store import MongoGenerationStore
from services.reporting.domain.facts import facts_of
from shared import events as ev
from shared.envelope import AnyEvent, new_event
from shared.followup import Timepoint
from shared.measures import Measure

SITE = "RTH08"
START = datetime(2025, 1, 6, 9, tzinfo=UTC)


def patient_events(i: int) -> list[AnyEvent]:
    """Patient `i`'s baseline and month-3 outcome (fractional Von Korff pain scores)."""
    ref = f"{i:032x}"
    baseline_at = START + timedelta(minutes=7 * i)
    followed_at = baseline_at + timedelta(days=95)
    before, after = 60.0 + (i % 7) / 3, 40.0 + (i % 5) / 7
    return [
        new_event(
            ev.PatientAssessed(
                patient_ref=ref,
                timepoint=Timepoint.BASELINE,
                measures=ev.Measures(rmdq=14, von_korff_pain=before),
            ),
            trustcode=SITE[:3],
            sitecode=SITE,
            source="/bench/site_size",
            time=baseline_at,
        ),
        new_event(
            ev.OutcomeRecorded(
                patient_ref=ref,
                timepoint=Timepoint.MONTH_3,
                baseline_time=baseline_at,
                assessment_time=followed_at,
                revision=1,
                measures={
                    Measure.RMDQ: ev.MeasureOutcome(baseline=14, value=9, change=-5, improved=True),
                    Measure.VON_KORFF_PAIN: ev.MeasureOutcome(
                        baseline=before, value=after, change=after - before, improved=False
                    ),
                },
            ),
            trustcode=SITE[:3],
            sitecode=SITE,
            source="/bench/site_size",
            time=followed_at,
        ),
    ]


async def run(mongo_url: str, patients: int, batch: int, window: int) -> list[dict[str, Any]]:
    listener = Counting()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url, tz_aware=True, event_listeners=[listener]
    )
    store = MongoGenerationStore(client[f"bench{int(time.time())}_reporting"])
    generation = store.generation(int((await store.pointer())["generation"]))
    await generation.create_indexes()
    rows = []
    events = [e for i in range(patients) for e in patient_events(i)]
    per_window = 2 * window
    for start in range(0, len(events), per_window):
        before = Counter(listener.counts)
        began = time.perf_counter()
        chunk = events[start : start + per_window]
        for at in range(0, len(chunk), batch):
            await generation.apply_many(
                [f for event in chunk[at : at + batch] for f in facts_of(event)]
            )
        took = time.perf_counter() - began
        used = Counter(listener.counts) - before
        rows.append(
            {"patients": (start + len(chunk)) // 2, "events": len(chunk), "seconds": took, **used}
        )
        n = len(chunk)
        print(
            f"  patients {rows[-1]['patients']:>6,}: per event {used['commands'] / n:6.3f} "
            f"commands, {used['docs_written'] / n:6.3f} documents, "
            f"{used['bytes_written'] / n:7.0f} bytes written; {1000 * took / n:6.2f} ms "
            f"({load()})",
            flush=True,
        )
    summaries = await generation.summaries()
    await client.drop_database(store.db)
    await client.close()
    site = {s["site"]: s for s in summaries}[SITE]
    rmdq = site["outcomes"]["rmdq"]["month_3"]
    want = {
        "patients_baseline": patients,
        "month_3": patients,
        "rmdq_n": patients,
        "rmdq_sum_change": -5.0 * patients,
    }
    got = {
        "patients_baseline": site["patients_baseline"],
        "month_3": site["recorded"]["month_3"],
        "rmdq_n": rmdq["n"],
        "rmdq_sum_change": rmdq["sum_change"],
    }
    if got != want:
        raise SystemExit(f"figures are not exact: {got} != {want}")
    print(f"figures exact at the end: {got}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=250, help="events applied per batch")
    parser.add_argument("--window", type=int, default=4_000, help="patients per printed row")
    args = parser.parse_args()
    print(f"machine: {machine()}; {load()} at start")
    print(f"one site, {args.patients:,} patients, batches of {args.batch} events")
    with servers() as (_, mongo_url):
        asyncio.run(run(mongo_url, args.patients, args.batch, args.window))
    print(f"machine: {machine()}; {load()} at end")


if __name__ == "__main__":
    main()
