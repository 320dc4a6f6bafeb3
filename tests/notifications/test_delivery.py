"""Sending outcomes end to end: retries, permanent failures, contact lookups, GOV.UK Notify
(against a local HTTP server that checks what Notify checks), callbacks, opt-out CLI."""

from __future__ import annotations

import argparse
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from ibest.backbone.runtime import ServiceSpec
from ibest.backbone.settings import Settings
from services.notifications.cli import opt_out_command
from services.notifications.service import build_spec
from services.notifications.settings import NotificationSettings
from tests.harness import SERVICE_AUTH, cloud_event, publish_raw, running_service, wait_for
from tests.mailbox import Mailbox
from tests.notifications.conftest import (
    Contacts,
    FakeClock,
    Published,
    now_true,
    passed,
    reminder,
    stored,
)

ENROLLED_AT = datetime(2025, 3, 3, 9, tzinfo=UTC)
DUE = ENROLLED_AT + timedelta(days=7, hours=1)  # Monday 10 March, 10:00


async def enrol(js: JetStreamContext, ref: str, site: str = "RTH08") -> None:
    await publish_raw(
        js,
        cloud_event(
            "clinician.enrolled",
            {"clinician_ref": ref, "profession": "nurse", "course_version": "1"},
            site=site,
            time=ENROLLED_AT,
        ),
    )


async def test_retry_then_success_and_permanent_failures_published(
    nsettings: Settings,
    js: JetStreamContext,
    smtp_env: Mailbox,
    service: ServiceSpec,
    contacts: Contacts,
    published: Published,
) -> None:
    contacts.emails |= {
        "c-flaky": "flaky@example.nhs.uk",
        "c-bad": "bad@example.nhs.uk",
        "c-none": None,
    }
    smtp_env.script["flaky@example.nhs.uk"] = ["451 4.3.0 try again later", "250"]
    smtp_env.script["bad@example.nhs.uk"] = ["550 5.1.1 no such mailbox"]
    for ref in ("c-flaky", "c-bad", "c-none"):
        await enrol(js, ref)
    clock = FakeClock(DUE)
    async with running_service(service, nsettings, clock) as base:
        await wait_for(lambda: now_true(len(published.of("failed")) == 2), 30, "two failures")
        flaky = await reminder(base, "training:c-flaky:1")
        assert flaky is not None and flaky["status"] == "pending" and flaky["attempts"] == 1
        assert "451" in flaky["last_error"]
        clock.advance(seconds=5)  # past the retry's back-off
        await wait_for(
            lambda: now_true(published.of("sent", "training:c-flaky:1")), 30, "sent on retry"
        )
    failed = {e["data"]["recipient_ref"]: e["data"] for e in published.of("failed")}
    assert failed["c-none"]["reason"] == "no contact email"
    assert "refused the recipient" in failed["c-bad"]["reason"]
    assert failed["c-bad"]["notification_id"] == "training:c-bad:1"
    assert "bad@example.nhs.uk" not in json.dumps(published.events)
    assert len(smtp_env.to("flaky@example.nhs.uk")) == 1
    assert len(published.of("sent")) == 1


async def test_no_responder_is_retried_and_missing_site_team_fails(
    nsettings: Settings,
    js: JetStreamContext,
    nc: NatsClient,
    smtp_env: Mailbox,
    service: ServiceSpec,
    published: Published,
) -> None:
    await enrol(js, "c-wait")
    await publish_raw(
        js,
        cloud_event(
            "patient.assessed",
            {"patient_ref": "p-lonely", "timepoint": "baseline", "measures": {"pain_nrs": 6}},
            site="RTH07",
            time=ENROLLED_AT - timedelta(days=91),
        ),
    )
    clock = FakeClock(DUE)
    async with running_service(service, nsettings, clock) as base:
        doc = await wait_for(lambda: _attempted("training:c-wait:1", base), 30, "an attempt")
        assert doc["status"] == "pending" and "enrolment contact lookup" in doc["last_error"]
        [site_failure] = await wait_for(lambda: now_true(published.of("failed")), 30, "no team")
        assert site_failure["data"]["reason"] == "no site team address configured for RTH07"
        assert site_failure["data"]["recipient_ref"] == "RTH07"

        async def respond(msg: Msg) -> None:
            await msg.respond(
                json.dumps(
                    {
                        "clinician_ref": "c-wait",
                        "found": True,
                        "contact_email": "wait@example.nhs.uk",
                    }
                ).encode()
            )

        sub = await nc.subscribe("ibest.rpc.enrolment.contact", cb=respond)
        clock.advance(seconds=5)
        await wait_for(lambda: now_true(published.of("sent", "training:c-wait:1")), 30, "sent")
        await sub.unsubscribe()
    assert len(smtp_env.to("wait@example.nhs.uk")) == 1


