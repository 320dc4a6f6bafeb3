"""`ibest outcomes ...`: look at a patient as the service sees it; flush pending outcomes."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ibest.backbone.connect import connect_nats
from ibest.backbone.mongo import mongo_client
from ibest.backbone.patient_refs import purge_in_database
from ibest.backbone.publisher import EventPublisher, Publisher, ReadOnlyPublisher
from ibest.backbone.settings import Settings
from services.outcomes import bootstrap
from services.outcomes.adapters.repository import MongoOutcomesRepository
from services.outcomes.application import OutcomesService
from services.outcomes.settings import OutcomesSettings


@asynccontextmanager
async def _service(settings: Settings, publish: bool) -> AsyncIterator[OutcomesService]:
    mongo = mongo_client(settings)
    nc = await connect_nats(settings, "outcomes-command") if publish else None
    try:
        id_key = settings.platform_id_key()
        publisher: Publisher = (
            EventPublisher(nc.jetstream(), bootstrap.NAME, id_key=id_key)
            if nc
            else ReadOnlyPublisher()
        )
        yield bootstrap.build(
            OutcomesSettings(), mongo[settings.database_of(bootstrap.NAME)], publisher, id_key
        ).service
    finally:
        if nc:
            await nc.drain()
        await mongo.close()


async def show_command(args: argparse.Namespace, settings: Settings) -> int:
    async with _service(settings, publish=False) as service:
        view = service.followups if args.followups else service.patient
        found = await view(args.trustcode, args.patient_ref)
    if found is None:
        print(f"no assessment of {args.trustcode}/{args.patient_ref} has been received")
        return 1
    print(json.dumps(found, indent=2, default=str))
    return 0


async def flush_command(args: argparse.Namespace, settings: Settings) -> int:
    async with _service(settings, publish=True) as service:
        sent = await service.sweep_once()
    print(f"published {sent} pending outcome.recorded event(s)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("outcomes", help="patients' assessments and outcomes")
    cmds = p.add_subparsers(dest="command", required=True)
    show = cmds.add_parser("show", help="a patient's winning assessments, outcomes and history")
    show.add_argument("trustcode")
    show.add_argument("patient_ref")
    show.add_argument("--followups", action="store_true", help="the follow-up schedule instead")
    show.set_defaults(func=show_command)
    flush = cmds.add_parser("flush-outbox", help="publish outcome events left pending")
    flush.set_defaults(func=flush_command)


async def purge_nhs_numbers(settings: Settings, apply: bool) -> dict[str, int]:
    """`ibest purge-nhs-numbers` asks this service (ibest/purge.py): its stored patient
    references that are NHS numbers, counted by collection (deleted with `apply`)."""
    return await purge_in_database(
        settings, bootstrap.NAME, lambda db: MongoOutcomesRepository(db).patient_refs, apply
    )
