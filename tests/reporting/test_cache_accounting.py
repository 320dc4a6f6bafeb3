"""The answer caches are bounded by what their answers hold in memory, not by their JSON:
`deep_size` accounts at least what building an answer allocated (measured by tracemalloc),
many times its JSON for a report of numbers, and the view's cache keeps its account within
its bound however many distinct answers are asked."""

from __future__ import annotations

import json
import random
import sys
import tracemalloc
from typing import Any

from services.reporting.cache import BoundedCache, deep_size


def report(rng: random.Random, sites: int) -> dict[str, Any]:
    """Shaped like a trust's report: per site, dozens of figures, numbers and a few strings."""
    return {
        "trust": "RTH",
        "sites": [
            {
                "sitecode": f"RTH{i:02d}",
                "figures": {f"figure_{k}": rng.random() * 100 for k in range(40)},
                "months": [
                    {"month": f"2026-{m:02d}", "n": rng.randrange(1000)} for m in range(1, 13)
                ],
            }
            for i in range(sites)
        ],
    }


def test_deep_size_accounts_at_least_what_the_answer_allocated() -> None:
    rng = random.Random(7)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    answer = report(rng, 50)
    allocated = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    accounted = deep_size(answer)
    as_json = len(json.dumps(answer, separators=(",", ":")))
    assert accounted >= 0.9 * allocated, (accounted, allocated)
    assert accounted > 2 * as_json, (accounted, as_json)  # why JSON bytes were no bound


def test_deep_size_counts_a_shared_object_once_and_walks_every_container() -> None:
    shared = [1.5, 2.5, 3.5]
    copy = list(shared)  # a new list holding the same float objects
    once = deep_size({"a": shared, "b": shared})
    twice = deep_size({"a": shared, "b": copy})
    assert twice - once == sys.getsizeof(copy)
    nested = {"t": (frozenset({"x"}), {"y": ["z" * 1000]})}
    assert deep_size(nested) > 1000


def test_the_view_cache_account_stays_within_its_bound_over_distinct_answers() -> None:
    rng = random.Random(8)
    bound = 8 * 1024 * 1024
    cache: BoundedCache[int, dict[str, Any]] = BoundedCache(4096, bound)
    for i in range(400):
        answer = report(rng, 5)
        cache.put(i, answer, deep_size(answer))
        assert cache.bytes <= bound
    kept = [v for i in range(400) if (v := cache.get(i)) is not None]
    assert sum(deep_size(v) for v in kept) == cache.bytes
    assert 0 < len(kept) < 400  # the bound, not the entry count, evicted
