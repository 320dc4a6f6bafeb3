"""`ibest enrolment erase CLINICIAN_REF [--record]`: the documented erasure command."""

from __future__ import annotations

import argparse

from ibest.backbone.audit import Actor, audit_log_of
from ibest.backbone.clock import utc_now
from ibest.backbone.connect import connect_nats
from ibest.backbone.mongo import mongo_client
from ibest.backbone.publisher import EventPublisher, ReadOnlyPublisher
from ibest.backbone.settings import Settings
from services.enrolment import bootstrap
from services.enrolment.adapters.stream_erasure import erase_from_stream, erase_many_from_stream
from services.enrolment.ports import Erasure
from services.enrolment.settings import EnrolmentSettings

REMAINS = (
    "What remains: the reporting service's aggregate counts (enrolled/started/completed, "
    "intending, delivering by trust, site and profession) still include this clinician, keyed "
    "by the pseudonymous clinician_ref only, with no email."
)
STREAM_KEPT = (
    "The original clinician.enrolled event(s) in the IBEST_EVENTS stream still carry the "
    "email; add --from-stream to replace them with redacted copies."
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("enrolment", help="enrolment service commands")
    cmds = p.add_subparsers(dest="command", required=True)
    erase = cmds.add_parser(
        "erase", help="remove a clinician's contact email (and, with --record, their record)"
    )
    erase.add_argument("clinician_ref")
    erase.add_argument(
        "--record",
        action="store_true",
        help="also delete the clinician's record and its remembered event ids",
    )
    erase.add_argument(
        "--from-stream",
        action="store_true",
        help="also replace the stored clinician.enrolled events that carry the "
        "email with redacted copies (needs NATS)",
    )
    erase.set_defaults(func=erase_command)
    retention = cmds.add_parser(
        "retention",
        help="erase contact emails past IBEST_ENROLMENT_CONTACT_RETENTION_DAYS "
        "now (the service also does it every hour)",
    )
    retention.add_argument(
        "--from-stream",
        action="store_true",
        help="also redact every erased clinician's stored "
        "clinician.enrolled events and dead letters (needs NATS)",
    )
    retention.set_defaults(func=retention_command)
    rederive = cmds.add_parser(
        "rederive",
        help="derive every clinician's training_started/_completed again and publish the "
        "revisions that differ (once after upgrading; safe to repeat)",
    )
    rederive.set_defaults(func=rederive_command)


async def rederive_command(args: argparse.Namespace, settings: Settings) -> int:
    client = mongo_client(settings)
    nc = await connect_nats(settings, "enrolment-rederive")
    try:
        id_key = settings.platform_id_key()
        service = bootstrap.build(
            EnrolmentSettings(),
            client[settings.database_of("enrolment")],
            EventPublisher(nc.jetstream(), "enrolment", id_key=id_key),
            id_key,
        ).service
        changed = await service.rederive()
    finally:
        await nc.drain()
        await client.close()
    print(f"rederived enrolment: {changed} clinician(s) had a revised training event published")
    return 0


async def erase_command(args: argparse.Namespace, settings: Settings) -> int:
    client = mongo_client(settings)
    try:
        service = bootstrap.build(
            EnrolmentSettings(),
            client[settings.database_of("enrolment")],
            ReadOnlyPublisher(),
            settings.platform_id_key(),
        ).service
        # Audited first: an erasure that cannot be recorded does not happen.
        await audit_log_of(client, settings).record(
            "erasure",
            Actor.command(),
            clinician_ref=args.clinician_ref,
            command="ibest enrolment erase",
            record=bool(args.record),
            from_stream=bool(args.from_stream),
        )
        result = await service.erase(args.clinician_ref, record=args.record)
        print(describe(result))
        if args.from_stream:
            nc = await connect_nats(settings, "enrolment-erase")
            try:
                done = await erase_from_stream(
                    nc.jetstream(),
                    settings.platform_id_key(),
                    args.clinician_ref,
                    lambda trust, old, new: service.rename_fact(
                        args.clinician_ref, trust, old, new
                    ),
                )
            finally:
                await nc.drain()
            print(
                f"Events stream: {done.redacted} enrolment event(s) carrying the email "
                f"replaced by redacted copies ({done.scanned} enrolment events scanned); "
                f"{done.unreadable_deleted} unreadable enrolment event(s) naming it "
                f"deleted. Dead letters: {done.dead_letters_deleted} of its enrolments "
                "carrying the email deleted."
            )
        else:
            print(STREAM_KEPT)
    finally:
        await client.close()
    return 0 if result.found else 1


def describe(result: Erasure) -> str:
    ref = result.clinician_ref
    if not result.found:
        return f"No clinician {ref!r} in the enrolment database; nothing erased."
    lines = [
        f"Clinician {ref}: contact email "
        + ("removed." if result.email_removed else "was not held (none given or already erased)."),
    ]
    if result.record_removed:
        lines.append(
            f"Record removed, with {result.seen_events_removed} remembered event id(s). "
            "A replay of the events stream would rebuild it."
        )
    else:
        lines.append("Record kept (training state, no email); use --record to remove it.")
    if result.state is not None and result.state.enrolment is not None:
        e = result.state.enrolment
        lines.append(
            f"Counted at trust {e.trustcode}, site {e.sitecode} as "
            f"{result.state.status.value} ({e.profession}, course version "
            f"{e.course_version})."
        )
    lines.append(REMAINS)
    return "\n".join(lines)


async def retention_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the contact-email retention pass now and, with --from-stream, redact the emails
    of every erased clinician from the streams in one pass (docs/information-governance.md)."""
    own = EnrolmentSettings()
    client = mongo_client(settings)
    try:
        service = bootstrap.build(
            own,
            client[settings.database_of("enrolment")],
            ReadOnlyPublisher(),
            settings.platform_id_key(),
        ).service
        # Audited first, like every erasure: one record per run, naming the rule applied.
        await audit_log_of(client, settings).record(
            "erasure",
            Actor.command(),
            command="ibest enrolment retention",
            retention_days=own.contact_retention_days,
            from_stream=bool(args.from_stream),
        )
        erased = await service.erase_expired_contacts(utc_now(), own.contact_retention)
        print(
            f"Contact emails past {own.contact_retention_days:g} days since the "
            f"clinician's latest event: {erased} erased from the enrolment database."
        )
        if args.from_stream:
            refs = await service.erased_contacts()
            nc = await connect_nats(settings, "enrolment-retention")
            try:
                done = await erase_many_from_stream(
                    nc.jetstream(), settings.platform_id_key(), refs, service.rename_fact
                )
            finally:
                await nc.drain()
            print(
                f"Events stream: {done.redacted} enrolment event(s) of {len(refs)} erased "
                f"clinician(s) replaced by redacted copies ({done.scanned} scanned); "
                f"{done.unreadable_deleted} unreadable deleted. Dead letters: "
                f"{done.dead_letters_deleted} deleted."
            )
        else:
            print(STREAM_KEPT)
    finally:
        await client.close()
    return 0
