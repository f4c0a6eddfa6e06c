"""The directory sync as a component of ``ratel serve``: a run at start-up,
then one every ``RATEL_DIRECTORY_SYNC_INTERVAL`` seconds (600 by default).

A failed run is recorded and logged by the use case; the next one runs on
schedule. Stopping lets a running run finish (its LDAP calls are bounded by
the directory timeouts). With the local directory there is nothing to
mirror: the component then does nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ratel.adapters.health import Listener, ListenerRegistry
from ratel.application.directory_sync import SyncDirectory

log = logging.getLogger("ratel.directory.sync")


class DirectorySyncLoop:
    """Runs ``sync`` now and every ``interval`` seconds until stopped."""

    name = "directory-sync"

    def __init__(
        self, sync: SyncDirectory, interval: float, listeners: ListenerRegistry, *, enabled: bool
    ) -> None:
        self._sync = sync
        self._interval = interval
        self._enabled = enabled
        self._listeners = listeners
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None
        self.runs = 0

    async def start(self) -> None:
        if not self._enabled:
            return
        self._stopping.clear()
        self._listener = listener = self._listeners.register(self.name)
        self._task = asyncio.create_task(self._run(), name=self.name)
        # Up even while the directory is down: staff can still use their
        # tokens, and charging must not leave the load balancer for it. The
        # runs' errors are in the log and in GraphQL (directorySyncRuns).
        listener.up(f"every {self._interval:g}s")

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await task
        except asyncio.CancelledError:
            task.cancel()  # the stop itself was given up on: do not leave the run behind
            raise
        finally:
            if self._listener is not None:
                self._listener.down("stopped")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._sync()
            except Exception:
                log.exception("directory sync run failed; the next one runs on schedule")
            self.runs += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
