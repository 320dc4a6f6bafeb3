"""The generated NATS configuration: current, valid, and holding against a trust's attacks.

A real nats-server runs the committed deploy/nats/nats.conf (secrets from the operator's
tool, TLS, passwords included as in compose); real clients try issue 14's attacks and an
admin reads the streams afterwards to check nothing landed where it should not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError

from deploy.nats.generate import (
    CONF_PATH,
    DERIVED,
    RAW_EVENTS,
    all_users,
    file_store_gib,
    render,
    trust_share_bytes,
)
from ibest.backbone.publisher import EventPublisher, Publishing
from ibest.backbone.settings import Settings, inbox_prefix
from ibest.backbone.streams import (
    DEADLETTER_STREAM,
    EVENTS_STREAM,
    GATEWAY_CONSUMER,
    ensure_streams,
    trust_share_used,
)
from ibest.local.processes import find_binary
from ibest.registry import consumers
from ibest.simulate.trusts import load_trusts
from shared.envelope import parse_event
from tests.deploy.secured_nats import SecuredNats, write_server_config
from tests.harness import ID_KEY, cloud_event, publish_raw, wait_for

ENROLLED = {"clinician_ref": "c1", "profession": "nurse", "course_version": "1"}
SHARE = 5  # events per subject in these tests, so a share is exhausted quickly


def test_committed_config_is_current() -> None:
    assert CONF_PATH.read_text() == render(load_trusts()), (
        "deploy/nats/nats.conf is out of date: run python -m deploy.nats.generate"
    )


def test_every_trust_has_its_own_account_and_no_password_is_written() -> None:
    text = CONF_PATH.read_text()
    for trust in load_trusts():
        assert f"  TRUST_{trust.code} {{" in text
        assert f"$NATS_PASSWORD_TRUST_{trust.code}" in text
        # Only the allow list of raw events: no wildcard, nothing derived.
        assert f'"ibest.v1.{trust.code}.>"' not in text
    assert not re.search(r"password:\s*[\"'A-Za-z0-9]", text), "a literal password is committed"


def test_users_subscribe_only_to_their_own_inbox() -> None:
    for user in all_users(load_trusts()):
        own = (
            f"_INBOX_{user.name[6:]}.>"
            if user.name.startswith("trust-")
            else f"{inbox_prefix(user.name)}.>"
        )
        extra = set(user.subscribe) - {own}
        assert extra <= ({"ibest.rpc.enrolment.contact"} if user.name == "enrolment" else set())
        assert not any(
            s.startswith("$JS.API.CONSUMER.CREATE") or s.startswith("$JS.API.CONSUMER.DURABLE")
            for s in user.publish
            if user.name != "admin"
        )


def test_the_store_holds_every_trusts_full_share() -> None:
    trusts = load_trusts()
    per_subject = Settings.model_fields["events_per_subject"].default
    subjects = len(RAW_EVENTS) + sum(len(v) for v in DERIVED.values())
    assert trust_share_bytes(per_subject) == subjects * per_subject * 64 * 1024
    assert file_store_gib(trusts, per_subject) * 1024**3 > len(trusts) * trust_share_bytes(
        per_subject
    )
    assert f"max_file_store: {file_store_gib(trusts, per_subject)}GB" in CONF_PATH.read_text()


def _check_config(
    tmp: Path, secrets: Path, with_passwords: bool
) -> subprocess.CompletedProcess[str]:
    config = write_server_config(tmp, secrets)
    if not with_passwords:
        (tmp / "passwords.conf").unlink()
    return subprocess.run(
        [find_binary("nats-server"), "-t", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_nats_server_accepts_the_config(tmp_path: Path, nats_secrets: Path) -> None:
    result = _check_config(tmp_path, nats_secrets, with_passwords=True)
    assert result.returncode == 0, result.stderr + result.stdout


def test_nats_server_refuses_the_config_without_passwords(
    tmp_path: Path, nats_secrets: Path
) -> None:
    result = _check_config(tmp_path, nats_secrets, with_passwords=False)
    assert result.returncode != 0
    assert "passwords.conf" in result.stderr + result.stdout


async def test_plain_text_connections_are_refused(secured_nats: SecuredNats) -> None:
    plain = secured_nats.url.replace("tls://", "nats://")
    password = secured_nats.password_file("admin").read_text().strip()
    with pytest.raises(Exception):  # noqa: B017 - the server demands TLS
        await nats.connect(
            plain, user="admin", password=password, allow_reconnect=False, connect_timeout=3
        )


@pytest.fixture
async def admin(secured_nats: SecuredNats) -> AsyncIterator[NatsClient]:
    """The operator: fresh streams and consumers (`ibest streams apply`), small shares."""
    client = await secured_nats.connect("admin")
    js = client.jetstream()
    for name in (EVENTS_STREAM, DEADLETTER_STREAM):
        with contextlib.suppress(APIError):
            await js.delete_stream(name)
    await ensure_streams(js, Settings(IBEST_EVENTS_PER_SUBJECT=SHARE), consumers())
    yield client
    await client.close()


class Watched:
    """A client whose asynchronous errors (permission violations) are collected."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(exc)

    def violations(self, needle: str = "") -> int:
        return sum(
            "permissions violation" in str(e).lower() and needle.lower() in str(e).lower()
            for e in self.errors
        )

    async def wait(self, n: int, needle: str = "") -> None:
        async def seen() -> bool:
            return self.violations(needle) >= n

        await wait_for(seen, 30, f"{n} permission violation(s) {needle}")


