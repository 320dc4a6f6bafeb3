"""`ibest import futurelearn DIR [--dry-run]`: a course run's exports into the platform."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from ibest.backbone.connect import connect_nats
from ibest.backbone.mongo import mongo_client
from ibest.backbone.publisher import EventPublisher
from ibest.backbone.secrets import SecretError
from ibest.backbone.settings import Settings
from services.gateway.bootstrap import NAME
from services.gateway.courses import bootstrap
from services.gateway.courses.adapters.files import ExportDirectory
from services.gateway.courses.domain.exports import ExportError
from services.gateway.courses.settings import CourseSettings

EXIT_REFUSED = 2
"""The configuration or a file's header cannot be used: nothing was published."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("import", help="import a course platform's exports")
    area = p.add_subparsers(dest="source", required=True)
    fl = area.add_parser(
        "futurelearn",
        help="a FutureLearn course run's CSV exports (enrolments, step-activity, "
        "question-response) and its course-run.toml; only what is new is published",
    )
    fl.add_argument("directory", type=Path, help="the directory holding one run's exports")
    fl.add_argument(
        "--dry-run",
        action="store_true",
        help="print per trust what would be published, the unmapped learners and the "
        "refused rows; publish nothing",
    )
    fl.add_argument(
        "--learners-only",
        action="store_true",
        help="store only who each learner is (registration answers or the mapping file), "
        "for a platform that sends progress as xAPI statements; publish nothing",
    )
    fl.set_defaults(func=futurelearn_command)


async def futurelearn_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        key = CourseSettings().clinician_key()
        id_key = settings.platform_id_key()  # the stream's keyed msg-ids (issue 24)
    except SecretError as exc:
        print(f"ibest import: {exc}")
        return 1
    if key is None:
        print("ibest import: set IBEST_CLINICIAN_KEY_FILE (the programme key) first")
        return 1
    client = mongo_client(settings)
    nc = await connect_nats(settings, "import-futurelearn")
    try:
        importer = await bootstrap.importer(
            key,
            client[settings.database_of(NAME)],
            EventPublisher(nc.jetstream(), NAME, id_key=id_key),
            lambda: datetime.now(UTC),
        )
        try:
            exports = ExportDirectory(args.directory)
            if args.learners_only:
                report = await importer.map_learners(exports)
                print(f"learners mapped for xAPI; unmapped: {len(report.unmapped)}")
                print("\n".join(f"  {u.learner_id}: {u.reason}" for u in report.unmapped))
                return 0
            report = await importer.run(exports, args.dry_run)
        except ExportError as exc:
            print(f"ibest import: refused, nothing published: {exc}")
            return EXIT_REFUSED
    finally:
        await nc.drain()
        await client.close()
    print("\n".join(report.lines()))
    return 1 if report.not_stored else 0
