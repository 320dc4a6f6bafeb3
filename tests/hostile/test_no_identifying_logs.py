"""Nothing identifying is logged: run every service as a real process with its log file,
feed clinicians' contact emails (in good events and in events that are dead-lettered), send
real reminders through a real SMTP server, then search every log for an address or a line
of a message body."""

from __future__ import annotations

import json
from email import message_from_bytes
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from tests.faults.stack import (
    Processes,
    consumer_idle,
    live_rollout,
    notify_env,
    now_utc,
    publish_all,
)
from tests.harness import cloud_event, dead_letters, publish_raw, wait_for
from tests.mailbox import Mailbox

LEAKY_EMAILS = ["leak.one@example.nhs.uk", "leak.two@example.nhs.uk"]


def body_lines(raw: bytes) -> list[str]:
    """The distinctive lines of a message body (what must never reach a log)."""
    message = message_from_bytes(raw)
    parts = message.walk() if message.is_multipart() else [message]
    lines: list[str] = []
    for part in parts:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            lines += [
                ln.strip()
                for ln in payload.decode(errors="replace").splitlines()
                if len(ln.strip()) >= 16
            ]
    return lines


@pytest.mark.slow
async def test_no_contact_email_or_message_body_is_logged(
    settings: Settings,
    js: JetStreamContext,
    procs: Processes,
    tmp_path: Path,
    smtp: tuple[Mailbox, int],
) -> None:
    rollout = live_rollout(clinicians=12, patients=6, now=now_utc())
    box, smtp_port = smtp
    services = [
        procs.service(name, settings, tmp_path, IBEST_LOG_LEVEL="DEBUG").start(wait_ready=False)
        for name in ("enrolment", "outcomes", "reporting")
    ]
    for svc in services:
        svc.wait_ready()
    await publish_all(js, rollout.events)
    # Events carrying an address that are dead-lettered (their errors are logged).
    refused = [
        cloud_event(
            "clinician.enrolled",
            {
                "clinician_ref": "leak-1",
                "profession": "nurse",
                "course_version": "99",
                "contact_email": LEAKY_EMAILS[0],
            },
        ),
        cloud_event(
            "clinician.enrolled",
            {"clinician_ref": LEAKY_EMAILS[1], "profession": "nurse", "course_version": "1"},
        ),
        cloud_event(
            "clinician.enrolled",
            {
                "clinician_ref": "leak-3",
                "profession": "nurse",
                "course_version": "1",
                "contact_email": [LEAKY_EMAILS[0]],
            },
        ),
    ]
    for event in refused:
        await publish_raw(js, event)
    await publish_raw(
        js,
        json.dumps(refused[0]).encode()[:-3],
        subject="ibest.v1.RTH.clinician.enrolled",
        msg_id="leak-malformed",
    )
    await wait_for(lambda: consumer_idle(js, "enrolment"), 60, "enrolment caught up")
    notifier = procs.service(
        "notifications",
        settings,
        tmp_path,
        IBEST_LOG_LEVEL="DEBUG",
        **notify_env(smtp_port, rollout.site_teams),
    ).start()
    addresses = rollout.emails + [a for team in rollout.site_teams.values() for a in team]

    async def everyone_reminded() -> bool:
        return all(box.count_to(a) >= 1 for a in addresses)

    await wait_for(everyone_reminded, 60, "reminders sent")
    await wait_for(lambda: consumer_idle(js, "notifications"), 30, "notifications idle")
    letters = await dead_letters(js, "enrolment")
    assert len(letters) == 4, [d.error for d in letters]
    for svc in [*services, notifier]:
        svc.stop()  # flush and close: the whole log, start to clean stop
    logs = "\n".join(svc.logs() for svc in [*services, notifier])
    assert "notifications service stopped cleanly" in logs
    assert "dead-lettering" in logs  # the refused events were logged, without their content
    secrets = addresses + LEAKY_EMAILS
    for _, raw in box.received:
        secrets += body_lines(raw)
    assert len(secrets) > len(addresses) + len(LEAKY_EMAILS), "message bodies were captured"
    leaked = [s for s in secrets if s in logs]
    assert leaked == [], f"identifying text in the logs: {leaked[:5]}"
    assert "@example.nhs.uk" not in logs
