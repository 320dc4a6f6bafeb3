"""Optimistic concurrency: the one retry loop around a read-decide-compare-and-set write.

A use case reads an aggregate with its version, decides, and writes only if the version is
unchanged; a lost race raises `ConcurrentUpdate` and the whole attempt runs again on fresh
data. When writers keep winning, the last `ConcurrentUpdate` propagates: it is a transient
error, so the consumer redelivers the event later instead of dead-lettering it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class ConcurrentUpdate(RuntimeError):
    """Another writer changed the aggregate between our read and our write (transient)."""


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], attempts: int) -> T:
    """Run `attempt` until it returns without raising ConcurrentUpdate, at most `attempts`
    times; re-raise the last ConcurrentUpdate when every attempt lost its race."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    for remaining in range(attempts - 1, -1, -1):
        try:
            return await attempt()
        except ConcurrentUpdate:
            if remaining == 0:
                raise
    raise AssertionError("unreachable")
