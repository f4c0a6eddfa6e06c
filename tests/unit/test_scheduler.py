"""The housekeeping scheduler of `ratel serve`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest

from ratel.adapters.health import ListenerRegistry, ListenerState
from ratel.adapters.scheduler import Scheduler


@dataclass(frozen=True)
class Report:
    done: int


async def test_runs_every_interval_and_survives_failing_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def job() -> Report:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is locked")
        return Report(calls)

    listeners = ListenerRegistry()
    scheduler = Scheduler(job, 0.01, listeners)
    assert listeners.status("scheduler").state is ListenerState.STARTING  # type: ignore[union-attr]
    task = asyncio.create_task(scheduler.run())
    with caplog.at_level(logging.INFO, "ratel.adapters.scheduler"):
        while calls < 3:
            await asyncio.sleep(0.01)
        assert listeners.status("scheduler").state is ListenerState.UP  # type: ignore[union-attr]
        scheduler.stop()
        await asyncio.wait_for(task, 1)
    assert listeners.status("scheduler").state is ListenerState.DOWN  # type: ignore[union-attr]
    assert "housekeeping pass failed" in caplog.text
    done = [r for r in caplog.records if r.getMessage() == "housekeeping pass done"]
    assert done and done[0].done == 2  # type: ignore[attr-defined]


async def test_stopping_lets_the_running_pass_finish() -> None:
    started = asyncio.Event()
    finished = False

    async def job() -> None:
        nonlocal finished
        started.set()
        await asyncio.sleep(0.1)
        finished = True

    scheduler = Scheduler(job, 60, ListenerRegistry())
    task = asyncio.create_task(scheduler.run())
    await started.wait()
    scheduler.stop()
    await asyncio.wait_for(task, 1)
    assert finished
    assert scheduler.passes == 1
