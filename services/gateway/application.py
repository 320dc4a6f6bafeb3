"""The gateway's use cases. They depend only on ports (`ports.py`, and the backbone's one
`Publisher`); `adapters/` implement them (MongoDB, NATS, Prometheus) and
`tests/fakes/gateway.py` holds in-memory ones."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ibest.backbone.clock import Clock
from ibest.backbone.ledger import content_digest
from ibest.backbone.publisher import Publisher, Publishing
from services.gateway.domain.keys import (
    COURSE_PLATFORM,
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
from services.gateway.domain.ledger import Claim, judge
from services.gateway.domain.ratelimit import RateLimiter
from services.gateway.domain.rejections import (
    Rejection,
    RejectionRow,
    at_the_door,
    from_dead_letter,
    read_cursor,
    request_refused,
)
from services.gateway.domain.requests import (
    MAX_BATCH_EVENTS,
    Network,
    RawEvent,
    Refusal,
    Why,
    decode_request,
)
from services.gateway.domain.results import (
    NOT_STORED_FORBIDDEN,
    NOT_STORED_UNAVAILABLE,
    EventResult,
    Status,
    Verdict,
    rejected,
    sender_errors,
    share_exhausted,
    summary,
)
from services.gateway.ports import (
    DeadLetterSource,
    GatewayMetrics,
    IdLedger,
    KeyStore,
    RejectionStore,
)
from shared.catalogue import catalogue
from shared.envelope import (
    CONTRACT_ATTRIBUTES,
    REUSED_ID,
    AnyEvent,
    ContractError,
    FieldError,
    parse_event,
    repeated_key_rule,
)
from shared.eventtime import DEFAULT_TIME_BOUNDS, TimeBounds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answered:
    """A request read and judged: its verdict and what became of each event."""

    verdict: Verdict
    results: list[EventResult]
    retry_after: int = 0
    """Seconds before sending the unstored events again (`Verdict.UNAVAILABLE`), else 0."""


@dataclass(frozen=True)
class Ingested:
    """What `Gateway.ingest` did: for whom (the key's holder; "" when refused before a key
    was known) and the outcome: answered, or refused whole."""

    trust: str
    outcome: Answered | Refusal


@dataclass(frozen=True)
class RejectionPage:
    """A page of a trust's rejections, newest first; `next` reads the page after it."""

    trust: str
    since: datetime
    rows: list[RejectionRow]
    next: str | None


def course_platform_of(holder: str) -> bool:
    """Whether a key's holder is a course platform (its events name any trust)."""
    return holder.startswith(COURSE_PLATFORM)


def rate_limited(who: str, wait: int) -> Refusal:
    return Refusal(
        Why.RATE_LIMITED, f"{who} is over its request rate; retry after {wait}s", retry_after=wait
    )


