"""The notifications service: nudges clinicians through training and site teams to collect
follow-ups, once each, in working hours (see README.md)."""

from __future__ import annotations

from ibest.backbone.audit import audit_log_of
from ibest.backbone.retention import purge_loop
from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from services.notifications import bootstrap, handlers
from services.notifications.adapters.contacts import NatsContactDirectory
from services.notifications.api import NotificationsApi, routes
from services.notifications.application import purge_expired_records
from services.notifications.declaration import DECLARATION
from services.notifications.settings import NotificationSettings


def build_spec(settings: NotificationSettings | None = None) -> ServiceSpec:
    """The service; tests pass settings. Without them, the environment is read once, when
    the process starts the service."""

    async def wire(ctx: ServiceContext) -> Wiring:
        own = settings or NotificationSettings()
        built = bootstrap.build(
            own, ctx.db, ctx.clock, audit=audit_log_of(ctx.db.client, ctx.settings, ctx.clock)
        )
        await built.repository.ensure_indexes()
        scheduler = built.scheduler(
            NatsContactDirectory(ctx.nats, own.contact_timeout),
            ctx.publisher,
            ctx.settings.platform_id_key(),
        )
        await scheduler.queue_events_finished_before_outbox()
        return Wiring(
            handlers=handlers.of(built.service),
            api=NotificationsApi(built.repository, built.service, scheduler, own, ctx.clock),
            background=[
                scheduler.loop,
                purge_loop(
                    DECLARATION.retention[0],
                    lambda now: purge_expired_records(built.repository, own, now),
                    ctx.clock,
                    own.retention_interval,
                ),
            ],
        )

    return ServiceSpec.declared(
        DECLARATION,
        wire,
        routes=routes,
        title="iBeST notifications service",
        description="Reminders to clinicians and site teams, sent once, in working hours.",
    )


SPEC = build_spec()
