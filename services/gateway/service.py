"""The gateway service: trusts send events over HTTPS and read their rejections."""

from __future__ import annotations

from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from services.gateway import bootstrap
from services.gateway.api import routes
from services.gateway.api.unkeyed import limit_unkeyed_paths
from services.gateway.courses import bootstrap as courses
from services.gateway.courses.settings import CourseSettings
from services.gateway.declaration import DECLARATION
from services.gateway.settings import GatewaySettings


def build_spec(
    settings: GatewaySettings | None = None, course_settings: CourseSettings | None = None
) -> ServiceSpec:
    """The service; tests pass their own settings."""

    async def wire(ctx: ServiceContext) -> Wiring:
        parts = await bootstrap.build(
            settings or GatewaySettings(),
            ctx.db,
            ctx.nats,
            ctx.js,
            ctx.settings.platform_id_key(),
            ctx.clock,
            bounds=ctx.settings.time_bounds(),
        )
        course = await courses.build(
            course_settings or CourseSettings(), ctx.db, parts.gateway, ctx.clock
        )
        parts.gateway.xapi = course.statements
        return Wiring(
            api=parts.gateway,
            background=[parts.recorder.run, course.metrics.run],
            on_stop=[parts.close],
        )

    return ServiceSpec.declared(
        DECLARATION,
        wire,
        routes=routes,
        title="iBeST gateway",
        description="Trusts send CloudEvents over HTTPS (CloudEvents HTTP binding: structured, "
        "batched or binary mode) with their API key, and read their rejected "
        "events (docs/integrating.md); course platforms send xAPI statements "
        "(docs/course-platform.md).",
        app_setup=limit_unkeyed_paths,
    )


SPEC = build_spec()
