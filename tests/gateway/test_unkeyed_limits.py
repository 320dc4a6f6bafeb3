"""Every path the gateway serves that no key covers (the runtime's /docs, /openapi.json,
/healthz, /readyz, /metrics; /xapi/about; unknown paths) is limited per client address, over
real HTTP: 429 as problem details with Retry-After, counted in the request metrics; and
Prometheus scraping
/metrics every 15 s from one address is never limited, at the defaults or the least the
settings allow."""

from __future__ import annotations

import random
import re

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from ibest.backbone.settings import Settings
from services.gateway.domain.ratelimit import RateLimiter
from services.gateway.service import build_spec
from services.gateway.settings import GatewaySettings
from tests.harness import running_service

PROBLEM = "application/problem+json"
UNKEYED = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/xapi/about", "/nope"]


def refused_429(metrics: str) -> float:
    """`ibest_gateway_requests_total{status="429",trust=""}` in a /metrics text."""
    for line in metrics.splitlines():
        if re.match(r'ibest_gateway_requests_total\{(?=.*status="429")(?=.*trust="")', line):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("path", UNKEYED)
async def test_every_unkeyed_path_is_limited_per_address_with_a_counted_problem(
    settings: Settings, path: str
) -> None:
    own = GatewaySettings(IBEST_GATEWAY_ADDRESS_RATE=0.1, IBEST_GATEWAY_ADDRESS_BURST=3)
    async with (
        running_service(build_spec(own), settings) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        before = refused_429((await client.get("/metrics")).text)  # from the loopback
        # behind the trusted proxy (the loopback), the address it forwards is the client's
        one = {"X-Forwarded-For": "203.0.113.20"}
        replies = [await client.get(path, headers=one) for _ in range(5)]
        assert all(r.status_code != 429 for r in replies[:3]), [r.status_code for r in replies]
        for refused in replies[3:]:
            assert refused.status_code == 429, (path, refused.status_code, refused.text[:300])
            assert refused.headers["content-type"] == PROBLEM
            body = refused.json()
            assert body["code"] == "rate-limited" and body["status"] == 429, body
            assert "203.0.113.20" in body["detail"]
            assert int(refused.headers["retry-after"]) >= 1
        # another address is not held back by this one
        other = await client.get(path, headers={"X-Forwarded-For": "203.0.113.21"})
        assert other.status_code != 429
        after = refused_429((await client.get("/metrics")).text)
        assert after - before == 2, (before, after)


@pytest.mark.parametrize(
    "limits",
    [{}, {"IBEST_GATEWAY_ADDRESS_RATE": 1 / 15, "IBEST_GATEWAY_ADDRESS_BURST": 2}],
    ids=["defaults", "least-allowed"],
)
@pytest.mark.slow
async def test_a_prometheus_scrape_every_15_s_from_one_address_is_never_limited(
    settings: Settings, limits: dict[str, float]
) -> None:
    own = GatewaySettings(**limits)  # type: ignore[arg-type]
    apps: list[FastAPI] = []
    async with (
        running_service(build_spec(own), settings, apps=apps) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        now = [0.0]
        # the gateway's own limiter, on a clock the test moves: an hour of scrapes
        apps[0].state.service.address_limiter = RateLimiter(
            own.address_rate_per_second, own.address_burst, lambda: now[0]
        )
        jitter = random.Random(7)
        statuses = []
        for n in range(240):
            now[0] = 15.0 * n + jitter.uniform(-0.5, 0.5)
            statuses.append((await client.get("/metrics")).status_code)
        assert set(statuses) == {200}, statuses
        # the same clock, the same address, four times as often: limited (the test can fail)
        for n in range(240):
            now[0] = 3600 + 15.0 / 4 * n
            statuses.append((await client.get("/metrics")).status_code)
        assert (429 in statuses) == bool(limits), statuses[240:]


def test_settings_refuse_an_address_rate_that_would_limit_a_15_s_scrape() -> None:
    with pytest.raises(ValidationError, match="IBEST_GATEWAY_ADDRESS_RATE"):
        GatewaySettings(IBEST_GATEWAY_ADDRESS_RATE=0.05)
    with pytest.raises(ValidationError, match="IBEST_GATEWAY_ADDRESS_BURST"):
        GatewaySettings(IBEST_GATEWAY_ADDRESS_BURST=1)
