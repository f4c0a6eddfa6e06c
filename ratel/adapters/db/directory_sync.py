"""The record of directory sync runs, in ``directory_sync_runs``.

Each call is a short transaction of its own on the engine (not a member of
the unit of work): the run is recorded as running before the sync starts,
and its end is recorded whatever became of the users' transactions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from ratel.adapters.db.tables import directory_sync_runs
from ratel.domain.directory_sync import DirectorySyncRun

_MAX_ERROR = 2000  # an error message is for a person: the start of it is enough


def _row(run: DirectorySyncRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "created": run.created,
        "updated": run.updated,
        "blocked": run.blocked,
        "deleted": run.deleted,
        "tokens_revoked": run.tokens_revoked,
        "error": None if run.error is None else run.error[:_MAX_ERROR],
    }


def _run(row: RowMapping) -> DirectorySyncRun:
    return DirectorySyncRun(
        id=row["id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        created=row["created"],
        updated=row["updated"],
        blocked=row["blocked"],
        deleted=row["deleted"],
        tokens_revoked=row["tokens_revoked"],
        error=row["error"],
    )


class SqlDirectorySyncLog:
    """The ``DirectorySyncLog`` port on ``directory_sync_runs``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def started(self, run: DirectorySyncRun) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(sa.insert(directory_sync_runs).values(**_row(run)))

    async def finished(self, run: DirectorySyncRun) -> None:
        values = _row(run)
        del values["id"], values["started_at"]
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(directory_sync_runs)
                .where(directory_sync_runs.c.id == run.id)
                .values(**values)
            )

    async def recent(
        self, limit: int = 20, *, before: tuple[datetime, str] | None = None
    ) -> list[DirectorySyncRun]:
        c = directory_sync_runs.c
        statement = (
            sa.select(directory_sync_runs).order_by(c.started_at.desc(), c.id.desc()).limit(limit)
        )
        if before is not None:
            started_at, run_id = before
            # keyset: stable while new runs start at the head of the list
            statement = statement.where(
                sa.or_(
                    c.started_at < started_at,
                    sa.and_(c.started_at == started_at, c.id < run_id),
                )
            )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [_run(row) for row in rows]