class Gateway:
    """Sending events (`ingest`), trying them (`ingest(..., store=False)`), and reading
    rejections (`rejections`) with a trust's key.

    Two rate limits: per key (`limiter`) on every authenticated request, and per client
    address (`address_limiter`) on every request without a valid key or refused whole, so
    neither unknown keys nor malformed requests can be sent faster than that, and an address
    over it is refused before its key costs a database read."""

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
        address_limiter: RateLimiter | None = None,
        proxies: Sequence[Network] = (),
        bounds: TimeBounds = DEFAULT_TIME_BOUNDS,
        *,
        ledger: IdLedger,
    ) -> None:
        self.keys, self.rejection_store, self.stream = keys, rejections, stream
        self.ledger = ledger
        self.bounds = bounds
        self.limiter, self.metrics, self.clock, self.timer = limiter, metrics, clock, timer
        self.address_limiter = address_limiter or RateLimiter(10, 20, timer)
        self.retry_after_unavailable = retry_after_unavailable
        self.max_events = max_events
        self.key_cache_seconds = key_cache_seconds
        self.proxies = list(proxies)
        self._known: dict[str, tuple[ApiKey, float]] = {}
        self.xapi: Any = None
        """The course-platform part's xAPI use case (services/gateway/courses), for its routes."""

    async def authenticate(self, authorization: str | None, address: str = "") -> ApiKey | Refusal:
        """The request's key, or why it is refused: an address over its rate (before any
        database read); no key, or an unknown or revoked one (charged to the address); a key
        over its rate."""
        wait = self.address_limiter.blocked(address)
        if wait:
            return rate_limited(f"address {address or '(unknown)'}", wait)
        token = bearer_token(authorization)
        if token is None:
            self.address_limiter.take(address)
            return Refusal(Why.NO_KEY, "send your API key as `Authorization: Bearer <key>`")
        key_id = key_id_of(token)
        key = await self._key(key_id) if key_id else None
        if not verify(token, key):
            self.address_limiter.take(address)
            return Refusal(Why.UNKNOWN_KEY, "the API key is unknown or revoked")
        assert key is not None
        wait = self.limiter.take(key.key_id)
        if wait:
            return rate_limited(f"key {key.key_id} (trust {key.trust})", wait)
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
        address: str = "",
        store: bool = True,
    ) -> Ingested:
        """Validate, check the trust, store each event, and say what became of each. With
        `store=False` (the sandbox, POST /v1/events/validate) the same answer, nothing stored
        and nothing recorded. A request refused whole, or with an event its key may not send,
        is charged to its client address."""
        key = await self.authenticate(authorization, address)
        if isinstance(key, Refusal):
            return Ingested("", key)
        outcome = await self._ingest(key.trust, content_type, headers, body, store)
        if isinstance(outcome, Refusal) or outcome.verdict is Verdict.FORBIDDEN:
            self.address_limiter.take(address)
        return Ingested(key.trust, outcome)

    async def _ingest(
        self,
        trust: str,
        content_type: str | None,
        headers: dict[str, str],
        body: bytes | Refusal,
        store: bool,
    ) -> Answered | Refusal:
        now = self.clock()
        decoded = (
            body
            if isinstance(body, Refusal)
            else decode_request(content_type, headers, body, self.max_events)
        )
        if isinstance(decoded, Refusal):
            if store:
                refused = FieldError("request", decoded.detail, decoded.why.value)
                await self._record([request_refused(trust, [refused], now, _door_key())])
            return decoded
        # An event that repeats a key is refused for that alone (its trust is not readable).
        forbidden = [[] if e.repeated_key else sender_errors(e.raw, trust) for e in decoded]
        if any(forbidden):
            refused_events = [
                rejected(e.event_id, errs or [NOT_STORED_FORBIDDEN])
                for e, errs in zip(decoded, forbidden, strict=True)
            ]
            if store:
                why = [err for errs in forbidden for err in errs]
                await self._record([request_refused(trust, why, now, _door_key())])
            return Answered(Verdict.FORBIDDEN, refused_events)
        verdicts: list[AnyEvent | list[FieldError]] = []
        for e in decoded:
            if e.repeated_key is not None:
                verdicts.append(
                    [FieldError("event", repeated_key_rule(e.repeated_key), "duplicate-key")]
                )
                continue
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
                verdicts.append([FieldError("event", "is nested too deeply to read", "too-deep")])
        bodies = [_stored_bytes(e, v) for e, v in zip(decoded, verdicts, strict=True)]
        stored, full = await self._judge_by_owner(trust, verdicts, bodies, store)
        results: list[EventResult] = []
        door: list[Rejection] = []
        for i, (e, verdict) in enumerate(zip(decoded, verdicts, strict=True)):
            if isinstance(verdict, list):
                results.append(rejected(e.event_id, verdict))
                door.append(at_the_door(trust, e.raw, verdict, now, _door_key()))
            elif i in stored:
                results.append(EventResult(id=e.event_id, status=stored[i]))
            elif i in full:
                results.append(
                    rejected(e.event_id, [share_exhausted(verdict.event_type.name, trust)])
                )
            else:
                results.append(rejected(e.event_id, [NOT_STORED_UNAVAILABLE]))
        if door and store:
            await self._record(door)
        valid = sum(1 for v in verdicts if not isinstance(v, list))
        unavailable = len(stored) + len(full) < valid
        wait = self.retry_after_unavailable if unavailable else 0
        return Answered(summary(results, unavailable, bool(full)), results, wait)

    async def _judge_by_owner(
        self,
        trust: str,
        verdicts: list[AnyEvent | list[FieldError]],
        bodies: Sequence[bytes],
        store: bool,
    ) -> tuple[dict[int, Status], set[int]]:
        """Judge ids (and store, if `store`) in the id space of the trust each event belongs
        to, the trust of its subject, as the stream's keyed Nats-Msg-Id and the consumers'
        ledgers do: a trust key's own trust, and for a course-platform key (which sends for
        any trust) each event's `trustcode`. Refused events stay with the key's holder."""
        groups: dict[str, list[int]] = {}
        for i, v in enumerate(verdicts):
            owner = v.trustcode if course_platform_of(trust) and not isinstance(v, list) else trust
            groups.setdefault(owner, []).append(i)
        stored: dict[int, Status] = {}
        full: set[int] = set()
        for owner, where in groups.items():
            part = [verdicts[i] for i in where]
            if store:
                done, refused = await self._publish(owner, part, [bodies[i] for i in where])
            else:
                done, refused = await self._try(owner, part), set()
            for k, i in enumerate(where):
                verdicts[i] = part[k]  # a reused id's verdict, judged in the part
            stored |= {where[k]: status for k, status in done.items()}
            full |= {where[k] for k in refused}
        return stored, full

    async def _record(self, rejections: list[Rejection]) -> None:
        try:
            await self.rejection_store.record(rejections)
        except Exception:  # the client has its answer; the log is secondary
            log.exception("could not record %d door rejection(s)", len(rejections))

    @staticmethod
    def _firsts(
        verdicts: list[AnyEvent | list[FieldError]],
    ) -> tuple[dict[int, int], dict[int, str]]:
        """Each valid event's index -> the index of the first valid event with its id, and
        each one's content digest. An id repeated within the request with other content is
        refused there and then (its verdict becomes `REUSED_ID`)."""
        first: dict[str, int] = {}
        repeats: dict[int, int] = {}
        digests: dict[int, str] = {}
        for i, v in enumerate(verdicts):
            if isinstance(v, list):
                continue
            digests[i] = content_digest(v)
            j = first.setdefault(str(v.id), i)
            if digests[j] != digests[i]:
                verdicts[i] = [REUSED_ID]
            else:
                repeats[i] = j
        return repeats, digests

    async def _ledger_known(
        self, trust: str, verdicts: list[AnyEvent | list[FieldError]], unique: list[int]
    ) -> dict[str, str] | None:
        """The ledger's digests of these events' ids for `trust`; None if it cannot be read
        (then nothing can be judged, so nothing is stored)."""
        try:
            return await self.ledger.known(trust, [str(_event(verdicts[i]).id) for i in unique])
        except Exception:  # the database
            log.exception("id ledger unavailable; %d event(s) of %s not judged", len(unique), trust)
            return None

    async def _try(
        self, trust: str, verdicts: list[AnyEvent | list[FieldError]]
    ) -> dict[int, Status]:
        """What storing would say, storing nothing: `duplicate` for an id this trust stored
        before with the same content (or earlier in the request), a reused id refused, else
        `accepted`."""
        repeats, digests = self._firsts(verdicts)
        unique = [i for i, j in repeats.items() if i == j]
        known = await self._ledger_known(trust, verdicts, unique)
        if known is None:
            return {}
        result: dict[int, Status] = {}
        for i in unique:
            claim = judge(known.get(str(_event(verdicts[i]).id)), digests[i])
            if claim is Claim.REUSED:
                verdicts[i] = [REUSED_ID]
            else:
                result[i] = Status.DUPLICATE if claim is Claim.STORED else Status.ACCEPTED
        for i, j in repeats.items():
            if i != j and isinstance(verdicts[j], list):
                verdicts[i] = [REUSED_ID]
            elif i != j and j in result:
                result[i] = Status.DUPLICATE
        return result

    async def _publish(
        self,
        trust: str,
        verdicts: list[AnyEvent | list[FieldError]],
        bodies: Sequence[bytes],
    ) -> tuple[dict[int, Status], set[int]]:
        """Judge each valid event's id for this trust (the ledger), publish the new ones
        concurrently; which were stored, and which the stream refused because their trust's
        share is full.

        An id this trust used before for other content, in an earlier request or earlier in
        this one, is refused (its verdict becomes `REUSED_ID`); one stored before with the
        same content is `duplicate` without publishing, however long ago. A repeated id
        within the request with the same content is published once, then `duplicate`.
        """
        repeats, digests = self._firsts(verdicts)
        unique = [i for i, j in repeats.items() if i == j]
        known = await self._ledger_known(trust, verdicts, unique)
        if known is None:
            return {}, set()
        ids = {i: str(_event(verdicts[i]).id) for i in unique}
        stored: dict[int, Status] = {}
        send: list[int] = []
        for i in unique:
            claim = judge(known.get(ids[i]), digests[i])
            if claim is Claim.REUSED:
                verdicts[i] = [REUSED_ID]
            elif claim is Claim.STORED:
                stored[i] = Status.DUPLICATE
            else:
                send.append(i)
        events: list[Publishing] = [(_event(verdicts[i]), bodies[i]) for i in send]
        refused: set[int] = set()
        outcomes = await self.stream.publish_many(events, refused) if events else []
        full = {send[k] for k in refused}
        fresh = [i for i, new in zip(send, outcomes, strict=True) if new is True]
        stored |= dict.fromkeys(fresh, Status.ACCEPTED)
        try:
            await self.ledger.record(trust, [(ids[i], digests[i]) for i in fresh], self.clock())
            # The stream already had the (trust, id) (its keyed Nats-Msg-Id, within its
            # window): a concurrent request stored it. Its row says with what content; with
            # no row yet, the event is not known to be stored, and is to be sent again.
            again = [i for i, new in zip(send, outcomes, strict=True) if new is False]
            recorded = await self.ledger.known(trust, [ids[i] for i in again])
        except Exception:  # stored, but not remembered: a later resend is stored again
            log.exception("could not record %d stored event(s) of %s", len(fresh), trust)
            again, recorded = [], {}
        for i in again:
            claim = judge(recorded.get(ids[i]), digests[i])
            if claim is Claim.REUSED:
                verdicts[i] = [REUSED_ID]
            elif claim is Claim.STORED:
                stored[i] = Status.DUPLICATE
        for i, j in repeats.items():
            if i != j and isinstance(verdicts[j], list):
                verdicts[i] = [REUSED_ID]
            elif i != j and j in stored:
                stored[i] = Status.DUPLICATE
            elif i != j and j in full:
                full.add(i)
        return stored, full

    async def rejections(
        self,
        authorization: str | None,
        since: str | None,
        limit: int,
        cursor: str | None = None,
        address: str = "",
    ) -> RejectionPage | Refusal:
        """The key's trust's rejected events since `since` (RFC 3339), newest first, a page
        of `limit` rows at a time (`cursor`: the previous page's `next`)."""
        key = await self.authenticate(authorization, address)
        if isinstance(key, Refusal):
            return key
        start = parse_since(since, self.clock())
        after = read_cursor(cursor) if cursor else None
        if cursor and after is None:
            start = Refusal(
                Why.INVALID, "cursor is not one this gateway gave: pass `next` as it came"
            )
        if isinstance(start, Refusal):
            self.address_limiter.take(address)
            return start
        page = await self.rejection_store.since(key.trust, start, limit, after)
        return RejectionPage(
            key.trust,
            start,
            [row for row, _ in page],
            page[-1][1].cursor() if len(page) == limit else None,
        )

    def admit(self, address: str) -> Refusal | None:
        """A request no key covers (the catalogue, OpenAPI, health, metrics, any other path):
        one token from its address's bucket; None to go on, else why not."""
        wait = self.address_limiter.take(address)
        if not wait:
            return None
        return rate_limited(f"address {address or '(unknown)'}", wait)

    @staticmethod
    def courses() -> dict[str, object]:
        """The course catalogue (reference data, no key needed; the edge admits the request
        by its address first)."""
        return catalogue().as_json()


