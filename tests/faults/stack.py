"""Real processes for fault tests: services, a dedicated nats-server, a dedicated database.

Everything here starts a child process we own (ibest.local.processes.Managed), so a test can
SIGKILL or stop it and start it again on the same port and storage, as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.local.processes import (
    Managed,
    free_port,
    nats_server,
    port_open,
    secantus_server,
    start_and_wait,
    wait_until,
)
from tests.harness import cloud_event, wait_for

RAW_TOKEN = "faults-raw"
READ_TOKEN = "faults-read"
REQUIRED_MODULES = [
    "m01-understanding-back-pain",
    "m02-cbt-approach",
    "m03-individual-assessment",
    "m04-running-groups",
    "m05-pacing-and-goals",
    "m06-exercise",
    "m07-thoughts-and-setbacks",
    "m08-delivery-and-evaluation",
]


def service_env(settings: Settings, name: str, port: int, **extra: str) -> dict[str, str]:
    """The environment of one service process over the test's servers and database prefix."""
    env = {
        "NATS_URL": settings.nats_url,
        "MONGODB_URL": settings.mongodb_url,
        "IBEST_DB_PREFIX": settings.db_prefix,
        f"IBEST_{name.upper()}_PORT": str(port),
        "IBEST_BATCH_SIZE": "50",
        "IBEST_FETCH_TIMEOUT": "0.2",
        # A killed instance's unacknowledged messages come back after ack_wait.
        "IBEST_ACK_WAIT": "5",
        "IBEST_RETRY_BACKOFF_MAX": "1",
        "IBEST_MAX_DELIVERIES": str(settings.max_deliveries),
        "IBEST_REPORTING_TOKENS": f"{RAW_TOKEN}:raw,{READ_TOKEN}:read",
        "IBEST_REPORTING_SNAPSHOT_SECONDS": "0.2",
        "IBEST_ENROLMENT_OUTBOX_INTERVAL": "1",
        "IBEST_LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


@dataclass
class ServiceProcess:
    """`python -m services.<name>` as a child process on a fixed port (kept across restarts)."""

    name: str
    settings: Settings
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    runs: int = 0
    proc: Managed | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_paths(self) -> list[Path]:
        return sorted(self.log_dir.glob(f"{self.name}-{self.port}-*.log"))

    def start(self, wait_ready: bool = True) -> ServiceProcess:
        self.runs += 1
        env = {**os.environ, **service_env(self.settings, self.name, self.port, **self.extra_env)}
        self.proc = Managed(
            self.name,
            [sys.executable, "-m", f"services.{self.name}"],
            self.log_dir / f"{self.name}-{self.port}-{self.runs}.log",
            env=env,
        ).start()
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(ready, timeout, f"{self.name} ready", self.proc.proc)
        except Exception as exc:
            raise RuntimeError(f"{exc}\n{self.proc.tail()}") from exc

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(30)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log_paths)


class Processes:
    """Every child process a test started, stopped at the end whatever happened."""

    def __init__(self) -> None:
        self.services: list[ServiceProcess] = []
        self.others: list[Managed] = []

    def service(
        self, name: str, settings: Settings, log_dir: Path, **extra_env: str
    ) -> ServiceProcess:
        svc = ServiceProcess(name, settings, log_dir, dict(extra_env))
        self.services.append(svc)
        return svc

    def close(self) -> None:
        for svc in self.services:
            with contextlib.suppress(Exception):
                svc.stop()
        for proc in self.others:
            with contextlib.suppress(Exception):
                proc.stop(10)


# --- servers a test owns -------------------------------------------------------------------


def start_nats(port: int, store: Path, log: Path, extra: Iterable[str] = ()) -> Managed:
    return start_and_wait(nats_server(port, store, log, extra=extra), "127.0.0.1", port)


def start_database(port: int, storage: Path, log: Path) -> Managed:
    return start_and_wait(secantus_server(port, storage, log), "127.0.0.1", port)


def wait_port_closed(port: int, timeout: float = 30) -> None:
    wait_until(lambda: not port_open("127.0.0.1", port), timeout, f"port {port} released")


