"""The consumers' event ledger: was this (trust, event id) first seen with this content?

Every consuming service keeps one, collection `seen_events`, written once per ledgered
event it receives, so a ledger document is paid on every raw event by every consumer.
It is kept as small as the question allows (issue 26): `{_id: <16 bytes>, d: <8 bytes>}`,
47 bytes of BSON, where the text-keyed shape before it weighed 79.

- `_id` (`ledger_id`): the first 16 bytes of the SHA-256 of `ledger_key(trust, id)`. Two
  different keys share it only by a collision of 128-bit digests: for a ledger of n keys
  the chance of any is about n^2 / 2^129 (1e-20 at a billion keys). Nobody can aim one at
  another trust's key either: that needs a second preimage of a key they did not choose
  (about 2^128 work); a birthday collision (2^64) only pairs two keys its maker chose, and
  a trust can only send ids under its own trust (NATS permissions, the gateway's keys).
- `d` (`ledger_digest`): the first 8 bytes of the content digest (`content_digest`). It is
  only ever compared with the digest of one other content under the same key (a
  redelivery, or the same id reused), never searched among many, so the only error is two
  different contents under one key agreeing by chance: 1 in 2^64 per reused id. A trust
  that ground 2^32 contents to make two agree would only turn its own reused id's
  dead letter into a skipped duplicate; the second content is not applied either way.

Rows a deployed ledger wrote before (`_id` = the text `ledger_key`, with `d` of 16 bytes
or `digest` in hexadecimal) are still consulted, so an id first seen before the upgrade is
recognised after it (`LegacyRows`), and `migrate_ledger` (`ibest ledger migrate`) rewrites
them to the new shape, after which the ledger stops looking for them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pymongo import DeleteOne, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ibest.backbone.document import Document
from ibest.backbone.mongo import only_duplicate_keys
from shared.envelope import AnyEvent

SEEN_EVENTS = "seen_events"
"""Each consuming service's ledger collection (in its own database)."""

CONTENT_FIELDS = {
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "trustcode",
    "sitecode",
    "data",
}
"""What makes an event's content: the contract's own fields, its data included.
Anything else the envelope may carry (a `traceparent` that differs on every retry, other
CloudEvents extensions) does not make it a different event."""


def content_digest(event: AnyEvent) -> str:
    """A digest of what the event says (its contract fields and data), independent of JSON
    spacing, key order and attributes the contract ignores."""
    kept = event.model_dump(mode="json", exclude_none=True, include=CONTENT_FIELDS)
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def ledger_key(trustcode: str, event_id: object) -> str:
    """Where an event id is remembered: under its trust (the subject's, which the NATS
    permissions and the gateway's keys bind to the sender), so two trusts may use the same id
    and neither event is lost, and no trust can touch another's ids."""
    return f"{trustcode}:{event_id}"


LEDGER_ID_BYTES = 16
"""How much of the key's SHA-256 a ledger `_id` keeps (the module docstring says why)."""
LEDGER_DIGEST_BYTES = 8
"""How much of the content digest a ledger document keeps (the module docstring says why)."""


def ledger_id(trustcode: str, event_id: object) -> bytes:
    """A ledger document's `_id`: the first `LEDGER_ID_BYTES` of the SHA-256 of
    `ledger_key`, a fixed 16 bytes however long the trust's id is."""
    return hashlib.sha256(ledger_key(trustcode, event_id).encode()).digest()[:LEDGER_ID_BYTES]


def ledger_digest(event: AnyEvent) -> bytes:
    """What the ledger stores of an event's content: the first bytes of `content_digest`."""
    return bytes.fromhex(content_digest(event))[:LEDGER_DIGEST_BYTES]


def stored_digest(doc: Document) -> bytes | None:
    """The digest a ledger document holds, in any shape it was written in: `d` (binary: 8
    bytes now, 16 in text-keyed rows) or `digest` (hexadecimal, older still), compared on
    the ledger's `LEDGER_DIGEST_BYTES`."""
    value = doc.get("d")
    if isinstance(value, bytes):
        return value[:LEDGER_DIGEST_BYTES]
    old = doc.get("digest")
    return bytes.fromhex(old)[:LEDGER_DIGEST_BYTES] if isinstance(old, str) else None


def erased_ids(keys: Iterable[tuple[str, str]]) -> list[object]:
    """Every `_id` a ledger may hold for these (trust, event id) pairs, for erasing them:
    the binary id, the text key of rows written before issue 26, and the bare id of rows
    written before ids were judged per trust."""
    return [
        shape
        for trust, event_id in keys
        for shape in (ledger_id(trust, event_id), ledger_key(trust, event_id), event_id)
    ]


TEXT_KEYED: Document = {"_id": {"$type": "string"}}
"""The ledger rows of an older shape: their `_id` is text (`ledger_key`, or a bare id)."""


