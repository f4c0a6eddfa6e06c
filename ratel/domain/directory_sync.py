"""A run of the directory sync: when it ran and what it changed.

The staff directory (Active Directory) is the master of who exists; a
scheduled job mirrors it into ratel's staff users. Each run is recorded, so
that an operator sees when the mirror was last right and why it was not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ratel.domain.customer import require_aware


@dataclass(frozen=True, kw_only=True)
class DirectorySyncRun:
    """One sync run. ``finished_at`` is None while it runs; ``error`` says
    why it changed nothing (the directory did not answer) or what went wrong
    for some users (the others were synced)."""

    id: str
    started_at: datetime
    finished_at: datetime | None = None
    created: int = 0
    updated: int = 0
    blocked: int = 0
    deleted: int = 0
    tokens_revoked: int = 0
    error: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a sync run needs an id")
        require_aware(self.started_at, "started_at")
        if self.finished_at is not None:
            require_aware(self.finished_at, "finished_at")
        counts = (self.created, self.updated, self.blocked, self.deleted, self.tokens_revoked)
        if any(count < 0 for count in counts):
            raise ValueError("sync counts are never negative")

    @property
    def succeeded(self) -> bool:
        return self.finished_at is not None and self.error is None

    def finish(
        self,
        at: datetime,
        *,
        created: int = 0,
        updated: int = 0,
        blocked: int = 0,
        deleted: int = 0,
        tokens_revoked: int = 0,
        error: str | None = None,
    ) -> DirectorySyncRun:
        """The run as it ended."""
        return replace(
            self,
            finished_at=at,
            created=created,
            updated=updated,
            blocked=blocked,
            deleted=deleted,
            tokens_revoked=tokens_revoked,
            error=error,
        )
