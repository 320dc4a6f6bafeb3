"""The gateway's `GatewayMetrics` port, held to one contract: every assertion here runs
against the in-memory fake (tests/fakes/gateway.py `FakeMetrics`), which the use-case
tests read, and against `PrometheusGatewayMetrics` read back from the process's Prometheus
registry (what `/metrics` exposes): each request counted once under its trust and status
(`trust=""`: no valid key), each event under its trust and result, each request's time
under its trust."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY

from services.gateway.adapters.metrics import PrometheusGatewayMetrics
from services.gateway.domain.results import EventResult, Status
from services.gateway.ports import GatewayMetrics
from tests.fakes.gateway import FakeMetrics


@dataclass
class World:
    metrics: GatewayMetrics
    requests: Callable[[str, int], float]
    events: Callable[[str, str], float]
    timed: Callable[[str], tuple[float, float]]
    """(how many requests were timed, their seconds in all) for a trust."""


@pytest.fixture(params=["fake", "prometheus"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "fake":
        fake = FakeMetrics()
        yield World(
            fake,
            lambda trust, status: sum(s[:2] == (trust, status) for s in fake.seen),
            lambda trust, result: sum(
                r == result for t, _, rs in fake.seen if t == trust for r in rs
            ),
            lambda trust: (
                sum(t == trust for t, _ in fake.timed),
                sum(s for t, s in fake.timed if t == trust),
            ),
        )
        return
    # The registry is the process's: read each value as a change from when the test began.
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def sample(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def value(name: str, **labels: str) -> float:
        return sample(name, labels) - before.get((name, tuple(sorted(labels.items()))), 0.0)

    def snapshot(trusts: list[str]) -> None:
        names = [
            *(("ibest_gateway_requests_total", {"status": str(s)}) for s in (200, 401, 422, 500)),
            *(("ibest_gateway_events_total", {"result": r.value}) for r in Status),
            ("ibest_gateway_request_duration_seconds_count", {}),
            ("ibest_gateway_request_duration_seconds_sum", {}),
        ]
        for trust in trusts:
            for name, labels in names:
                full = {**labels, "trust": trust}
                before[(name, tuple(sorted(full.items())))] = sample(name, full)

    snapshot(["RTH", "RNU", ""])
    yield World(
        PrometheusGatewayMetrics(),
        lambda trust, status: value(
            "ibest_gateway_requests_total", trust=trust, status=str(status)
        ),
        lambda trust, result: value("ibest_gateway_events_total", trust=trust, result=result),
        lambda trust: (
            value("ibest_gateway_request_duration_seconds_count", trust=trust),
            value("ibest_gateway_request_duration_seconds_sum", trust=trust),
        ),
    )


def results(*statuses: Status) -> list[EventResult]:
    return [EventResult(id=str(uuid.uuid4()), status=s) for s in statuses]


def test_requests_events_and_times_are_counted_per_trust(world: World) -> None:
    accepted, duplicate, rejected = Status.ACCEPTED, Status.DUPLICATE, Status.REJECTED
    world.metrics.observe("RTH", 200, results(accepted, accepted, duplicate), 0.25)
    world.metrics.observe("RTH", 422, results(accepted, rejected), 0.5)
    world.metrics.observe("RNU", 200, results(accepted), 0.125)
    world.metrics.observe("", 401, [], 0.0625)  # no valid key: no trust, no events
    assert [world.requests("RTH", s) for s in (200, 422, 500)] == [1, 1, 0]
    assert [world.requests("RNU", 200), world.requests("", 401)] == [1, 1]
    assert [world.events("RTH", r.value) for r in (accepted, duplicate, rejected)] == [3, 1, 1]
    assert [world.events("RNU", r.value) for r in (accepted, duplicate)] == [1, 0]
    assert [world.events("", r.value) for r in Status] == [0, 0, 0]
    assert world.timed("RTH") == (2, 0.75)
    assert world.timed("RNU") == (1, 0.125)
    assert world.timed("") == (1, 0.0625)
