"""How a service consumes events: validate, apply once, acknowledge only after storing.

The policy, for every delivered message:
- it breaks the contract (bad JSON, failed validation, subject/trust mismatch) or a
  domain rule (`ContractError` raised by a handler): dead-lettered at once, acknowledged;
- its trust already used its id for different content: dead-lettered at once ("id already
  used for a different event"); ids are judged per trust (`EventLedger`);
- anything else raised is taken as transient (database down, timeouts): the message is
  put back with exponential backoff, and dead-lettered once `max_deliveries` is reached;
- success: acknowledged after the handler has stored its effect.
Handlers must be idempotent; this policy may call them more than once for one event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ibest.backbone import metrics
from ibest.backbone.deadletters import dead_letter
from ibest.backbone.document import Document
from ibest.backbone.mongo import only_duplicate_keys
from shared.envelope import REUSED_ID, AnyEvent, ContractError, label_event, parse_event
from shared.eventtime import DEFAULT_TIME_BOUNDS, TimeBounds

log = logging.getLogger(__name__)

Apply = Callable[[list[AnyEvent]], Awaitable[None]]
"""A service's use case for delivered events: one event is a batch of one. The consumer
gives it a delivered batch; if that raises anything, it gives it each event of the batch
again alone, under the usual policy (so a poison event is dead-lettered by itself). It
must therefore be idempotent and equivalent to applying the events one by one."""


@dataclass(frozen=True)
class Handlers:
    """What a service does with the events it consumes: their names (its declaration's)
    and the one batch use case that applies them. Built by `handlers`, the one builder."""

    consumes: frozenset[str]
    apply: Apply


def handlers(consumes: Iterable[str], apply: Apply) -> Handlers:
    """A service's handlers: `apply` for every event it declares it consumes
    (`ServiceDeclaration.consumes`; the runtime checks the two match)."""
    return Handlers(frozenset(consumes), apply)


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


LEDGER_DIGEST_BYTES = 16
"""How much of the content digest the ledger keeps: 128 bits, as binary. Enough that two
different contents under one (trust, id) never share it by chance, and half the bytes of
the hexadecimal text it replaced."""


def ledger_digest(event: AnyEvent) -> bytes:
    """What the ledger stores of an event's content: the first bytes of `content_digest`."""
    return bytes.fromhex(content_digest(event))[:LEDGER_DIGEST_BYTES]


def stored_digest(doc: Document) -> bytes | None:
    """The digest a ledger document holds, in either shape: `d` (binary, the ledger's own
    since issue 26) or `digest` (hexadecimal text with a `type`, written before it, still
    held by a deployed ledger); compared on the ledger's `LEDGER_DIGEST_BYTES`."""
    value = doc.get("d")
    if isinstance(value, bytes):
        return value
    old = doc.get("digest")
    return bytes.fromhex(old)[:LEDGER_DIGEST_BYTES] if isinstance(old, str) else None


class EventLedger:
    """Remembers each (trust, event id) with its content digest, to catch an id a trust
    reuses for other content. Collection `seen_events`: `{_id: ledger_key, d: <16 bytes>}`
    (`ledger_digest`; documents of the older shape, `{_id, digest: <hex>, type}`, are read
    alike). Nothing else is stored: the ledger only answers "was this id first seen with
    this content?", so a document costs what its key and digest weigh."""

    def __init__(self, db: AsyncDatabase[Document], unledgered: Iterable[str] = ()) -> None:
        self._seen = db["seen_events"]
        self._unledgered = frozenset(unledgered)
        """Event names neither recorded nor checked (`ServiceDeclaration.unledgered`)."""

    async def conflicts(self, events: list[AnyEvent]) -> set[int]:
        """Record a batch of events; return the positions of those whose (trust, id) was
        first recorded with different content.

        One insert of every key; only keys recorded before (redeliveries, replays, reuse)
        fail it with a duplicate key, and only those are read back to compare: a fresh batch
        costs one round trip. Within a batch, a key's first event is the one recorded.
        Events of an unledgered name are left out: never recorded, never a conflict.
        """
        judged = [(i, e) for i, e in enumerate(events) if e.event_type.name not in self._unledgered]
        if not judged:
            return set()
        positions = [i for i, _ in judged]
        events = [e for _, e in judged]
        keys = [ledger_key(e.trustcode, e.id) for e in events]
        digests = [ledger_digest(e) for e in events]
        first: dict[str, Document] = {}
        for k, d in zip(keys, digests, strict=True):
            first.setdefault(k, {"_id": k, "d": d})
        recorded: dict[str, bytes | None] = {k: doc["d"] for k, doc in first.items()}
        docs = list(first.values())
        try:
            await self._seen.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if not only_duplicate_keys(exc):
                raise
            known = [docs[e["index"]]["_id"] for e in exc.details["writeErrors"]]
            recorded.update(
                {
                    doc["_id"]: stored_digest(doc)
                    async for doc in self._seen.find({"_id": {"$in": known}}, {"d": 1, "digest": 1})
                }
            )
        return {
            positions[i]
            for i, (k, d) in enumerate(zip(keys, digests, strict=True))
            if recorded[k] != d
        }


@dataclass
class ConsumerPolicy:
    """Bounds of the retry policy (see module docstring)."""

    max_deliveries: int = 20
    backoff_max: float = 60.0

    def backoff(self, delivered: int) -> float:
        return float(min(self.backoff_max, 0.5 * 2 ** max(0, delivered - 1)))


class EventConsumer:
    """Applies delivered messages to a service's handlers under the policy above."""

    def __init__(
        self,
        service: str,
        handlers: Handlers,
        js: JetStreamContext,
        ledger: EventLedger,
        policy: ConsumerPolicy,
        bounds: TimeBounds = DEFAULT_TIME_BOUNDS,
    ) -> None:
        self.service = service
        self._bounds = bounds
        self._handlers = handlers
        self._js = js
        self._ledger = ledger
        self._policy = policy
        # Series exist from the start at 0, so rate() and alerts see "none yet", not "no data".
        metrics.EVENTS_RETRIED.labels(service)
        for reason in ("invalid", "exhausted"):
            metrics.DEAD_LETTERS.labels(service, reason)

    async def process_batch(self, msgs: list[Msg]) -> None:
        """Validate the batch, check ids in one go, then apply the events together through
        the service's batch use case; if that fails, each again alone (a batch of one), in
        order."""
        valid: list[tuple[Msg, AnyEvent]] = []
        for msg in msgs:
            try:
                # Judged against when the stream stored it, so redelivery and a rebuild
                # give the same verdict (shared.eventtime).
                valid.append(
                    (
                        msg,
                        parse_event(
                            msg.subject,
                            msg.data,
                            received=msg.metadata.timestamp,
                            bounds=self._bounds,
                        ),
                    )
                )
            except ContractError as exc:
                await self._reject(
                    msg, label_event(msg.subject, msg.data).name, "invalid", str(exc)
                )
        try:
            reused = await self._ledger.conflicts([event for _, event in valid])
        except Exception as exc:
            for msg, event in valid:
                await self._retry_or_give_up(msg, event.event_type.name, exc)
            return
        applied = await self._apply_together(
            [(i, *valid[i]) for i in range(len(valid)) if i not in reused]
        )
        for i, (msg, event) in enumerate(valid):
            if i not in applied:
                await self.process(msg, event, id_reused=i in reused)

    async def _apply_together(self, fresh: list[tuple[int, Msg, AnyEvent]]) -> set[int]:
        """Apply the events this service handles in one call and acknowledge them; return
        their positions (none if the batch failed: each is then applied one by one; a
        single event goes straight to `process`, so a failure is not applied twice)."""
        mine = [(i, m, e) for i, m, e in fresh if e.event_type.name in self._handlers.consumes]
        if len(mine) < 2:
            return set()
        started = time.perf_counter()
        try:
            await self._handlers.apply([e for _, _, e in mine])
        except Exception as exc:
            log.info(
                "%s: batch of %d failed (%s); applying one by one",
                self.service,
                len(mine),
                type(exc).__name__,
            )
            return set()
        each = (time.perf_counter() - started) / len(mine)
        for _, msg, event in mine:
            await self._applied(msg, event.event_type.name, each)
        return {i for i, _, _ in mine}

    async def process(self, msg: Msg, event: AnyEvent, id_reused: bool) -> None:
        started = time.perf_counter()
        kind = event.event_type.name
        try:
            if kind not in self._handlers.consumes:
                raise ContractError.one("type", f"{kind} is not consumed by {self.service}")
            if id_reused:
                raise ContractError([REUSED_ID])
            await self._handlers.apply([event])
        except ContractError as exc:
            await self._reject(msg, kind, "invalid", str(exc))
            return
        except Exception as exc:
            await self._retry_or_give_up(msg, kind, exc)
            return
        await self._applied(msg, kind, time.perf_counter() - started)

    async def _applied(self, msg: Msg, kind: str, seconds: float) -> None:
        await msg.ack()
        metrics.EVENTS_CONSUMED.labels(self.service, kind, "applied").inc()
        metrics.HANDLER_SECONDS.labels(self.service).observe(seconds)
        stored = msg.metadata.timestamp
        if stored is not None:
            age = max(0.0, time.time() - stored.timestamp())
            metrics.EVENT_AGE_SECONDS.labels(self.service).observe(age)
        metrics.LAST_EVENT_TIMESTAMP.labels(self.service).set(time.time())

    async def _reject(
        self, msg: Msg, kind: str, reason: str, error: str, logged: str | None = None
    ) -> None:
        """Dead-letter with `error`; the log gets `logged` instead when given (an error
        from a database or driver may quote stored values; the dead letter may keep it)."""
        # Type, id, trust and subject say which event; a contract error names fields and
        # rules, never a value, so no patient or clinician reference reaches the log.
        label = label_event(msg.subject, msg.data)
        log.warning(
            "%s: dead-lettering %s id=%s trust=%s subject=%s seq=%s reason=%s: %s",
            self.service,
            kind,
            label.event_id or "-",
            label.trustcode or "-",
            msg.subject,
            msg.metadata.sequence.stream,
            reason,
            error if logged is None else logged,
        )
        await dead_letter(self._js, msg, consumer=self.service, reason=reason, error=error)
        await msg.ack()
        metrics.DEAD_LETTERS.labels(self.service, reason).inc()
        metrics.EVENTS_CONSUMED.labels(self.service, kind, "dead_lettered").inc()

    async def _retry_or_give_up(self, msg: Msg, kind: str, exc: Exception) -> None:
        metrics.HANDLER_ERRORS.labels(self.service, type(exc).__name__).inc()
        delivered = msg.metadata.num_delivered
        error = f"{type(exc).__name__}: {exc}"
        if delivered >= self._policy.max_deliveries:
            await self._reject(
                msg,
                kind,
                "exhausted",
                f"gave up after {delivered} deliveries: {error}",
                logged=f"gave up after {delivered} deliveries: {type(exc).__name__}",
            )
            return
        delay = self._policy.backoff(delivered)
        label = label_event(msg.subject, msg.data)
        log.warning(
            "%s: %s id=%s subject=%s failed (delivery %d), retrying in %.1fs: %s",
            self.service,
            kind,
            label.event_id or "-",
            msg.subject,
            delivered,
            delay,
            type(exc).__name__,
        )
        metrics.EVENTS_RETRIED.labels(self.service).inc()
        await msg.nak(delay=delay)
