"""Database work per process, counted with PyMongo's command monitoring (benches only).

What a write costs MongoDB is mostly what it carries, so per process this counts commands
(all of them, and writes apart; `us:<command> <collection>`: microseconds waited for
each kind, round trip included), documents written (as the server's replies report them:
inserted, modified or upserted, deleted) and bytes written (the BSON size of each write
command as sent, its documents included). `install` is called by `bench/probe`'s
`sitecustomize` in every process a bench starts; `read_counts` sums the files per process
name. Encoding each write command once more to measure it costs the process some CPU: the
benches' CPU figures include it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import bson
from pymongo import monitoring

WRITES = {"insert": "documents", "update": "updates", "delete": "deletes"}
"""Write commands and the field that carries their documents (OP_MSG document sequences are
merged into the command the listener sees)."""
OTHER_WRITES = frozenset({"findAndModify", "findandmodify"})


def process_name() -> str:
    """`reporting` for `python -m services.reporting`, else the program's name."""
    path = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    if path.name == "__main__.py":
        return path.parent.name
    return path.stem or "python"


class Counting(monitoring.CommandListener):
    """Counts commands, documents written and bytes written (thread-safe enough: the GIL
    makes each Counter update atomic for the services' one event loop)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._where: dict[int, str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        self.counts["commands"] += 1
        self.counts[f"cmd_{name}"] += 1
        collection = event.command.get(name)
        self._where[event.request_id] = (
            f"{name} {event.database_name.split('_', 1)[-1]}.{collection}"
        )
        if name in WRITES or name in OTHER_WRITES:
            size = len(bson.encode(event.command))
            where = f"{event.database_name.split('_', 1)[-1]}.{event.command.get(name)}"
            self.counts["write_commands"] += 1
            self.counts["bytes_written"] += size
            self.counts[f"bytes:{where}"] += size
            self.counts[f"writes:{where}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        name = event.command_name
        where = self._where.pop(event.request_id, name)
        self.counts[f"us:{where}"] += event.duration_micros
        reply: Any = event.reply
        written = 0
        if name == "insert" or name == "delete":
            written = int(reply.get("n", 0))
        elif name == "update":
            written = int(reply.get("nModified", 0)) + len(reply.get("upserted", ()))
        elif name in OTHER_WRITES:
            written = int((reply.get("lastErrorObject") or {}).get("n", 0))
        if written:
            self.counts["docs_written"] += written
            self.counts[f"docs:{where.split(' ', 1)[-1]}"] += written

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._where.pop(event.request_id, None)
        self.counts["failed"] += 1


def install(directory: str, every: float = 0.5) -> Counting:
    """Register the listener for every client made from now on, and write its counts to
    `directory` every `every` seconds from a daemon thread."""
    listener = Counting()
    monitoring.register(listener)
    out = Path(directory)

    def flush() -> None:
        last: dict[str, int] = {}
        while True:
            time.sleep(every)
            now = dict(listener.counts)
            if now != last:
                target = out / f"{process_name()}-{os.getpid()}.json"
                tmp = target.with_suffix(".tmp")
                tmp.write_text(json.dumps(now))
                tmp.replace(target)
                last = now

    threading.Thread(target=flush, name="bench-dbcount", daemon=True).start()
    return listener


def read_counts(directory: str | Path) -> dict[str, Counter[str]]:
    """Counts so far per process name (processes of one name summed)."""
    out: dict[str, Counter[str]] = {}
    for path in Path(directory).glob("*.json"):
        name = path.stem.rsplit("-", 1)[0]
        try:
            counts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out.setdefault(name, Counter()).update(counts)
    return out
