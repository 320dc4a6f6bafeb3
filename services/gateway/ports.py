"""The gateway's ports: what its use cases need from the world, as protocols that
`adapters/` implement. Events are published through the backbone's one `Publisher`
(`ibest.backbone.publisher`), whose gateway adapter raises `StreamUnavailable` when the
events stream does not acknowledge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.gateway.domain.keys import ApiKey
from services.gateway.domain.rejections import Position, Rejection, RejectionRow
from services.gateway.domain.results import EventResult


class StreamUnavailable(Exception):
    """The events stream did not acknowledge: the event may not be stored."""


class KeyStore(Protocol):
    async def get(self, key_id: str) -> ApiKey | None: ...
    async def add(self, key: ApiKey, slot: int) -> bool:
        """Store `key` in its trust's active-key `slot` (0 to MAX_ACTIVE_KEYS - 1); False,
        storing nothing, when another active key holds that slot. Atomic, so two operators
        creating keys at once cannot give a trust more keys than it has slots."""
        ...

    async def active_count(self, trust: str) -> int: ...
    async def all(self) -> list[ApiKey]: ...
    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None: ...


class IdLedger(Protocol):
    """Every (trust, id) the stream stored through the gateway, with its content digest
    (`services.gateway.domain.ledger`)."""

    async def known(self, trust: str, ids: Sequence[str]) -> dict[str, str]:
        """The digest stored under each of `trust`'s ids that has one, by id."""
        ...

    async def record(self, trust: str, stored: Sequence[tuple[str, str]], at: datetime) -> None:
        """Remember (id, digest) of events the stream just stored (a row already there,
        a concurrent request's, is kept)."""
        ...


class RejectionStore(Protocol):
    async def record(self, rejections: Sequence[Rejection]) -> None: ...
    async def since(
        self, trust: str, since: datetime, limit: int, after: Position | None = None
    ) -> list[tuple[RejectionRow, Position]]:
        """Up to `limit` of the trust's rows received at or after `since`, newest first (then
        by key), starting after `after`; each with its position (for the next cursor)."""
        ...


@dataclass(frozen=True)
class DeadLetterMessage:
    headers: dict[str, str]
    data: bytes
    subject: str
    received_at: datetime
    seq: int
    handle: Any = None
    """The adapter's own message, to acknowledge it."""


class DeadLetterSource(Protocol):
    async def fetch(self) -> Sequence[DeadLetterMessage]: ...
    async def ack(self, messages: Sequence[DeadLetterMessage]) -> None: ...


class GatewayMetrics(Protocol):
    def observe(
        self, trust: str, status: int, results: Sequence[EventResult], seconds: float
    ) -> None: ...
