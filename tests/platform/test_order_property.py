"""Issue 25's property on the fake-based application layers (fast, many examples): for
every permutation, duplication and batch split drawn, the figures at every level (current
and monthly, raw and published) and the latest derived facts equal those of the
time-ordered history."""

from __future__ import annotations

import asyncio
import random
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.platform.order import CATALOGUE, histories, outcome_of
from tests.reporting import dataset as ds


def check(history: list[dict[str, Any]], seed: int) -> None:
    with mock.patch("shared.envelope.catalogue", lambda: CATALOGUE):
        events = [ds.parsed(e) for e in history]
        expected = asyncio.run(outcome_of(events, None))
        got = asyncio.run(outcome_of(events, random.Random(seed)))
    assert got["latest derived"] == expected["latest derived"]
    for name, answer in expected["figures"].items():
        assert got["figures"][name] == answer, name


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(0, 2**32))
def test_every_delivery_of_a_history_ends_as_the_time_ordered_one(
    history: list[dict[str, Any]], seed: int
) -> None:
    check(history, seed)
