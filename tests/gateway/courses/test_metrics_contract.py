"""The course-platform part's `CourseMetrics` port, held to one contract: every assertion
here runs against the in-memory fake (tests/fakes/courses.py `FakeCourseMetrics`), which
the use-case tests read, and against `PrometheusCourseMetrics` read back from the process's
Prometheus registry (what the gateway's `/metrics` exposes): statements counted per platform
and outcome, a zero count adding no series, and each course run's latest import report the
one shown (a later report of a run replaces its figures)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.gateway.courses.adapters.metrics import PrometheusCourseMetrics
from services.gateway.courses.ports import CourseMetrics
from tests.fakes.courses import FakeCourseMetrics


@dataclass
class World:
    metrics: CourseMetrics
    statements: Callable[[str, str], float | None]
    """The count of (platform, outcome); None when there is no such series."""
    shown: Callable[[str, str], float | None]
    """What is shown of a course run's latest report (`events_published`, ...)."""


@pytest.fixture(params=["fake", "prometheus"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "fake":
        fake = FakeCourseMetrics()

        def fake_shown(run: str, what: str) -> float | None:
            found = [r.get(what, 0) for r in fake.shown if r["course_run"] == run]
            return found[-1] if found else None

        yield World(fake, lambda p, o: fake.counted.get((p, o)), fake_shown)
        return
    yield World(
        PrometheusCourseMetrics(),
        lambda p, o: REGISTRY.get_sample_value(
            "ibest_xapi_statements_total", {"platform": p, "outcome": o}
        ),
        lambda run, what: REGISTRY.get_sample_value(
            "ibest_course_import_last", {"course_run": run, "what": what}
        ),
    )


def test_statements_are_counted_per_platform_and_outcome(world: World) -> None:
    platform = f"contract-{uuid.uuid4().hex[:8]}"  # the registry is the process's: a fresh one
    world.metrics.statements(platform, "accepted", 3)
    world.metrics.statements(platform, "accepted", 2)
    world.metrics.statements(platform, "refused", 1)
    world.metrics.statements(platform, "ignored", 0)
    assert world.statements(platform, "accepted") == 5
    assert world.statements(platform, "refused") == 1
    assert world.statements(platform, "ignored") is None  # a zero adds no series
    assert world.statements(platform, "duplicate") is None


def report(run: str, published: int, refused: int) -> dict[str, Any]:
    return {
        "course_run": run,
        "events_published": published,
        "duplicates_skipped": 2,
        "refused_rows": refused,
        "unmapped_learners": 0,
        "not_stored": 0,
        "finished_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        "rows_read": {"enrolments": published + refused},
        "published": {"RTH": {"clinician.enrolled": published}},
    }


def test_each_course_runs_latest_report_is_shown(world: World) -> None:
    first, second = (f"run-{uuid.uuid4().hex[:8]}" for _ in range(2))
    world.metrics.show_reports([report(first, 10, 1), report(second, 4, 0)])
    assert [world.shown(first, "events_published"), world.shown(first, "refused_rows")] == [10, 1]
    assert world.shown(second, "events_published") == 4
    world.metrics.show_reports([report(first, 12, 0), report(second, 4, 0)])  # a new import
    assert [world.shown(first, "events_published"), world.shown(first, "refused_rows")] == [12, 0]
    assert world.shown(first, "duplicates_skipped") == 2
    assert world.shown(f"run-{uuid.uuid4().hex[:8]}", "events_published") is None
