"""The forms service: clinicians' surveys by signed link, patients' outcome questionnaires."""

from __future__ import annotations

from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from services.forms import bootstrap, handlers, letters
from services.forms.api import error_pages, routes
from services.forms.declaration import DECLARATION
from services.forms.settings import FormsSettings


def build_spec(settings: FormsSettings | None = None) -> ServiceSpec:
    """The service; tests pass their own settings."""

    async def wire(ctx: ServiceContext) -> Wiring:
        own = settings or FormsSettings()
        client = ctx.db.client
        parts = await bootstrap.build(
            own,
            ctx.db,
            client[bootstrap.audit_database(ctx.settings)],
            ctx.publisher,
            ctx.clock,
        )
        return Wiring(
            handlers=handlers.of(parts.facts),
            api=parts,
            background=[parts.relay.run, letters.warm_up],
        )

    return ServiceSpec.declared(
        DECLARATION,
        wire,
        routes=routes,
        app_setup=error_pages,
        title="iBeST forms",
        description="Clinicians answer the intention and delivery surveys by signed link; "
        "site teams and patients record outcome questionnaires (services/forms/README.md).",
    )


SPEC = build_spec()