async def connect(url: str | list[str]) -> NatsClient:
    """A test client that keeps reconnecting for as long as a server is down."""
    servers = url if isinstance(url, list) else [url]
    return await nats.connect(
        servers=servers, max_reconnect_attempts=-1, reconnect_time_wait=0.2, connect_timeout=2
    )


# --- publishing like an integrator, through faults ------------------------------------------


@dataclass
class PublishLog:
    """What a publishing loop has done so far (a test can wait on it)."""

    published: int = 0
    failures: int = 0


async def publish_with_retry(
    js: JetStreamContext, event: dict[str, Any], deadline: float = 60, log: PublishLog | None = None
) -> None:
    """Publish one raw event until the stream acknowledges it (the Nats-Msg-Id makes retries
    safe: a copy the stream already stored is dropped as a duplicate)."""
    body = json.dumps(event).encode()
    subject = f"ibest.v1.{event['trustcode']}.{event['type'][13:-3]}"
    give_up = time.monotonic() + deadline
    while True:
        try:
            await js.publish(subject, body, headers={"Nats-Msg-Id": event["id"]}, timeout=2)
            return
        except Exception:
            if log is not None:
                log.failures += 1
            if time.monotonic() > give_up:
                raise
            await asyncio.sleep(0.1)


async def publish_all(
    js: JetStreamContext, events: list[dict[str, Any]], log: PublishLog | None = None
) -> None:
    for event in events:
        await publish_with_retry(js, event, log=log)
        if log is not None:
            log.published += 1


# --- scripted rollouts with known figures ---------------------------------------------------

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SITES = [("RTH", "RTH08"), ("RTH", "RTH09"), ("RXF", "RXF01"), ("RGT", "RGT02")]


@dataclass
class Script:
    """Events in publishing order and the national figures they must produce."""

    events: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)


def reporting_script(clinicians: int, patients: int, seed: str = "") -> Script:
    """Facts reporting consumes directly (derived events included), each figure known.

    Clinician i enrols; every 2nd has training_started; every 3rd (of those) completes;
    every 4th intends. Patient p has a baseline; every 2nd a month 3 follow-up.
    """
    tag = seed or uuid.uuid4().hex[:6]
    out = Script()
    started = completed = intending = 0
    for i in range(clinicians):
        trust, site = SITES[i % len(SITES)]
        ref = f"c{tag}-{i}"
        at = T0 + timedelta(minutes=i)
        out.events.append(
            cloud_event(
                "clinician.enrolled",
                {"clinician_ref": ref, "profession": "nurse", "course_version": "1"},
                trust=trust,
                site=site,
                time=at,
            )
        )
        if i % 2 == 0:
            started += 1
            out.events.append(
                cloud_event(
                    "clinician.training_started",
                    {"clinician_ref": ref, "course_version": "1"},
                    trust=trust,
                    site=site,
                    time=at + timedelta(seconds=1),
                )
            )
            if i % 3 == 0:
                completed += 1
                out.events.append(
                    cloud_event(
                        "clinician.training_completed",
                        {"clinician_ref": ref, "course_version": "1"},
                        trust=trust,
                        site=site,
                        time=at + timedelta(seconds=2),
                    )
                )
        if i % 4 == 0:
            intending += 1
            out.events.append(
                cloud_event(
                    "clinician.intention_reported",
                    {"clinician_ref": ref, "intends_to_deliver": True, "confidence": 7},
                    trust=trust,
                    site=site,
                    time=at + timedelta(seconds=3),
                )
            )
    followed = 0
    for p in range(patients):
        trust, site = SITES[p % len(SITES)]
        ref = f"p{tag}-{p}"
        at = T0 + timedelta(days=1, minutes=p)
        out.events.append(
            cloud_event(
                "patient.assessed",
                {"patient_ref": ref, "timepoint": "baseline", "measures": {"rmdq": 12}},
                trust=trust,
                site=site,
                time=at,
            )
        )
        if p % 2 == 0:
            followed += 1
            out.events.append(
                cloud_event(
                    "patient.assessed",
                    {"patient_ref": ref, "timepoint": "month_3", "measures": {"rmdq": 6}},
                    trust=trust,
                    site=site,
                    time=at + timedelta(days=92),
                )
            )
    out.expected = {
        "clinicians_enrolled": clinicians,
        "clinicians_started": started,
        "clinicians_completed": completed,
        "clinicians_intending": intending,
        "patients_baseline": patients,
        "patients_month_3": followed,
    }
    return out