def _door_key() -> str:
    return f"door:{uuid.uuid4()}"


def _stored_bytes(event: RawEvent, verdict: AnyEvent | list[FieldError]) -> bytes:
    """What is stored for a valid event: the bytes as sent when they hold only the contract's
    attributes (the common case: no re-serialising), else the event re-serialised with only
    those (optional attributes and extensions are not kept, docs/integrating.md)."""
    if isinstance(verdict, list):
        return event.body
    raw = event.raw if isinstance(event.raw, dict) else {}
    if set(raw) == CONTRACT_ATTRIBUTES:
        return event.body
    return verdict.to_json()


_PLUS_OFFSET = re.compile(r"^(.*T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def parse_since(
    since: str | None, now: datetime, default_back: timedelta = timedelta(days=3650)
) -> datetime | Refusal:
    """`since` as a UTC time. A `+01:00` offset sent unencoded arrives as a space (a query
    string's `+`), and is read as the `+` it was; a time whose UTC value is out of range is
    clamped to the earliest or latest there is."""
    if not since:
        return now - default_back
    text = _PLUS_OFFSET.sub(r"\1+\2", since.strip())
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        return Refusal(
            Why.INVALID,
            f"since={since[:60]!r} is not an RFC 3339 time with an offset, e.g. "
            "2026-03-01T00:00:00Z",
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if value.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


def _event(verdict: AnyEvent | list[FieldError]) -> AnyEvent:
    assert not isinstance(verdict, list)
    return verdict


class KeyAdmin:
    """Operators' key management: create (shown once), list, revoke."""

    def __init__(self, keys: KeyStore, clock: Clock) -> None:
        self.keys, self.clock = keys, clock

    async def create(self, trust: str) -> tuple[ApiKey, str]:
        """A new key for `trust` (or a course platform's holder, `course-platform:<name>`) and
        the token to show once; KeyRuleError if not allowed."""
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
