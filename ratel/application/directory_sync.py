"""The directory sync: ratel's staff users mirror the staff directory.

The directory (Active Directory) is the master of who is staff: every run
reads its users and creates, updates, blocks and deletes ratel's directory
users to match (name, login, email, country, company, role, expiry, the
disabled flag). A user the directory disables or lets expire loses their
sessions at once; a user gone from the directory (or from every group mapped
to a role) is deleted. Local users are never touched.

A directory that does not answer changes nothing, and so does one that
suddenly lists nobody while ratel knows directory users (a wrong base DN or
group mapping must not delete every administrator). Each user is written in
a transaction of its own, so that one bad entry neither stops the others nor
holds SQLite's write lock for the whole run. Every run is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from copy import copy
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Final

from ratel.application.auth import IdentityServices, IdentityUseCase
from ratel.application.base import Dependencies, UseCase
from ratel.application.identity import ROLE_PERMISSIONS
from ratel.domain.directory_sync import DirectorySyncRun
from ratel.domain.errors import DomainError
from ratel.domain.staff import (
    DuplicateLogin,
    InvalidStaffUser,
    StaffSource,
    StaffUser,
    TokenKind,
    normalize_login,
)
from ratel.ports.directory_sync import DirectorySyncLog
from ratel.ports.identity import DirectoryUnavailable, DirectoryUser

log = logging.getLogger("ratel.directory.sync")

_PAGE: Final = 500
_MAX_PROBLEMS_SHOWN: Final = 10


class _Outcome(Enum):
    CREATED = "created"
    UPDATED = "updated"
    BLOCKED = "blocked"
    UNCHANGED = "unchanged"


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    blocked: int = 0
    deleted: int = 0
    tokens_revoked: int = 0

    def count(self, outcome: _Outcome) -> None:
        if outcome is _Outcome.CREATED:
            self.created += 1
        elif outcome is _Outcome.UPDATED:
            self.updated += 1
        elif outcome is _Outcome.BLOCKED:
            self.blocked += 1


def _known_roles(roles: frozenset[str]) -> frozenset[str]:
    return frozenset(role for role in roles if role in ROLE_PERMISSIONS)


def _iso_country(value: str | None) -> str | None:
    """The directory's country if it is an ISO code (a country name in the
    wrong attribute is dropped, not a reason to skip the user)."""
    text = (value or "").strip()
    return text if len(text) == 2 and text.isascii() and text.isalpha() else None


def _apply(user: StaffUser, entry: DirectoryUser) -> bool:
    """Give ``user`` the fields the directory owns, as ``entry`` says; whether
    any changed."""
    return user.apply_directory(
        name=entry.name.strip() or user.login,
        email=entry.email,
        country=_iso_country(entry.country),
        company=entry.company,
        roles=_known_roles(entry.roles),
        disabled=entry.disabled,
        expires_at=entry.expires_at,
    )


def _would_change(stored: StaffUser, entry: DirectoryUser) -> bool:
    """Whether mirroring ``entry`` would change ``stored`` (tried on a copy).
    A user left as stored needs nothing: an expired or disabled one holds no
    live token (logins refuse them, and every request checks the user)."""
    if stored.source is not StaffSource.DIRECTORY:
        return True  # let the mirroring report the conflict
    try:
        return _apply(copy(stored), entry)
    except DomainError:
        return True  # let the mirroring report it


class SyncDirectory(IdentityUseCase):
    """One sync run: mirror the directory's users into ratel's staff users and
    record the run (``DirectorySyncRun``: created, updated, blocked, deleted,
    tokens revoked, error). ``blocked`` counts users the directory disabled or
    let expire since they were last seen usable; ``updated`` other changes.
    Never raises for an unreachable directory: the run records it and changes
    nothing. A database failure is recorded too (when it can be) and raised."""

    def __init__(
        self, deps: Dependencies, identity: IdentityServices, runs: DirectorySyncLog
    ) -> None:
        super().__init__(deps, identity)
        self.runs = runs

    async def __call__(self) -> DirectorySyncRun:
        run = DirectorySyncRun(id=self.deps.ids.new("dsr"), started_at=self.deps.clock.now())
        await self.runs.started(run)
        tally = _Tally()
        problems: list[str] = []
        try:
            try:
                listed = await self.identity.directory.users()
            except DirectoryUnavailable as exc:
                return await self._end(
                    run, tally, f"the directory did not answer, nothing changed: {exc}"
                )
            wanted = self._by_login(listed, problems)
            known = await self._directory_users()
            if not wanted and known:
                return await self._end(
                    run,
                    tally,
                    f"the directory listed no ratel users while ratel has {len(known)}: nothing "
                    "deleted (check the base DN, the user filter and the group mapping)",
                )
            for login, entry in wanted.items():
                if login in known and not _would_change(known[login], entry):
                    continue  # as stored: no transaction, no row lock
                await self._mirror_one(login, entry, tally, problems)
            for login in sorted(set(known) - set(wanted)):
                await self._delete_one(login, tally, problems)
        except Exception as exc:
            await self._end(run, tally, f"the sync failed: {type(exc).__name__}: {exc}")
            raise
        error = None
        if problems:
            shown = "; ".join(problems[:_MAX_PROBLEMS_SHOWN])
            more = len(problems) - _MAX_PROBLEMS_SHOWN
            error = f"{len(problems)} user(s) not synced: {shown}" + (
                f"; and {more} more" if more > 0 else ""
            )
        return await self._end(run, tally, error)

    async def _end(
        self, run: DirectorySyncRun, tally: _Tally, error: str | None
    ) -> DirectorySyncRun:
        finished = run.finish(
            self.deps.clock.now(),
            created=tally.created,
            updated=tally.updated,
            blocked=tally.blocked,
            deleted=tally.deleted,
            tokens_revoked=tally.tokens_revoked,
            error=error,
        )
        await self.runs.finished(finished)
        # "users_" in front: "created" is a LogRecord attribute of its own
        fields = {
            "run_id": finished.id,
            "users_created": finished.created,
            "users_updated": finished.updated,
            "users_blocked": finished.blocked,
            "users_deleted": finished.deleted,
            "tokens_revoked": finished.tokens_revoked,
        }
        if error is None:
            log.info("directory sync done", extra=fields)
        else:
            log.error("directory sync incomplete", extra={**fields, "error": error})
        return finished

    @staticmethod
    def _by_login(listed: Sequence[DirectoryUser], problems: list[str]) -> dict[str, DirectoryUser]:
        wanted: dict[str, DirectoryUser] = {}
        for entry in listed:
            if entry.source is not StaffSource.DIRECTORY:
                continue  # the local directory's own users are not mirrored
            try:
                login = normalize_login(entry.login)
            except InvalidStaffUser as exc:
                problems.append(f"{entry.login[:64]!r}: {exc}")
                continue
            if login in wanted:
                problems.append(f"{login}: listed twice by the directory")
                continue
            wanted[login] = entry
        return wanted

    async def _directory_users(self) -> dict[str, StaffUser]:
        found: dict[str, StaffUser] = {}
        after: str | None = None
        while True:
            async with self.deps.uow() as uow:
                page = await uow.staff.all(after_login=after, limit=_PAGE)
            found.update({u.login: u for u in page if u.source is StaffSource.DIRECTORY})
            if len(page) < _PAGE:
                return found
            after = page[-1].login

    async def _mirror_one(
        self, login: str, entry: DirectoryUser, tally: _Tally, problems: list[str]
    ) -> None:
        for attempt in (1, 2):
            try:
                tally.count(await self._mirror(login, entry, tally))
                return
            except DuplicateLogin:
                if attempt == 2:
                    problems.append(f"{login}: created meanwhile by another node")
                # else: a login on another node created the row: update it now
            except DomainError as exc:
                problems.append(f"{login}: {exc}")
                return

    async def _mirror(self, login: str, entry: DirectoryUser, tally: _Tally) -> _Outcome:
        now = self.deps.clock.now()
        name = entry.name.strip() or login
        country = _iso_country(entry.country)
        roles = _known_roles(entry.roles)
        async with self.deps.uow() as uow:
            user = await uow.staff.by_login(login, lock=True)
            if user is None:
                user = StaffUser(
                    id=self.deps.ids.new("stf"),
                    login=login,
                    name=name,
                    email=entry.email,
                    country=country,
                    company=entry.company,
                    roles=roles,
                    directory_disabled=entry.disabled,
                    expires_at=entry.expires_at,
                    source=StaffSource.DIRECTORY,
                    created_at=now,
                )
                await uow.staff.add(user)
                await uow.commit()
                log.info("directory user created", extra={"login": login})
                return _Outcome.CREATED
            if user.source is StaffSource.LOCAL:
                raise InvalidStaffUser("the login belongs to a local user; it was left alone")
            was_usable = user.is_usable(now)
            changed = _apply(user, entry)
            revoked = 0
            if not user.is_usable(now) or not user.roles:
                # Blocked, expired or in no role: no session survives it.
                revoked = await uow.tokens.revoke_for_subject(TokenKind.STAFF, user.login, now)
            if changed:
                await uow.staff.save(user)
            await uow.commit()
        tally.tokens_revoked += revoked
        if was_usable and not user.is_usable(now):
            log.warning("directory user blocked", extra={"login": login, "tokens_revoked": revoked})
            return _Outcome.BLOCKED
        if changed:
            log.info("directory user updated", extra={"login": login})
            return _Outcome.UPDATED
        return _Outcome.UNCHANGED

    async def _delete_one(self, login: str, tally: _Tally, problems: list[str]) -> None:
        now = self.deps.clock.now()
        try:
            async with self.deps.uow() as uow:
                user = await uow.staff.by_login(login, lock=True)
                if user is None or user.source is not StaffSource.DIRECTORY:
                    return  # gone meanwhile, or not the directory's
                revoked = await uow.tokens.revoke_for_subject(TokenKind.STAFF, user.login, now)
                await uow.staff.remove(user.id)
                await uow.commit()
        except DomainError as exc:
            problems.append(f"{login}: {exc}")
            return
        tally.deleted += 1
        tally.tokens_revoked += revoked
        log.warning("directory user deleted", extra={"login": login, "tokens_revoked": revoked})


class DirectorySyncRuns(UseCase):
    """The latest directory sync runs, newest first (the first one running
    while ``finished_at`` is None)."""

    def __init__(self, deps: Dependencies, runs: DirectorySyncLog) -> None:
        super().__init__(deps)
        self.runs = runs

    async def __call__(
        self, *, limit: int = 20, before: tuple[datetime, str] | None = None
    ) -> list[DirectorySyncRun]:
        """At most ``limit`` runs (1..500); with ``before`` (a run's start and
        id) the runs that come after that one in this order: the next page."""
        return await self.runs.recent(max(1, min(limit, 500)), before=before)
