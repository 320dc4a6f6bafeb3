"""SecantusDB, the local stand-in for MongoDB, with two costs it has and MongoDB has not
taken out.

SecantusDB's write path (update, delete, find-and-modify) uses the `_id` index only when the
filter is `_id` alone. A filter such as `{_id: x, v: 3}` (a conditional write: MongoDB finds
the document by `_id`, then checks `v`) makes it scan the whole collection, so every such
write costs time in proportion to the collection. The services use such filters for
optimistic concurrency, and MongoDB serves them from the `_id` index. This launcher gives
the write path the `_id` candidates whenever the filter has an `_id` equality; SecantusDB
still checks every candidate against the whole filter, so results are unchanged (only
fewer documents are examined).

SecantusDB also reads its index catalogue from storage, and decodes it, several times for
every document it writes (to find the indexes to maintain, their partial filters, which are
multikey, which are geo indexes): at the services' write rates that was about a third of
its CPU. MongoDB keeps the catalogue in memory. This launcher keeps each collection's
catalogue in memory too, and forgets it whenever anything changes a catalogue (creating,
dropping or altering an index or a collection, renaming, a write that marks an index
multikey). The catalogue read is the same; only how often it is decoded changes.

Used by `ibest up`, the tests and the benches; services are unchanged, and a real MongoDB
(`MONGODB_URL`) needs none of this. The launchers also start it `--standalone` (see
`ibest.local.processes.secantus_server`): no change stream or transaction is used by the
platform, and a replica-set SecantusDB writes an oplog entry, in Python, for every document.

Run as `python -m ibest.local.secantusd <secantusd-py arguments>`. For benchmarks,
`IBEST_SECANTUS_ACCOUNT=<file>` also writes, at exit, the server's CPU time per database,
collection and command: which service's which writes the database spends its time on.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
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


_read_catalogue = Storage._iter_indexes
IndexRow = tuple[str, dict[str, Any], dict[str, Any]]


class _Catalogues:
    """Each collection's index rows as last read, and a generation that every catalogue
    change moves, so a read that raced a change is not kept."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[IndexRow]] = {}
        self.generation = 0
        self.lock = threading.Lock()

    def forget(self) -> None:
        with self.lock:
            self.generation += 1
            self.rows.clear()


_CATALOGUES = _Catalogues()


def _remembered_indexes(self: Storage, db: str, coll: str) -> Iterator[IndexRow]:
    key = (db, coll)
    with _CATALOGUES.lock:
        rows = _CATALOGUES.rows.get(key)
        generation = _CATALOGUES.generation
    if rows is None:
        rows = list(_read_catalogue(self, db, coll))
        with _CATALOGUES.lock:
            if _CATALOGUES.generation == generation:
                _CATALOGUES.rows[key] = rows
    return iter(rows)


def _forgetting(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` changes a catalogue: forget every catalogue before and after it runs."""

    @functools.wraps(method)
    def changed(self: Storage, *args: Any, **kwargs: Any) -> Any:
        _CATALOGUES.forget()
        try:
            return method(self, *args, **kwargs)
        finally:
            _CATALOGUES.forget()

    return changed


_CATALOGUE_CHANGES = (
    "create_collection",
    "create_index",
    "drop_index",
    "drop_all_indexes",
    "drop_collection",
    "drop_database",
    "rename_collection",
    "set_index_expiry",
    "set_index_options",
)
_mark_multikey = Storage._maybe_mark_multikey


def _marking_multikey(
    self: Storage,
    db: str,
    coll: str,
    doc: Any,
    indexes: list[tuple[str, dict[str, Any], bool, bool]],
    already_multikey: set[str],
) -> set[str]:
    """SecantusDB flags an index multikey in its catalogue on the first array it indexes;
    forget the catalogues when a flag may have been written."""
    before = set(already_multikey)
    marked: set[str] = _mark_multikey(self, db, coll, doc, indexes, already_multikey)
    if marked - before:
        _CATALOGUES.forget()
    return marked


def _remember_catalogues() -> None:
    Storage._iter_indexes = _remembered_indexes
    Storage._maybe_mark_multikey = _marking_multikey
    for name in _CATALOGUE_CHANGES:
        setattr(Storage, name, _forgetting(getattr(Storage, name)))


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
    _remember_catalogues()
    if os.environ.get("IBEST_SECANTUS_ACCOUNT"):
        _account_to(os.environ["IBEST_SECANTUS_ACCOUNT"])
    cli.main()


if __name__ == "__main__":
    main()
