"""`ibest report monthly --month YYYY-MM [--trust RTH] --out DIR`: the monthly report pack
as files (PDF, HTML and a zip of CSVs), read straight from reporting's database.

Operators schedule it after each month ends and publish DIR where boards read
(docs/operations.md, "The monthly report pack").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ibest.backbone.mongo import mongo_client
from ibest.backbone.settings import Settings
from services.reporting import bootstrap
from services.reporting.checks import Malformed, NotFound
from services.reporting.pack import monthly_pack
from services.reporting.pack_render import file_name, render


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="Reports for programme boards")
    cmds = p.add_subparsers(dest="command", required=True)
    monthly = cmds.add_parser(
        "monthly", help="Write the monthly report pack (PDF, HTML, zip of CSVs) to a folder"
    )
    monthly.add_argument("--month", required=True, help="the month, YYYY-MM (e.g. 2026-11)")
    monthly.add_argument("--trust", help="a trust's ODS code for its pack (default: national)")
    monthly.add_argument("--out", required=True, type=Path, help="folder to write the files to")
    monthly.set_defaults(func=monthly_command)


async def monthly_command(args: argparse.Namespace, settings: Settings) -> int:
    mongo = mongo_client(settings)
    try:
        reports = bootstrap.for_commands(mongo[settings.database_of(bootstrap.NAME)]).reports
        try:
            pack = await monthly_pack(reports, reports.names, args.month, args.trust)
        except (Malformed, NotFound) as exc:
            print(f"ibest report monthly: {exc}")
            return 2
    finally:
        await mongo.close()
    args.out.mkdir(parents=True, exist_ok=True)
    for extension in ("pdf", "html", "zip"):
        path = args.out / file_name(pack, extension)
        path.write_bytes(render(pack, extension))
        print(f"wrote {path}")
    return 0
