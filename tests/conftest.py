"""Session servers and per-test isolation.

A real nats-server (JetStream, temporary store) and a real MongoDB-wire server (SecantusDB)
are started once per session on free ports. Set NATS_URL and/or MONGODB_URL to use servers
of your own instead (a real mongod works unchanged). Each test gets freshly declared streams
and its own database prefix.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ibest.backbone.settings import Settings
from ibest.backbone.streams import DEADLETTER_STREAM, EVENTS_STREAM, ensure_streams
from ibest.local.processes import free_port, nats_server, secantus_server, start_and_wait
from ibest.registry import consumers
from tests.harness import ID_KEY, SERVICE_TOKEN, SERVICE_TOKEN_ID, fresh_settings


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("NATS_URL"):
        yield os.environ["NATS_URL"]
        return
    port = free_port()
    home = tmp_path_factory.mktemp("nats")
    proc = start_and_wait(nats_server(port, home / "store", home / "nats.log"), "127.0.0.1", port)
    yield f"nats://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("MONGODB_URL"):
        yield os.environ["MONGODB_URL"]
        return
    port = free_port()
    home: Path = tmp_path_factory.mktemp("secantus")
    proc = start_and_wait(secantus_server(port, home / "data", home / "db.log"), "127.0.0.1", port)
    # SecantusDB scans its retryable-write records on every write, which real MongoDB does
    # not; no handler relies on retryable writes, so the stand-in runs without them.
    yield f"mongodb://127.0.0.1:{port}/?retryWrites=false"
    proc.stop()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
async def settings(nats_url: str, mongodb_url: str, nc: NatsClient) -> Settings:
    """Per-test settings over fresh streams (old streams and their consumers are deleted)."""
    js = nc.jetstream()
    for name in (EVENTS_STREAM, DEADLETTER_STREAM):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(name)
    s = fresh_settings(nats_url, mongodb_url)
    await ensure_streams(js, s, consumers())
    return s


@pytest.fixture
def js(nc: NatsClient, settings: Settings) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture(scope="session")
def id_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "platform_id_key"
    path.write_bytes(ID_KEY)
    return path


@pytest.fixture(scope="session")
def programme_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "programme_key"
    path.write_bytes(b"tests-programme-key-for-clinician-pseudonyms")
    return path


@pytest.fixture(autouse=True)
def platform_id_key(
    monkeypatch: pytest.MonkeyPatch, id_key_file: Path, programme_key_file: Path
) -> None:
    """Every service and command a test starts reads tests.harness.ID_KEY, and the gateway's
    course-platform part a programme key (a test may set its own)."""
    monkeypatch.setenv("IBEST_PLATFORM_ID_KEY_FILE", str(id_key_file))
    monkeypatch.setenv("IBEST_CLINICIAN_KEY_FILE", str(programme_key_file))


@pytest.fixture(autouse=True)
def service_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """The services' guarded routes accept tests.harness.SERVICE_AUTH."""
    monkeypatch.setenv("IBEST_SERVICE_TOKENS", f"{SERVICE_TOKEN_ID}:{SERVICE_TOKEN}")
