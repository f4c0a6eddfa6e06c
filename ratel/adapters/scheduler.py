"""The scheduler of ``ratel serve``: runs the housekeeping job every interval.

A failing pass is logged and the next one runs on time: a database hiccup
must not stop add-on expiry for good. Stopping never interrupts a pass: it
waits for the running one to finish, so no batch is left half done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass

from ratel.adapters.health import ListenerRegistry

log = logging.getLogger(__name__)


class Scheduler:
    """Runs ``job`` now and then every ``interval`` seconds until ``stop``."""

    def __init__(
        self,
        job: Callable[[], Awaitable[object]],
        interval: float,
        listeners: ListenerRegistry,
        name: str = "scheduler",
    ) -> None:
        self._job = job
        self._interval = interval
        self._listener = listeners.register(name)
        self._stopping = asyncio.Event()
        self.passes = 0

    def stop(self) -> None:
        """Ask the loop to end after the running pass (if any)."""
        self._stopping.set()

    async def run(self) -> None:
        """The loop; returns once stopped."""
        self._listener.up(f"every {self._interval:g}s")
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                await self._run_once()
                wait = max(0.0, self._interval - (time.monotonic() - started))
                with contextlib.suppress(TimeoutError):  # the interval is over
                    await asyncio.wait_for(self._stopping.wait(), wait)
        finally:
            self._listener.down("stopped")

    async def _run_once(self) -> None:
        try:
            report = await self._job()
        except Exception:
            log.exception("housekeeping pass failed; the next one runs on schedule")
            return
        finally:
            self.passes += 1
        fields = asdict(report) if is_dataclass(report) and not isinstance(report, type) else {}
        log.info("housekeeping pass done", extra=fields)
