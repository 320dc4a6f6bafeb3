"""Shims for two library faults, applied once when a service starts.

nats-py's `PullSubscription.fetch` can raise the builtin `TimeoutError` (when its deadline
runs out between the no-wait probe and the long poll) where FastStream 0.7's pull loop only
catches `nats.errors.TimeoutError`. FastStream then restarts its consume task after a
back-off, which stalls consumption for seconds at a time. Re-raising the builtin as nats-py's
own subclass (which is also a `TimeoutError`) keeps both libraries' contracts. Remove this
once FastStream catches the builtin.

nats-py's `publish_async` never settles an acknowledgement the stream answers with an error
(`APIError.from_error` raises instead of returning, inside the reply handler), so the
publisher waits out its timeout and cannot tell "refused for good" (a trust's storage share
is full, err_code 10077) from "no answer". `_settle_async_errors` puts the error on the
acknowledgement's future, as the handler meant to. Remove it once nats-py does so itself.
"""

from __future__ import annotations

import functools
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext
from nats.js.errors import APIError

_PATCHED = "_ibest_timeout_shim"


def apply() -> None:
    _settle_async_errors()
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


def _settle_async_errors() -> None:
    cls: Any = JetStreamContext
    original = cls._handle_async_reply
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    async def handle(self: Any, msg: Any) -> None:
        try:
            await original(self, msg)
        except APIError as exc:
            token = msg.subject[len(self._nc._inbox_prefix) + 22 + 2 :]
            future = self._publish_async_futures.get(token)
            if future is not None and not future.done():
                future.set_exception(exc)

    setattr(handle, _PATCHED, True)
    cls._handle_async_reply = handle
