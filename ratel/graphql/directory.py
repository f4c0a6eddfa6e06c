"""GraphQL for staff users and the directory sync.

``staffUsers`` lists staff users with the fields the directory owns
(read-only here: they change in the directory and arrive with the next sync
or login) and the state of the last sync; ``directorySyncRuns`` and
``syncDirectory`` are for administrators. The root fields are merged into
``Query`` and ``Mutation`` by ``ratel.graphql.schema`` and guarded by the
permission matrix like every other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

import strawberry

from ratel.domain import staff as staff_domain
from ratel.domain.directory_sync import DirectorySyncRun as SyncRunDomain
from ratel.domain.errors import DomainError
from ratel.graphql.permissions import Guard
from ratel.graphql.types import MAX_FIRST, Info, UserError

#: Staff lists are short; a page is still bounded.
MAX_STAFF_PAGE = 500


@strawberry.enum
class StaffMemberStatus(Enum):
    ACTIVE = "active"
    BLOCKED = "blocked"


@strawberry.enum
class StaffMemberSource(Enum):
    LOCAL = "local"
    DIRECTORY = "directory"


@strawberry.type(description="A person who works with ratel.")
class StaffMember:
    id: str
    login: str
    name: str
    email: str | None
    country: str | None
    company: str | None
    roles: list[str]
    status: StaffMemberStatus = strawberry.field(
        description="BLOCKED when ratel or the directory blocked the user (expiry aside)."
    )
    blocked_in_ratel: bool
    disabled_in_directory: bool
    expires_at: datetime | None
    expired: bool
    source: StaffMemberSource
    directory_managed: bool = strawberry.field(
        description="Name, email, country, company, roles and expiry come from the directory "
        "and are read-only in ratel."
    )
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: staff_domain.StaffUser, now: datetime) -> StaffMember:
        return cls(
            id=user.id,
            login=user.login,
            name=user.name,
            email=user.email,
            country=user.country,
            company=user.company,
            roles=sorted(user.roles),
            status=StaffMemberStatus(user.effective_status.value),
            blocked_in_ratel=user.status is staff_domain.StaffStatus.BLOCKED,
            disabled_in_directory=user.directory_disabled,
            expires_at=user.expires_at,
            expired=user.has_expired(now),
            source=StaffMemberSource(user.source.value),
            directory_managed=user.from_directory,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
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


@strawberry.type(description="Staff users and the state of the directory sync.")
class StaffMemberList:
    users: list[StaffMember]
    last_sync: DirectorySyncRun | None = strawberry.field(
        description="The latest directory sync run (null before the first)."
    )


@strawberry.type
class DirectorySyncPayload:
    run: DirectorySyncRun | None
    errors: list[UserError]


@strawberry.type
class DirectoryQuery:
    @strawberry.field(
        description="Staff users ordered by login (a page after `afterLogin`), with the last "
        "directory sync.",
        extensions=[Guard()],
    )
    async def staff_users(
        self, info: Info, first: int = 100, after_login: str | None = None
    ) -> StaffMemberList:
        use_cases = info.context.use_cases
        size = max(1, min(first, MAX_STAFF_PAGE))
        users = await use_cases.list_staff(after_login=after_login, limit=size)
        runs = await use_cases.directory_sync_runs(limit=1)
        now = datetime.now(UTC)
        return StaffMemberList(
            users=[StaffMember.of(u, now) for u in users],
            last_sync=DirectorySyncRun.of(runs[0]) if runs else None,
        )

    @strawberry.field(
        description="The latest directory sync runs, newest first.", extensions=[Guard()]
    )
    async def directory_sync_runs(self, info: Info, first: int = 20) -> list[DirectorySyncRun]:
        runs = await info.context.use_cases.directory_sync_runs(limit=max(1, min(first, MAX_FIRST)))
        return [DirectorySyncRun.of(run) for run in runs]


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
