"""Per-trust rate limit: a token bucket per trust, pure, with the clock passed in.

Each request takes one token; tokens refill at `rate` per second up to `burst`. A refused
request learns how long until a token is back (the `Retry-After` it is sent).
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
    """One bucket per trust, created full on the trust's first request."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate, self._burst, self._clock = rate, burst, clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, trust: str) -> int:
        """0 if `trust` may send now, else whole seconds to wait (at least 1)."""
        now = self._clock()
        bucket = self._buckets.get(trust)
        if bucket is None:
            bucket = self._buckets[trust] = TokenBucket(self._rate, self._burst, self._burst, now)
        wait = bucket.take(now)
        return 0 if wait == 0 else max(1, math.ceil(wait))
