"""The gateway service: trusts send events over HTTPS and read their rejections."""

from __future__ import annotations

from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from services.gateway import bootstrap
from services.gateway.handlers import routes
from services.gateway.settings import GatewaySettings


def build_spec(settings: GatewaySettings | None = None) -> ServiceSpec:
    """The service; tests pass their own settings."""

    async def wire(ctx: ServiceContext) -> Wiring:
        parts = await bootstrap.build(
            settings or GatewaySettings(),
            ctx.db,
            ctx.nats,
            ctx.js,
            ctx.clock,
            bounds=ctx.settings.time_bounds(),
        )
        return Wiring(
            handlers={}, api=parts.gateway, background=[parts.recorder.run], on_stop=[parts.close]
        )

    return ServiceSpec(
        name=bootstrap.NAME,
        consumes=[],
        wire=wire,
        routes=routes,
        title="iBeST gateway",
        description="Trusts send CloudEvents over HTTPS (CloudEvents HTTP binding: structured, "
        "batched or binary mode) with their API key, and read their rejected "
        "events. See docs/integrating.md.",
    )


SPEC = build_spec()
