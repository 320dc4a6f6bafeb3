"""A trust's integration engine at the gateway's front door, over real HTTP, NATS and the
database: CloudEvents as the spec says, problem details with stable codes, the sandbox, the
catalogue, honest limits, bounded rows, rate limits per key and per address, and no 500 for
any input (schemathesis over the committed OpenAPI; a byte-level fuzzer)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.gateway.service import build_spec
from services.gateway.settings import GatewaySettings
from tests.gateway.conftest import KeyMaker
from tests.harness import cloud_event, metric_samples, running_service, stream_events

ROOT = Path(__file__).resolve().parents[2]
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
PROBLEM = "application/problem+json"


def assessed(trust: str = "RTH", site: str = "RTH08", rmdq: Any = 14) -> dict[str, Any]:
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


def binary_headers(event: dict[str, Any], auth: str, content_type: str) -> dict[str, str]:
    headers = {
        f"ce-{k}": quote(str(v), safe=" :/+-._")
        for k, v in event.items()
        if k not in ("data", "datacontenttype")
    }
    return {**headers, "Authorization": auth, "Content-Type": content_type}


def is_problem(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, (reply.status_code, reply.text[:500])
    assert reply.headers["content-type"] == PROBLEM, reply.headers
    body: dict[str, Any] = reply.json()
    assert body["type"] == f"urn:ibest:problem:{code}" and body["code"] == code, body
    assert body["status"] == status and body["title"] and body["detail"], body
    return body


async def stored(js: JetStreamContext, event_id: str) -> list[dict[str, Any]]:
    return [e for e in await stream_events(js, ">") if e["id"] == event_id]


def refusals_counted(metrics: str) -> dict[str, float]:
    """`ibest_gateway_requests_total{trust=""}` by status, from a /metrics text."""
    return {
        labels["status"]: value
        for labels, value in metric_samples(metrics, "ibest_gateway_requests_total")
        if labels["trust"] == ""
    }


async def test_optional_attributes_extensions_and_charsets_are_accepted_and_not_kept(
    gateway: str, new_key: KeyMaker, js: JetStreamContext
) -> None:
    auth = await new_key("RTH")
    traced = {
        **assessed(),
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "myext": "x",
        "subject": "pt",
        "dataschema": "https://example.nhs.uk/s.json",
    }
    bare = assessed()
    del bare["datacontenttype"]
    binary = assessed()
    async with httpx.AsyncClient(base_url=gateway) as client:
        one = await client.post(
            "/v1/events",
            json=traced,
            headers={"Authorization": auth, "Content-Type": f"{STRUCTURED}; charset=utf-8"},
        )
        two = await client.post(
            "/v1/events", json=[bare], headers={"Authorization": auth, "Content-Type": BATCH}
        )
        headers = binary_headers(binary, auth, "application/json; charset=utf-8")
        headers.update({"ce-traceparent": "00-ab-cd-01", "ce-subject": "pt"})
        three = await client.post("/v1/events", json=binary["data"], headers=headers)
    for reply in (one, two, three):
        assert reply.status_code == 200, reply.text
        assert reply.json()["results"][0]["status"] == "accepted"
    contract = {
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "datacontenttype",
        "trustcode",
        "sitecode",
        "data",
    }
    for event in (traced, bare, binary):
        [kept] = await stored(js, event["id"])
        assert {k for k in kept if not k.startswith("_")} == contract
        assert kept["datacontenttype"] == "application/json"


async def test_every_error_is_a_problem_document_with_a_stable_code(
    gateway: str, new_key: KeyMaker
) -> None:
    auth = await new_key("RTH")
    async with httpx.AsyncClient(base_url=gateway) as client:
        is_problem(await client.post("/v1/events", content=b"{}"), 401, "no-key")
        wrong = {"Authorization": "Bearer ibk_000000000000_" + "x" * 43}
        is_problem(await client.post("/v1/events", headers=wrong), 401, "unknown-key")
        headers = {"Authorization": auth, "Content-Type": STRUCTURED}
        is_problem(
            await client.post("/v1/events", content=b"{", headers=headers), 400, "unreadable-body"
        )
        text = {"Authorization": auth, "Content-Type": "text/csv"}
        is_problem(
            await client.post("/v1/events", content=b"a", headers=text),
            415,
            "unsupported-media-type",
        )
        latin = {"Authorization": auth, "Content-Type": f"{STRUCTURED}; charset=latin-1"}
        is_problem(
            await client.post("/v1/events", content=b"{}", headers=latin),
            415,
            "unsupported-media-type",
        )
        is_problem(await client.get("/v1/nothing"), 404, "not-found")
        is_problem(await client.delete("/v1/events"), 405, "method-not-allowed")
        limit = await client.get(
            "/v1/rejections", params={"limit": 0}, headers={"Authorization": auth}
        )
        body = is_problem(limit, 422, "invalid-request")
        assert (
            body["errors"][0]["field"] == "query.limit"
            and body["errors"][0]["code"] == "out-of-range"
        )
        nhs = assessed()
        nhs["data"]["patient_ref"] = "943 476 5919"
        out = assessed(rmdq=25)
        other = assessed("RXF", "RXF01")
        reply = await client.post(
            "/v1/events", json=[nhs, out], headers={"Authorization": auth, "Content-Type": BATCH}
        )
        body = is_problem(reply, 422, "events-rejected")
        assert [r["errors"][0]["code"] for r in body["results"]] == ["nhs-number", "out-of-range"]
        assert body["results"][1]["errors"][0]["message"] == "rmdq must be from 0 to 24, got 25"
        reply = await client.post(
            "/v1/events", json=[other], headers={"Authorization": auth, "Content-Type": BATCH}
        )
        body = is_problem(reply, 403, "forbidden-events")
        assert {e["code"] for e in body["results"][0]["errors"]} == {"wrong-trust"}
        assert "server" not in reply.headers


async def test_the_sandbox_answers_as_sending_would_and_stores_nothing(
    gateway: str, new_key: KeyMaker, js: JetStreamContext
) -> None:
    auth = await new_key("RTH")
    good, bad = assessed(), assessed(rmdq=25)
    batch = [good, bad, good]
    headers = {"Authorization": auth, "Content-Type": BATCH}
    async with httpx.AsyncClient(base_url=gateway) as client:
        rows_before = (await client.get("/v1/rejections", headers={"Authorization": auth})).json()
        tried = await client.post("/v1/events/validate", json=batch, headers=headers)
        assert await stored(js, good["id"]) == []
        rows_after = (await client.get("/v1/rejections", headers={"Authorization": auth})).json()
        assert rows_after["rejections"] == rows_before["rejections"]
        sent = await client.post("/v1/events", json=batch, headers=headers)
        courses = await client.get("/v1/courses")
    assert tried.status_code == sent.status_code == 422
    assert tried.json() == sent.json()
    assert [r["status"] for r in sent.json()["results"]] == ["accepted", "rejected", "duplicate"]
    assert len(await stored(js, good["id"])) == 1
    assert courses.status_code == 200
    assert [c["course_version"] for c in courses.json()["courses"]] == ["1"]


async def test_rejections_page_by_cursor_take_plus_offsets_and_list_refused_requests(
    gateway: str, new_key: KeyMaker
) -> None:
    auth = await new_key("RJ1")
    long_id = {**assessed("RJ1", "RJ101", rmdq=99), "id": "x" * 100_000}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        headers = {"Authorization": auth, "Content-Type": BATCH}
        bad = [assessed("RJ1", "RJ101", rmdq=30) for _ in range(5)]
        reply = await client.post("/v1/events", json=[*bad, long_id], headers=headers)
        assert reply.status_code == 422 and reply.json()["results"][-1]["id"] == ""
        assert (await client.post("/v1/events", content=b"[", headers=headers)).status_code == 400
        url = f"{gateway}/v1/rejections?since=2026-01-01T00:00:00+01:00&limit=2"
        pages, cursor = [], None
        while True:
            # as an engine would: the `+` unencoded, the cursor appended as it came
            page = await client.get(
                url + (f"&cursor={cursor}" if cursor else ""), headers={"Authorization": auth}
            )
            assert page.status_code == 200, page.text
            pages.append(page.json()["rejections"])
            cursor = page.json()["next"]
            if cursor is None:
                break
        rows = [r for p in pages for r in p]
        assert all(len(p) <= 2 for p in pages) and len(pages) == 4
        assert sorted(r["id"] for r in rows if r["type"] == "patient.assessed") == sorted(
            [e["id"] for e in bad] + [""]
        )
        [refused] = [r for r in rows if r["type"] == "request"]
        assert refused["reasons"][0]["code"] == "unreadable-body"
        assert len(json.dumps(rows)) < 20_000  # the 100 KB id is neither stored nor echoed
        early = await client.get(
            "/v1/rejections",
            params={"since": "0001-01-01T00:00:00+01:00"},
            headers={"Authorization": auth},
        )
        assert early.status_code == 200 and len(early.json()["rejections"]) == 7
        forged = await client.get(
            "/v1/rejections", params={"cursor": "bm9wZQ"}, headers={"Authorization": auth}
        )
        is_problem(forged, 400, "invalid-request")


async def test_inputs_that_crashed_the_gateway_are_refused_plainly(
    gateway: str, new_key: KeyMaker
) -> None:
    auth = await new_key("RTH")
    digits = "9" * 5000
    event = assessed()
    body = json.dumps(event).replace('"rmdq": 14', f'"rmdq": {digits}').encode()
    async with httpx.AsyncClient(base_url=gateway) as client:
        for content_type, content in (
            (STRUCTURED, body),
            (BATCH, b"[" + body + b"]"),
        ):
            reply = await client.post(
                "/v1/events",
                content=content,
                headers={"Authorization": auth, "Content-Type": content_type},
            )
            assert reply.status_code == 400, reply.text[:300]
            assert reply.json()["detail"] == "the body holds a number of over 4,300 digits"
        headers = binary_headers(assessed(), auth, "application/json")
        for data in (b'{"rmdq": ' + digits.encode() + b"}", b'{"patient_ref": "\\ud800"}'):
            reply = await client.post("/v1/events", content=data, headers=headers)
            assert reply.status_code in (400, 422), reply.text[:300]
        metrics = (await client.get("/metrics")).text
    assert 'status="500"' not in metrics


async def test_unknown_keys_and_reads_are_rate_limited_per_address_and_per_key(
    settings: Settings, new_key: KeyMaker
) -> None:
    own = GatewaySettings(
        IBEST_GATEWAY_RATE=1,
        IBEST_GATEWAY_BURST=5,
        IBEST_GATEWAY_ADDRESS_RATE=1,
        IBEST_GATEWAY_ADDRESS_BURST=5,
    )
    auth = await new_key("RGT")
    async with (
        running_service(build_spec(own), settings) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        unknown = {"Authorization": "Bearer ibk_000000000000_" + "y" * 43}
        # from a forwarded address: the loopback's budget also paid the harness's /readyz poll
        probe = {**unknown, "X-Forwarded-For": "203.0.113.8"}
        counted = refusals_counted((await client.get("/metrics")).text)
        statuses = [
            (await client.get("/v1/rejections", headers=probe)).status_code for _ in range(8)
        ]
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
        # counted as on POST /v1/events, so a key guessed here raises the key-failure alert
        now = refusals_counted((await client.get("/metrics")).text)
        assert now["401"] - counted.get("401", 0) == 5 and now["429"] - counted.get("429", 0) == 3
        # another address (behind a trusted proxy: the loopback) is not held back
        forwarded = {**unknown, "X-Forwarded-For": "203.0.113.9"}
        assert (await client.get("/v1/rejections", headers=forwarded)).status_code == 401
        reads = [
            await client.get(
                "/v1/rejections", headers={"Authorization": auth, "X-Forwarded-For": "203.0.113.10"}
            )
            for _ in range(8)
        ]
        assert [r.status_code for r in reads[:5]] == [200] * 5
        limited = is_problem(reads[-1], 429, "rate-limited")
        assert "RGT" in limited["detail"] and reads[-1].headers["retry-after"]
        # The keyless xAPI route too, as GET /v1/courses.
        other = {"X-Forwarded-For": "203.0.113.11"}
        abouts = [await client.get("/xapi/about", headers=other) for _ in range(8)]
        assert [r.status_code for r in abouts[:5]] == [200] * 5
        is_problem(abouts[-1], 429, "rate-limited")


@pytest.mark.slow
async def test_no_5xx_from_schemathesis_over_the_committed_openapi(
    gateway: str, new_key: KeyMaker, tmp_path: Path
) -> None:
    auth = await new_key("RTH")
    schema = ROOT / "docs" / "contract" / "openapi" / "gateway.json"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        str(schema),
        "--url",
        gateway,
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: {auth}",
        "--max-examples",
        "30",
        "--seed",
        "30",
        "--phases",
        "examples,coverage,fuzzing",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
        "--warnings",
        "off",
    ]
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    text = out.decode(errors="replace")
    (tmp_path / "out.txt").write_text(text)
    print(text[-3000:])
    assert proc.returncode == 0, text[-8000:]
    assert "No issues found" in text, text[-3000:]


async def test_no_5xx_from_a_byte_level_fuzzer_of_bodies_and_headers(
    gateway: str, new_key: KeyMaker
) -> None:
    auth = await new_key("RTH")
    rng = random.Random(30)
    seeds = [json.dumps(assessed()).encode(), json.dumps([assessed(), assessed()]).encode()]
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        for _ in range(400):
            body = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 8)):  # flip, insert or delete bytes
                at = rng.randrange(len(body))
                action = rng.random()
                if action < 0.4:
                    body[at] = rng.randrange(256)
                elif action < 0.7:
                    body[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
                else:
                    del body[at : at + rng.randint(1, 4)]
            content_type = rng.choice(
                [STRUCTURED, BATCH, f"{STRUCTURED}; charset=utf-8", "application/json"]
            )
            headers = {"Authorization": auth, "Content-Type": content_type}
            if rng.random() < 0.3:
                raw = bytes(rng.randrange(32, 127) for _ in range(rng.randint(0, 30)))
                headers[rng.choice(["ce-specversion", "ce-id", "ce-traceparent", "ce-time"])] = (
                    raw.decode().strip()
                )
            reply = await client.post("/v1/events", content=bytes(body), headers=headers)
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
            assert reply.status_code < 500, (bytes(body)[:300], headers, reply.text[:300])
    assert {400, 422} <= set(statuses), statuses


async def test_a_full_storage_share_is_507_with_its_code_and_no_retry_advice(
    gateway: str, new_key: KeyMaker, settings: Settings
) -> None:
    auth = await new_key("RA7")
    headers = {"Authorization": auth, "Content-Type": BATCH}
    share = settings.events_per_subject
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        for start in range(0, share, 500):
            batch = [assessed("RA7", "RA701") for _ in range(min(500, share - start))]
            reply = await client.post("/v1/events", json=batch, headers=headers)
            assert reply.status_code == 200, reply.text[:300]
        over = [assessed("RA7", "RA701"), assessed("RA7", "RA701", rmdq=30)]
        reply = await client.post("/v1/events", json=over, headers=headers)
    body = is_problem(reply, 507, "storage-share-exhausted")
    assert "retry-after" not in reply.headers
    assert [r["errors"][0]["code"] for r in body["results"]] == [
        "storage-share-exhausted",
        "out-of-range",
    ]
