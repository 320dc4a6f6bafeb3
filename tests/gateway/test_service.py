"""The gateway over real HTTP, real NATS and the real database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.cli import main as ibest
from services.enrolment.service import SPEC as ENROLMENT
from services.gateway.service import build_spec
from services.gateway.settings import GatewaySettings
from services.reporting.service import SPEC as REPORTING
from tests.gateway.conftest import KeyMaker
from tests.harness import (
    cloud_event,
    platform_msg_id,
    publish_raw,
    running_service,
    stream_events,
    wait_for,
)

BATCH = "application/cloudevents-batch+json"


def assessed(trust: str = "RTH", site: str = "RTH08", rmdq: int = 14) -> dict[str, Any]:
    return cloud_event(
        "patient.assessed",
        {
            "patient_ref": f"pt-{uuid.uuid4().hex[:8]}",
            "timepoint": "baseline",
            "measures": {"rmdq": rmdq},
        },
        trust=trust,
        site=site,
    )


async def post(base: str, auth: str, events: Any, content_type: str = BATCH) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base) as client:
        return await client.post(
            "/v1/events", json=events, headers={"Authorization": auth, "Content-Type": content_type}
        )


async def cli(argv: list[str]) -> int:
    """`ibest ...` as an operator runs it (its own event loop, so in a thread here)."""
    return await asyncio.to_thread(ibest, argv)


async def accepted_so_far(base: str) -> float:
    """The gateway's accepted-events counter for RTH (metrics are per process, so tests
    compare before and after)."""
    async with httpx.AsyncClient(base_url=base) as client:
        text = (await client.get("/metrics")).text
    prefix = 'ibest_gateway_events_total{result="accepted",trust="RTH"} '
    return next(
        (float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0
    )


async def stored_ids(js: JetStreamContext) -> list[str]:
    return [e["id"] for e in await stream_events(js, ">")]


async def test_a_batch_stores_exactly_its_valid_events_once_however_often_sent(
    gateway: str, new_key: KeyMaker, js: JetStreamContext
) -> None:
    auth = await new_key("RTH")
    counted = await accepted_so_far(gateway)
    valid = [assessed() for _ in range(3)]
    invalid = [assessed(rmdq=25), {**assessed(), "sitecode": "RTH"}]
    batch = [valid[0], invalid[0], valid[1], invalid[1], valid[2]]
    first = await post(gateway, auth, batch)
    assert first.status_code == 422
    results = first.json()["results"]
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
        "accepted",
    ]
    assert [r["id"] for r in results] == [e["id"] for e in batch]
    assert results[1]["errors"][0]["field"] == "data.measures.rmdq"
    assert results[3]["errors"][0]["field"] == "sitecode"
    assert sorted(await stored_ids(js)) == sorted(e["id"] for e in valid)
    # every stored copy carries the platform's keyed Nats-Msg-Id of its trust and id
    assert all(e["_msg_id"] == platform_msg_id(e) for e in await stream_events(js, ">"))
    again = await post(gateway, auth, batch)
    assert again.status_code == 422
    assert [r["status"] for r in again.json()["results"]] == [
        "duplicate",
        "rejected",
        "duplicate",
        "rejected",
        "duplicate",
    ]
    only_valid = await post(gateway, auth, valid)
    assert only_valid.status_code == 200
    assert sorted(await stored_ids(js)) == sorted(e["id"] for e in valid)
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": auth}) as client:
        rows = (await client.get("/v1/rejections")).json()["rejections"]
    assert sorted(r["id"] for r in rows) == sorted(e["id"] for e in invalid)
    assert await accepted_so_far(gateway) == counted + 3


async def test_a_key_sends_and_reads_only_for_its_own_trust(
    gateway: str, new_key: KeyMaker, js: JetStreamContext
) -> None:
    rth, rxf = await new_key("RTH"), await new_key("RXF")
    refused = await post(gateway, rth, [assessed(), assessed("RXF", "RXF01")])
    assert refused.status_code == 403
    assert refused.json()["results"][1]["errors"][0]["field"] == "trustcode"
    single = await post(gateway, rth, assessed("RXF", "RXF01"), "application/cloudevents+json")
    assert single.status_code == 403
    assert await stored_ids(js) == []
    rxf_bad = assessed("RXF", "RXF01", rmdq=-3)
    assert (await post(gateway, rxf, [rxf_bad])).status_code == 422
    async with httpx.AsyncClient(base_url=gateway) as client:
        mine = await client.get("/v1/rejections", headers={"Authorization": rth})
        theirs = await client.get("/v1/rejections", headers={"Authorization": rxf})
    # RTH's rows are its own two refused requests (each naming RXF's event), never RXF's event
    assert mine.status_code == 200
    assert [(r["type"], r["reasons"][0]["code"]) for r in mine.json()["rejections"]] == [
        ("request", "wrong-trust"),
        ("request", "wrong-trust"),
    ]
    assert [r["id"] for r in theirs.json()["rejections"]] == [rxf_bad["id"]]


async def test_keys_from_the_cli_work_until_revoked(
    gateway: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MONGODB_URL", settings.mongodb_url)
    monkeypatch.setenv("IBEST_DB_PREFIX", settings.db_prefix)
    assert await cli(["gateway", "keys", "create", "--trust", "RTH"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    auth = f"Bearer {token}"
    assert (await post(gateway, auth, [assessed()])).status_code == 200
    assert await cli(["gateway", "keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{key_id}  RTH" in listed and "active" in listed and token not in listed
    assert await cli(["gateway", "keys", "revoke", key_id]) == 0
    capsys.readouterr()

    async def refused() -> httpx.Response | None:  # within the key cache time (0.5 s here)
        reply = await post(gateway, auth, [assessed()])
        return reply if reply.status_code == 401 else None

    refusal = await wait_for(refused, 10, "the revoked key to be refused")
    assert refusal is not None and "Bearer" in refusal.headers["WWW-Authenticate"]
    async with httpx.AsyncClient(base_url=gateway) as client:
        assert (
            await client.get("/v1/rejections", headers={"Authorization": auth})
        ).status_code == 401
        assert (await client.post("/v1/events", content=b"[]")).status_code == 401


async def test_events_dead_lettered_by_services_are_the_trusts_rejections_one_row_each(
    gateway: str, new_key: KeyMaker, settings: Settings, js: JetStreamContext
) -> None:
    """A trust that also publishes on NATS sees those events' dead letters here: one row per
    event, every service that rejected it named; another trust sees none of it."""
    rth, rxf = await new_key("RTH"), await new_key("RXF")
    unknown_version = cloud_event(
        "clinician.enrolled",
        {"clinician_ref": "clin-x", "profession": "nurse", "course_version": "99"},
    )
    # at the door the same event gets the same verdict, at once
    door = await post(gateway, rth, [{**unknown_version, "id": str(uuid.uuid4())}])
    assert door.status_code == 422
    assert door.json()["results"][0]["errors"][0]["field"] == "data.course_version"
    since = datetime.now(UTC) - timedelta(minutes=1)
    await publish_raw(js, unknown_version)  # on NATS: every consumer dead-letters it
    async with (
        running_service(ENROLMENT, settings),
        running_service(REPORTING, settings),
        httpx.AsyncClient(base_url=gateway) as c,
    ):

        async def rows_of(auth: str) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = (
                await c.get(
                    "/v1/rejections",
                    params={"since": since.isoformat()},
                    headers={"Authorization": auth},
                )
            ).json()["rejections"]
            return rows

        async def both_services() -> list[dict[str, Any]] | None:
            rows = [r for r in await rows_of(rth) if r["id"] == unknown_version["id"]]
            return rows if rows and len(rows[0]["rejected_by"]) == 2 else None

        rows = await wait_for(both_services, 60, "both dead letters to reach the gateway")
        assert await rows_of(rxf) == []
    assert len(rows) == 1
    assert rows[0]["type"] == "clinician.enrolled"
    assert rows[0]["rejected_by"] == ["enrolment", "reporting"]
    assert {r["field"] for r in rows[0]["reasons"]} == {"data.course_version"}, rows


async def test_openapi_and_operations_routes(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        spec = (await client.get("/openapi.json")).json()
        assert "/v1/events" in spec["paths"] and "/v1/rejections" in spec["paths"]
        assert (await client.get("/docs")).status_code == 200
        assert (await client.get("/readyz")).json()["checks"] == {"nats": True, "mongodb": True}
        big = await client.post(
            "/v1/events",
            content=b"x" * (1024 * 1024 + 1),
            headers={"Authorization": "Bearer x", "Content-Type": BATCH},
        )
        assert big.status_code == 401  # the key is checked first


async def test_binary_mode_oversized_bodies_and_rate_limits_over_http(
    gateway: str, new_key: KeyMaker, settings: Settings, js: JetStreamContext
) -> None:
    auth = await new_key("RTH")
    event = assessed()
    event["source"] = "/trusts/RTH/système"  # non-ASCII: percent-encoded in a header
    headers = {
        f"ce-{k}": quote(v, safe="/:+-.")
        for k, v in event.items()
        if k not in ("data", "datacontenttype")
    }
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": auth}) as client:
        binary = await client.post("/v1/events", json=event["data"], headers=headers)
        assert binary.status_code == 200, binary.text
        big = await client.post(
            "/v1/events",
            content=b"[" + b" " * (1024 * 1024) + b"]",
            headers={"Content-Type": BATCH},
        )
        assert big.status_code == 413 and "1 MiB" in big.json()["detail"]
    stored = await stream_events(js, ">")
    assert [(e["id"], e["source"]) for e in stored] == [(event["id"], event["source"])]

    limited = build_spec(GatewaySettings(IBEST_GATEWAY_RATE=0.2, IBEST_GATEWAY_BURST=1))
    async with running_service(limited, settings) as base:
        assert (await post(base, auth, [assessed()])).status_code == 200
        refused = await post(base, auth, [assessed()])
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