async def _subjects(admin: NatsClient, stream: str) -> dict[str, int]:
    info = await admin.jetstream().stream_info(stream, subjects_filter=">")
    return dict(info.state.subjects or {})


async def _stored(admin: NatsClient, stream: str = EVENTS_STREAM) -> int:
    return int((await admin.jetstream().stream_info(stream)).state.messages)


def _event(name: str = "clinician.enrolled", trust: str = "RTH", **data: Any) -> dict[str, Any]:
    site = {"RTH": "RTH08", "RNU": "RNU01", "RJ1": "RJ101"}[trust]
    return cloud_event(name, {**ENROLLED, **data}, trust=trust, site=site)


async def test_attack_1_a_trust_publishes_only_its_own_raw_events(
    secured_nats: SecuredNats, admin: NatsClient
) -> None:
    watched = Watched()
    rth = await secured_nats.connect("trust-RTH", error_cb=watched.on_error)
    assert await publish_raw(rth.jetstream(), _event())
    forged = [
        "clinician.training_started",
        "clinician.training_completed",
        "outcome.recorded",
        "notification.sent",
        "notification.failed",
        "junk.not.an.event",
        "clinician.enrolled.extra",
    ]
    for name in forged:
        await rth.publish(f"ibest.v1.RTH.{name}", json.dumps(_event()).encode())
    await rth.publish("ibest.v1.RJ1.clinician.enrolled", json.dumps(_event(trust="RJ1")).encode())
    await rth.publish("$JS.API.STREAM.LIST", b"")
    await rth.flush()
    await watched.wait(len(forged) + 2)
    assert await _subjects(admin, EVENTS_STREAM) == {"ibest.v1.RTH.clinician.enrolled": 1}
    await rth.close()


async def test_attack_2_a_named_reply_lands_nowhere_in_the_platform(
    secured_nats: SecuredNats, admin: NatsClient
) -> None:
    # enrolment is the one user that may listen on the contact RPC: it must hear nothing.
    enrolment = await secured_nats.connect("enrolment")
    heard: list[Msg] = []

    async def on_rpc(msg: Msg) -> None:
        heard.append(msg)

    await enrolment.subscribe("ibest.rpc.enrolment.contact", cb=on_rpc)
    await enrolment.flush()
    rth = await secured_nats.connect("trust-RTH")
    replies = [
        "ibest.v1.RNU.clinician.enrolled",
        "ibest.deadletter.enrolment",
        "ibest.rpc.enrolment.contact",
        "ibest.v1.RTH.clinician.enrolled",
    ]
    for i, reply in enumerate(replies):
        event = _event(clinician_ref=f"c-reply-{i}")
        await rth.publish(
            "ibest.v1.RTH.clinician.enrolled",
            json.dumps(event).encode(),
            reply=reply,
            headers={"Nats-Msg-Id": event["id"]},
        )
    # An acknowledged publish after them: JetStream stores and acknowledges in order.
    assert await publish_raw(rth.jetstream(), _event(clinician_ref="c-last"))
    await enrolment.flush()
    assert await _subjects(admin, EVENTS_STREAM) == {"ibest.v1.RTH.clinician.enrolled": 5}
    assert await _stored(admin, DEADLETTER_STREAM) == 0
    assert heard == []
    await rth.close()
    await enrolment.close()


