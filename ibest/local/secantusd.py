"""SecantusDB, the local stand-in for MongoDB, with one planner gap closed.

SecantusDB's write path (update, delete, find-and-modify) uses the `_id` index only when the
filter is `_id` alone. A filter such as `{_id: x, v: 3}` (a conditional write: MongoDB finds
the document by `_id`, then checks `v`) makes it scan the whole collection, so every such
write costs time in proportion to the collection. The services use such filters for
optimistic concurrency, and MongoDB serves them from the `_id` index. This launcher gives
the write path the `_id` candidates whenever the filter has an `_id` equality; SecantusDB
still checks every candidate against the whole filter, so results are unchanged (only
fewer documents are examined). Used by `ibest up`, the tests and the benches; services are
unchanged, and a real MongoDB (`MONGODB_URL`) needs none of this.

Run as `python -m ibest.local.secantusd <secantusd-py arguments>`. For benchmarks,
`IBEST_SECANTUS_ACCOUNT=<file>` also writes, at exit, the server's CPU time per database,
collection and command: which service's which writes the database spends its time on.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import defaultdict
from typing import Any

from secantus import cli, server
from secantus.storage import Storage

_scan_or_index = Storage._try_index_id_keys


def _with_id_candidates(
    self: Storage, db: str, coll: str, filter: dict[str, Any], *, collation: Any = None
) -> list[bytes] | None:
    found: list[bytes] | None = None
    if collation is None and len(filter) > 1 and "_id" in filter:
        # The `_id` clause alone narrows the candidates (None would mean "scan everything");
        # the caller matches each candidate against the full filter.
        found = _scan_or_index(self, db, coll, {"_id": filter["_id"]})
    if found is None:
        found = _scan_or_index(self, db, coll, filter, collation=collation)
    return found


def _account_to(path: str) -> None:
    """Wrap command dispatch to sum CPU seconds and counts per (database, collection,
    command); written to `path` as JSON at exit."""
    dispatch = server.dispatch
    spent: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    lock = threading.Lock()

    def accounted(doc: dict[str, Any], ctx: Any) -> dict[str, Any]:
        began = time.thread_time()
        try:
            reply: dict[str, Any] = dispatch(doc, ctx)
            return reply
        finally:
            name = next(iter(doc), "")
            target = doc.get(name)
            key = (str(ctx.db_name), target if isinstance(target, str) else "", name)
            with lock:
                spent[key][0] += time.thread_time() - began
                spent[key][1] += 1

    def write() -> None:
        rows = [
            [*key, round(cpu, 3), int(count)]
            for key, (cpu, count) in sorted(spent.items(), key=lambda item: -item[1][0])
        ]
        with open(path, "w") as out:
            json.dump(rows, out, indent=0)

    server.dispatch = accounted
    atexit.register(write)


def main() -> None:
    Storage._try_index_id_keys = _with_id_candidates
    if os.environ.get("IBEST_SECANTUS_ACCOUNT"):
        _account_to(os.environ["IBEST_SECANTUS_ACCOUNT"])
    cli.main()


if __name__ == "__main__":
    main()
