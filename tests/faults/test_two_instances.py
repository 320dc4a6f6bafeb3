"""Two instances of every consuming service at once: figures exact, no reminder twice.

Both instances of a service share its durable consumer (JetStream spreads the messages
between them) and its database, so this proves the handlers are safe under concurrency,
not just under redelivery. Reminders are counted where they land: a real SMTP server.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from tests.faults.stack import (
    Processes,
    await_figures,
    consumer_idle,
    live_rollout,
    notify_env,
    now_utc,
    publish_all,
    scheduler_passed_since,
    stream_count,
)
from tests.harness import dead_letters, wait_for
from tests.mailbox import Mailbox

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it


async def test_two_instances_of_every_service_count_exactly_and_remind_once(
    settings: Settings,
    js: JetStreamContext,
    procs: Processes,
    tmp_path: Path,
    smtp: tuple[Mailbox, int],
) -> None:
    rollout = live_rollout(clinicians=36, patients=24, now=now_utc())
    box, smtp_port = smtp
    first = [
        procs.service(name, settings, tmp_path).start(wait_ready=False)
        for name in ("enrolment", "enrolment", "outcomes", "outcomes", "reporting", "reporting")
    ]
    for svc in first:
        svc.wait_ready()
    await publish_all(js, rollout.events)
    # Contacts must be stored before reminders are due, or a reminder fails for want
    # of an address (a real race of the rollout, not of the instances under test).
    await wait_for(lambda: consumer_idle(js, "enrolment"), 60, "enrolment caught up")
    env = notify_env(smtp_port, rollout.site_teams)
    notifiers = [
        procs.service("notifications", settings, tmp_path, **env).start(wait_ready=False)
        for _ in range(2)
    ]
    for svc in notifiers:
        svc.wait_ready()
    reporting = [s for s in first if s.name == "reporting"]
    for svc in reporting:
        figures = await await_figures(
            svc.url, rollout.expected, 60, "exact figures from each reporting instance", *first
        )
        assert figures["outcomes"]["rmdq"]["month_3"]["n"] == rollout.outcomes_n
    addresses = rollout.emails + [a for team in rollout.site_teams.values() for a in team]

    async def everyone_reminded() -> bool:
        return all(box.count_to(a) >= 1 for a in addresses)

    try:
        await wait_for(everyone_reminded, 60, "every expected reminder sent")
    except AssertionError as exc:
        missing = [a for a in addresses if box.count_to(a) == 0]
        logs = "\n".join(svc.proc.tail(20) for svc in notifiers if svc.proc)
        raise AssertionError(f"{exc}; not reminded: {missing}\n{logs}") from None
    # Let both schedulers make a full pass more after the last send, then count.
    settled = now_utc()
    for svc in notifiers:
        await wait_for(
            partial(scheduler_passed_since, svc.url, settled),
            30,
            "another scheduler pass of each instance",
        )
    await wait_for(lambda: consumer_idle(js, "notifications"), 30, "notifications idle")
    twice = {a: box.count_to(a) for a in addresses if box.count_to(a) != 1}
    assert twice == {}, f"reminders sent more than once: {twice}"
    assert len(box.received) == len(addresses), "a message went to someone unexpected"
    sent = await stream_count(js, "ibest.v1.*.notification.sent")
    assert sent == len(addresses)
    assert (
        await stream_count(js, "ibest.v1.*.clinician.training_completed")
        == (rollout.expected["clinicians_completed"])
    )
    assert await dead_letters(js) == []