async def test_attack_3_a_trust_exhausting_its_share_does_not_stop_another(
    secured_nats: SecuredNats, admin: NatsClient
) -> None:
    rth = (await secured_nats.connect("trust-RTH")).jetstream()
    big = "x" * 60_000  # near the largest event allowed
    for i in range(SHARE):
        assert await publish_raw(rth, _event(clinician_ref=f"c-{i}", padding=big))
    with pytest.raises(APIError, match=r"(?i)maximum messages per subject"):
        await publish_raw(rth, _event(clinician_ref="c-over", padding=big))
    used = await trust_share_used(admin.jetstream())
    assert used[("RTH", "clinician.enrolled")] == 1.0
    rnu = (await secured_nats.connect("trust-RNU")).jetstream()
    for i in range(SHARE):
        assert await publish_raw(rnu, _event(trust="RNU", clinician_ref=f"n-{i}"))
    assert await _subjects(admin, EVENTS_STREAM) == {
        "ibest.v1.RTH.clinician.enrolled": SHARE,
        "ibest.v1.RNU.clinician.enrolled": SHARE,
    }
    # Nothing is dropped to make room: the first events are still there.
    first = await admin.jetstream().get_msg(EVENTS_STREAM, 1)
    assert json.loads(first.data or b"{}")["data"]["clinician_ref"] == "c-0"


@pytest.mark.slow
async def test_attack_4_a_service_cannot_create_or_redirect_its_consumer(
    secured_nats: SecuredNats, admin: NatsClient
) -> None:
    watched = Watched()
    outcomes = await secured_nats.connect("outcomes", error_cb=watched.on_error)
    js = outcomes.jetstream()
    before = (await admin.jetstream().consumer_info(EVENTS_STREAM, "outcomes")).config
    for target in (
        "_INBOX_notifications.stolen",
        "ibest.deadletter.reporting",
        "ibest.rpc.enrolment.contact",
    ):
        with pytest.raises((asyncio.TimeoutError, nats.errors.TimeoutError)):
            await js.add_consumer(
                EVENTS_STREAM,
                ConsumerConfig(
                    durable_name="outcomes",
                    deliver_subject=target,
                    deliver_policy=DeliverPolicy.ALL,
                ),
                timeout=2,
            )
        with pytest.raises((asyncio.TimeoutError, nats.errors.TimeoutError)):
            await js.add_consumer(
                EVENTS_STREAM,
                ConsumerConfig(name="outcomes", durable_name="outcomes", deliver_subject=target),
                timeout=2,
            )
    with pytest.raises((asyncio.TimeoutError, nats.errors.TimeoutError)):
        await js.delete_consumer(EVENTS_STREAM, "outcomes")
    with pytest.raises((asyncio.TimeoutError, nats.errors.TimeoutError)):
        await js.add_consumer(EVENTS_STREAM, ConsumerConfig(durable_name="stolen"), timeout=2)
    await watched.wait(8, "$JS.API.CONSUMER")
    after = (await admin.jetstream().consumer_info(EVENTS_STREAM, "outcomes")).config
    assert after.deliver_subject is None and after.filter_subjects == before.filter_subjects
    names = [c.name for c in await admin.jetstream().consumers_info(EVENTS_STREAM)]
    assert "stolen" not in names
    trust = (await secured_nats.connect("trust-RTH")).jetstream()
    await publish_raw(
        trust,
        _event("patient.assessed", patient_ref="p1", timepoint="baseline", measures={"rmdq": 10}),
    )
    # Nor by naming the reply of a fetch or an info request: the answer (events, consumer
    # info) goes back into the service's own account, not onto a platform subject.
    # (A reply on a subject it may publish itself, such as its own dead letters, lands
    # there: nothing it could not do anyway.)
    enrolment = await secured_nats.connect("enrolment")
    heard: list[Msg] = []

    async def on_rpc(msg: Msg) -> None:
        heard.append(msg)

    await enrolment.subscribe("ibest.rpc.enrolment.contact", cb=on_rpc)
    await enrolment.flush()
    for reply in (
        "ibest.deadletter.reporting",
        "ibest.rpc.enrolment.contact",
        "_INBOX_notifications.stolen",
    ):
        await outcomes.publish(
            "$JS.API.CONSUMER.MSG.NEXT.IBEST_EVENTS.outcomes",
            json.dumps({"batch": 5, "no_wait": True}).encode(),
            reply=reply,
        )
        await outcomes.publish("$JS.API.CONSUMER.INFO.IBEST_EVENTS.outcomes", b"", reply=reply)
    await outcomes.flush()

    # A fetch of its own, after them: JetStream serves pull requests in order, so the
    # redirected ones have been dealt with when it gets the event.
    sub = await js.pull_subscribe_bind(
        "outcomes", stream=EVENTS_STREAM, inbox_prefix=inbox_prefix("outcomes").encode() + b"."
    )
    msgs = await sub.fetch(1, timeout=10)
    await msgs[0].ack_sync()
    await enrolment.flush()
    assert await _stored(admin, DEADLETTER_STREAM) == 0
    assert heard == []
    await enrolment.close()
    await outcomes.close()


