"""`ibest gateway keys create|list|revoke`: the trusts' API keys."""

from __future__ import annotations

import argparse

from ibest.backbone.settings import Settings
from services.gateway import bootstrap
from services.gateway.courses import cli as courses
from services.gateway.domain.keys import KeyRuleError, course_platform_holder


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    courses.register(sub)  # `ibest import futurelearn`: the gateway's course-platform part
    p = sub.add_parser("gateway", help="the HTTPS gateway: trusts' API keys")
    area = p.add_subparsers(dest="command", required=True)
    keys = area.add_parser("keys", help="create, list and revoke API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser(
        "create",
        help="a new key for a trust (shown once, on the last "
        "line); a trust holds at most two active keys",
    )
    holder = create.add_mutually_exclusive_group(required=True)
    holder.add_argument("--trust", help="the trust's ODS code, e.g. RTH")
    holder.add_argument(
        "--course-platform",
        metavar="NAME",
        help="a course platform's key (e.g. futurelearn): sends only training events, for "
        "any trust, as CloudEvents and as xAPI statements (docs/course-platform.md)",
    )
    create.set_defaults(func=create_command)
    keys.add_parser("list", help="every key: id, trust, created, revoked").set_defaults(
        func=list_command
    )
    revoke = keys.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=revoke_command)


async def create_command(args: argparse.Namespace, settings: Settings) -> int:
    async with bootstrap.key_admin(settings) as admin:
        try:
            holder = args.trust or course_platform_holder(args.course_platform)
            key, token = await admin.create(holder)
        except KeyRuleError as exc:
            print(f"ibest gateway: {exc}")
            return 1
    who = f"trust {key.trust}" if key.course_platform is None else key.trust
    print(
        f"created key {key.key_id} for {who}. It is shown only now: give it to "
        "its IT team over a secure channel. The key:"
    )
    print(token)
    return 0


async def list_command(args: argparse.Namespace, settings: Settings) -> int:
    async with bootstrap.key_admin(settings) as admin:
        keys = await admin.list()
    if not keys:
        print("no keys")
    for key in keys:
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        print(f"{key.key_id}  {key.trust}  created {key.created_at.isoformat()}  {state}")
    return 0


async def revoke_command(args: argparse.Namespace, settings: Settings) -> int:
    async with bootstrap.key_admin(settings) as admin:
        try:
            key = await admin.revoke(args.key_id)
        except KeyRuleError as exc:
            print(f"ibest gateway: {exc}")
            return 1
    print(f"revoked key {key.key_id} of trust {key.trust}")
    return 0
