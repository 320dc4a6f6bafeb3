"""Course-platform import at scale: time and peak memory of `ibest import futurelearn`.

    .venv/bin/python -m bench.course_import [--learners 12000]

Writes a FutureLearn export of `--learners` learners who each visit all 40 steps (12,000
give 480,000 step-activity rows; completion stays partial, as in a real run), then runs the
operator's command `ibest import futurelearn DIR` as its own process against a fresh stream
and gateway database, twice: the first import publishes every fact, the second (the same
files) publishes nothing. Prints each run's wall time and peak resident memory (VmHWM of
the import process) and the load average: the machine is shared. The issue's targets: the
first under 2 minutes and 500 MB, the re-import under 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.common import cpu_now, cpu_since, fresh_streams, load, machine, servers
from bench.rebuild import run_watching_memory
from ibest.local.stack import local_id_key
from ibest.simulate.futurelearn import CourseRunModel
from services.gateway.courses.settings import local_clinician_key

AS_OF = datetime(2026, 12, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=12_000)
    args = parser.parse_args()
    print(f"machine: {machine()}; {load()} at start")
    home = Path(tempfile.mkdtemp(prefix="ibest-course-bench-"))
    started = time.perf_counter()
    model = CourseRunModel(args.learners, every_step=True, days=200)
    model.write(home / "export", AS_OF)
    expected = model.expected(AS_OF)
    del model
    rows = sum(1 for _ in (home / "export" / "ibest-3_step-activity.csv").open()) - 1
    print(
        f"export of {args.learners:,} learners: {rows:,} step rows, {len(expected.facts):,} "
        f"facts to publish (written in {time.perf_counter() - started:.0f}s)"
    )
    with servers() as (nats_url, mongo_url):
        asyncio.run(fresh_streams(nats_url))
        env = {
            **os.environ,
            "NATS_URL": nats_url,
            "MONGODB_URL": mongo_url,
            "IBEST_DB_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
            "IBEST_CLINICIAN_KEY_FILE": str(local_clinician_key(home / "secrets")),
            "IBEST_PLATFORM_ID_KEY_FILE": os.environ.get("IBEST_PLATFORM_ID_KEY_FILE")
            or str(local_id_key(home)),
        }
        argv = [sys.executable, "-m", "ibest.cli", "import", "futurelearn", str(home / "export")]
        for label in ("import", "re-import"):
            began, servers_cpu = time.perf_counter(), cpu_now()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            done, peak_kib = run_watching_memory(argv, env)
            seconds = time.perf_counter() - began
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            used = ", ".join(f"{name} {s:.1f}s" for name, s in cpu_since(servers_cpu).items())
            summary = [
                line for line in done.stdout.splitlines() if line.startswith(("rows", "events"))
            ]
            print("\n".join(summary) or done.stderr[-2000:])
            if done.returncode != 0:
                sys.exit(f"{label} FAILED (exit code {done.returncode})")
            print(
                f"{label}: {seconds:.1f}s wall, {cpu:.1f}s CPU of the import process (servers: "
                f"{used}), peak memory (VmHWM of the import process) {peak_kib / 1024:.0f} MiB; "
                f"{load()}"
            )
    print(f"machine: {machine()}; {load()} at end")


if __name__ == "__main__":
    main()
