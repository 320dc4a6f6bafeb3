"""The bound every reporting cache keeps: entries and bytes, least recently used first."""

from __future__ import annotations

from services.reporting.cache import BoundedCache


def test_entries_bound_drops_the_least_recently_used() -> None:
    cache: BoundedCache[str, int] = BoundedCache(max_entries=2, max_bytes=100)
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3, 10)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert (len(cache), cache.bytes) == (2, 20)


def test_bytes_bound_drops_until_within_and_never_keeps_an_oversized_value() -> None:
    cache: BoundedCache[int, str] = BoundedCache(max_entries=100, max_bytes=50)
    for i in range(10):
        cache.put(i, "x", 20)
        assert cache.bytes <= 50 and len(cache) <= 2
    assert cache.put(99, "huge", 51) == "huge" and cache.get(99) is None
    cache.resize(9, 45)
    assert (len(cache), cache.bytes, cache.get(9)) == (1, 45, "x")
    cache.put(9, "y", 5)  # replacing a value replaces its size
    assert cache.bytes == 5
    cache.clear()
    assert (len(cache), cache.bytes) == (0, 0)
