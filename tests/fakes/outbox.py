"""An in-memory `OutboxStore`: entries per aggregate key, kept by the fake repository
that stores the aggregate (so, as in MongoDB, state and entries change together)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ibest.backbone.outbox_values import OutboxEntry, Pending


class FakeOutbox:
    def __init__(self, on_clear: Callable[[str], None] | None = None) -> None:
        self.entries_by_key: dict[str, list[OutboxEntry]] = {}
        self._on_clear = on_clear

    # Where the entries live (a subclass may keep them inside its aggregates).
    def _keys(self) -> list[str]:
        return list(self.entries_by_key)

    def _held(self, key: str) -> list[OutboxEntry]:
        return list(self.entries_by_key.get(key, []))

    def _keep(self, key: str, entries: list[OutboxEntry]) -> None:
        self.entries_by_key[key] = list(entries)

    def put(self, key: str, entries: list[OutboxEntry]) -> None:
        """The aggregate's write replaced its outbox with `entries`."""
        self._keep(key, entries)

    def add(self, key: str, entries: list[OutboxEntry]) -> None:
        """The aggregate's write appended `entries` to its outbox."""
        self._keep(key, [*self._held(key), *entries])

    async def pending(self, limit: int) -> list[Pending]:
        found = ((key, tuple(self._held(key))) for key in self._keys())
        return [(key, entries) for key, entries in found if entries][:limit]

    async def entries(self, key: str) -> list[OutboxEntry]:
        return self._held(key)

    async def clear(self, key: str, ids: list[str]) -> None:
        held = self._held(key)
        if not any(e.id in ids for e in held):
            return
        self._keep(key, [e for e in held if e.id not in ids])
        if self._on_clear is not None:
            self._on_clear(key)

    async def clear_many(self, published: Mapping[str, list[str]]) -> None:
        for key, ids in published.items():
            await self.clear(key, ids)

    async def swept(self) -> None:
        """Nothing to move: entries are cleared as they are published."""
