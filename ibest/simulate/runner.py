"""Publishing the planned rollout to JetStream, paced by the time-compression factor."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import httpx
from nats.js import JetStreamContext

from ibest import registry
from ibest.backbone.connect import connect_nats
from ibest.backbone.settings import Settings
from ibest.simulate.model import (
    FALLBACK_MODULES,
    Plan,
    Planned,
    SimulationOptions,
    fresh_completion,
    plan_rollout,
)
from ibest.simulate.trusts import DEFAULT_TRUSTS_FILE, load_trusts

CATALOGUE = Path(__file__).resolve().parents[2] / "shared" / "catalogue.json"
WINDOW = 64
"""Publishes in flight at once (acknowledged before the next window starts)."""


@dataclass
class SimulationSummary:
    clinicians: int = 0
    begun: int = 0
    completed: int = 0
    classes: int = 0
    patients: int = 0
    published: int = 0
    stored: int = 0
    duplicates_sent: int = 0
    duplicates_dropped: int = 0
    invalid_sent: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    modules_from: str = ""
    refused: int = 0
    """Sent through the gateway and rejected at the door (none over NATS)."""
    via: str = "nats"

    def lines(self) -> list[str]:
        out = [
            f"published {self.published} events in {self.seconds:.1f}s via {self.via}; the "
            f"stream stored {self.stored} ({self.duplicates_dropped} duplicates dropped"
            + (f", {self.refused} rejected at the gateway)" if self.via == "http" else ")"),
            f"clinicians: {self.clinicians} enrolled, {self.begun} began, "
            f"{self.completed} completed",
            f"classes: {self.classes}; patients with a baseline: {self.patients}",
            f"deliberate anomalies: {self.duplicates_sent} re-sent duplicates, "
            f"{self.invalid_sent} invalid events "
            + (
                "(refused at the gateway with their reasons)"
                if self.via == "http"
                else "(expect one row each in `ibest deadletters list`)"
            ),
            f"course modules from {self.modules_from}",
        ]
        out += [f"  {name}: {n}" for name, n in sorted(self.by_type.items())]
        return out


def course_modules(settings: Settings, version: str) -> tuple[list[str], str]:
    """Required modules of `version`: the catalogue file, else enrolment's API, else ours."""
    try:
        courses = json.loads(CATALOGUE.read_text())["courses"]
        source = str(CATALOGUE)
    except (OSError, KeyError, ValueError):
        url = f"http://127.0.0.1:{registry.port_of(settings, 'enrolment')}/v1/courses"
        try:
            courses = httpx.get(url, timeout=3).raise_for_status().json()["courses"]
            source = url
        except (httpx.HTTPError, KeyError, ValueError):
            return list(FALLBACK_MODULES), "the simulator's built-in list"
    for course in courses:
        if str(course["course_version"]) == version:
            return [m["module_id"] for m in course["modules"] if m.get("required", True)], source
    raise ValueError(f"course version {version!r} not found in {source}")


def build_plan(
    settings: Settings, options: SimulationOptions, trusts_file: Path = DEFAULT_TRUSTS_FILE
) -> tuple[Plan, str]:
    modules, source = course_modules(settings, options.course_version)
    return plan_rollout(options, load_trusts(trusts_file), modules), source


