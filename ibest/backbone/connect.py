"""The one way to open a NATS connection, for a service, a command or the simulator.

Every connection gets the same options: credentials and TLS from the settings (files,
never the URL), a name saying what it is for (`ibest-<purpose>`, shown by the server's
monitoring), the same connect timeout, and replies on the user's own inbox prefix
(`_INBOX_<user>`: NATS permissions keep every other user from reading them). Only how
long to keep reconnecting differs, by what the connection is: a service's lives as long
as the process and reconnects forever; an operator's command or a run of the simulator
gives up after a few attempts, so a wrong address fails fast with a clear message.
"""

from __future__ import annotations

import nats
from nats.aio.client import Client as NatsClient

from ibest.backbone.settings import Settings, inbox_prefix

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a server before trying the next one (or failing)."""
COMMAND_RECONNECTS = 2
"""Reconnect attempts of a short-lived connection (a command, the simulator)."""


async def connect_nats(
    settings: Settings, purpose: str, *, user: str = "admin", service: bool = False
) -> NatsClient:
    """Connect as `settings` say, for `purpose`; replies arrive on `user`'s inbox prefix
    (`admin` for the operator's commands, the service's name, `simulator`). A `service`
    connection reconnects forever."""
    return await nats.connect(
        settings.nats_servers,
        name=f"ibest-{purpose}",
        connect_timeout=CONNECT_TIMEOUT,
        max_reconnect_attempts=-1 if service else COMMAND_RECONNECTS,
        inbox_prefix=inbox_prefix(user).encode(),
        **settings.nats_options(),
    )
