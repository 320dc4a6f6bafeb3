"""The enrolment service: every clinician's path from enrolment to delivering BeST."""

from __future__ import annotations

from collections.abc import Callable

from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from services.enrolment.adapters.contact_rpc import contact_responder
from services.enrolment.adapters.repository import ClinicianRepository
from services.enrolment.api import EnrolmentApi, routes
from services.enrolment.domain.clinician import CONSUMED
from services.enrolment.domain.record import TRAINING_COMPLETED, TRAINING_STARTED
from services.enrolment.handlers import EnrolmentHandlers, Publisher
from services.enrolment.settings import EnrolmentSettings
from shared.catalogue import catalogue as shipped_catalogue

PublisherWrapper = Callable[[Publisher], Publisher]


def build_spec(
    settings: EnrolmentSettings | None = None, wrap_publisher: PublisherWrapper | None = None
) -> ServiceSpec:
    """The service; tests pass settings and a publisher wrapper (e.g. one that fails)."""

    async def wire(ctx: ServiceContext) -> Wiring:
        own = settings or EnrolmentSettings()
        catalogue = shipped_catalogue()
        repository = ClinicianRepository(ctx.db, catalogue)
        await repository.create_indexes()
        publisher: Publisher = ctx.publisher
        if wrap_publisher is not None:
            publisher = wrap_publisher(publisher)
        handlers = EnrolmentHandlers(repository, publisher)
        return Wiring(
            handlers={name: handlers.on_event for name in CONSUMED},
            batch_handler=handlers.on_batch,
            api=EnrolmentApi(catalogue, repository),
            background=[handlers.republish_loop(own.outbox_interval),
                        contact_responder(ctx.nats, repository.contact)],
        )

    return ServiceSpec(
        name="enrolment",
        consumes=list(CONSUMED),
        publishes=[TRAINING_STARTED, TRAINING_COMPLETED],
        wire=wire,
        routes=routes,
        title="iBeST enrolment service",
        description="Clinicians' enrolment, training progress, intention and delivery.",
    )


SPEC = build_spec()
