"""The outcomes service: patients' assessments in, change from baseline out."""

from __future__ import annotations

from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from services.outcomes.adapters.repository import OutcomesRepository
from services.outcomes.api import routes
from services.outcomes.application import OutcomesService
from services.outcomes.handlers import batch_handler, handlers
from services.outcomes.settings import OutcomesSettings


async def wire(ctx: ServiceContext) -> Wiring:
    repo = OutcomesRepository(ctx.db)
    await repo.create_indexes()
    service = OutcomesService(repo, ctx.publisher, ctx.clock, OutcomesSettings())
    return Wiring(handlers=handlers(service), api=service, background=[service.sweep_forever],
                  batch_handler=batch_handler(service))


SPEC = ServiceSpec(
    name="outcomes",
    consumes=["patient.assessed", "class.started"],
    publishes=["outcome.recorded"],
    wire=wire,
    routes=routes,
    title="iBeST outcomes service",
    description="Patients' assessments per timepoint, corrections, and change from baseline.",
)
