"""Shared by the benchmarks: start throwaway servers, print figures with the machine."""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ibest.local.processes import free_port, nats_server, secantus_server, start_and_wait


def machine() -> str:
    cpus = os.cpu_count()
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.machine()}, {cpus} cores{mem}, Python {platform.python_version()}"


@contextmanager
def servers(with_db: bool = True) -> Iterator[tuple[str, str]]:
    """(nats_url, mongodb_url): env URLs if set, else fresh local servers for the run."""
    home = Path(tempfile.mkdtemp(prefix="ibest-bench-"))
    procs = []
    nats_url = os.environ.get("NATS_URL", "")
    mongo_url = os.environ.get("MONGODB_URL", "")
    if not nats_url:
        port = free_port()
        procs.append(start_and_wait(nats_server(port, home / "js", home / "nats.log"),
                                    "127.0.0.1", port))
        nats_url = f"nats://127.0.0.1:{port}"
    if with_db and not mongo_url:
        port = free_port()
        procs.append(start_and_wait(secantus_server(port, home / "db", home / "db.log"),
                                    "127.0.0.1", port))
        mongo_url = f"mongodb://127.0.0.1:{port}"
    try:
        yield nats_url, mongo_url
    finally:
        for p in procs:
            p.stop()
