"""A small simulated rollout published to the real NATS fixture lands in IBEST_EVENTS."""

from __future__ import annotations

import argparse
import io
from contextlib import redirect_stdout

import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from ibest.simulate.cli import register, simulate_command
from ibest.simulate.model import SimulationOptions
from ibest.simulate.runner import build_plan, run_simulation


async def test_a_small_run_stores_every_event_once(
    settings: Settings, js: JetStreamContext
) -> None:
    options = SimulationOptions(seed=11, clinicians=60, patients=40, progress=False)
    plan, _ = build_plan(settings, options)
    unique = len({p.msg_id for p in plan.events})
    summary = await run_simulation(settings, options)
    assert summary.published == len(plan.events)
    assert summary.stored == unique
    assert summary.duplicates_dropped == summary.duplicates_sent > 0
    info = await js.stream_info(EVENTS_STREAM)
    assert info.state.messages == unique

    again = await run_simulation(settings, options)  # a re-run is deduplicated whole
    assert again.stored == 0
    assert (await js.stream_info(EVENTS_STREAM)).state.messages == unique


@pytest.mark.slow
async def test_the_cli_command_prints_a_summary(settings: Settings, js: JetStreamContext) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="area"))
    args = parser.parse_args(
        [
            "simulate",
            "--seed",
            "5",
            "--clinicians",
            "20",
            "--patients",
            "10",
            "--trusts",
            "3",
            "--no-progress",
            "--nats-url",
            settings.nats_url,
        ]
    )
    out = io.StringIO()
    with redirect_stdout(out):
        assert await simulate_command(args, settings) == 0
    assert "clinicians: 20 enrolled" in out.getvalue()
    info = await js.stream_info(EVENTS_STREAM)
    subjects = {
        s.split(".")[2]
        for s in (await js.stream_info(EVENTS_STREAM, subjects_filter=">")).state.subjects or {}
    }
    assert info.state.messages > 20
    assert len(subjects) <= 3
