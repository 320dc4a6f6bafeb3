"""NATS stopped: the gateway answers 503 with Retry-After, and reports nothing accepted that
the stream did not store. Runs on a nats-server of its own, stopped and restarted."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from ibest.backbone.settings import Settings
from ibest.backbone.streams import ensure_streams
from ibest.local.processes import free_port
from ibest.registry import consumers
from services.gateway.service import build_spec
from services.gateway.settings import GatewaySettings
from tests.faults.stack import connect, start_nats, wait_port_closed
from tests.gateway.conftest import KeyMaker
from tests.harness import cloud_event, running_service, stream_events, wait_for

BATCH = {"Content-Type": "application/cloudevents-batch+json"}


def started(n: int) -> list[dict[str, Any]]:
    return [
        cloud_event(
            "module.started",
            {
                "clinician_ref": f"c-{uuid.uuid4().hex[:6]}",
                "module_id": "m01-understanding-back-pain",
            },
        )
        for _ in range(n)
    ]


@pytest.mark.slow
async def test_nats_stopped_gives_503_and_nothing_reported_accepted_is_missing(
    settings: Settings, new_key: KeyMaker, tmp_path: Path
) -> None:
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    server = start_nats(port, tmp_path / "store", tmp_path / "nats.log")
    try:
        own = settings.model_copy(update={"nats_url": url})
        admin_nc = await connect(url)
        await ensure_streams(admin_nc.jetstream(), own, consumers())
        auth = {"Authorization": await new_key("RTH"), **BATCH}
        before, during = started(5), started(40)
        # /readyz is polled 20 times a second below: an address budget that does not run out
        spec = build_spec(
            GatewaySettings(
                IBEST_GATEWAY_PUBLISH_TIMEOUT=1,
                IBEST_GATEWAY_ADDRESS_RATE=10_000,
                IBEST_GATEWAY_ADDRESS_BURST=10_000,
            )
        )
        async with (
            running_service(spec, own) as base,
            httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as client,
        ):
            assert (await client.post("/v1/events", json=before)).status_code == 200
            server.stop()
            wait_port_closed(port)
            down = await client.post("/v1/events", json=during)
            assert down.status_code == 503, down.text
            assert int(down.headers["Retry-After"]) >= 1
            results = down.json()["results"]
            assert [r["id"] for r in results] == [e["id"] for e in during]
            said_accepted = {r["id"] for r in results if r["status"] == "accepted"}
            not_stored = [r for r in results if r["status"] != "accepted"]
            assert not_stored and all(
                r["status"] == "rejected" and "unreachable" in r["errors"][0]["message"]
                for r in not_stored
            )
            assert (await client.get("/readyz")).status_code == 503

            server = start_nats(port, tmp_path / "store", tmp_path / "nats.log")

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await wait_for(ready, 30, "the gateway reconnected to NATS")
            stored_while_down = {e["id"] for e in await stream_events(admin_nc.jetstream(), ">")}
            assert said_accepted <= stored_while_down
            resent = await client.post("/v1/events", json=during)
            assert resent.status_code == 200
            statuses = {r["id"]: r["status"] for r in resent.json()["results"]}
            assert {i for i, s in statuses.items() if s == "duplicate"} == said_accepted | (
                stored_while_down - {e["id"] for e in before}
            )
        stored = [e["id"] for e in await stream_events(admin_nc.jetstream(), ">")]
        assert sorted(stored) == sorted(e["id"] for e in before + during)  # each once
        await admin_nc.drain()
    finally:
        server.stop()
