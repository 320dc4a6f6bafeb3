"""A least-recently-used cache bounded in entries and in bytes (what its values really
hold in memory, `deep_size`, where the caller accounts Python objects).

Every cache of the reporting service is one of these, so no sequence of requests can make
it hold more than its bounds, whatever their parameters.
"""

from __future__ import annotations

import sys
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


def deep_size(value: object) -> int:
    """Bytes a value holds in this process: `sys.getsizeof` of it and of everything it
    contains (dict keys and values, list, tuple and set items), each object once.

    What the caches account, rather than the value's JSON: a report of numbers costs several
    times its JSON as Python objects (a float is 24 bytes and its dict slot more, against a
    few characters), so a bound on JSON bytes let the process grow far past it. An object
    shared with the view is counted too, so the account errs high, never low.
    """
    seen: set[int] = set()
    stack = [value]
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return total
