"""Identity: the directory that knows staff, password hashing, and the
repositories of staff users, API keys, access tokens and self-care
passwords (members of the unit of work, see ``ratel.ports.store``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ratel.domain.account import AccountStatus
from ratel.domain.staff import AccessToken, ApiKey, StaffSource, StaffUser, TokenKind


class PasswordHasher(Protocol):
    """A slow, salted password hash (argon2). Hashing and verifying cost tens
    of milliseconds of CPU on purpose, so they are coroutines: an adapter runs
    them off the event loop."""

    async def hash(self, password: str) -> str:
        """A new salted hash of ``password`` (self-describing: algorithm and
        parameters included)."""
        ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``. False on a mismatch
        and on a malformed hash: never raises for bad input."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with weaker parameters than today's (the
        caller then stores a fresh hash of the password it just verified)."""
        ...


class DirectoryUnavailable(Exception):
    """No directory server answered (all down, or too slow). Says nothing
    about the credentials: the login may be tried again later."""


@dataclass(frozen=True)
class DirectoryUser:
    """A person as the directory describes them.

    ``roles`` are ratel role names, already mapped from the directory's
    groups by the adapter's configuration (``groups`` keeps the groups
    themselves, for display and diagnosis). ``source`` tells a directory
    entry (the directory owns the fields) from a local user served by the
    local directory.
    """

    login: str
    name: str
    email: str | None = None
    country: str | None = None
    company: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)
    disabled: bool = False
    expires_at: datetime | None = None
    source: StaffSource = StaffSource.DIRECTORY


class Directory(Protocol):
    """Where staff identities live: Active Directory or another LDAP server
    in production, ratel's own staff table in development and tests.

    Implementations must refuse an empty password without asking a server
    (an empty password is an anonymous bind on many LDAP servers), escape
    every value they put in a search filter, and raise
    ``DirectoryUnavailable`` when no server answers: never ``None``, which
    means "these credentials are wrong".
    """

    async def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        """The user whose credentials these are, or None when the login is
        unknown or the password wrong (not told apart)."""
        ...

    async def users(self) -> Sequence[DirectoryUser]:
        """Every user the directory holds for ratel (the scheduled sync
        mirrors them into the staff table)."""
        ...


class StaffRepository(Protocol):
    """Staff users, found by id or by (normalized) login."""

    async def add(self, user: StaffUser) -> None:
        """Insert a new staff user; ``DuplicateLogin`` if the login is taken."""
        ...

    async def get(self, staff_id: str, *, lock: bool = False) -> StaffUser | None:
        """The staff user, or None."""
        ...

    async def by_login(self, login: str, *, lock: bool = False) -> StaffUser | None:
        """The staff user with this login (compared case-insensitively), or None."""
        ...

    async def save(self, user: StaffUser) -> None:
        """Write the user's fields (only those that changed since it was loaded)."""
        ...

    async def remove(self, staff_id: str) -> None:
        """Delete the staff user (the directory sync does, for users gone from it)."""
        ...

    async def all(self, *, after_login: str | None = None, limit: int = 1000) -> list[StaffUser]:
        """Staff users ordered by login, after ``after_login``."""
        ...


class ApiKeyRepository(Protocol):
    """API keys, found by id or by their public prefix."""

    async def add(self, key: ApiKey) -> None:
        """Insert a new key (its id and prefix must be new)."""
        ...

    async def get(self, key_id: str) -> ApiKey | None:
        """The key, or None."""
        ...

    async def by_prefix(self, prefix: str) -> ApiKey | None:
        """The key with this prefix, or None: one indexed lookup, the path of
        every request made with a key."""
        ...

    async def save(self, key: ApiKey) -> None:
        """Write the key's name, scopes and revocation."""
        ...

    async def all(self, *, include_revoked: bool = True) -> list[ApiKey]:
        """Every key, oldest first."""
        ...


@dataclass(frozen=True)
class TokenHolder:
    """A token together with what a request needs to judge it: for a staff
    token, the staff user as stored now (None if it no longer exists); for an
    account holder's token, the account's status now (None if it no longer
    exists)."""

    token: AccessToken
    staff: StaffUser | None = None
    account_status: AccountStatus | None = None


class TokenRepository(Protocol):
    """Access tokens, found by the hash of the token."""

    async def add(self, token: AccessToken) -> None:
        """Insert a new token."""
        ...

    async def by_hash(self, token_hash: str) -> AccessToken | None:
        """The token with this hash, or None."""
        ...

    async def holder(self, token_hash: str) -> TokenHolder | None:
        """The token with this hash and its holder's state (staff user or
        account status) in one indexed lookup: the path of every request
        made with a token."""
        ...

    async def save(self, token: AccessToken) -> None:
        """Write the token's revocation."""
        ...

    async def revoke_for_subject(
        self, kind: TokenKind, subject: str, now: datetime, *, except_id: str | None = None
    ) -> int:
        """Revoke every live token of ``subject`` (a staff login or an account
        id, as ``kind`` says), but ``except_id``; how many were revoked."""
        ...

    async def remove_expired(self, before: datetime, limit: int = 10_000) -> int:
        """Delete up to ``limit`` tokens that expired before ``before``; how many."""
        ...


class CredentialRepository(Protocol):
    """Self-care passwords: one argon2 hash per account."""

    async def get(self, account_id: str) -> str | None:
        """The account's password hash, or None if it has no password."""
        ...

    async def set(self, account_id: str, password_hash: str, now: datetime) -> None:
        """Store (insert or replace) the account's password hash."""
        ...
