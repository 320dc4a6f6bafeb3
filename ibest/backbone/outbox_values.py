"""The outbox's value types, apart from the Mongo outbox and the relay (`outbox.py`).

A domain module makes `OutboxEntry`s (with keyed ids, `shared.keyed.keyed_event_id`); it
must not import PyMongo or the publisher to do so (the import-linter contract "domain is
pure", pyproject.toml). So the entry, the relay's settings and the store's port live here,
with nothing but pydantic and the contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from shared.envelope import AnyEvent, parse_event


class OutboxEntry(BaseModel):
    """One derived event waiting to be confirmed published. `name` is empty on entries
    stored before it was recorded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str = ""
    body: str

    @classmethod
    def of(cls, event: AnyEvent) -> OutboxEntry:
        return cls(id=str(event.id), name=event.event_type.name, body=event.to_json().decode())

    def event(self) -> AnyEvent:
        return parse_event(None, self.body.encode())


@dataclass(frozen=True)
class OutboxSettings:
    """The setting pair of every outbox relay: seconds between background passes, and how
    many aggregates (documents) one pass publishes."""

    interval: float
    limit: int


Pending = tuple[str, tuple[OutboxEntry, ...]]


class OutboxStore(Protocol):
    """Where a service keeps its outbox entries, by aggregate key (a document `_id`)."""

    async def pending(self, limit: int) -> list[Pending]: ...

    async def entries(self, key: str) -> list[OutboxEntry]: ...

    async def clear(self, key: str, ids: list[str]) -> None: ...

    async def clear_many(self, published: Mapping[str, list[str]]) -> None: ...

    async def swept(self) -> None:
        """A background pass published everything `pending` returned (a store that keeps a
        mark of what its passes have seen moves it)."""
        ...
