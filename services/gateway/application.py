"""The gateway's use cases. They depend only on ports (`ports.py`, and the backbone's one
`Publisher`); `adapters/` implement them (MongoDB, NATS, Prometheus) and
`tests/fakes/gateway.py` holds in-memory ones."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from ibest.backbone.publisher import Publisher, Publishing
from services.gateway.domain.keys import (
    MAX_ACTIVE_KEYS,
    ApiKey,
    KeyRuleError,
    bearer_token,
    check_room_for_another,
    check_trust,
    key_id_of,
    mint_key,
    verify,
)
from services.gateway.domain.ratelimit import RateLimiter
from services.gateway.domain.rejections import (
    Rejection,
    at_the_door,
    from_dead_letter,
)
from services.gateway.domain.requests import MAX_BATCH_EVENTS, Refusal, decode_request
from services.gateway.domain.results import (
    NOT_STORED_FORBIDDEN,
    NOT_STORED_UNAVAILABLE,
    EventResult,
    Status,
    rejected,
    summary_status,
    trust_errors,
)
from services.gateway.ports import (
    DeadLetterSource,
    GatewayMetrics,
    KeyStore,
    RejectionStore,
)
from shared.envelope import AnyEvent, ContractError, FieldError, parse_event
from shared.eventtime import DEFAULT_TIME_BOUNDS, TimeBounds

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
UNAUTHENTICATED = 'Bearer realm="ibest", error="invalid_token"'


@dataclass
class Reply:
    """What a use case answers over HTTP: status, JSON body, extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def refusal_reply(refusal: Refusal) -> Reply:
    return Reply(refusal.status, {"detail": refusal.detail}, dict(refusal.headers))


class Gateway:
    """Sending events (`ingest`) and reading rejections (`rejections`) with a trust's key."""

    def __init__(
        self,
        keys: KeyStore,
        rejections: RejectionStore,
        stream: Publisher,
        limiter: RateLimiter,
        metrics: GatewayMetrics,
        clock: Clock,
        timer: Callable[[], float],
        retry_after_unavailable: int = 5,
        max_events: int = MAX_BATCH_EVENTS,
        key_cache_seconds: float = 0.0,
        bounds: TimeBounds = DEFAULT_TIME_BOUNDS,
    ) -> None:
        self.keys, self.rejection_store, self.stream = keys, rejections, stream
        self.bounds = bounds
        self.limiter, self.metrics, self.clock, self.timer = limiter, metrics, clock, timer
        self.retry_after_unavailable = retry_after_unavailable
        self.max_events = max_events
        self.key_cache_seconds = key_cache_seconds
        self._known: dict[str, tuple[ApiKey, float]] = {}

    async def authenticate(self, authorization: str | None) -> ApiKey | Reply:
        token = bearer_token(authorization)
        if token is None:
            return Reply(
                401,
                {"detail": "send your API key as `Authorization: Bearer <key>`"},
                {"WWW-Authenticate": 'Bearer realm="ibest"'},
            )
        key_id = key_id_of(token)
        key = await self._key(key_id) if key_id else None
        if not verify(token, key):
            return Reply(
                401,
                {"detail": "the API key is unknown or revoked"},
                {"WWW-Authenticate": UNAUTHENTICATED},
            )
        assert key is not None
        return key

    async def _key(self, key_id: str) -> ApiKey | None:
        """The stored key, remembered for `key_cache_seconds` (so a revocation takes effect
        within that time) to spare the database a read per request."""
        now = self.timer()
        cached = self._known.get(key_id)
        if cached is not None and now - cached[1] < self.key_cache_seconds:
            return cached[0]
        key = await self.keys.get(key_id)
        if key is not None and self.key_cache_seconds > 0:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[key_id] = (key, now)
        return key

    async def ingest(
        self,
        authorization: str | None,
        content_type: str | None,
        headers: dict[str, str],
        body: bytes | Refusal,
    ) -> Reply:
        """Validate, check the trust, store each event, and say what became of each."""
        started = self.timer()
        key = await self.authenticate(authorization)
        if isinstance(key, Reply):
            self.metrics.observe("", key.status, [], self.timer() - started)
            return key
        reply, results = await self._ingest(key.trust, content_type, headers, body)
        self.metrics.observe(key.trust, reply.status, results, self.timer() - started)
        return reply

    async def _ingest(
        self, trust: str, content_type: str | None, headers: dict[str, str], body: bytes | Refusal
    ) -> tuple[Reply, list[EventResult]]:
        wait = self.limiter.take(trust)
        if wait:
            return Reply(
                429,
                {"detail": f"trust {trust} is over its request rate; retry after {wait}s"},
                {"Retry-After": str(wait)},
            ), []
        decoded = (
            body
            if isinstance(body, Refusal)
            else decode_request(content_type, headers, body, self.max_events)
        )
        if isinstance(decoded, Refusal):
            return refusal_reply(decoded), []
        forbidden = [trust_errors(e.raw, trust) for e in decoded]
        if any(forbidden):
            refused = [
                rejected(e.event_id, errs or [NOT_STORED_FORBIDDEN])
                for e, errs in zip(decoded, forbidden, strict=True)
            ]
            return Reply(
                403,
                {
                    "detail": "this key may send only its own trust's events, and "
                    "never events the platform derives; nothing stored",
                    "results": _dump(refused),
                },
            ), refused
        now = self.clock()
        verdicts: list[AnyEvent | list[FieldError]] = []
        for e in decoded:
            try:
                verdicts.append(
                    parse_event(
                        None,
                        e.body,
                        e.raw if isinstance(e.raw, dict) else None,
                        received=now,  # the time rule, judged as the stream will store it
                        bounds=self.bounds,
                    )
                )
            except ContractError as exc:
                verdicts.append(exc.errors)
            except RecursionError:
                verdicts.append([FieldError("event", "is nested too deeply to read")])
        stored, unavailable = await self._publish(verdicts, [e.body for e in decoded])
        results: list[EventResult] = []
        door: list[Rejection] = []
        for i, (e, verdict) in enumerate(zip(decoded, verdicts, strict=True)):
            if isinstance(verdict, list):
                results.append(rejected(e.event_id, verdict))
                door.append(at_the_door(trust, e.raw, verdict, now, f"door:{uuid.uuid4()}"))
            elif i in stored:
                results.append(EventResult(id=e.event_id, status=stored[i]))
            else:
                results.append(rejected(e.event_id, [NOT_STORED_UNAVAILABLE]))
        if door:
            try:
                await self.rejection_store.record(door)
            except Exception:  # the client has its answer; the log is secondary
                log.exception("could not record %d door rejection(s) of trust %s", len(door), trust)
        status = summary_status(results, unavailable)
        headers = {"Retry-After": str(self.retry_after_unavailable)} if unavailable else {}
        return Reply(status, {"results": _dump(results)}, headers), results

    async def _publish(
        self, verdicts: Sequence[AnyEvent | list[FieldError]], bodies: Sequence[bytes]
    ) -> tuple[dict[int, Status], bool]:
        """Publish the valid events concurrently; which were stored, and whether the stream
        failed. A repeated id within the request is published once, then `duplicate`."""
        first: dict[str, int] = {}
        repeats: dict[int, int] = {}
        for i, v in enumerate(verdicts):
            if not isinstance(v, list):
                repeats[i] = first.setdefault(str(v.id), i)
        unique = [i for i, j in repeats.items() if i == j]
        events: list[Publishing] = []
        for i in unique:
            event = verdicts[i]
            assert not isinstance(event, list)
            events.append((event, bodies[i]))
        outcomes = await self.stream.publish_many(events)
        stored = {
            i: Status.ACCEPTED if fresh else Status.DUPLICATE
            for i, fresh in zip(unique, outcomes, strict=True)
            if fresh is not None
        }
        for i, j in repeats.items():
            if i != j and j in stored:
                stored[i] = Status.DUPLICATE
        return stored, len(stored) < len(repeats)

    async def rejections(self, authorization: str | None, since: str | None, limit: int) -> Reply:
        """The key's trust's rejected events since `since` (RFC 3339), newest first."""
        key = await self.authenticate(authorization)
        if isinstance(key, Reply):
            return key
        start = parse_since(since, self.clock())
        if isinstance(start, Refusal):
            return refusal_reply(start)
        rows = await self.rejection_store.since(key.trust, start, limit)
        return Reply(
            200,
            {
                "trust": key.trust,
                "since": start.isoformat(),
                "rejections": [r.model_dump(mode="json") for r in rows],
            },
        )


