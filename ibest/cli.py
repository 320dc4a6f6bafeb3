"""`ibest`: the operator's command line. `ibest --help` lists every command."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NatsClient

from ibest.backbone.deadletters import list_dead_letters, replay_dead_letter
from ibest.backbone.settings import Settings

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]
PLUGINS = ("services.enrolment.cli", "services.outcomes.cli", "services.notifications.cli",
           "services.reporting.cli", "services.gateway.cli", "ibest.simulate.cli")


async def _connect(settings: Settings) -> NatsClient:
    return await nats.connect(settings.nats_servers, connect_timeout=5, max_reconnect_attempts=2)


async def streams_apply(args: argparse.Namespace, settings: Settings) -> int:
    from ibest.local.stack import apply_streams

    for line in await apply_streams(settings):
        print(line)
    return 0


async def deadletters_list(args: argparse.Namespace, settings: Settings) -> int:
    nc = await _connect(settings)
    try:
        letters = await list_dead_letters(nc.jetstream(), args.consumer, args.limit)
    finally:
        await nc.drain()
    if args.json:
        print(json.dumps([{
            "seq": d.seq, "consumer": d.consumer, "reason": d.reason, "error": d.error,
            "deliveries": d.deliveries, "subject": d.subject, "stream_seq": d.stream_seq,
        } for d in letters], indent=2))
        return 0
    if not letters:
        print("no dead letters")
    for d in letters:
        print(f"#{d.seq} {d.consumer} {d.reason} deliveries={d.deliveries} {d.subject} "
              f"(event seq {d.stream_seq}): {d.error}")
    return 0


async def deadletters_replay(args: argparse.Namespace, settings: Settings) -> int:
    if not args.all and not args.seq:
        print("say which: --seq N [N ...] or --all", file=sys.stderr)
        return 2
    nc = await _connect(settings)
    try:
        js = nc.jetstream()
        letters = await list_dead_letters(js, args.consumer, 100_000)
        chosen = [d for d in letters if args.all or d.seq in set(args.seq)]
        missing = set(args.seq or ()) - {d.seq for d in chosen}
        for d in chosen:
            await replay_dead_letter(js, d)
            print(f"replayed #{d.seq} ({d.subject}) for every consumer")
    finally:
        await nc.drain()
    if missing:
        print(f"no dead letter with seq {sorted(missing)}", file=sys.stderr)
        return 1
    return 0


async def docs_command(args: argparse.Namespace, settings: Settings) -> int:
    from ibest import contract_docs

    if args.action == "generate":
        for path in contract_docs.generate():
            print(f"wrote {path}")
        return 0
    problems = contract_docs.stale()
    for p in problems:
        print(f"stale: {p}", file=sys.stderr)
    if problems:
        print("run `ibest docs generate` and commit the result", file=sys.stderr)
        return 1
    print("contract docs are current")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ibest", description="Operate the iBeST rollout platform.")
    sub = parser.add_subparsers(dest="area", required=True)

    up = sub.add_parser("up", help="run the whole platform locally (no Docker)")
    up.add_argument("--demo", action="store_true", help="also publish a simulated rollout")
    up.add_argument("--via", choices=["nats", "http"], default="nats",
                    help="--demo publishes on NATS (default) or sends through the gateway")
    up.add_argument("--data-dir", type=Path, default=Path(".ibest"),
                    help="where local servers keep data and logs (default .ibest)")

    streams = sub.add_parser("streams", help="the JetStream streams").add_subparsers(
        dest="action", required=True)
    streams.add_parser("apply", help="create or update both streams").set_defaults(
        func=streams_apply)

    dl = sub.add_parser("deadletters", help="events consumers could not apply").add_subparsers(
        dest="action", required=True)
    ls = dl.add_parser("list", help="list dead letters with their reasons")
    ls.add_argument("--consumer", help="only this service's")
    ls.add_argument("--limit", type=int, default=1000)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=deadletters_list)
    rp = dl.add_parser("replay", help="publish dead letters again after a fix")
    rp.add_argument("--seq", type=int, nargs="+", help="dead-letter sequence numbers")
    rp.add_argument("--all", action="store_true", help="every dead letter (of --consumer)")
    rp.add_argument("--consumer")
    rp.set_defaults(func=deadletters_replay)

    docs = sub.add_parser("docs", help="the integrators' contract docs")
    docs.add_argument("action", choices=["generate", "check"])
    docs.set_defaults(func=docs_command)

    for module in PLUGINS:
        try:
            plugin: Any = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that part is not built yet
            raise
        plugin.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.area == "up":
        from ibest.local.stack import up

        return up(args.data_dir, args.demo, args.via)
    try:
        code: int = asyncio.run(args.func(args, Settings()))
        return code
    except (OSError, nats.errors.NoServersError) as exc:
        print(f"ibest: cannot reach a server: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