async def test_attack_5_no_user_reads_another_users_inbox(
    secured_nats: SecuredNats, admin: NatsClient
) -> None:
    watched = Watched()
    simulator = await secured_nats.connect("simulator", error_cb=watched.on_error)
    for subject in ("_INBOX.>", "_INBOX_admin.>", "_INBOX_notifications.>", ">"):
        await simulator.subscribe(subject)
    await simulator.flush()
    await watched.wait(4, "subscription")
    # Its own inbox works: it publishes a raw event of any trust and gets the ack.
    assert await publish_raw(simulator.jetstream(), _event(trust="RNU"))
    # A trust cannot read the CLI's inbox either, nor the contact RPC.
    trust_watch = Watched()
    rth = await secured_nats.connect("trust-RTH", error_cb=trust_watch.on_error)
    await rth.subscribe("_INBOX_admin.>")
    await rth.subscribe("ibest.rpc.enrolment.contact")
    await rth.flush()
    await trust_watch.wait(2, "subscription")
    await simulator.close()
    await rth.close()


@pytest.mark.slow
async def test_the_cli_works_on_its_own_inbox_while_the_simulator_listens(
    secured_nats: SecuredNats, admin: NatsClient
) -> None:
    """Attack 5 end to end: `ibest deadletters list` as compose's admin (TLS, password file)
    reads a dead letter carrying an email; the simulator, listening wherever it may, hears
    nothing of it."""
    letter = json.dumps(_event(contact_email="someone@example.nhs.uk")).encode()
    await admin.jetstream().publish(
        "ibest.deadletter.enrolment",
        letter,
        headers={
            "Ibest-Dlq-Consumer": "enrolment",
            "Ibest-Dlq-Reason": "invalid",
            "Ibest-Dlq-Error": "test",
        },
    )
    watched = Watched()
    simulator = await secured_nats.connect("simulator", error_cb=watched.on_error)
    heard: list[Msg] = []

    async def on_msg(msg: Msg) -> None:
        heard.append(msg)

    await simulator.subscribe("_INBOX_simulator.>", cb=on_msg)
    await simulator.subscribe("_INBOX_admin.>", cb=on_msg)
    await simulator.flush()
    await watched.wait(1, "_INBOX_admin")
    env = {
        **os.environ,
        "NATS_URL": secured_nats.url,
        "NATS_USER": "admin",
        "NATS_PASSWORD_FILE": str(secured_nats.password_file("admin")),
        "NATS_TLS_CA_FILE": str(secured_nats.ca_file),
    }
    run = await asyncio.create_subprocess_exec(
        find_binary("ibest"),
        "deadletters",
        "list",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(run.communicate(), 60)
    assert run.returncode == 0, err.decode()
    assert [row["consumers"] for row in json.loads(out)] == [["enrolment"]]
    await simulator.flush()
    assert heard == []
    await simulator.close()


async def test_gateway_publishes_raw_events_and_reads_its_dead_letter_consumer(
    secured_nats: SecuredNats, admin: NatsClient
) -> None:
    watched = Watched()
    gateway = await secured_nats.connect("gateway", error_cb=watched.on_error)
    js = gateway.jetstream()
    assert await publish_raw(js, _event(trust="RJ1"))
    # as the gateway stores a request's events: publish_async, acks on its own inbox
    started = {"clinician_ref": "c1", "module_id": "m01-understanding-back-pain"}
    body = json.dumps(cloud_event("module.started", started, trust="RJ1", site="RJ101")).encode()
    batch: list[Publishing] = [(parse_event(None, body), body)]
    assert await EventPublisher(js, "gateway", attempts=1, id_key=ID_KEY).publish_many(batch) == [
        True
    ]
    await gateway.publish("ibest.v1.RJ1.outcome.recorded", b"{}")
    await gateway.flush()
    await watched.wait(1, "outcome.recorded")
    await admin.jetstream().publish("ibest.deadletter.enrolment", b"letter")
    sub = await js.pull_subscribe_bind(
        GATEWAY_CONSUMER,
        stream=DEADLETTER_STREAM,
        inbox_prefix=inbox_prefix("gateway").encode() + b".",
    )
    msgs = await sub.fetch(1, timeout=10)
    assert msgs[0].data == b"letter"
    await msgs[0].ack_sync()
    assert await _subjects(admin, EVENTS_STREAM) == {
        "ibest.v1.RJ1.clinician.enrolled": 1,
        "ibest.v1.RJ1.module.started": 1,
    }
    await gateway.close()
