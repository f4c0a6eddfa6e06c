"""Components: what ``ratel serve`` runs besides HTTP (the event relay, the
RADIUS and Diameter listeners, directory sync ...).

``Service`` starts every component of ``container.components()`` before HTTP
serves, and stops them, in reverse order, once HTTP has stopped, so a
protocol listener finishes its in-flight requests while the store is still
open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from ratel.adapters.health import ListenerRegistry
from ratel.application.relay import EventRelay

log = logging.getLogger(__name__)


class Component(Protocol):
    """A part of the process with a life of its own."""

    name: str

    async def start(self) -> None:
        """Bind sockets, start tasks; raise when it cannot (``serve`` then exits 1)."""
        ...

    async def stop(self) -> None:
        """Stop accepting work, finish what is in flight, close."""
        ...


class EventRelayLoop:
    """Runs the event relay every ``interval`` seconds, and at once again
    while a pass found a full batch (a burst drains without waiting)."""

    name = "event-relay"

    def __init__(
        self, relay: EventRelay, interval: float, listeners: ListenerRegistry, batch: int = 200
    ) -> None:
        self._relay = relay
        self._interval = interval
        self._batch = batch
        self._listener = listeners.register(self.name)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stopping.clear()
        await self._relay.start_at_newest()
        self._task = asyncio.create_task(self._run(), name=self.name)
        self._listener.up(f"every {self._interval:g}s")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        self._listener.down("stopped")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                handed_on = await self._relay(self._batch)
            except Exception:
                # the store hiccuped: the next pass starts where this one stopped
                log.exception("event relay pass failed")
                handed_on = 0
            if handed_on >= self._batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
