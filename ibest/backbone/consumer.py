"""How a service consumes events: validate, apply once, acknowledge only after storing.

The policy, for every delivered message:
- it breaks the contract (bad JSON, failed validation, subject/trust mismatch) or a
  domain rule (`ContractError` raised by a handler): dead-lettered at once, acknowledged;
- its trust already used its id for different content: dead-lettered at once ("id already
  used for a different event"); ids are judged per trust (`EventLedger`,
  `ibest.backbone.ledger`);
- anything else raised is taken as transient (database down, timeouts): the message is
  put back with exponential backoff, and dead-lettered once `max_deliveries` is reached;
- success: acknowledged after the handler has stored its effect.
Handlers must be idempotent; this policy may call them more than once for one event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from ibest.backbone import metrics
from ibest.backbone.deadletters import dead_letter
from ibest.backbone.ledger import EventLedger
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
