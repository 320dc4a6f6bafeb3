"""A shim for one library mismatch, applied once when a service starts.

nats-py's `PullSubscription.fetch` can raise the builtin `TimeoutError` (when its deadline
runs out between the no-wait probe and the long poll) where FastStream 0.7's pull loop only
catches `nats.errors.TimeoutError`. FastStream then restarts its consume task after a
back-off, which stalls consumption for seconds at a time. Re-raising the builtin as nats-py's
own subclass (which is also a `TimeoutError`) keeps both libraries' contracts. Remove this
once FastStream catches the builtin.
"""

from __future__ import annotations

import functools
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext

_PATCHED = "_ibest_timeout_shim"


def apply() -> None:
    cls: Any = JetStreamContext.PullSubscription
    if getattr(cls.fetch, _PATCHED, False):
        return
    original = cls.fetch

    @functools.wraps(original)
    async def fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except NatsTimeoutError:
            raise
        except TimeoutError as exc:
            raise NatsTimeoutError from exc

    setattr(fetch, _PATCHED, True)
    cls.fetch = fetch
