"""Child processes for the local stack and the test harness: start, wait ready, stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll `check` until it holds; fail with `what` after `timeout` or if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with code {proc.returncode}")
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")


def find_binary(name: str) -> str:
    """A console script installed with this Python (venv first), else from PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return str(candidate)
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found; install the project (pip install -e .)")
    return found


@dataclass
class Managed:
    """A child process we started, with a log file and a clean stop."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Managed:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            list(self.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(self.env or {})},
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL at once: a crash, for fault tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def nats_server(
    port: int,
    store_dir: Path,
    log_path: Path,
    config: Path | None = None,
    extra: Iterable[str] = (),
) -> Managed:
    """nats-server with JetStream on 127.0.0.1 (or as `config` says), `extra` arguments
    appended (the fault tests add limits)."""
    argv = [
        find_binary("nats-server"),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "-js",
        "-sd",
        str(store_dir),
    ]
    if config is not None:
        argv = [find_binary("nats-server"), "-c", str(config), "-p", str(port)]
    return Managed("nats", [*argv, *extra], log_path)


def secantus_server(port: int, storage: Path, log_path: Path) -> Managed:
    """SecantusDB, the MongoDB-wire server used where no real MongoDB is configured (through
    `ibest.local.secantusd`, which closes a gap in its write-path index use and keeps index
    catalogues in memory). Standalone: nothing the platform does needs a replica set (no
    change stream, no transaction), and a replica-set SecantusDB writes an oplog entry, in
    Python, for every document written."""
    argv = [
        sys.executable,
        "-m",
        "ibest.local.secantusd",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(storage),
        "--log-level",
        "WARNING",
        "--standalone",
    ]
    return Managed("mongodb", argv, log_path)


def start_and_wait(proc: Managed, host: str, port: int, timeout: float = 60) -> Managed:
    proc.start()
    try:
        wait_until(
            lambda: port_open(host, port), timeout, f"{proc.name} on {host}:{port}", proc.proc
        )
    except Exception as exc:
        proc.stop(5)
        raise RuntimeError(f"{exc}\n--- {proc.name} log ---\n{proc.tail()}") from exc
    return proc