def parse_since(
    since: str | None, now: datetime, default_back: timedelta = timedelta(days=3650)
) -> datetime | Refusal:
    if not since:
        return now - default_back
    try:
        value = datetime.fromisoformat(since)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        return Refusal(
            400,
            f"since={since!r} is not an RFC 3339 time with an offset, e.g. 2026-03-01T00:00:00Z",
        )
    return value


_RESULTS = TypeAdapter(list[EventResult])


def _dump(results: Sequence[EventResult]) -> list[dict[str, Any]]:
    """As JSON-ready dicts, in one call (a batch's 500 results dumped one by one cost more
    than twice as much)."""
    dumped: list[dict[str, Any]] = _RESULTS.dump_python(list(results), mode="json")
    return dumped


class KeyAdmin:
    """Operators' key management: create (shown once), list, revoke."""

    def __init__(self, keys: KeyStore, clock: Clock) -> None:
        self.keys, self.clock = keys, clock

    async def create(self, trust: str) -> tuple[ApiKey, str]:
        """A new key for `trust` and the token to show once; KeyRuleError if not allowed."""
        check_trust(trust)
        check_room_for_another(trust, await self.keys.active_count(trust))
        key, token = mint_key(trust, self.clock())
        for slot in range(MAX_ACTIVE_KEYS):
            if await self.keys.add(key, slot):
                return key, token
        # Every slot was taken between the count and the add: another key was created.
        raise KeyRuleError(
            f"trust {trust} already has {MAX_ACTIVE_KEYS} active keys (another was created "
            "just now): revoke one with `ibest gateway keys revoke <id>` first"
        )

    async def list(self) -> list[ApiKey]:
        return await self.keys.all()

    async def revoke(self, key_id: str) -> ApiKey:
        key = await self.keys.revoke(key_id, self.clock())
        if key is None:
            raise KeyRuleError(f"no key with id {key_id!r}")
        return key


class DeadLetterRecorder:
    """Records later rejections: every dead letter, as a row of its event's trust."""

    def __init__(self, source: DeadLetterSource, rejections: RejectionStore) -> None:
        self.source, self.rejection_store = source, rejections

    async def run_once(self) -> int:
        """Record one fetched batch, then acknowledge it; how many dead letters it held."""
        messages = await self.source.fetch()
        if not messages:
            return 0
        found = [
            from_dead_letter(m.headers, m.data, m.subject, m.received_at, m.seq) for m in messages
        ]
        await self.rejection_store.record([r for r in found if r is not None])
        await self.source.ack(messages)
        return len(messages)

    async def run(self) -> None:
        while True:
            await self.run_once()
