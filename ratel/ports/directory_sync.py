"""The record of directory sync runs."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ratel.domain.directory_sync import DirectorySyncRun


class DirectorySyncLog(Protocol):
    """Where sync runs are recorded. Each call is its own transaction: a run
    is visible as running while it runs, and its record survives a failed
    run."""

    async def started(self, run: DirectorySyncRun) -> None:
        """Record a run that has just started."""
        ...

    async def finished(self, run: DirectorySyncRun) -> None:
        """Record how a started run ended (its counts, its error)."""
        ...

    async def recent(
        self, limit: int = 20, *, before: tuple[datetime, str] | None = None
    ) -> list[DirectorySyncRun]:
        """The latest runs, newest first (by start, then id); with ``before``
        (a run's ``started_at`` and ``id``), only the runs older than that one."""
        ...
