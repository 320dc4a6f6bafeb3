"""A least-recently-used cache bounded in entries and in bytes.

Every cache of the reporting service is one of these, so no sequence of requests can make
it hold more than its bounds, whatever their parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most `max_entries` values whose declared sizes sum to at most `max_bytes`; the
    least recently used go first. A value larger than `max_bytes` is not kept at all."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, size: int) -> V:
        """Keep `value` (of `size` bytes) under `key`, evicting as the bounds require."""
        self.discard(key)
        if size > self.max_bytes or self.max_entries < 1:
            return value
        self._items[key] = (value, size)
        self.bytes += size
        while len(self._items) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped
        return value

    def resize(self, key: K, size: int) -> None:
        """The value under `key` grew (or shrank) to `size` bytes."""
        found = self._items.get(key)
        if found is not None:
            self.put(key, found[0], size)

    def discard(self, key: K) -> None:
        found = self._items.pop(key, None)
        if found is not None:
            self.bytes -= found[1]

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
