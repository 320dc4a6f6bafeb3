"""`ibest audit list`: the operator's view of the audit log (ibest/backbone/audit.py).

A tool, above the services: the backbone keeps the log and registers no command.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from ibest.backbone.audit import ACTIONS, audit_log_of
from ibest.backbone.mongo import mongo_client
from ibest.backbone.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="the audit log of raw-figure requests and erasures")
    cmds = p.add_subparsers(dest="command", required=True)
    ls = cmds.add_parser("list", help="audit records, newest first")
    ls.add_argument(
        "--since",
        type=_timestamp,
        help="only records at or after this ISO 8601 time, e.g. 2026-01-31T00:00Z "
        "(UTC when no offset is given)",
    )
    ls.add_argument("--action", choices=ACTIONS)
    ls.add_argument("--token-id", help="only records of this token id")
    ls.add_argument("--limit", type=int, default=1000)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=list_command)


def _timestamp(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2026-01-31T09:00Z"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _plain(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


async def list_command(args: argparse.Namespace, settings: Settings) -> int:
    client = mongo_client(settings)
    try:
        records = await audit_log_of(client, settings).find(
            since=args.since, action=args.action, token_id=args.token_id, limit=args.limit
        )
    finally:
        await client.close()
    if args.json:
        print(json.dumps(records, default=_plain, indent=2))
        return 0
    if not records:
        print("no audit records")
    for r in records:
        who = (
            f"token {r['token_id']}"
            if r.get("token_id")
            else f"{r.get('via')} {r.get('operator') or ''}".strip()
        )
        detail = {
            k: v
            for k, v in r.items()
            if k not in ("_id", "at", "action", "via", "token_id", "operator")
        }
        print(
            f"{r['at'].isoformat()} {r['action']} by {who}: "
            + " ".join(f"{k}={v}" for k, v in detail.items())
        )
    return 0
