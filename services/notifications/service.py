"""The notifications service: nudges clinicians through training and site teams to collect
follow-ups, once each, in working hours (see README.md)."""

from __future__ import annotations

from ibest.backbone.audit import audit_log_of
from ibest.backbone.runtime import ServiceContext, ServiceSpec, Wiring
from services.notifications.adapters.channels import make_channel
from services.notifications.adapters.contacts import ContactDirectory
from services.notifications.adapters.repository import Repository
from services.notifications.api import NotificationsApi, routes
from services.notifications.handlers import Handlers
from services.notifications.scheduler import Scheduler
from services.notifications.settings import NotificationSettings

CONSUMES = [
    "clinician.enrolled",
    "clinician.training_started",
    "module.started",
    "module.completed",
    "clinician.training_completed",
    "clinician.delivery_reported",
    "patient.assessed",
]


async def wire(ctx: ServiceContext) -> Wiring:
    settings = NotificationSettings()
    repo = Repository(ctx.db)
    await repo.ensure_indexes()
    scheduler = Scheduler(
        repo, settings, make_channel(settings),
        ContactDirectory(ctx.nats, settings.contact_timeout), ctx.publisher, ctx.clock,
    )
    handlers = Handlers(repo, settings, ctx.clock)
    return Wiring(
        handlers=handlers.by_event(),
        batch_handler=handlers.batch(),
        api=NotificationsApi(repo, scheduler, settings, ctx.clock,
                             audit_log_of(ctx.db.client, ctx.settings, ctx.clock)),
        background=[scheduler.loop],
    )


SPEC = ServiceSpec(
    name="notifications",
    consumes=CONSUMES,
    publishes=["notification.sent", "notification.failed"],
    wire=wire,
    routes=routes,
    title="iBeST notifications service",
    description="Reminders to clinicians and site teams, sent once, in working hours.",
)