def training_script(clinicians: int, seed: str = "") -> Script:
    """Raw training events only (enrolment derives started/completed): clinician i enrols,
    every 2nd starts a module, every 3rd of all completes every required module."""
    tag = seed or uuid.uuid4().hex[:6]
    out = Script()
    started = completed = 0
    for i in range(clinicians):
        trust, site = SITES[i % len(SITES)]
        ref = f"t{tag}-{i}"
        at = T0 + timedelta(minutes=i)
        out.events.append(
            cloud_event(
                "clinician.enrolled",
                {"clinician_ref": ref, "profession": "physiotherapist", "course_version": "1"},
                trust=trust,
                site=site,
                time=at,
            )
        )
        if i % 3 == 0:
            started += 1
            completed += 1
            for n, module in enumerate(REQUIRED_MODULES):
                out.events.append(
                    cloud_event(
                        "module.completed",
                        {"clinician_ref": ref, "module_id": module, "quiz_score": 80},
                        trust=trust,
                        site=site,
                        time=at + timedelta(seconds=n + 1),
                    )
                )
        elif i % 2 == 0:
            started += 1
            out.events.append(
                cloud_event(
                    "module.started",
                    {"clinician_ref": ref, "module_id": REQUIRED_MODULES[0]},
                    trust=trust,
                    site=site,
                    time=at + timedelta(seconds=1),
                )
            )
    out.expected = {
        "clinicians_enrolled": clinicians,
        "clinicians_started": started,
        "clinicians_completed": completed,
    }
    return out


# --- reading figures -----------------------------------------------------------------------


async def national(url: str) -> dict[str, Any] | None:
    """National figures from a reporting instance, or None while it does not answer."""
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            r = await client.get("/v1/national", headers={"Authorization": f"Bearer {RAW_TOKEN}"})
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    figures: dict[str, Any] = r.json()["figures"]
    return figures


def subset(figures: dict[str, Any] | None, names: Iterable[str]) -> dict[str, Any]:
    return {n: (figures or {}).get(n) for n in names}


async def figures_reach(url: str, expected: dict[str, int]) -> dict[str, Any] | None:
    """The figures once every expected one is reached (None before)."""
    figures = await national(url)
    got = subset(figures, expected)
    return figures if got == expected else None


