"""`ibest streams snapshot` / `ibest streams restore`: a JetStream stream backed up and
restored through JetStream's own API.

nats-py has no snapshot helper and neither the `nats` CLI nor its Go library can be
installed here, so this speaks the API directly, as they do:
- snapshot: a request to `$JS.API.STREAM.SNAPSHOT.<stream>` names an inbox; the server
  answers with the stream's configuration and state, then sends the snapshot (an
  s2-compressed tar of the stream's store) to the inbox in chunks, each carrying a reply
  subject that must be answered before it sends more (flow control), and ends with an
  empty message (a status header says if it failed);
- restore: a request to `$JS.API.STREAM.RESTORE.<stream>` with that configuration and state
  answers with a subject; each chunk is sent there as a request (answered when stored) and
  an empty request ends it, answered with the restored stream's info.

A backup is a directory: `stream.json` (the snapshot answer: configuration and state) and
`stream.tar.s2` (the chunks as received). The stream must not exist where it is restored.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

CHUNK_BYTES = 128 * 1024
"""Chunk size asked for and sent (the server's default)."""
META = "stream.json"
DATA = "stream.tar.s2"


class BackupError(RuntimeError):
    """The server refused, or the snapshot ended with an error."""


@dataclass(frozen=True)
class Snapshot:
    stream: str
    messages: int
    bytes: int


def _answer(msg: Msg, what: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(msg.data)
    if "error" in body:
        error = body["error"]
        raise BackupError(f"{what}: {error.get('description', error)}")
    return body


async def snapshot(nc: NatsClient, stream: str, out: Path, timeout: float = 60) -> Snapshot:
    """Write `stream`'s snapshot to the directory `out`, which must be new (or empty): a
    backup is never overwritten, and a snapshot that fails leaves nothing behind. It is
    written into `<out>.partial` and renamed to `out` once whole."""
    if await asyncio.to_thread(_holds_files, out):
        raise BackupError(
            f"{out} already holds files: give a new directory (a backup is never overwritten)"
        )
    partial = out.with_name(out.name + ".partial")
    await asyncio.to_thread(shutil.rmtree, partial, True)
    await asyncio.to_thread(partial.mkdir, parents=True)
    try:
        taken = await _snapshot_into(nc, stream, partial, timeout)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, partial, True)
        raise
    await asyncio.to_thread(_move_into_place, partial, out)
    return taken


def _holds_files(out: Path) -> bool:
    return out.exists() and (not out.is_dir() or any(out.iterdir()))


def _move_into_place(partial: Path, out: Path) -> None:
    if out.exists():
        out.rmdir()  # empty (`_holds_files`)
    partial.rename(out)


async def _snapshot_into(nc: NatsClient, stream: str, out: Path, timeout: float) -> Snapshot:
    inbox = nc.new_inbox()
    chunks: asyncio.Queue[Msg] = asyncio.Queue()

    async def received(msg: Msg) -> None:
        await chunks.put(msg)

    sub = await nc.subscribe(inbox, cb=received)
    try:
        request = {"deliver_subject": inbox, "chunk_size": CHUNK_BYTES, "no_consumers": True}
        reply = await nc.request(
            f"$JS.API.STREAM.SNAPSHOT.{stream}", json.dumps(request).encode(), timeout=timeout
        )
        meta = _answer(reply, f"snapshot of {stream}")
        data = await asyncio.to_thread((out / DATA).open, "wb")
        try:
            while True:
                msg = await asyncio.wait_for(chunks.get(), timeout)
                if not msg.data:
                    status = (msg.headers or {}).get("Nats-Status", "")
                    description = (msg.headers or {}).get("Description", "")
                    if status and status != "204" and not description.endswith("EOF"):
                        raise BackupError(f"snapshot of {stream} failed: {status} {description}")
                    break
                await asyncio.to_thread(data.write, msg.data)
                if msg.reply:
                    await nc.publish(msg.reply, b"")  # flow control: ready for more
        finally:
            data.close()
    finally:
        await sub.unsubscribe()
    await asyncio.to_thread((out / META).write_text, json.dumps(meta, indent=2) + "\n")
    state = meta.get("state", {})
    return Snapshot(stream, int(state.get("messages", 0)), int(state.get("bytes", 0)))


async def restore(nc: NatsClient, source: Path, timeout: float = 60) -> dict[str, Any]:
    """Restore the stream backed up in `source`; the restored stream's info."""
    meta = json.loads(await asyncio.to_thread((source / META).read_text))
    stream = meta["config"]["name"]
    reply = await nc.request(
        f"$JS.API.STREAM.RESTORE.{stream}",
        json.dumps({"config": meta["config"], "state": meta["state"]}).encode(),
        timeout=timeout,
    )
    target = _answer(reply, f"restore of {stream}")["deliver_subject"]
    data = await asyncio.to_thread((source / DATA).open, "rb")
    try:
        while chunk := await asyncio.to_thread(data.read, CHUNK_BYTES):
            await nc.request(target, chunk, timeout=timeout)
    finally:
        data.close()
    done = await nc.request(target, b"", timeout=timeout * 5)
    return _answer(done, f"restore of {stream}")
