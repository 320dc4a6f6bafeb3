"""The secured nats-server fixtures (tests/deploy/secured_nats.py) for every deploy test."""

from tests.deploy.secured_nats import nats_secrets, secured_nats

__all__ = ["nats_secrets", "secured_nats"]
