"""In-memory fakes of the gateway's ports, for fast unit tests of every use case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from services.gateway.application import Gateway, KeyAdmin
from services.gateway.domain.keys import ApiKey
from services.gateway.domain.ratelimit import RateLimiter
from services.gateway.domain.rejections import Position, Reason, Rejection, RejectionRow
from services.gateway.domain.results import EventResult
from services.gateway.ports import DeadLetterMessage, StreamUnavailable
from tests.fakes.publisher import FakePublisher


class FakeKeyStore:
    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}
        self.slots: dict[str, int] = {}  # of each key stored with a slot

    async def get(self, key_id: str) -> ApiKey | None:
        return self.keys.get(key_id)

    async def add(self, key: ApiKey, slot: int) -> bool:
        taken = {
            self.slots.get(k.key_id)
            for k in self.keys.values()
            if k.trust == key.trust and k.active
        }
        if slot in taken:
            return False
        self.keys[key.key_id] = key
        self.slots[key.key_id] = slot
        return True

    async def active_count(self, trust: str) -> int:
        return sum(k.trust == trust and k.active for k in self.keys.values())

    async def all(self) -> list[ApiKey]:
        return sorted(self.keys.values(), key=lambda k: (k.trust, k.created_at))

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        key = self.keys.get(key_id)
        if key is not None and key.active:
            key = self.keys[key_id] = replace(key, revoked_at=at)
        return key


@dataclass
class _Row:
    trust: str
    event_id: str
    type: str
    received_at: datetime
    rejected_by: list[str] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)


class FakeRejectionStore:
    """Groups like the MongoDB store: one row per trust and event, reasons merged."""

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}

    async def record(self, rejections: Sequence[Rejection]) -> None:
        for r in rejections:
            row = self.rows.setdefault(
                r.group_key, _Row(r.trust, r.event_id, r.event_type, r.received_at)
            )
            row.received_at = min(row.received_at, r.received_at)
            for reason in r.reasons:
                if reason.by not in row.rejected_by:
                    row.rejected_by.append(reason.by)
                if reason not in row.reasons:
                    row.reasons.append(reason)

    async def since(
        self, trust: str, since: datetime, limit: int, after: Position | None = None
    ) -> list[tuple[RejectionRow, Position]]:
        rows = sorted(
            ((k, r) for k, r in self.rows.items() if r.trust == trust and r.received_at >= since),
            key=lambda kr: (-kr[1].received_at.timestamp(), kr[0]),
        )
        if after is not None:
            rows = [
                (k, r)
                for k, r in rows
                if r.received_at < after.received_at
                or (r.received_at == after.received_at and k > after.key)
            ]
        return [
            (
                RejectionRow(
                    id=r.event_id,
                    type=r.type,
                    received_at=r.received_at,
                    rejected_by=sorted(r.rejected_by),
                    reasons=r.reasons,
                ),
                Position(r.received_at, k),
            )
            for k, r in rows[:limit]
        ]


class FakeIdLedger:
    """Like the MongoDB ledger: (trust, id) -> digest of what the stream stored."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], str] = {}

    async def known(self, trust: str, ids: Sequence[str]) -> dict[str, str]:
        return {eid: self.ids[(trust, eid)] for eid in ids if (trust, eid) in self.ids}

    async def record(self, trust: str, stored: Sequence[tuple[str, str]], at: datetime) -> None:
        for eid, digest in stored:
            self.ids.setdefault((trust, eid), digest)


class FakeDeadLetterSource:
    def __init__(self, messages: Sequence[DeadLetterMessage] = ()) -> None:
        self.pending = list(messages)
        self.acked: list[DeadLetterMessage] = []

    async def fetch(self) -> Sequence[DeadLetterMessage]:
        batch, self.pending = self.pending[:10], self.pending[10:]
        return batch

    async def ack(self, messages: Sequence[DeadLetterMessage]) -> None:
        self.acked.extend(messages)


@dataclass
class FakeMetrics:
    seen: list[tuple[str, int, list[str]]] = field(default_factory=list)
    timed: list[tuple[str, float]] = field(default_factory=list)
    """(trust, seconds) of each request, as the latency histogram counts them."""

    def observe(
        self, trust: str, status: int, results: Sequence[EventResult], seconds: float
    ) -> None:
        self.seen.append((trust, status, [r.status.value for r in results]))
        self.timed.append((trust, seconds))


@dataclass
class ManualClock:
    now: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    seconds: float = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def timer(self) -> float:
        return self.seconds


@dataclass
class World:
    """A gateway over fakes, with everything a test wants to look at."""

    gateway: Gateway
    admin: KeyAdmin
    keys: FakeKeyStore
    rejections: FakeRejectionStore
    stream: FakePublisher
    metrics: FakeMetrics
    clock: ManualClock


def world(
    rate: float = 1000.0, burst: int = 1000, max_events: int = 500, key_cache_seconds: float = 0.0
) -> World:
    keys, rejections = FakeKeyStore(), FakeRejectionStore()
    stream = FakePublisher(error=StreamUnavailable)  # as the gateway's NATS adapter fails
    metrics, clock = FakeMetrics(), ManualClock()
    gateway = Gateway(
        keys,
        rejections,
        stream,
        RateLimiter(rate, burst, clock.timer),
        metrics,
        clock,
        clock.timer,
        retry_after_unavailable=7,
        max_events=max_events,
        key_cache_seconds=key_cache_seconds,
        ledger=FakeIdLedger(),
    )
    return World(gateway, KeyAdmin(keys, clock), keys, rejections, stream, metrics, clock)
