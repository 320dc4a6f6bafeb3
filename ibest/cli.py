"""`ibest`: the operator's command line. `ibest --help` lists every command."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NatsClient

from ibest import registry
from ibest.backbone.connect import connect_nats
from ibest.backbone.deadletters import (
    RejectedEvent,
    group_dead_letters,
    list_dead_letters,
    replay_dead_letter,
)
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, ensure_streams

TOOLS = (
    "ibest.simulate.cli",
    "ibest.purge",
    "ibest.audit_cli",
    "ibest.pseudonymise",
    "ibest.eventtimes",
    "ibest.ledger_cli",
)
"""Commands beside each service's own (ibest/registry.py lists those)."""


async def _connect(settings: Settings) -> NatsClient:
    return await connect_nats(settings, "deadletters")


async def apply_streams(settings: Settings) -> list[str]:
    """Declare both streams and every declared service's durable consumer (as `admin`)."""
    nc = await connect_nats(settings, "streams-apply")
    try:
        return await ensure_streams(nc.jetstream(), settings, registry.consumers())
    finally:
        await nc.drain()


async def streams_apply(args: argparse.Namespace, settings: Settings) -> int:
    # (the compose init job runs this from the production image: no local stand-in needed)
    for line in await apply_streams(settings):
        print(line)
    return 0


async def streams_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    from ibest.stream_backup import BackupError, snapshot

    nc = await _connect(settings)
    try:
        taken = await snapshot(nc, args.stream, args.out)
    except BackupError as exc:
        print(f"ibest streams snapshot: {exc}", file=sys.stderr)
        return 1
    finally:
        await nc.drain()
    print(
        f"snapshot of {taken.stream}: {taken.messages} messages, {taken.bytes} bytes -> {args.out}"
    )
    return 0


async def streams_restore(args: argparse.Namespace, settings: Settings) -> int:
    from ibest.stream_backup import BackupError, restore

    nc = await _connect(settings)
    try:
        info = await restore(nc, args.source)
    except BackupError as exc:
        print(f"ibest streams restore: {exc}", file=sys.stderr)
        return 1
    finally:
        await nc.drain()
    state = info.get("state", {})
    print(
        f"restored {info['config']['name']}: {state.get('messages')} messages, "
        f"sequences {state.get('first_seq')} to {state.get('last_seq')}"
    )
    return 0


def rejected_json(r: RejectedEvent, verdict: str) -> dict[str, Any]:
    first = r.first
    return {
        "event_id": first.event_id,
        "type": first.event_type,
        "trust": first.trust,
        "subject": first.subject,
        "stream_seq": r.stream_seq,
        "verdict": verdict,
        "consumers": list(r.consumers),
        "seqs": list(r.seqs),
        "letters": [
            {
                "seq": d.seq,
                "consumer": d.consumer,
                "reason": d.reason,
                "error": d.error,
                "deliveries": d.deliveries,
            }
            for d in r.letters
        ],
    }


async def deadletters_list(args: argparse.Namespace, settings: Settings) -> int:
    nc = await _connect(settings)
    try:
        # Every consumer's letters, so a row names all who rejected the event even when
        # only those one consumer rejected are listed.
        letters = await list_dead_letters(
            nc.jetstream(), None, args.limit, trust=args.trust, event_id=args.event_id
        )
    finally:
        await nc.drain()
    rejected = [
        r
        for r in group_dead_letters(letters)
        if args.consumer is None or args.consumer in r.consumers
    ]
    consumers = registry.consumers_by_type()
    if args.json:
        print(json.dumps([rejected_json(r, r.verdict(consumers)) for r in rejected], indent=2))
        return 0
    if not rejected:
        print("no dead letters")
    for r in rejected:
        first = r.first
        print(
            f"event seq {r.stream_seq} {first.event_type} trust={first.trust or '-'} "
            f"id={first.event_id or '-'} {first.subject} "
            f"(letters {', '.join(f'#{n}' for n in r.seqs)}): {r.verdict(consumers)}"
        )
        errors = r.errors
        if len(set(errors.values())) == 1:
            print(f"    {next(iter(errors.values()))}")
        else:
            for consumer, error in errors.items():
                print(f"    {consumer}: {error}")
    return 0


