"""`ibest events check-times`: a dry run listing the stored events whose time the platform
refuses (shared.eventtime): dated more than the tolerance after the stream stored them, or
before the programme.

Why it exists: before the rule, such events were accepted (one dated 2999 moved `as_of` to
2999 for good; one dated 1900 started every monthly series in 1900). They stay in
`IBEST_EVENTS`; every consumer now dead-letters them on redelivery and
`ibest reporting rebuild` leaves them out, judged against the time the stream stored each,
so this command shows an operator exactly what a rebuild will exclude, and changes nothing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from nats.js import JetStreamContext

from ibest.backbone.connect import connect_nats
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, EVENTS_SUBJECTS, stored_until_now
from shared.envelope import label_event
from shared.eventtime import TimeBounds, time_problem


@dataclass(frozen=True)
class Refused:
    """One stored event the time rule refuses. No payload, so no reference is shown."""

    seq: int
    subject: str
    event_id: str
    type: str
    trust: str
    time: str
    stored: str
    code: str
    reason: str


def refused_time(
    body: bytes, stored: datetime | None, bounds: TimeBounds
) -> tuple[str, str, str] | None:
    """(the event's time, rule code, rule) when its time is refused; None when it is
    believable or the event has no readable time (the contract refuses that anyway)."""
    try:
        raw: Any = json.loads(body)
        time = datetime.fromisoformat(raw["time"])
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if time.tzinfo is None:
        return None
    problem = time_problem(time, stored, bounds)
    return None if problem is None else (raw["time"], problem[1], f"time: {problem[0]}")


async def stored_refusals(js: JetStreamContext, bounds: TimeBounds) -> AsyncIterator[Refused]:
    """Every stored event of `IBEST_EVENTS` the time rule refuses, in stream order."""
    async for msg in stored_until_now(js, EVENTS_STREAM, EVENTS_SUBJECTS[0]):
        stored = msg.metadata.timestamp
        found = refused_time(msg.data, stored, bounds)
        if found is None:
            continue
        label = label_event(msg.subject, msg.data)
        yield Refused(
            seq=msg.metadata.sequence.stream,
            subject=msg.subject,
            event_id=label.event_id,
            type=label.name,
            trust=label.trustcode,
            time=found[0],
            stored=stored.isoformat() if stored else "",
            code=found[1],
            reason=found[2],
        )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = sub.add_parser("events", help="the stored events").add_subparsers(
        dest="action", required=True
    )
    check = events.add_parser(
        "check-times",
        help="dry run: list stored events dated in the future of their storing or before "
        "the programme (a rebuild excludes them); changes nothing",
    )
    check.add_argument("--json", action="store_true", help="one JSON object per line")
    check.set_defaults(func=check_times_command)


async def check_times_command(args: argparse.Namespace, settings: Settings) -> int:
    nc = await connect_nats(settings, "events-check-times")
    found = 0
    try:
        async for refused in stored_refusals(nc.jetstream(), settings.time_bounds()):
            found += 1
            if args.json:
                print(json.dumps(asdict(refused)))
            else:
                print(
                    f"seq={refused.seq} {refused.type} id={refused.event_id or '-'} "
                    f"trust={refused.trust or '-'} time={refused.time} "
                    f"stored={refused.stored} [{refused.code}] {refused.reason}"
                )
    finally:
        await nc.drain()
    if not args.json:
        print(
            f"dry run: {found} stored event(s) refused by the time rule; nothing changed. "
            "Every consumer refuses them and `ibest reporting rebuild` excludes them."
        )
    return 0
