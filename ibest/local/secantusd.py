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
its CPU. It reads each collection's options (capped? time series?) and each database's
profiling level from storage on every write and command in the same way. MongoDB keeps
all three in memory. This launcher keeps them in memory too, and forgets them whenever
anything changes one (creating, dropping or altering an index or a collection, renaming, a
write that marks an index multikey, setting a profiling level). What is read is the same;
only how often it is decoded changes. And it matches `{field: {$in: [...]}}` against a
document by a set lookup when every value is a string (the services' `_id` lists), where
SecantusDB compares each document with each listed value in turn (a batch's read of 500
ids was 250,000 comparisons; MongoDB answers it from the index).

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

from secantus import cli, query, server
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
    """What was last read of each catalogue (a collection's index rows, its options, a
    database's profiling level), and a generation that every catalogue change moves, so a
    read that raced a change is not kept."""

    def __init__(self) -> None:
        self.read: dict[tuple[str, ...], Any] = {}
        self.generation = 0
        self.lock = threading.Lock()

    def forget(self) -> None:
        with self.lock:
            self.generation += 1
            self.read.clear()

    def remembered(self, key: tuple[str, ...], read: Callable[[], Any]) -> Any:
        """What `read()` gives for `key`, read once until the next change (None, "no such
        collection yet", is never kept: a first insert creates it without telling us)."""
        with self.lock:
            found = self.read.get(key)
            generation = self.generation
        if found is None:
            found = read()
            if found is not None:
                with self.lock:
                    if self.generation == generation:
                        self.read[key] = found
        return found


_CATALOGUES = _Catalogues()


def _remembered_indexes(self: Storage, db: str, coll: str) -> Iterator[IndexRow]:
    rows = _CATALOGUES.remembered(
        ("indexes", db, coll), lambda: list(_read_catalogue(self, db, coll))
    )
    return iter(rows)


_read_options = Storage._coll_options
_read_profile = Storage.get_profile


def _remembered_options(self: Storage, db: str, coll: str) -> dict[str, Any] | None:
    options = _CATALOGUES.remembered(("options", db, coll), lambda: _read_options(self, db, coll))
    return None if options is None else dict(options)


def _remembered_profile(self: Storage, db: str) -> dict[str, Any]:
    return dict(_CATALOGUES.remembered(("profile", db), lambda: _read_profile(self, db)))


_match_operator = query._op_matches
_SETS: dict[int, tuple[list[Any], frozenset[str]]] = {}


def _matching(
    values: list[Any],
    op: str,
    arg: Any,
    collation: Any = None,
    *,
    field: str = "",
    descend: bool = True,
) -> bool:
    """`$in` of strings against string values: a set lookup (the same answer: strings
    equal only strings, and no collation is in play); everything else as SecantusDB does."""

    def as_secantus() -> bool:
        return bool(_match_operator(values, op, arg, collation, field=field, descend=descend))

    if (
        op == "$in"
        and collation is None
        and type(arg) is list
        and values
        and all(type(v) is str for v in values)
    ):
        held = _SETS.get(id(arg))
        if held is None or held[0] is not arg:
            if not all(type(a) is str for a in arg):
                return bool(
                    _match_operator(values, op, arg, collation, field=field, descend=descend)
                )
            if len(_SETS) > 64:
                _SETS.clear()
            held = _SETS[id(arg)] = (arg, frozenset(arg))  # holds `arg`: its id stays its own
        return any(v in held[1] for v in values)
    return as_secantus()


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
    "_write_coll_options",
    "set_profile",
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
    Storage._coll_options = _remembered_options
    Storage.get_profile = _remembered_profile
    Storage._maybe_mark_multikey = _marking_multikey
    query._op_matches = _matching
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
