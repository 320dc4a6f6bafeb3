"""`ibest notifications opt-out CLINICIAN_REF [--undo]`."""

from __future__ import annotations

import argparse
import re

from pymongo import AsyncMongoClient

from ibest.backbone.runtime import utc_now
from ibest.backbone.settings import Settings
from services.notifications.adapters.repository import Document, Repository
from services.notifications.api import set_opt_out
from shared.identifiers import REF_PATTERN


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("notifications", help="Reminders to clinicians and site teams")
    cmds = p.add_subparsers(dest="command", required=True)
    opt = cmds.add_parser("opt-out", help="Stop (or, with --undo, resume) a clinician's "
                                          "reminders; honoured immediately")
    opt.add_argument("clinician_ref")
    opt.add_argument("--undo", action="store_true", help="opt the clinician back in")
    opt.set_defaults(func=opt_out_command)


async def opt_out_command(args: argparse.Namespace, settings: Settings) -> int:
    ref: str = args.clinician_ref
    if not re.fullmatch(REF_PATTERN, ref):
        print(f"not a clinician reference: {ref!r}")
        return 2
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True,
                                                          **settings.mongodb_options())
    try:
        repo = Repository(client[settings.database_of("notifications")])
        await set_opt_out(repo, ref, not args.undo, utc_now)
    finally:
        await client.close()
    print(f"{ref}: {'opted back in' if args.undo else 'opted out'} of reminders")
    return 0
