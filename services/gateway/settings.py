"""Settings of the gateway alone (the shared ones, such as its port, are
ibest.backbone.settings)."""

from __future__ import annotations

import ipaddress

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    rate_per_second: float = Field(
        default=50.0,
        gt=0,
        alias="IBEST_GATEWAY_RATE",
        description="Requests per second each API key may make, on every route (sustained).",
    )
    rate_burst: int = Field(
        default=100,
        ge=1,
        alias="IBEST_GATEWAY_BURST",
        description="Requests an API key may make at once before the rate applies.",
    )
    address_rate_per_second: float = Field(
        default=5.0,
        ge=1 / 15,
        alias="IBEST_GATEWAY_ADDRESS_RATE",
        description="Requests per second a client address may make without a valid key, or "
        "refused whole (401, 400, 403, 413, 415), and to every path no key covers (GET "
        "/v1/courses, /docs, /openapi.json, /healthz, /readyz, /metrics, /xapi/about, unknown "
        "paths) (sustained). At least one per 15 s, so a Prometheus scrape every 15 s from "
        "one address is never limited.",
    )
    address_burst: int = Field(
        default=20,
        ge=2,
        alias="IBEST_GATEWAY_ADDRESS_BURST",
        description="Such requests a client address may make at once before its rate applies "
        "(at least 2, so a scrape that comes a little early still finds a token).",
    )
    trusted_proxies: str = Field(
        default="127.0.0.1/32,::1/128",
        alias="IBEST_GATEWAY_TRUSTED_PROXIES",
        description="Comma-separated networks of the proxies in front of the gateway: only "
        "from these is X-Forwarded-For believed for the client's address.",
    )
    rejections_retention_days: float = Field(
        default=30.0,
        gt=0,
        alias="IBEST_GATEWAY_REJECTIONS_RETENTION_DAYS",
        description="Days a rejected event stays readable at GET /v1/rejections.",
    )
    publish_timeout: float = Field(
        default=3.0,
        gt=0,
        alias="IBEST_GATEWAY_PUBLISH_TIMEOUT",
        description="Seconds to wait for the stream's acknowledgement before answering 503.",
    )
    key_cache_seconds: float = Field(
        default=0.0,
        ge=0,
        alias="IBEST_GATEWAY_KEY_CACHE_SECONDS",
        description="Seconds a looked-up key is remembered: a revocation takes effect "
        "within this time. 0 (the default): every request reads the database, so a revoked "
        "key is refused at once.",
    )
    retry_after_unavailable: int = Field(
        default=5,
        ge=1,
        alias="IBEST_GATEWAY_RETRY_AFTER",
        description="Retry-After (seconds) sent with 503 when NATS is unreachable.",
    )

    def proxies(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(n.strip(), strict=False)
            for n in self.trusted_proxies.split(",")
            if n.strip()
        ]
