"""A real nats-server running the committed deploy/nats/nats.conf, as compose runs it.

The secrets are made by the operator's own tool (`deploy.make_secrets`, with a throw-away
CA), the passwords file is included as in compose, and clients connect over TLS.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient

from deploy.make_secrets import make
from deploy.nats.generate import CONF_PATH, PASSWORDS_INCLUDE
from ibest.backbone.settings import Settings, inbox_prefix
from ibest.local.processes import Managed, find_binary, free_port, start_and_wait


@dataclass(frozen=True)
class SecuredNats:
    url: str
    secrets: Path

    @property
    def ca_file(self) -> Path:
        return self.secrets / "ca.crt"

    def password_file(self, user: str) -> Path:
        return self.secrets / f"nats_password_{user}"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def settings_for(self, user: str, base: Settings | None = None) -> Settings:
        """Settings of a process running as `user`: name, password file and CA, as compose."""
        update = {
            "nats_url": self.url,
            "nats_user": user,
            "nats_password_file": self.password_file(user),
            "nats_tls_ca_file": self.ca_file,
        }
        return (base or Settings()).model_copy(update=update)

    async def connect(self, user: str, **kwargs: Any) -> NatsClient:
        """`user` over TLS on its own inbox prefix (trusts: `_INBOX_<CODE>`)."""
        prefix = f"_INBOX_{user[6:]}" if user.startswith("trust-") else inbox_prefix(user)
        options: dict[str, Any] = {"inbox_prefix": prefix, "allow_reconnect": False}
        options.update(kwargs)
        return await nats.connect(
            self.url,
            user=user,
            password=self.password_file(user).read_text().strip(),
            tls=self.tls(),
            **options,
        )


def write_server_config(home: Path, secrets: Path) -> Path:
    """The committed nats.conf with only the store and certificate paths moved."""
    config = home / "nats.conf"
    config.write_text(
        CONF_PATH.read_text()
        .replace('"/data/jetstream"', f'"{home / "store"}"')
        .replace('"/etc/nats/tls/tls.crt"', f'"{secrets / "tls.crt"}"')
        .replace('"/etc/nats/tls/tls.key"', f'"{secrets / "tls.key"}"')
    )
    (home / PASSWORDS_INCLUDE).write_text((secrets / "nats_passwords.conf").read_text())
    return config


@pytest.fixture(scope="module")
def nats_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    secrets = tmp_path_factory.mktemp("secrets")
    make(secrets, self_signed=True, names=["localhost", "127.0.0.1"])
    return secrets


@pytest.fixture(scope="module")
def secured_nats(
    tmp_path_factory: pytest.TempPathFactory, nats_secrets: Path
) -> Iterator[SecuredNats]:
    home = tmp_path_factory.mktemp("nats-secured")
    port, monitor = free_port(), free_port()
    config = write_server_config(home, nats_secrets)
    argv = [
        find_binary("nats-server"),
        "-c",
        str(config),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "-m",
        str(monitor),
    ]
    proc = start_and_wait(Managed("nats-secured", argv, home / "nats.log"), "127.0.0.1", port)
    yield SecuredNats(f"tls://127.0.0.1:{port}", nats_secrets)
    proc.stop()
