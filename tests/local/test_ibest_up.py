"""`ibest up`, the README's run command, as an operator runs it: start, serve, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ibest.local.processes import free_port, wait_until
from ibest.local.stack import SERVICES, service_built

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it


def test_ibest_up_starts_everything_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    ports = {name: free_port() for name in SERVICES}
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "MONGODB_URL")}
    env.update(
        {
            "IBEST_NATS_PORT": str(free_port()),
            "IBEST_MONGODB_PORT": str(free_port()),
            **{f"IBEST_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        }
    )
    out = tmp_path / "up.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ibest.cli", "up", "--data-dir", str(tmp_path / "data")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            try:
                wait_until(lambda: "Press Ctrl-C" in out.read_text(), 300, "ibest up", proc)
            except (RuntimeError, TimeoutError) as exc:  # say why: its own output names it
                raise AssertionError(f"{exc}\n--- ibest up said ---\n{out.read_text()}") from exc
            text = out.read_text()
            assert "nats-server (JetStream)" in text and "SecantusDB" in text
            assert "created IBEST_EVENTS" in text and "created IBEST_DEADLETTER" in text
            for name, port in ports.items():
                if service_built(name):
                    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                    assert ready.status_code == 200, (name, ready.text)
                    assert f"http://127.0.0.1:{port}" in text
                else:
                    assert f"{name:<14} NOT BUILT YET" in text
            proc.send_signal(signal.SIGINT)
            assert proc.wait(120) == 0, out.read_text()
        finally:
            if proc.poll() is None:  # a failed check: stop it as an operator would, so its
                proc.send_signal(signal.SIGINT)  # servers and services stop with it
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    text = out.read_text()
    assert "stopped nats" in text and "stopped mongodb" in text
