"""`ibest notifications opt-out CLINICIAN_REF [--undo]`; `ibest notifications plan-surveys`."""

from __future__ import annotations

import argparse
import re

from ibest.backbone.audit import Actor, audit_log_of
from ibest.backbone.clock import Clock, utc_now
from ibest.backbone.connect import connect_nats
from ibest.backbone.mongo import mongo_client
from ibest.backbone.patient_refs import purge_in_database
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, stored_until_now
from services.notifications import bootstrap
from services.notifications.adapters.repository import MongoNotificationsRepository
from services.notifications.settings import NotificationSettings
from shared.envelope import ContractError, parse_event
from shared.identifiers import REF_PATTERN

SURVEY_EVENTS = ("clinician.training_completed", "clinician.delivery_reported")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("notifications", help="Reminders to clinicians and site teams")
    cmds = p.add_subparsers(dest="command", required=True)
    opt = cmds.add_parser(
        "opt-out",
        help="Stop (or, with --undo, resume) a clinician's reminders; honoured immediately",
    )
    opt.add_argument("clinician_ref")
    opt.add_argument("--undo", action="store_true", help="opt the clinician back in")
    opt.set_defaults(func=opt_out_command)
    plan = cmds.add_parser(
        "plan-surveys",
        help="Schedule the delivery survey nudges of every completion in the "
        "stored stream (once, after upgrading to a version with surveys; "
        "safe to repeat and while the service runs)",
    )
    plan.set_defaults(func=plan_surveys_command)


async def plan_surveys_command(args: argparse.Namespace, settings: Settings) -> int:
    counts = await plan_surveys(settings, utc_now)
    print(
        f"delivery surveys planned from {counts['clinician.training_completed']} "
        f"completion(s) and {counts['clinician.delivery_reported']} delivery report(s)"
    )
    return 0


async def plan_surveys(settings: Settings, clock: Clock) -> dict[str, int]:
    """Apply every stored completion and delivery report again with the live use case.

    Why: a durable consumer that read past completions before this service consumed
    `clinician.delivery_reported` and planned surveys never goes back for them. The handlers
    are idempotent (reminders are created once by id, answers cancel whatever order they
    come in, an old completion is not thanked again), so replaying only adds what is missing.
    """
    counts = dict.fromkeys(SURVEY_EVENTS, 0)
    mongo = mongo_client(settings)
    nc = await connect_nats(settings, "notifications-plan-surveys")
    try:
        service = bootstrap.build(
            NotificationSettings(),
            mongo[settings.database_of(bootstrap.NAME)],
            clock,
            audit=audit_log_of(mongo, settings, clock),
        ).service
        async for msg in stored_until_now(nc.jetstream(), EVENTS_STREAM, "ibest.v1.*.clinician.>"):
            try:
                event = parse_event(
                    msg.subject,
                    msg.data,
                    received=msg.metadata.timestamp,
                    bounds=settings.time_bounds(),
                )
            except ContractError:
                continue  # the live consumer dead-lettered it
            name = event.event_type.name
            if name in counts:
                await service.apply_many([event])  # as the live consumer: a batch of one
                counts[name] += 1
    finally:
        await nc.drain()
        await mongo.close()
    return counts


async def opt_out_command(args: argparse.Namespace, settings: Settings) -> int:
    ref: str = args.clinician_ref
    if not re.fullmatch(REF_PATTERN, ref):
        print(f"not a clinician reference: {ref!r}")
        return 2
    client = mongo_client(settings)
    try:
        service = bootstrap.build(
            NotificationSettings(),
            client[settings.database_of(bootstrap.NAME)],
            utc_now,
            audit=audit_log_of(client, settings),
        ).service
        await service.set_opt_out(ref, not args.undo, Actor.command())
    finally:
        await client.close()
    print(f"{ref}: {'opted back in' if args.undo else 'opted out'} of reminders")
    return 0


async def purge_nhs_numbers(settings: Settings, apply: bool) -> dict[str, int]:
    """`ibest purge-nhs-numbers` asks this service (ibest/purge.py): its stored patient
    references that are NHS numbers, counted by collection (deleted with `apply`)."""
    return await purge_in_database(
        settings, bootstrap.NAME, lambda db: MongoNotificationsRepository(db).patient_refs, apply
    )
