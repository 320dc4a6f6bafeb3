"""`ibest ledger migrate`: rewrite every consuming service's event ledger in its binary shape.

The ledger (`seen_events`, the backbone's, in each consuming service's database) stores
`{_id: <16 bytes>, d: <8 bytes>}` since issue 26 (`ibest.backbone.ledger`). A deployed
ledger's text-keyed rows are still consulted, at the price of one more read per batch for
as long as any remains; this one-off command rewrites them (`migrate_ledger`), after which
each consumer stops reading them (within `LegacyRows`' recheck, five minutes). It may run
while the services run, and again.
"""

from __future__ import annotations

import argparse

from ibest import registry
from ibest.backbone.ledger import migrate_ledger
from ibest.backbone.mongo import mongo_client
from ibest.backbone.settings import Settings


def ledgered_services() -> list[str]:
    """The services that keep an event ledger: every one with a consumer."""
    return list(registry.consumers())


async def migrate_command(args: argparse.Namespace, settings: Settings) -> int:
    client = mongo_client(settings)
    try:
        for name in args.service or ledgered_services():
            done = await migrate_ledger(client[settings.database_of(name)])
            print(
                f"{name}: {done.rewritten} row(s) rewritten, {done.dropped} bare-id row(s) "
                f"dropped, {done.unreadable} unreadable row(s) left"
            )
    finally:
        await client.close()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = sub.add_parser("ledger", help="the consumers' event ledgers").add_subparsers(
        dest="action", required=True
    )
    migrate = ledger.add_parser(
        "migrate",
        help="rewrite text-keyed ledger rows (written before issue 26) in the binary shape "
        "(one-off; safe while the services run, and to repeat)",
    )
    migrate.add_argument(
        "--service",
        action="append",
        choices=ledgered_services(),
        help="only this service's ledger (repeatable; default: every consuming service)",
    )
    migrate.set_defaults(func=migrate_command)
