"""`ibest reporting ...`: operator commands of the reporting service."""

from __future__ import annotations

import argparse

from ibest.backbone.connect import connect_nats
from ibest.backbone.mongo import mongo_client
from ibest.backbone.patient_refs import nhs_numbers_in
from ibest.backbone.settings import Settings
from services.reporting import bootstrap, report_cli
from services.reporting.adapters.patient_refs import GenerationPatientRefs


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report_cli.register(sub)  # `ibest report monthly`: the programme boards' pack
    p = sub.add_parser("reporting", help="Reporting aggregates")
    cmds = p.add_subparsers(dest="command", required=True)
    rebuild = cmds.add_parser(
        "rebuild",
        help="Replay the stored event stream into fresh aggregates and swap them "
        "in atomically (safe while the service runs)",
    )
    rebuild.set_defaults(func=rebuild_command)


async def rebuild(settings: Settings, purpose: str) -> tuple[dict[str, int], dict[str, int]]:
    """Replace the aggregates by a rebuild from the stored stream through today's contract;
    what was done, and the events excluded (as the live consumers refuse them) by code."""
    mongo = mongo_client(settings)
    nc = await connect_nats(settings, purpose)
    try:
        parts = bootstrap.for_commands(mongo[settings.database_of(bootstrap.NAME)])
        history = bootstrap.stream_history(nc.jetstream(), settings.time_bounds())
        done = await parts.service.rebuild(history)
    finally:
        await nc.drain()
        await mongo.close()
    return done, dict(history.refused)


async def rebuild_command(args: argparse.Namespace, settings: Settings) -> int:
    done, excluded = await rebuild(settings, "reporting-rebuild")
    print(
        f"rebuilt reporting: generation {done['generation']} replaced {done['previous']} "
        f"({done['events']} events replayed, {done['sites']} sites)"
    )
    if excluded:
        refused = ", ".join(f"{n} {code}" for code, n in sorted(excluded.items()))
        print(f"excluded as the live consumers refuse them: {refused}")
    return 0


async def purge_nhs_numbers(settings: Settings, apply: bool) -> dict[str, int]:
    """`ibest purge-nhs-numbers` asks this service (ibest/purge.py): the generations'
    patient entities whose reference is an NHS number; with `apply`, a rebuild through
    today's contract (which refuses those events) replaces them."""
    mongo = mongo_client(settings)
    try:
        found = await nhs_numbers_in(
            GenerationPatientRefs(mongo[settings.database_of(bootstrap.NAME)])
        )
    finally:
        await mongo.close()
    if apply and found:
        await rebuild(settings, "purge-nhs-numbers")
    return {where: len(keys) for where, keys in found.items()}
