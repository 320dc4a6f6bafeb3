"""`ibest reporting ...`: operator commands of the reporting service."""

from __future__ import annotations

import argparse

import nats

from ibest.backbone.mongo import mongo_client
from ibest.backbone.settings import Settings
from services.reporting import bootstrap


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reporting", help="Reporting aggregates")
    cmds = p.add_subparsers(dest="command", required=True)
    rebuild = cmds.add_parser(
        "rebuild",
        help="Replay the stored event stream into fresh aggregates and swap them "
        "in atomically (safe while the service runs)",
    )
    rebuild.set_defaults(func=rebuild_command)


async def rebuild_command(args: argparse.Namespace, settings: Settings) -> int:
    mongo = mongo_client(settings)
    nc = await nats.connect(
        settings.nats_servers, name="ibest-reporting-rebuild", **settings.admin_nats_options()
    )
    try:
        parts = bootstrap.for_commands(mongo[settings.database_of(bootstrap.NAME)])
        history = bootstrap.stream_history(nc.jetstream(), settings.time_bounds())
        done = await parts.service.rebuild(history)
    finally:
        await nc.drain()
        await mongo.close()
    print(
        f"rebuilt reporting: generation {done['generation']} replaced {done['previous']} "
        f"({done['events']} events replayed, {done['sites']} sites)"
    )
    if history.refused:
        refused = ", ".join(f"{n} {code}" for code, n in sorted(history.refused.items()))
        print(f"excluded as the live consumers refuse them: {refused}")
    return 0
