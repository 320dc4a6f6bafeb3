"""The generated NATS configuration: current, valid, and enforcing who may publish what.

A real nats-server is started with deploy/nats/nats.conf (passwords supplied through the
environment variables the config reads) and real clients try their luck.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig

from deploy.nats.generate import CONF_PATH, render
from ibest.local.processes import Managed, find_binary, free_port, start_and_wait
from ibest.simulate.trusts import load_trusts
from tests.harness import cloud_event, publish_raw, wait_for

PASSWORD_VARS = sorted(set(re.findall(r"\$(NATS_PASSWORD_[A-Z0-9_]+)", CONF_PATH.read_text())))


def test_committed_config_is_current() -> None:
    assert CONF_PATH.read_text() == render(load_trusts()), (
        "deploy/nats/nats.conf is out of date: run python -m deploy.nats.generate"
    )


def test_every_trust_has_one_publisher_and_no_password_is_written() -> None:
    text = CONF_PATH.read_text()
    for trust in load_trusts():
        assert f'"ibest.v1.{trust.code}.>"' in text
        assert f"$NATS_PASSWORD_TRUST_{trust.code}" in text
    assert not re.search(r"password:\s*[\"'A-Za-z0-9]", text), "a literal password is committed"


def _env() -> dict[str, str]:
    return {var: f"test-{var.lower()}" for var in PASSWORD_VARS}


def test_nats_server_accepts_the_config() -> None:
    result = subprocess.run([find_binary("nats-server"), "-t", "-c", str(CONF_PATH)],
                            env={**os.environ, **_env()}, capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr + result.stdout


def test_nats_server_refuses_the_config_without_passwords() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_PASSWORD_")}
    result = subprocess.run([find_binary("nats-server"), "-t", "-c", str(CONF_PATH)],
                            env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
    assert "NATS_PASSWORD_" in result.stderr + result.stdout


@pytest.fixture(scope="module")
def secured_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("nats-secured")
    port, monitor = free_port(), free_port()
    # The committed file, with only the store moved to a temporary directory.
    config = home / "nats.conf"
    config.write_text(CONF_PATH.read_text().replace('"/data/jetstream"', f'"{home / "store"}"'))
    argv = [find_binary("nats-server"), "-c", str(config), "-a", "127.0.0.1",
            "-p", str(port), "-m", str(monitor)]
    proc = start_and_wait(Managed("nats-secured", argv, home / "nats.log", env=_env()),
                          "127.0.0.1", port)
    yield f"nats://127.0.0.1:{port}"
    proc.stop()


async def _connect(url: str, user: str, **kwargs: object) -> NatsClient:
    return await nats.connect(url, user=user, password=f"test-nats_password_"
                              f"{user.lower().replace('-', '_')}", allow_reconnect=False,
                              **kwargs)  # type: ignore[arg-type]


async def _watched(url: str, user: str, **kwargs: object) -> tuple[NatsClient, list[Exception]]:
    """A client whose asynchronous errors (permission violations) are collected."""
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    return await _connect(url, user, error_cb=on_error, **kwargs), errors


@pytest.fixture
async def admin(secured_nats: str) -> AsyncIterator[NatsClient]:
    client = await _connect(secured_nats, "admin")
    js = client.jetstream()
    await js.add_stream(StreamConfig(name="IBEST_EVENTS", subjects=["ibest.v1.>"]))
    yield client
    await js.delete_stream("IBEST_EVENTS")
    await client.close()


async def _stored(admin: NatsClient) -> int:
    info = await admin.jetstream().stream_info("IBEST_EVENTS")
    return int(info.state.messages)


async def test_a_trust_publishes_for_itself_only(secured_nats: str, admin: NatsClient) -> None:
    rth, errors = await _watched(secured_nats, "trust-RTH", inbox_prefix="_INBOX_RTH")
    js = rth.jetstream()
    own = cloud_event("clinician.enrolled", {"clinician_ref": "c1", "profession": "nurse",
                                              "course_version": "1"})
    assert await publish_raw(js, own)
    assert await _stored(admin) == 1

    other = cloud_event("clinician.enrolled", {"clinician_ref": "c2", "profession": "nurse",
                                                "course_version": "1"},
                        trust="RJ1", site="RJ101")
    with pytest.raises(Exception):  # noqa: B017 - the ack never comes: no permission
        await asyncio.wait_for(publish_raw(js, other), 5)
    await wait_for(lambda: _async(any("permissions violation" in str(e).lower() for e in errors)),
                   30, "a permissions violation for RJ1's subject")
    assert await _stored(admin) == 1
    await rth.close()


async def _async(value: bool) -> bool:
    return value


def _violations(errors: list[Exception]) -> int:
    return sum("permissions violation" in str(e).lower() for e in errors)


async def test_a_trust_cannot_read_other_inboxes(secured_nats: str, admin: NatsClient) -> None:
    rth, errors = await _watched(secured_nats, "trust-RTH", inbox_prefix="_INBOX_RTH")
    await rth.subscribe("_INBOX.>")
    await rth.subscribe("ibest.rpc.enrolment.contact")
    await rth.flush()
    await wait_for(lambda: _async(_violations(errors) >= 2), 30, "two subscription violations")
    await rth.close()


async def test_services_publish_only_what_they_derive(secured_nats: str,
                                                      admin: NatsClient) -> None:
    outcomes, errors = await _watched(secured_nats, "outcomes")
    await outcomes.publish("ibest.v1.RTH.outcome.recorded", b"{}")
    await outcomes.publish("ibest.v1.RTH.clinician.training_completed", b"{}")
    await outcomes.flush()
    await wait_for(lambda: _async(any("clinician.training_completed" in str(e) for e in errors)),
                   30, "outcomes refused publishing an enrolment event")
    assert not any("outcome.recorded" in str(e) for e in errors)
    await outcomes.close()