async def _attempted(rid: str, base: str) -> dict[str, Any] | None:
    doc = await reminder(base, rid)
    return doc if doc and doc.get("attempts") else None


# GOV.UK Notify ------------------------------------------------------------------------------

SERVICE_ID, SECRET = str(uuid.uuid4()), str(uuid.uuid4())
API_KEY = f"ibest_test-{SERVICE_ID}-{SECRET}"
TEMPLATES = {"training_start": str(uuid.uuid4()), "training_thanks": str(uuid.uuid4())}


class FakeNotify(BaseHTTPRequestHandler):
    """POST /v2/notifications/email as Notify documents it; answers scripted per address."""

    received: list[dict[str, Any]]
    problems: list[str]
    script: dict[str, list[int]]

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization", "")
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), SECRET, algorithms=["HS256"])
            if claims["iss"] != SERVICE_ID or not auth.startswith("Bearer "):
                self.problems.append("wrong issuer")
        except jwt.InvalidTokenError as exc:
            self.problems.append(f"bad token: {exc}")
            self._answer(
                403,
                {
                    "errors": [{"error": "AuthError", "message": "Invalid token"}],
                    "status_code": 403,
                },
            )
            return
        if self.path != "/v2/notifications/email":
            self.problems.append(f"path {self.path}")
        self.received.append(body)
        status = (self.script.get(body["email_address"]) or [201]).pop(0)
        if status == 201:
            self._answer(
                201,
                {
                    "id": str(uuid.uuid4()),
                    "reference": body.get("reference"),
                    "content": {"subject": "s", "body": "b", "from_email": "ibest@notify.gov.uk"},
                    "uri": "https://api.notifications.service.gov.uk/v2/notifications/x",
                    "template": {"id": body["template_id"], "version": 1, "uri": "https://x"},
                },
            )
        else:
            error = {429: "RateLimitError", 500: "Exception", 400: "BadRequestError"}[status]
            self._answer(
                status, {"errors": [{"error": error, "message": "scripted"}], "status_code": status}
            )

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def notify() -> Iterator[tuple[type[FakeNotify], ServiceSpec]]:
    """A fake GOV.UK Notify, and the service sending to it (explicit settings)."""
    handler = type("Notify", (FakeNotify,), {"received": [], "problems": [], "script": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield (
        handler,
        build_spec(
            NotificationSettings(
                IBEST_NOTIFY_CHANNEL="notify",
                IBEST_NOTIFY_API_KEY=API_KEY,
                IBEST_NOTIFY_BASE_URL=f"http://127.0.0.1:{server.server_port}",
                IBEST_NOTIFY_TEMPLATE_TRAINING_START=TEMPLATES["training_start"],
                IBEST_NOTIFY_TEMPLATE_TRAINING_THANKS=TEMPLATES["training_thanks"],
                IBEST_NOTIFY_POLL_SECONDS=0.1,
                IBEST_NOTIFY_RETRY_BASE_SECONDS=0,
                IBEST_NOTIFY_CALLBACK_TOKEN="callback-secret",
            )
        ),
    )
    server.shutdown()


async def test_notify_channel_rate_limit_server_error_refusal_and_callback(
    nsettings: Settings,
    js: JetStreamContext,
    notify: tuple[type[FakeNotify], ServiceSpec],
    contacts: Contacts,
    published: Published,
) -> None:
    fake, spec = notify
    people = {"n-ok": 201, "n-429": 429, "n-500": 500, "n-400": 400}
    for ref, first in people.items():
        contacts.emails[ref] = f"{ref}@example.nhs.uk"
        fake.script[f"{ref}@example.nhs.uk"] = [first, 201]
        await enrol(js, ref)
    clock = FakeClock(DUE)
    async with running_service(spec, nsettings, clock) as base:
        await wait_for(
            lambda: now_true(len(published.of("sent")) == 1 and len(published.of("failed")) == 1),
            30,
            "first pass",
        )
        clock.advance(seconds=5)
        await wait_for(lambda: now_true(len(published.of("sent")) == 3), 30, "retries sent")
        async with httpx.AsyncClient(base_url=base, headers=SERVICE_AUTH) as client:
            status = {
                "id": str(uuid.uuid4()),
                "reference": "training:n-ok:1",
                "to": "n-ok@example.nhs.uk",
                "status": "delivered",
                "created_at": "2025-03-10T10:00:00.000000Z",
                "completed_at": "2025-03-10T10:00:05.000000Z",
                "sent_at": "2025-03-10T10:00:01.000000Z",
                "notification_type": "email",
            }
            url = "/v1/notify/callback"
            assert (await client.post(url, json=status)).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert (await client.post(url, json=status, headers=wrong)).status_code == 401
            right = {"Authorization": "Bearer callback-secret"}
            answer = await client.post(url, json=status, headers=right)
            assert answer.status_code == 200 and answer.json()["matched"] is True
        doc = await reminder(base, "training:n-ok:1")
        assert doc is not None and doc["delivery_status"] == "delivered"
        kept = await stored(nsettings, "delivery_statuses", status["id"])
        assert kept is not None and kept["status"] == "delivered" and "to" not in kept
    assert fake.problems == []
    by_address: dict[str, list[dict[str, Any]]] = {}
    for body in fake.received:
        by_address.setdefault(body["email_address"], []).append(body)
    assert {a: len(b) for a, b in by_address.items()} == {
        "n-ok@example.nhs.uk": 1,
        "n-429@example.nhs.uk": 2,
        "n-500@example.nhs.uk": 2,
        "n-400@example.nhs.uk": 1,
    }
    sent_first = by_address["n-ok@example.nhs.uk"][0]
    assert sent_first["template_id"] == TEMPLATES["training_start"]
    assert sent_first["reference"] == "training:n-ok:1"
    assert sent_first["personalisation"]["course_url"].startswith("https://")
    [refused] = published.of("failed")
    assert refused["data"]["recipient_ref"] == "n-400" and "400" in refused["data"]["reason"]
    assert {e["data"]["channel"] for e in published.events} == {"notify"}
    assert {e["data"]["template_id"] for e in published.events} == {TEMPLATES["training_start"]}


async def test_opt_out_from_the_cli_is_honoured_at_send_time(
    nsettings: Settings,
    js: JetStreamContext,
    smtp_env: Mailbox,
    service: ServiceSpec,
    contacts: Contacts,
    published: Published,
) -> None:
    contacts.emails |= {"c-cli": "cli@example.nhs.uk", "c-mark": "mark@example.nhs.uk"}
    await enrol(js, "c-cli")
    clock = FakeClock(DUE.replace(hour=20))  # due, but outside working hours: planned only
    async with running_service(service, nsettings, clock) as base:
        await wait_for(lambda: reminder(base, "training:c-cli:1"), 30, "planned")
        args = argparse.Namespace(clinician_ref="c-cli", undo=False)
        assert await opt_out_command(args, nsettings) == 0
        await enrol(js, "c-mark")
        clock.set(DUE + timedelta(days=1))
        await wait_for(lambda: now_true(published.of("sent", "training:c-mark:1")), 30, "marker")
        await wait_for(lambda: passed(base, clock), 30, "pass")
        doc = await reminder(base, "training:c-cli:1")
        assert doc is not None and doc["status"] == "cancelled"
    assert smtp_env.to("cli@example.nhs.uk") == []