async def deadletters_replay(args: argparse.Namespace, settings: Settings) -> int:
    if not args.all and not args.seq:
        print("say which: --seq N [N ...] or --all", file=sys.stderr)
        return 2
    nc = await _connect(settings)
    try:
        js = nc.jetstream()
        letters = await list_dead_letters(js, None, 100_000)
        wanted = set(args.seq or ())
        # One rejected event is published again once, and every consumer's letter of it goes.
        chosen = [
            r
            for r in group_dead_letters(letters)
            if (args.all and (args.consumer is None or args.consumer in r.consumers))
            or wanted & set(r.seqs)
        ]
        missing = wanted - {n for r in chosen for n in r.seqs}
        for r in chosen:
            await replay_dead_letter(js, r)
            print(
                f"replayed event seq {r.stream_seq} ({r.first.subject}; letters "
                f"{', '.join(f'#{n}' for n in r.seqs)}) for every consumer"
            )
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
        prog="ibest", description="Operate the iBeST rollout platform."
    )
    sub = parser.add_subparsers(dest="area", required=True)

    up = sub.add_parser("up", help="run the whole platform locally (no Docker)")
    up.add_argument("--demo", action="store_true", help="also publish a simulated rollout")
    up.add_argument(
        "--via",
        choices=["nats", "http"],
        default="nats",
        help="--demo publishes on NATS (default) or sends through the gateway",
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".ibest"),
        help="where local servers keep data and logs (default .ibest)",
    )

    streams = sub.add_parser("streams", help="the JetStream streams").add_subparsers(
        dest="action", required=True
    )
    streams.add_parser("apply", help="create or update both streams").set_defaults(
        func=streams_apply
    )
    snap = streams.add_parser(
        "snapshot", help="back a stream up through JetStream's snapshot API (docs/operations.md)"
    )
    snap.add_argument("--stream", default=EVENTS_STREAM, help=f"default {EVENTS_STREAM}")
    snap.add_argument("--out", type=Path, required=True, help="a new directory for the backup")
    snap.set_defaults(func=streams_snapshot)
    back = streams.add_parser(
        "restore", help="restore a stream from a snapshot (it must not exist yet)"
    )
    back.add_argument("--from", dest="source", type=Path, required=True, help="the backup")
    back.set_defaults(func=streams_restore)

    dl = sub.add_parser("deadletters", help="events consumers could not apply").add_subparsers(
        dest="action", required=True
    )
    ls = dl.add_parser(
        "list",
        help="list rejected events (one row each, naming every "
        "consumer that rejected it) with their reasons",
    )
    ls.add_argument("--consumer", help="only events this service rejected")
    ls.add_argument("--trust", help="only events of this trust code (e.g. RTH)")
    ls.add_argument("--event-id", help="only the event with this CloudEvent id")
    ls.add_argument("--limit", type=int, default=1000)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=deadletters_list)
    rp = dl.add_parser("replay", help="publish dead letters again after a fix")
    rp.add_argument(
        "--seq",
        type=int,
        nargs="+",
        help="dead-letter sequence numbers (any letter of an event replays it once)",
    )
    rp.add_argument(
        "--all", action="store_true", help="every rejected event (that --consumer rejected)"
    )
    rp.add_argument("--consumer")
    rp.set_defaults(func=deadletters_replay)

    docs = sub.add_parser("docs", help="the integrators' contract docs")
    docs.add_argument("action", choices=["generate", "check"])
    docs.set_defaults(func=docs_command)

    for module in [*registry.command_modules(), *TOOLS]:
        plugin: Any = importlib.import_module(module)
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
