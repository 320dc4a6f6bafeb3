"""Rebuild of the reporting aggregates from the stored stream: time and peak memory.

    .venv/bin/python -m bench.rebuild [--clinicians 60000] [--patients 130000]

Publishes the simulator's rollout (about 16.7 raw events per clinician-and-patient pair of
the defaults: 60,000 clinicians and 130,000 patients give about 1,000,000 events) into a
fresh events stream, then runs the operator's command `ibest reporting rebuild` as its own
process and reports its wall time and peak resident memory (VmHWM of that process,
sampled from /proc).
Reporting consumes the clinician, class and patient events of the stream; module events
are read and skipped, as a rebuild in production does (there, the stream also holds the
derived training and outcome events, which this stream without the other services lacks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench.backfill import plan, publish
from bench.common import (
    count_database_work,
    database_work,
    db_counts_now,
    db_counts_since,
    fresh_streams,
    load,
    machine,
    servers,
)
from services.reporting.domain.facts import CONSUMES


def run_watching_memory(
    argv: list[str],
    env: dict[str, str],
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run `argv`; return its result and its peak resident memory in KiB (VmHWM, read from
    /proc while it runs: ru_maxrss of children would also count this process's own size,
    which a child carries until it execs)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True)
        peak = 0
        while proc.poll() is None:
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{proc.pid}/status").read_text()
                peak = max(
                    peak,
                    *(
                        int(line.split()[1])
                        for line in status.splitlines()
                        if line.startswith("VmHWM:")
                    ),
                )
            time.sleep(0.5)  # sampling interval of the watch, not synchronisation
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read()), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clinicians", type=int, default=60_000)
    parser.add_argument("--patients", type=int, default=130_000)
    args = parser.parse_args()
    print(f"machine: {machine()}; {load()} at start")
    events = plan(args.clinicians, args.patients)
    kinds = Counter(p.name for p in events)
    consumed = sum(n for name, n in kinds.items() if name in CONSUMES)
    print(f"planned {len(events):,} events ({consumed:,} of types reporting consumes)")
    with servers() as (nats_url, mongo_url):
        asyncio.run(fresh_streams(nats_url))
        took = asyncio.run(publish(nats_url, events, 500))
        print(f"published in {took:.0f}s")
        del events
        env = {
            **os.environ,
            "NATS_URL": nats_url,
            "MONGODB_URL": mongo_url,
            "IBEST_DB_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
            **count_database_work(),
        }
        counts0 = db_counts_now()
        started = time.perf_counter()
        done, peak_kib = run_watching_memory(
            [sys.executable, "-m", "ibest.cli", "reporting", "rebuild"], env
        )
        seconds = time.perf_counter() - started
        counts = db_counts_since(counts0)
    print(done.stdout.strip() or done.stderr[-2000:])
    print(database_work(counts, consumed))
    print(f"machine: {machine()}; {load()} at end")
    replayed = re.search(r"\((\d+) events replayed", done.stdout)
    if done.returncode != 0 or replayed is None:
        sys.exit(
            f"rebuild FAILED after {seconds:.1f}s (exit code {done.returncode}); "
            f"peak memory {peak_kib / 1024:.0f} MiB"
        )
    applied = int(replayed.group(1))
    print(
        f"rebuild: {sum(kinds.values()):,} events in the stream, {applied:,} applied "
        f"(planned {consumed:,}), in {seconds:.1f}s = {applied / seconds:,.0f} applied "
        f"events/s; peak memory (VmHWM of the rebuild process) {peak_kib / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