async def await_figures(
    url: str, expected: dict[str, int], timeout: float, what: str, *services: ServiceProcess
) -> dict[str, Any]:
    """Wait until the national figures equal `expected`; on timeout say what was seen."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = await national(url)
        if subset(last, expected) == expected:
            assert last is not None
            return last
        await asyncio.sleep(0.1)
    tails = "\n".join(f"--- {s.name} ---\n{s.proc.tail(30) if s.proc else ''}" for s in services)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}: expected {expected}, "
        f"last {subset(last, expected)}\n{tails}"
    )


async def figure_between(url: str, figure: str, low: int, high: int) -> int:
    """Wait until a national figure is part-way (low <= value < high); return it."""

    async def check() -> int:
        value = ((await national(url)) or {}).get(figure)
        return value if isinstance(value, int) and low <= value < high else 0

    return await wait_for(check, 60, f"{figure} part-way ({low}..{high})")


async def stream_count(js: JetStreamContext, subject: str) -> int:
    """How many messages the events stream holds on `subject` (wildcards allowed)."""
    info = await js.stream_info("IBEST_EVENTS", subjects_filter=subject)
    return sum((info.state.subjects or {}).values())


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- a real SMTP server and a rollout that must send known reminders -----------------------


def notify_env(smtp_port: int, site_teams: dict[str, list[str]]) -> dict[str, str]:
    """Notifications over SMTP, open every hour of every day (the test runs on wall time)."""
    return {
        "IBEST_NOTIFY_CHANNEL": "smtp",
        "IBEST_SMTP_HOST": "127.0.0.1",
        "IBEST_SMTP_PORT": str(smtp_port),
        "IBEST_NOTIFY_POLL_SECONDS": "0.2",
        "IBEST_NOTIFY_RETRY_BASE_SECONDS": "1",
        "IBEST_NOTIFY_RETRY_MAX_SECONDS": "2",
        "IBEST_NOTIFY_CONTACT_TIMEOUT": "2",
        "IBEST_NOTIFY_WORKING_DAYS": "mon-sun",
        "IBEST_NOTIFY_WORKING_START": "00:00",
        "IBEST_NOTIFY_WORKING_END": "23:59",
        "IBEST_SITE_TEAMS": json.dumps(site_teams),
    }


@dataclass
class Rollout(Script):
    """A rollout on wall time: who must receive exactly one reminder today."""

    emails: list[str] = field(default_factory=list)
    site_teams: dict[str, list[str]] = field(default_factory=dict)
    outcomes_n: int = 0


def live_rollout(clinicians: int, patients: int, now: datetime) -> Rollout:
    """Clinicians enrolled 10 days ago (i % 6: 0 completes, 2 and 4 start a module, 1, 3 and
    5 never start; only 1 and 5 give a contact email, so each of them gets exactly one
    start reminder and nobody else a clinician message). Patients' baselines 95 days ago
    (their month 3 follow-up fell due 4 days ago); every 2nd has it recorded, at RXF01 and
    RGT02, which have no site team; the others are at RTH08 and RTH09, which do."""
    tag = uuid.uuid4().hex[:6]
    out = Rollout()
    started = completed = 0
    for i in range(clinicians):
        trust, site = SITES[i % len(SITES)]
        ref = f"l{tag}-{i}"
        at = now - timedelta(days=10, minutes=i)
        data: dict[str, Any] = {"clinician_ref": ref, "profession": "nurse", "course_version": "1"}
        if i % 6 in (1, 5):
            data["contact_email"] = f"clin.{tag}.{i}@example.nhs.uk"
            out.emails.append(data["contact_email"])
        out.events.append(cloud_event("clinician.enrolled", data, trust=trust, site=site, time=at))
        modules = REQUIRED_MODULES if i % 6 == 0 else REQUIRED_MODULES[:1] if i % 2 == 0 else []
        started += bool(modules)
        completed += i % 6 == 0
        for n, module in enumerate(modules):
            out.events.append(
                cloud_event(
                    "module.completed",
                    {"clinician_ref": ref, "module_id": module},
                    trust=trust,
                    site=site,
                    time=at + timedelta(seconds=n + 1),
                )
            )
    followed = 0
    for p in range(patients):
        # Followed-up patients are at sites with no team configured, so a site team's
        # digest always lists someone still due and is sent exactly once today.
        trust, site = SITES[2 + p // 2 % 2] if p % 2 == 0 else SITES[p // 2 % 2]
        ref = f"q{tag}-{p}"
        at = now - timedelta(days=95, minutes=p)
        if p % 2:
            out.site_teams.setdefault(site, [f"team-{site.lower()}-{tag}@example.nhs.uk"])
        out.events.append(
            cloud_event(
                "patient.assessed",
                {"patient_ref": ref, "timepoint": "baseline", "measures": {"rmdq": 14}},
                trust=trust,
                site=site,
                time=at,
            )
        )
        if p % 2 == 0:
            followed += 1
            out.events.append(
                cloud_event(
                    "patient.assessed",
                    {"patient_ref": ref, "timepoint": "month_3", "measures": {"rmdq": 7}},
                    trust=trust,
                    site=site,
                    time=at + timedelta(days=91),
                )
            )
    out.outcomes_n = followed
    out.expected = {
        "clinicians_enrolled": clinicians,
        "clinicians_started": started,
        "clinicians_completed": completed,
        "patients_baseline": patients,
        "patients_month_3": followed,
    }
    return out


async def consumer_idle(js: JetStreamContext, durable: str) -> bool:
    """True when the durable consumer has nothing left to deliver or to acknowledge."""
    info = await js.consumer_info("IBEST_EVENTS", durable)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def scheduler_passed_since(url: str, moment: datetime) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        last = (await client.get("/v1/scheduler")).json()["last_pass"]
    return last is not None and datetime.fromisoformat(last) > moment