class LegacyRows:
    """Whether a ledger still holds text-keyed rows, asked once when first needed and, while
    it does, again every `recheck` seconds (so a migration switches it off without a
    restart). A ledger without them (every new one, and every one migrated) never reads
    them again: the steady state pays one read at start."""

    def __init__(self, seen: AsyncCollection[Document], recheck: float = 300.0) -> None:
        self._seen = seen
        self._recheck = recheck
        self._known: bool | None = None
        self._asked = 0.0

    async def present(self) -> bool:
        stale = time.monotonic() - self._asked > self._recheck
        if self._known is None or (self._known and stale):
            self._known = await self._seen.find_one(TEXT_KEYED, {"_id": 1}) is not None
            self._asked = time.monotonic()
        return bool(self._known)

    async def recorded(self, events: list[AnyEvent]) -> dict[bytes, bytes | None]:
        """The digests text-keyed rows hold for these events, by their binary id."""
        ids = {ledger_key(e.trustcode, e.id): ledger_id(e.trustcode, e.id) for e in events}
        found = self._seen.find({"_id": {"$in": list(ids)}}, {"d": 1, "digest": 1})
        return {ids[doc["_id"]]: stored_digest(doc) async for doc in found}


class EventLedger:
    """Remembers each (trust, event id) with its content digest, to catch an id a trust
    reuses for other content. Collection `seen_events`: `{_id: ledger_id, d: ledger_digest}`
    (the module docstring says why each is as long as it is). Nothing else is stored: the
    ledger only answers "was this id first seen with this content?"."""

    def __init__(self, db: AsyncDatabase[Document], unledgered: Iterable[str] = ()) -> None:
        self._seen = db[SEEN_EVENTS]
        self._unledgered = frozenset(unledgered)
        """Event names neither recorded nor checked (`ServiceDeclaration.unledgered`)."""
        self._legacy = LegacyRows(self._seen)

    async def conflicts(self, events: list[AnyEvent]) -> set[int]:
        """Record a batch of events; return the positions of those whose (trust, id) was
        first recorded with different content.

        One insert of every key; only keys recorded before (redeliveries, replays, reuse)
        fail it with a duplicate key, and only those are read back to compare: a fresh batch
        costs one round trip. Within a batch, a key's first event is the one recorded.
        While the ledger holds text-keyed rows (`LegacyRows`), the batch's text keys are
        read first, and a key found there is judged by that row and not recorded again.
        Events of an unledgered name are left out: never recorded, never a conflict.
        """
        judged = [(i, e) for i, e in enumerate(events) if e.event_type.name not in self._unledgered]
        if not judged:
            return set()
        positions = [i for i, _ in judged]
        events = [e for _, e in judged]
        keys = [ledger_id(e.trustcode, e.id) for e in events]
        digests = [ledger_digest(e) for e in events]
        recorded = await self._legacy.recorded(events) if await self._legacy.present() else {}
        first: dict[bytes, Document] = {}
        for k, d in zip(keys, digests, strict=True):
            if k not in recorded:
                first.setdefault(k, {"_id": k, "d": d})
        recorded.update({k: doc["d"] for k, doc in first.items()})
        docs = list(first.values())
        try:
            if docs:
                await self._seen.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if not only_duplicate_keys(exc):
                raise
            known = [docs[e["index"]]["_id"] for e in exc.details["writeErrors"]]
            recorded.update(
                {
                    doc["_id"]: stored_digest(doc)
                    async for doc in self._seen.find({"_id": {"$in": known}}, {"d": 1})
                }
            )
        return {
            positions[i]
            for i, (k, d) in enumerate(zip(keys, digests, strict=True))
            if recorded[k] != d
        }


@dataclass(frozen=True)
class Migrated:
    """What `migrate_ledger` did to one ledger."""

    rewritten: int
    """Text-keyed rows (`<trust>:<id>`) now stored in the binary shape."""
    dropped: int
    """Rows of a bare id (no trust: written before ids were judged per trust), which no
    consumer has consulted since, removed."""
    unreadable: int
    """Text-keyed rows without a digest in any known shape, left as they are."""


async def migrate_ledger(db: AsyncDatabase[Document], batch: int = 1000) -> Migrated:
    """Rewrite a ledger's text-keyed rows in the binary shape, `batch` rows a write.

    Each `<trust>:<id>` row becomes `{_id: ledger_id, d}` with its own digest (the first
    one seen, so it replaces a binary row a mixed-version instance may have added since),
    then the text row is deleted: at every moment one of the two says the same thing, so
    consumers may keep running. Bare-id rows are deleted. Safe to run again."""
    seen = db[SEEN_EVENTS]
    rewritten = dropped = unreadable = 0
    skip: list[str] = []
    while True:
        query: Document = {"_id": {"$type": "string", "$nin": skip}} if skip else TEXT_KEYED
        rows = await seen.find(query).limit(batch).to_list()
        if not rows:
            return Migrated(rewritten, dropped, unreadable)
        writes: list[ReplaceOne[Document] | DeleteOne] = []
        for row in rows:
            trust, colon, event_id = str(row["_id"]).partition(":")
            digest = stored_digest(row)
            if not colon:
                dropped += 1
            elif digest is None:
                unreadable += 1
                skip.append(row["_id"])
                continue
            else:
                doc = {"_id": ledger_id(trust, event_id), "d": digest}
                writes.append(ReplaceOne({"_id": doc["_id"]}, doc, upsert=True))
                rewritten += 1
            writes.append(DeleteOne({"_id": row["_id"]}))
        if writes:
            await seen.bulk_write(writes, ordered=True)
