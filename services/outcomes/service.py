"""The outcomes service: patients' assessments in, change from baseline out."""

from __future__ import annotations

from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from services.outcomes import bootstrap, handlers
from services.outcomes.api import routes
from services.outcomes.declaration import DECLARATION
from services.outcomes.settings import OutcomesSettings


def build_spec(settings: OutcomesSettings | None = None) -> ServiceSpec:
    """The service; tests pass settings. Without them, the environment is read once, when
    the process starts the service."""

    async def wire(ctx: ServiceContext) -> Wiring:
        built = bootstrap.build(
            settings or OutcomesSettings(),
            ctx.db,
            ctx.publisher,
            ctx.settings.platform_id_key(),
            ctx.clock,
        )
        await built.repository.create_indexes()
        service = built.service
        return Wiring(
            handlers=handlers.of(service),
            api=service,
            background=[service.relay.run],
        )

    return ServiceSpec.declared(
        DECLARATION,
        wire,
        routes=routes,
        title="iBeST outcomes service",
        description="Patients' assessments per timepoint, corrections, and change from baseline.",
    )


SPEC = build_spec()
