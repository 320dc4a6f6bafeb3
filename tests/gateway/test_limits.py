"""The gateway's honest limits and bounds as use cases, on the in-memory fakes: 507 for a
full storage share, the sandbox, per-address limits before any key lookup, `since` read as
integrators send it, bounded rejection rows, and a crash counted as a 500."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ibest.backbone.problems import install
from services.gateway.api.answers import Reply, ingested, rejection_page
from services.gateway.api.edge import counted
from services.gateway.application import parse_since
from services.gateway.domain.ratelimit import RateLimiter
from services.gateway.domain.rejections import MAX_MESSAGE_CHARS, MAX_REASONS
from services.gateway.domain.requests import BATCH, client_address
from tests.fakes.gateway import ManualClock, World, world
from tests.harness import cloud_event

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def assessed(trust: str = "RTH", rmdq: Any = 14) -> dict[str, Any]:
    return cloud_event(
        "patient.assessed",
        {
            "patient_ref": f"pt-{uuid.uuid4().hex[:8]}",
            "timepoint": "baseline",
            "measures": {"rmdq": rmdq},
        },
        trust=trust,
        site=f"{trust}08",
        # Before the fake gateway's clock (tests.fakes.gateway.ManualClock), never ahead of it.
        time=ManualClock.now - timedelta(days=1),
    )


async def key_of(w: World, trust: str = "RTH") -> str:
    _, token = await w.admin.create(trust)
    return f"Bearer {token}"


async def send(
    w: World, auth: str | None, events: Any, store: bool = True, address: str = ""
) -> Reply:
    body = json.dumps(events).encode()
    started = w.gateway.timer()
    return ingested(
        w.gateway, await w.gateway.ingest(auth, BATCH, {}, body, address, store), started
    )


async def test_a_full_share_is_507_per_event_without_retry_after() -> None:
    w = world()
    auth = await key_of(w)
    w.stream.full.add("ibest.v1.RTH.patient.assessed")
    reply = await send(w, auth, [assessed(), assessed(rmdq=25)])
    assert reply.status == 507 and "Retry-After" not in reply.headers
    assert reply.body["code"] == "storage-share-exhausted"
    assert [r["errors"][0]["code"] for r in reply.body["results"]] == [
        "storage-share-exhausted",
        "out-of-range",
    ]


async def test_the_sandbox_stores_and_records_nothing_and_judges_duplicates_by_the_ledger() -> None:
    w = world()
    auth = await key_of(w)
    known, fresh, bad = assessed(), assessed(), assessed(rmdq=25)
    assert (await send(w, auth, [known])).status == 200
    w.stream.published.clear()
    tried = await send(w, auth, [known, fresh, fresh, bad], store=False)
    assert [r["status"] for r in tried.body["results"]] == [
        "duplicate",
        "accepted",
        "duplicate",
        "rejected",
    ]
    assert tried.status == 422 and w.stream.published == [] and w.rejections.rows == {}


async def test_failing_addresses_are_refused_before_their_key_is_looked_up() -> None:
    w = world()
    w.gateway.address_limiter = RateLimiter(1, 3, w.clock.timer)
    looked_up = []
    original = w.keys.get

    async def counting(key_id: str) -> Any:
        looked_up.append(key_id)
        return await original(key_id)

    w.keys.get = counting  # type: ignore[method-assign]
    unknown = "Bearer ibk_000000000000_" + "z" * 43
    statuses = [(await send(w, unknown, [], address="198.51.100.7")).status for _ in range(6)]
    assert statuses == [401, 401, 401, 429, 429, 429] and len(looked_up) == 3
    assert (await send(w, unknown, [], address="198.51.100.8")).status == 401
    w.clock.seconds += 2
    assert (await send(w, unknown, [], address="198.51.100.7")).status == 401


def test_forwarded_addresses_are_believed_only_from_a_trusted_proxy() -> None:
    import ipaddress

    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_address("10.0.0.5", "1.2.3.4, 203.0.113.9", proxies) == "203.0.113.9"
    assert client_address("10.0.0.5", "203.0.113.9, 10.0.0.4", proxies) == "203.0.113.9"
    assert client_address("198.51.100.1", "203.0.113.9", proxies) == "198.51.100.1"


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2026-03-01T00:00:00 01:00", datetime(2026, 2, 28, 23, 0, tzinfo=UTC)),  # unencoded +
        ("2026-03-01T00:00:00+01:00", datetime(2026, 2, 28, 23, 0, tzinfo=UTC)),
        ("2026-03-01T00:00:00Z", datetime(2026, 3, 1, tzinfo=UTC)),
        ("0001-01-01T00:00:00+01:00", datetime.min.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59-01:00", datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_since_is_read_as_integrators_send_it(since: str, expected: datetime) -> None:
    assert parse_since(since, NOW) == expected


async def test_rejection_rows_are_bounded_whatever_was_sent() -> None:
    w = world()
    auth = await key_of(w)
    huge = assessed()
    huge["id"] = "i" * 1_000
    huge["data"].update({f"k{i}" * 200: i for i in range(60)})
    reply = await send(w, auth, [huge])
    assert reply.status == 422 and reply.body["results"][0]["id"] == ""
    [row] = w.rejections.rows.values()
    assert row.event_id == "" and len(row.reasons) == MAX_REASONS + 1
    assert all(len(r.field) <= 128 and len(r.message) <= MAX_MESSAGE_CHARS for r in row.reasons)


async def test_the_rejections_read_pages_with_an_opaque_cursor() -> None:
    w = world()
    auth = await key_of(w)
    await send(w, auth, [assessed(rmdq=30) for _ in range(5)])
    seen, cursor = [], None
    while True:
        page = rejection_page(w.gateway, await w.gateway.rejections(auth, None, 2, cursor))
        seen += [r["id"] for r in page.body["rejections"]]
        cursor = page.body["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    assert (
        rejection_page(w.gateway, await w.gateway.rejections(auth, None, 2, "not-a-cursor")).status
        == 400
    )


async def test_a_crash_is_a_counted_500_answered_as_a_problem() -> None:
    w = world()

    async def boom() -> Reply:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await counted(w.gateway, boom)
    assert w.metrics.seen[-1][:2] == ("", 500)
    app = FastAPI()
    install(app)

    @app.get("/boom")
    async def crash() -> None:
        raise RuntimeError("bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        reply = await client.get("/boom")
    assert reply.status_code == 500 and reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["type"] == "urn:ibest:problem:internal-error"


async def test_a_browser_gets_its_errors_as_pages_and_an_engine_as_problems() -> None:
    app = FastAPI()
    install(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        page = await client.get("/nowhere", headers={"Accept": "text/html,*/*;q=0.8"})
        engine = await client.get("/nowhere", headers={"Accept": "*/*"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1>There is no such resource</h1>" in page.text and "{" not in page.text
    assert engine.headers["content-type"] == "application/problem+json"
