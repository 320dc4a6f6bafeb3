"""Rate limits: a token bucket per name (an API key, or a client address), pure, with the
clock passed in.

Each request takes one token; tokens refill at `rate` per second up to `burst`. A refused
request learns how long until a token is back (the `Retry-After` it is sent). `blocked`
looks without taking: the gateway refuses an address whose failures emptied its bucket before
it spends a database read on the key it sends. The buckets are bounded: past `max_names`,
the full ones (those that would refuse nothing) are forgotten.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token at `now` (seconds); 0 if taken, else seconds until one is free."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = max(self.updated, now)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per name, created full on the name's first request."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float], max_names: int = 100_000
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate, self._burst, self._clock = rate, burst, clock
        self._max_names = max_names
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, trust: str) -> int:
        """0 if `trust` may send now, else whole seconds to wait (at least 1)."""
        now = self._clock()
        bucket = self._buckets.get(trust)
        if bucket is None:
            if len(self._buckets) >= self._max_names:
                self._forget_full(now)
            bucket = self._buckets[trust] = TokenBucket(self._rate, self._burst, self._burst, now)
        wait = bucket.take(now)
        return 0 if wait == 0 else max(1, math.ceil(wait))

    def blocked(self, name: str) -> int:
        """0 if `name` has a token now (none is taken), else whole seconds to wait."""
        bucket = self._buckets.get(name)
        if bucket is None:
            return 0
        now = self._clock()
        tokens = min(self._burst, bucket.tokens + max(0.0, now - bucket.updated) * self._rate)
        return 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / self._rate))

    def _forget_full(self, now: float) -> None:
        refill = self._burst / self._rate
        for name in [n for n, b in self._buckets.items() if now - b.updated >= refill]:
            del self._buckets[name]
        if len(self._buckets) >= self._max_names:  # all busy: forget the oldest half
            by_age = sorted(self._buckets, key=lambda n: self._buckets[n].updated)
            for name in by_age[: len(by_age) // 2]:
                del self._buckets[name]
