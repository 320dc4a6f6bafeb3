"""A gateway served over real HTTP on the test's NATS and database, and keys for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ibest.backbone.settings import Settings
from services.gateway.bootstrap import key_admin
from services.gateway.service import build_spec
from services.gateway.settings import GatewaySettings
from tests.harness import running_service

KeyMaker = Callable[[str], Awaitable[str]]


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[str]:
    """Base URL of a running gateway (rate limit high enough not to interfere)."""
    own = GatewaySettings(
        IBEST_GATEWAY_RATE=10_000,
        IBEST_GATEWAY_BURST=10_000,
        IBEST_GATEWAY_ADDRESS_RATE=10_000,
        IBEST_GATEWAY_ADDRESS_BURST=10_000,
        IBEST_GATEWAY_PUBLISH_TIMEOUT=2,
        IBEST_GATEWAY_KEY_CACHE_SECONDS=0.5,
    )
    async with running_service(build_spec(own), settings) as base:
        yield base


@pytest.fixture
def new_key(settings: Settings) -> KeyMaker:
    """Creates a key for a trust as the operator would; returns the Authorization value."""

    async def make(trust: str) -> str:
        async with key_admin(settings) as admin:
            _, token = await admin.create(trust)
        return f"Bearer {token}"

    return make
