"""`ibest purge-nhs-numbers` on the real database: references stored before the contract
refused NHS numbers with other separators are found (dry run), then purged (--apply)."""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient

from ibest.backbone.document import Document
from ibest.backbone.settings import Settings
from ibest.purge import purge_command
from services.notifications.adapters.repository import MongoNotificationsRepository
from services.notifications.domain.batch import PatientChange
from services.outcomes.adapters.repository import MongoOutcomesRepository
from services.outcomes.domain.assessments import Assessment
from services.reporting import bootstrap
from shared.envelope import BY_NAME, CloudEvent, parse_event
from shared.events import Measures, PatientAssessed
from shared.followup import Timepoint
from shared.measures import Measure
from tests.harness import cloud_event, publish_raw

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
OLD_ACCEPTED = ["943.476.5919", "943_476_5919", "943:476:5919"]
HASHED = hashlib.sha256(b"a trust's keyed hash of 9434765919").hexdigest()


def baseline(ref: str) -> dict[str, Any]:
    return cloud_event(
        "patient.assessed",
        {"patient_ref": ref, "timepoint": "baseline", "measures": {"rmdq": 12}},
        time=T0,
    )


def as_once_accepted(raw: dict[str, Any]) -> Any:
    """The event as the old contract let it through (today's refuses it)."""
    data = PatientAssessed.model_construct(
        patient_ref=raw["data"]["patient_ref"],
        class_id=None,
        timepoint=Timepoint.BASELINE,
        measures=Measures(rmdq=12),
    )
    return CloudEvent[Any].model_construct(
        **{**raw, "time": T0, "data": data, "type": BY_NAME["patient.assessed"].ce_type}
    )


async def stored(settings: Settings, client: AsyncMongoClient[Document]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for service, coll in (("outcomes", "assessments"), ("notifications", "patients")):
        # A notifications patient's `_id` (`<trust>:<ref>`) says its reference (issue 26).
        out[f"{service}.{coll}"] = sorted(
            [
                d.get("patient_ref") or d["_id"].partition(":")[2]
                async for d in client[settings.database_of(service)][coll].find()
            ]
        )
    db = client[settings.database_of("reporting")]
    for name in await db.list_collection_names():
        if name.endswith("_patients"):
            out["reporting"] = sorted([d["_id"] async for d in db[name].find()])
    return out


async def national_baselines(settings: Settings, client: AsyncMongoClient[Document]) -> int:
    reporting = bootstrap.for_commands(client[settings.database_of("reporting")]).reports
    view = await reporting.view()
    figures = view.figures(view.summaries, raw=True, national=True)
    return int(figures["patients_baseline"])


async def test_dry_run_finds_then_apply_purges_and_rebuilds_reporting(
    settings: Settings,
    js: JetStreamContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = [baseline(ref) for ref in [*OLD_ACCEPTED, HASHED]]
    for e in events:
        await publish_raw(js, e)
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        # What outcomes, notifications and reporting stored when these were accepted.
        outcomes = MongoOutcomesRepository(client[settings.database_of("outcomes")])
        notifications = MongoNotificationsRepository(client[settings.database_of("notifications")])
        reporting = bootstrap.for_commands(client[settings.database_of("reporting")]).service
        once = [as_once_accepted(e) for e in events[:-1]]
        valid = parse_event(None, json.dumps(events[-1]).encode())
        for e in [*once, valid]:
            await outcomes.record_assessments(
                [
                    Assessment(
                        event_id=str(e.id),
                        trustcode="RTH",
                        sitecode="RTH08",
                        patient_ref=e.data.patient_ref,
                        timepoint=Timepoint.BASELINE,
                        time=T0,
                        measures={Measure.RMDQ: 12.0},
                    )
                ],
                T0,
            )
            await notifications.apply_patients(
                [PatientChange("RTH", e.data.patient_ref, baseline=(T0, "RTH08", str(e.id)))]
            )
        await reporting.apply_many([*once, valid])
        assert await national_baselines(settings, client) == 4
        before = await stored(settings, client)

        assert await purge_command(argparse.Namespace(apply=False), settings) == 0
        out = capsys.readouterr().out
        assert "outcomes.assessments: 3 document(s)" in out
        assert "notifications.patients: 3 document(s)" in out
        assert "_patients: 3 document(s)" in out
        assert "dry run: 9 document(s) would be purged" in out
        assert await stored(settings, client) == before  # a dry run changes nothing

        assert await purge_command(argparse.Namespace(apply=True), settings) == 0
        assert "purged 9 document(s)" in capsys.readouterr().out
        after = await stored(settings, client)
        assert after == {
            "outcomes.assessments": [HASHED],
            "notifications.patients": [HASHED],
            "reporting": [f"RTH:{HASHED}"],
        }
        assert await national_baselines(settings, client) == 1

        assert await purge_command(argparse.Namespace(apply=False), settings) == 0
        assert "no stored patient reference is an NHS number" in capsys.readouterr().out
    finally:
        await client.close()
