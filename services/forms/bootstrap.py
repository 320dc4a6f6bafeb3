"""Builds the forms service from explicit settings and connections: one place, shared by
the runtime (service.py), the CLI (cli.py) and the tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.audit import DATABASE as AUDIT_DATABASE
from ibest.backbone.audit import AuditLog
from ibest.backbone.mongo import mongo_client
from ibest.backbone.outbox import MongoOutbox, OutboxRelay, OutboxSettings
from ibest.backbone.publisher import Publisher
from ibest.backbone.settings import Settings
from services.forms.adapters.stores import (
    AuditAdapter,
    MongoClinicians,
    MongoPatientLinks,
    MongoPatients,
    MongoSessions,
    MongoSiteKeys,
    MongoSubmissions,
)
from services.forms.application import (
    ClinicianForms,
    Facts,
    KeyAdmin,
    Keys,
    LinkAdmin,
    PatientAdmin,
    PatientForms,
    Publishing,
    SiteTeams,
)
from services.forms.declaration import DECLARATION
from services.forms.domain.access import RateLimiter
from services.forms.settings import FormsSettings

NAME = DECLARATION.name
Document = dict[str, Any]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FormsParts:
    """What the routes use (`request.app.state.service`)."""

    clinicians: ClinicianForms
    sites: SiteTeams
    patients: PatientForms
    facts: Facts
    relay: OutboxRelay
    keys: Keys
    settings: FormsSettings
    limiter: RateLimiter


def keys_of(settings: FormsSettings) -> Keys:
    return Keys(settings.link_secrets(), settings.id_key(), settings.csrf_key())


async def build(
    settings: FormsSettings,
    db: AsyncDatabase[Document],
    audit_db: AsyncDatabase[Document],
    publisher: Publisher,
    clock: Callable[[], datetime] = utc_now,
    timer: Callable[[], float] = time.monotonic,
) -> FormsParts:
    keys = keys_of(settings)
    submissions = MongoSubmissions(db, settings.submissions_retention_days)
    site_keys = MongoSiteKeys(db)
    sessions = MongoSessions(db)
    patients = MongoPatients(db)
    for store in (submissions, site_keys, sessions, patients):
        await store.create_indexes()
    relay = OutboxRelay(
        MongoOutbox(db["submissions"]),
        publisher,
        NAME,
        OutboxSettings(settings.outbox_interval, settings.outbox_limit),
    )
    publishing = Publishing(submissions, relay)
    clinicians = MongoClinicians(db)
    links = MongoPatientLinks(db)
    return FormsParts(
        ClinicianForms(clinicians, publishing, keys, clock),
        SiteTeams(
            site_keys,
            sessions,
            patients,
            links,
            publishing,
            AuditAdapter(AuditLog(audit_db, clock)),
            keys,
            clock,
            settings.session_minutes,
        ),
        PatientForms(links, patients, publishing, keys, clock),
        Facts(clinicians, patients, clock),
        relay,
        keys,
        settings,
        RateLimiter(settings.rate_per_second, settings.rate_burst, timer),
    )


@asynccontextmanager
async def admin(
    settings: Settings, forms: FormsSettings
) -> AsyncIterator[tuple[KeyAdmin, LinkAdmin]]:
    async with admins(settings, forms) as (keys, links, _):
        yield keys, links


@asynccontextmanager
async def admins(
    settings: Settings, forms: FormsSettings
) -> AsyncIterator[tuple[KeyAdmin, LinkAdmin, PatientAdmin]]:
    """Site keys and clinician links over the forms' database alone (the CLI, tests)."""
    client = mongo_client(settings)
    try:
        db = client[settings.database_of(NAME)]
        site_keys = MongoSiteKeys(db)
        await site_keys.create_indexes()
        yield (
            KeyAdmin(site_keys, utc_now),
            LinkAdmin(MongoClinicians(db), forms.link_secrets()[0], forms.base_url, utc_now),
            PatientAdmin(MongoPatients(db), MongoPatientLinks(db)),
        )
    finally:
        await client.close()


def audit_database(settings: Settings) -> str:
    return settings.database_of(AUDIT_DATABASE)
