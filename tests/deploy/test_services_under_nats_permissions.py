"""The four services run under the users deploy/nats/nats.conf gives them, as in compose.

Each connects as its own NATS user against a real nats-server started with the committed
config; a trust publishes as its own user. Everything the platform must do still works
(consume, derive, dead-letter, the contact lookup), so the permissions are not only tight
but also sufficient.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient

from ibest.backbone.deadletters import list_dead_letters
from ibest.backbone.settings import Settings
from ibest.backbone.streams import ensure_streams
from ibest.registry import consumers
from services.enrolment.service import SPEC as ENROLMENT
from services.notifications.service import SPEC as NOTIFICATIONS
from services.outcomes.service import SPEC as OUTCOMES
from services.reporting.service import SPEC as REPORTING
from tests.deploy.secured_nats import SecuredNats
from tests.harness import cloud_event, publish_raw, running_service, wait_for
from tests.platform.test_end_to_end import MODULES

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.mark.slow
async def test_every_service_works_under_its_own_nats_user(
    secured_nats: SecuredNats,
    mongodb_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", "perm-test:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")
    admin = await secured_nats.connect("admin")
    settings = Settings(
        MONGODB_URL=mongodb_url,
        IBEST_DB_PREFIX=f"perm{datetime.now(UTC).strftime('%H%M%S%f')}",
        IBEST_FETCH_TIMEOUT=0.2,
    )
    # The operator declares the streams and every service's consumer, as `admin`.
    await ensure_streams(admin.jetstream(), settings, consumers())
    trust = await secured_nats.connect("trust-RTH")
    js = trust.jetstream()
    ref = "clin-perm-1"
    events: list[dict[str, Any]] = [
        cloud_event(
            "clinician.enrolled",
            {
                "clinician_ref": ref,
                "profession": "nurse",
                "course_version": "1",
                "contact_email": "perm.test@example.nhs.uk",
            },
            time=T0,
        )
    ]
    events += [
        cloud_event(
            "module.completed",
            {"clinician_ref": ref, "module_id": m},
            time=T0 + timedelta(minutes=i + 1),
        )
        for i, m in enumerate(MODULES)
    ]
    events += [
        cloud_event(
            "patient.assessed",
            {"patient_ref": "pt-perm", "timepoint": tp, "measures": {"rmdq": score}},
            time=T0 + timedelta(days=days),
        )
        for tp, score, days in (("baseline", 14, 1), ("month_3", 7, 93))
    ]
    for event in events:
        await publish_raw(js, event)
    # Malformed on two subjects: between them, every service consumes one of them.
    await publish_raw(js, b"{not json", subject="ibest.v1.RTH.patient.assessed", msg_id="bad1")
    await publish_raw(js, b"{not json", subject="ibest.v1.RTH.clinician.enrolled", msg_id="bad2")
    try:
        async with AsyncExitStack() as stack:
            reporting = ""
            for spec in (ENROLMENT, OUTCOMES, NOTIFICATIONS, REPORTING):
                # As compose runs it: user name, password file and CA certificate.
                own = secured_nats.settings_for(spec.name, settings)
                url = await stack.enter_async_context(
                    running_service(spec, own, lambda: T0 + timedelta(days=100))
                )
                reporting = url
            async with httpx.AsyncClient(
                base_url=reporting, headers={"Authorization": "Bearer perm-test"}
            ) as api:

                async def derived_events_counted() -> dict[str, Any] | None:
                    f: dict[str, Any] = (await api.get("/v1/national")).json()["figures"]
                    ok = (
                        f["clinicians_completed"] == 1
                        and f["outcomes"]["rmdq"]["month_3"]["n"] == 1
                    )
                    return f if ok else None

                await wait_for(
                    derived_events_counted,
                    60,
                    "training_completed and outcome.recorded published and counted",
                )

                async def share_exported() -> bool:
                    # RTH's two patient.assessed (and one malformed) of the 10,000 allowed.
                    text = (await api.get("/metrics")).text
                    return (
                        'ibest_trust_share_used_ratio{event="patient.assessed",trust="RTH"} 0.0003'
                    ) in text

                await wait_for(share_exported, 60, "each trust's share of the stream exported")
            # patient.assessed: outcomes, notifications, reporting; clinician.enrolled:
            # enrolment, notifications, reporting.
            letters = await wait_for(
                lambda: _letters(admin, 6), 60, "each service dead-lettering the malformed events"
            )
            assert {d.consumer for d in letters} == {
                "enrolment",
                "outcomes",
                "notifications",
                "reporting",
            }
            # The contact lookup: only notifications may ask, and enrolment answers it.
            notifications = await secured_nats.connect("notifications")
            reply = await notifications.request(
                "ibest.rpc.enrolment.contact",
                json.dumps({"clinician_ref": ref}).encode(),
                timeout=10,
            )
            assert json.loads(reply.data)["contact_email"] == "perm.test@example.nhs.uk"
            await notifications.drain()
            # A trust cannot ask for a clinician's email.
            with pytest.raises(nats.errors.Error):
                await trust.request(
                    "ibest.rpc.enrolment.contact",
                    json.dumps({"clinician_ref": ref}).encode(),
                    timeout=2,
                )
    finally:
        await trust.drain()
        await admin.drain()


async def _letters(nc: NatsClient, n: int) -> list[Any] | None:
    letters = await list_dead_letters(nc.jetstream())
    return letters if len(letters) >= n else None
