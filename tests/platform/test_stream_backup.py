"""The restore drill (docs/operations.md): snapshot the events stream through JetStream's own
API, restore it into a fresh nats-server, and `ibest reporting rebuild` there gives the same
figures as the original. Real servers throughout."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient

from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from ibest.cli import streams_restore, streams_snapshot
from ibest.local.processes import free_port, nats_server, start_and_wait
from ibest.stream_backup import BackupError, restore, snapshot
from services.reporting import bootstrap
from services.reporting.cli import rebuild_command
from tests.harness import fresh_settings, publish_raw
from tests.reporting import dataset as ds


@pytest.fixture(autouse=True)
def with_version_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.envelope.catalogue", lambda: ds.CATALOGUE)


async def figures_after_rebuild(settings: Settings) -> dict[str, Any]:
    """`ibest reporting rebuild` against `settings`, then every raw figure it gives."""
    assert await rebuild_command(argparse.Namespace(), settings) == 0
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    try:
        reports = bootstrap.for_commands(mongo[settings.database_of(bootstrap.NAME)]).reports
        answers = [await reports.national(True), await reports.trusts(True)]
        answers += [await reports.trust(t, True) for t in ("RTH", "RXF", "R0A")]
        return {"answers": answers}
    finally:
        await mongo.close()


async def test_snapshot_restore_into_a_fresh_server_and_rebuild_gives_the_same_figures(
    settings: Settings,
    js: JetStreamContext,
    tmp_path: Path,
    mongodb_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for event, msg_id in ds.shuffled_with_duplicates():
        assert await publish_raw(js, event, msg_id=msg_id)
    original = await js.stream_info(EVENTS_STREAM)
    expected = await figures_after_rebuild(settings)
    assert expected["answers"][0]["figures"]["clinicians_enrolled"] > 0

    # the operator's command, then the module it runs (its answer checked too)
    backup = tmp_path / "backup"
    assert (
        await streams_snapshot(argparse.Namespace(stream=EVENTS_STREAM, out=backup), settings) == 0
    )
    nc = await nats.connect(settings.nats_url)
    try:
        taken = await snapshot(nc, EVENTS_STREAM, tmp_path / "again")
    finally:
        await nc.drain()
    assert taken.messages == original.state.messages > 0
    assert (backup / "stream.tar.s2").stat().st_size > 0
    # a backup is never overwritten: the command refuses, says why, and leaves it whole
    kept = {p.name: p.read_bytes() for p in backup.iterdir()}
    assert (
        await streams_snapshot(argparse.Namespace(stream=EVENTS_STREAM, out=backup), settings) == 1
    )
    assert {p.name: p.read_bytes() for p in backup.iterdir()} == kept
    assert "already holds files" in capsys.readouterr().err
    # a snapshot that fails (no such stream) leaves nothing behind
    with pytest.raises(BackupError):
        nc = await nats.connect(settings.nats_url)
        try:
            await snapshot(nc, "NO_SUCH_STREAM", tmp_path / "failed")
        finally:
            await nc.drain()
    assert not (tmp_path / "failed").exists() and not (tmp_path / "failed.partial").exists()

    port = free_port()
    fresh = start_and_wait(
        nats_server(port, tmp_path / "fresh-store", tmp_path / "fresh.log"), "127.0.0.1", port
    )
    try:
        url = f"nats://127.0.0.1:{port}"
        restored_settings = fresh_settings(url, mongodb_url)
        assert await streams_restore(argparse.Namespace(source=backup), restored_settings) == 0
        nc = await nats.connect(url)
        try:
            restored = await nc.jetstream().stream_info(EVENTS_STREAM)
            assert restored.state.last_seq == original.state.last_seq
            assert restored.config.subjects == original.config.subjects
            with pytest.raises(BackupError, match=r"already in use|exists"):
                await restore(nc, tmp_path / "again")  # never over a live stream
        finally:
            await nc.drain()
        assert await figures_after_rebuild(restored_settings) == expected
    finally:
        with contextlib.suppress(Exception):
            fresh.stop()
