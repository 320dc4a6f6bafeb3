"""The one periodic loop (ibest/backbone/periodic.py): passes repeat, a failing pass is
logged and the next one runs, the first pass may wait, and setting `stop` ends the loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from ibest.backbone.periodic import every
from tests.harness import wait_for


async def test_a_failing_pass_is_logged_and_the_next_pass_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes: list[int] = []
    stop = asyncio.Event()

    async def job() -> None:
        passes.append(len(passes))
        if len(passes) == 2:
            raise RuntimeError("the database went away")

    async def four_passes() -> bool:
        return len(passes) >= 4

    caplog.set_level(logging.ERROR, logger="ibest.backbone.periodic")
    task = asyncio.create_task(every("probe", 0.01, job, stop=stop))
    await wait_for(four_passes, 10, "four passes")
    stop.set()
    await asyncio.wait_for(task, 5)  # ends on its own once stopped
    assert [r.getMessage() for r in caplog.records] == [
        "probe: pass failed; the next pass will retry"
    ]
    assert caplog.records[0].exc_info is not None


async def test_wait_first_runs_nothing_before_one_interval_and_stop_ends_the_wait() -> None:
    passes: list[int] = []
    stop = asyncio.Event()

    async def job() -> None:
        passes.append(1)

    task = asyncio.create_task(every("probe", 3600, job, wait_first=True, stop=stop))
    await wait_for(_waiting(task), 5, "the loop waiting")
    stop.set()
    await asyncio.wait_for(task, 5)  # an hour's wait ends at once when stopped
    assert passes == []


def _waiting(task: asyncio.Task[None]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not task.done() and task.get_stack() != []

    return check


async def test_cancelling_the_task_ends_the_loop_during_a_pass() -> None:
    started = asyncio.Event()

    async def job() -> None:
        started.set()
        await asyncio.Event().wait()  # a pass that never finishes

    task = asyncio.create_task(every("probe", 0.01, job))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
