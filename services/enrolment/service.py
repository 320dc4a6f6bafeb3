"""The enrolment service: every clinician's path from enrolment to delivering BeST."""

from __future__ import annotations

from collections.abc import Callable

from ibest.backbone.publisher import Publisher
from ibest.backbone.retention import purge_loop
from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from services.enrolment import bootstrap
from services.enrolment.adapters.contact_rpc import contact_responder
from services.enrolment.api import EnrolmentApi, routes
from services.enrolment.declaration import DECLARATION
from services.enrolment.settings import EnrolmentSettings

PublisherWrapper = Callable[[Publisher], Publisher]


def build_spec(
    settings: EnrolmentSettings | None = None, wrap_publisher: PublisherWrapper | None = None
) -> ServiceSpec:
    """The service; tests pass settings and a publisher wrapper (e.g. one that fails).
    Without settings, the environment is read once, when the process starts the service."""

    async def wire(ctx: ServiceContext) -> Wiring:
        publisher: Publisher = ctx.publisher
        if wrap_publisher is not None:
            publisher = wrap_publisher(publisher)
        built = bootstrap.build(
            settings or EnrolmentSettings(), ctx.db, publisher, ctx.settings.platform_id_key()
        )
        await built.repository.create_indexes()
        return Wiring(
            handlers=built.handlers,
            api=EnrolmentApi(built.service.catalogue, built.service),
            background=[
                built.service.relay.run,
                contact_responder(ctx.nats, built.service.contact),
                purge_loop(
                    DECLARATION.retention[0],
                    lambda now: built.service.erase_expired_contacts(
                        now, built.settings.contact_retention
                    ),
                    ctx.clock,
                    built.settings.retention_interval,
                ),
            ],
        )

    return ServiceSpec.declared(
        DECLARATION,
        wire,
        routes=routes,
        title="iBeST enrolment service",
        description="Clinicians' enrolment, training progress, intention and delivery.",
    )


SPEC = build_spec()