class Progress:
    """A one-line progress bar on stderr, redrawn at most every 1%."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.total, self.stream, self.enabled = max(total, 1), stream, enabled
        self._shown = -1

    def update(self, done: int) -> None:
        pct = done * 100 // self.total
        if not self.enabled or pct == self._shown:
            return
        self._shown = pct
        bar = "#" * (pct // 4) + "." * (25 - pct // 4)
        self.stream.write(f"\rsimulating [{bar}] {pct:3d}% {done}/{self.total} events")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


async def _publish(js: JetStreamContext, planned: Planned) -> bool:
    # As a trust system would: no Nats-Expected-Stream header (the backbone copies headers
    # into dead letters, where an expected stream of IBEST_EVENTS would be refused).
    ack = await js.publish(
        planned.subject, planned.body, headers={"Nats-Msg-Id": planned.msg_id}, timeout=10
    )
    return not ack.duplicate


async def run_simulation(settings: Settings, options: SimulationOptions) -> SimulationSummary:
    """Plan the rollout, publish it through NATS as trust systems would, and summarise."""
    plan, source = build_plan(settings, options)
    summary = SimulationSummary(
        clinicians=plan.clinicians,
        begun=plan.begun,
        completed=plan.completed,
        classes=plan.classes,
        patients=plan.patients,
        modules_from=source,
        duplicates_sent=sum(p.duplicate for p in plan.events),
        invalid_sent=sum(not p.valid for p in plan.events),
        by_type=dict(Counter(p.name for p in plan.events if p.valid and not p.duplicate)),
    )
    progress = Progress(len(plan.events), enabled=options.progress)
    if options.via == "http":
        summary.via = "http"
        began = time.monotonic()
        await _send_over_https(settings, options, plan.events, summary, progress)
        summary.seconds = time.monotonic() - began
        return summary
    began = time.monotonic()
    nc = await connect_nats(settings, "simulator", user="simulator")
    try:
        js = nc.jetstream()
        for start in range(0, len(plan.events), WINDOW):
            window = plan.events[start : start + WINDOW]
            if options.time_compression > 0:
                due = (window[0].publish_at - options.start).total_seconds()
                wait = due / options.time_compression - (time.monotonic() - began)
                if wait > 0:
                    await asyncio.sleep(wait)
            results = await asyncio.gather(*(_publish(js, p) for p in window))
            summary.stored += sum(results)
            summary.published += len(window)
            progress.update(summary.published)
    finally:
        await nc.drain()
    summary.duplicates_dropped = summary.published - summary.stored
    summary.seconds = time.monotonic() - began
    return summary


async def publish_fresh_completion(settings: Settings, now: datetime) -> int:
    """Publish `model.fresh_completion` through NATS as a trust would; events stored."""
    modules, _ = course_modules(settings, "1")
    nc = await connect_nats(settings, "simulator", user="simulator")
    try:
        js = nc.jetstream()
        return sum([await _publish(js, p) for p in fresh_completion(now, modules)])
    finally:
        await nc.drain()


async def _send_over_https(
    settings: Settings,
    options: SimulationOptions,
    events: list[Planned],
    summary: SimulationSummary,
    progress: Progress,
) -> None:
    """Send the plan through the gateway as each trust's system would: batches per trust
    with the trust's own key (minted for the run, revoked after); the deliberately invalid
    events one at a time, so one careless event does not hold up a batch."""
    from services.gateway.bootstrap import key_admin

    began = time.monotonic()
    url = (
        options.gateway_url
        or f"http://{settings.http_host}:{registry.port_of(settings, 'gateway')}"
    )
    trusts = sorted({p.subject.split(".")[2] for p in events})
    async with key_admin(settings) as admin:
        minted = {t: await admin.create(t) for t in trusts}
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                for start in range(0, len(events), WINDOW * 4):
                    window = events[start : start + WINDOW * 4]
                    if options.time_compression > 0:
                        due = (window[0].publish_at - options.start).total_seconds()
                        wait = due / options.time_compression - (time.monotonic() - began)
                        if wait > 0:
                            await asyncio.sleep(wait)
                    groups: dict[str, list[Planned]] = {}
                    singles: list[Planned] = []
                    for p in window:
                        if p.valid:
                            groups.setdefault(p.subject.split(".")[2], []).append(p)
                        else:
                            singles.append(p)
                    sends = list(groups.items())
                    sends += [(p.subject.split(".")[2], [p]) for p in singles]
                    for trust, group in sends:
                        token = minted[trust][1]
                        statuses = await _post(client, token, group)
                        summary.stored += statuses.count("accepted")
                        summary.refused += statuses.count("rejected")
                    summary.published += len(window)
                    progress.update(summary.published)
        finally:
            for key, _ in minted.values():
                await admin.revoke(key.key_id)
    summary.duplicates_dropped = summary.published - summary.stored - summary.refused


async def _post(client: httpx.AsyncClient, token: str, group: list[Planned]) -> list[str]:
    """One batch; resent while the gateway says 429 or 503 (safe: ids are idempotent)."""
    body = b"[" + b",".join(p.body for p in group) + b"]"
    for _ in range(60):
        reply = await client.post(
            "/v1/events",
            content=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/cloudevents-batch+json",
            },
        )
        if reply.status_code in (429, 503):
            await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
            continue
        if reply.status_code == 403:
            return ["rejected"] * len(group)
        if reply.status_code not in (200, 422):
            raise RuntimeError(f"the gateway answered {reply.status_code}: {reply.text}")
        return [r["status"] for r in reply.json()["results"]]
    raise RuntimeError(f"the gateway at {client.base_url} kept refusing: {reply.text}")
