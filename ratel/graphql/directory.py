"""GraphQL for the directory sync (administrators).

Staff users, with the fields the directory owns, are the ``staff``
connection (``ratel.graphql.identity``); the state of the last sync is
``directorySyncRuns(first: 1)``. ``syncDirectory`` runs the sync now. The
root fields are merged into ``Query`` and ``Mutation`` by
``ratel.graphql.schema`` and guarded by the permission matrix like every
other.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from ratel.domain.directory_sync import DirectorySyncRun as SyncRunDomain
from ratel.domain.errors import DomainError
from ratel.graphql.permissions import Guard
from ratel.graphql.types import (
    Connection,
    Info,
    Position,
    UserError,
    decode_position,
    keyset_connection,
    page_size,
)


@strawberry.type(description="One run of the directory sync.")
class DirectorySyncRun:
    id: str
    started_at: datetime
    finished_at: datetime | None = strawberry.field(description="Null while the run runs.")
    created: int
    updated: int
    blocked: int
    deleted: int
    tokens_revoked: int
    error: str | None = strawberry.field(
        description="Why the run changed nothing (the directory did not answer), or which "
        "users it could not sync."
    )
    succeeded: bool

    @classmethod
    def of(cls, run: SyncRunDomain) -> DirectorySyncRun:
        return cls(
            id=run.id,
            started_at=run.started_at,
            finished_at=run.finished_at,
            created=run.created,
            updated=run.updated,
            blocked=run.blocked,
            deleted=run.deleted,
            tokens_revoked=run.tokens_revoked,
            error=run.error,
            succeeded=run.succeeded,
        )


@strawberry.type
class DirectorySyncPayload:
    run: DirectorySyncRun | None
    errors: list[UserError]


def _before(cursor: str | None) -> tuple[datetime, str] | None:
    """The run a cursor names (its start and id); None for no cursor or one
    that is not a sync run's (the list then starts from the newest)."""
    position = decode_position(cursor, "syncrun")
    if position is None or position.id is None:
        return None
    return position.at, position.id


@strawberry.type
class DirectoryQuery:
    @strawberry.field(
        description="The directory sync runs, newest first; `first: 1` is the last sync.",
        extensions=[Guard()],
    )
    async def directory_sync_runs(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[DirectorySyncRun]:
        size = page_size(first)
        before = _before(after)
        runs = await info.context.use_cases.directory_sync_runs(limit=size + 1, before=before)
        return keyset_connection(
            [DirectorySyncRun.of(run) for run in runs],
            size,
            "syncrun",
            lambda run: (run.started_at, run.id),
            after=Position(*before) if before else None,
        )


@strawberry.type
class DirectoryMutation:
    @strawberry.mutation(
        description="Run the directory sync now (it also runs on schedule).",
        extensions=[Guard()],
    )
    async def sync_directory(self, info: Info) -> DirectorySyncPayload:
        try:
            run = await info.context.use_cases.sync_directory()
        except DomainError as error:
            return DirectorySyncPayload(run=None, errors=[UserError.of(error)])
        errors = []
        if run.error:
            errors.append(UserError(code="directory_sync_incomplete", message=run.error))
        return DirectorySyncPayload(run=DirectorySyncRun.of(run), errors=errors)
