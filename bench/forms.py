"""Forms: a clinician's survey submission at a steady 50 submissions/s (open loop: each
request starts on schedule whatever the others do), and the printable patient letter.

The forms service runs as its own process over real NATS and a MongoDB-wire server. Each
submission is a different clinician's month 4 survey (completion 122 days ago, so the
window is open), its page fetched beforehand (nonce and CSRF token), so what is timed is
the POST: link verified, window judged, event built, stored in the outbox and published.
Goals (issue 28): p99 under 100 ms at 50/s; the letter rendered in under 1 s.

    python -m bench.forms [--rate 50] [--seconds 20] [--letters 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import nats

from bench.common import (
    cpu_now,
    cpu_since,
    fresh_streams,
    load,
    machine,
    percentile,
    platform_services,
    servers,
)
from ibest.backbone.settings import Settings
from services.forms.bootstrap import admin
from services.forms.settings import FormsSettings
from shared.links import ClinicianForm

FIELD = re.compile(r'name="(nonce|csrf|token)" value="([^"]+)"')


def fields(html: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in FIELD.findall(html):
        out.setdefault(name, value)
    return out


async def completions(nats_url: str, refs: list[str]) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    at = datetime.now(UTC) - timedelta(days=122)
    for ref in refs:
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/bench/forms",
            "type": "uk.nhs.ibest.clinician.training_completed.v1",
            "time": at.isoformat(),
            "datacontenttype": "application/json",
            "trustcode": "RTH",
            "sitecode": "RTH08",
            "data": {"clinician_ref": ref, "course_version": "1", "completed_at": at.isoformat()},
        }
        subject = "ibest.v1.RTH.clinician.training_completed"
        await js.publish(subject, json.dumps(event).encode(), headers={"Nats-Msg-Id": event["id"]})
    await nc.drain()


async def submissions(base: str, own: FormsSettings, n: int, rate: float) -> list[float]:
    refs = [f"bench{i:027d}" for i in range(n)]
    await completions(Settings().nats_url, refs)
    async with admin(Settings(), own) as (_, links):
        paths = [
            httpx.URL(links.link(ref, ClinicianForm.DELIVERY_MONTH_4)).raw_path.decode()
            for ref in refs
        ]
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        deadline = time.monotonic() + 120
        while (await client.get(paths[-1])).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the forms never saw the completions")
            await asyncio.sleep(0.5)
        pages = [fields((await client.get(p)).text) for p in paths]
        latencies: list[float] = []

        async def one(path: str, page: dict[str, str], at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            start = time.perf_counter()
            r = await client.post(path, data={**page, "delivering": "yes", "groups": "2"})
            latencies.append(time.perf_counter() - start)
            if r.status_code != 200:
                raise RuntimeError(f"submission answered {r.status_code}")

        begin = time.monotonic() + 0.5
        await asyncio.gather(
            *(
                one(p, f, begin + i / rate)
                for i, (p, f) in enumerate(zip(paths, pages, strict=True))
            )
        )
    return latencies


async def letters(base: str, own: FormsSettings, n: int) -> list[float]:
    async with admin(Settings(), own) as (keys, _):
        _, key = await keys.create("RTH08")
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        page = await client.get("/site/sign-in")
        pre = {"Cookie": f"ibest_forms_signin={page.cookies['ibest_forms_signin']}"}
        r = await client.post("/site/sign-in", data={**fields(page.text), "key": key}, headers=pre)
        auth = {"Cookie": r.headers["set-cookie"].split(";")[0]}
        home = await client.get("/site", headers=auth)
        added = await client.post("/site/patients", data=fields(home.text), headers=auth)
        ref = re.search(r"(FP-[A-Z0-9]{10})", added.text)
        assert ref
        made = await client.post(
            "/site/link",
            data={
                **fields((await client.get("/site/link", headers=auth)).text),
                "patient_ref": ref.group(1),
                "timepoint": "baseline",
                "measures": ["pain_nrs", "psfs"],
            },
            headers=auth,
        )
        timings = []
        for _ in range(n):
            start = time.perf_counter()
            pdf = await client.post("/site/letter", data=fields(made.text), headers=auth)
            timings.append(time.perf_counter() - start)
            assert pdf.content.startswith(b"%PDF")
        return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--letters", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ibest-bench-forms-"))
    (home / "link").write_text(secrets.token_hex(32))
    (home / "id").write_text(secrets.token_hex(32))
    env = {
        "IBEST_FORMS_LINK_SECRET_FILE": str(home / "link"),
        "IBEST_FORMS_ID_KEY_FILE": str(home / "id"),
        "IBEST_FORMS_RATE": "100000",
        "IBEST_FORMS_BURST": "100000",
    }
    own = FormsSettings(
        IBEST_FORMS_LINK_SECRET_FILE=home / "link", IBEST_FORMS_ID_KEY_FILE=home / "id"
    )
    n = int(args.rate * args.seconds)
    with servers() as (nats_url, mongo_url):
        asyncio.run(fresh_streams(nats_url))
        with platform_services(nats_url, mongo_url, ("forms",), env) as urls:
            mark = cpu_now()
            latencies = asyncio.run(submissions(urls["forms"], own, n, args.rate))
            cpu = cpu_since(mark)
            letter = asyncio.run(letters(urls["forms"], own, args.letters))
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {machine()}; {load()}; shared machine (uptime: {uptime})")
    print(
        f"forms, survey submissions at {args.rate:.0f}/s for {args.seconds:.0f}s ({n} "
        f"clinicians): p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
        f"(goal p99 < 100 ms); forms CPU per clinician (its completion consumed, its page "
        f"served, its answer submitted) {cpu.get('forms', 0.0) / n * 1000:.1f} ms"
    )
    print(
        f"forms, printable letter (POST /site/letter, QR code and PDF) x{args.letters}: "
        f"p50 {percentile(letter, 50) * 1000:.0f} ms, max {max(letter) * 1000:.0f} ms "
        "(goal < 1 s)"
    )


if __name__ == "__main__":
    main()
