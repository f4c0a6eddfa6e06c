"""Identity: staff users, API keys, access tokens and self-care passwords.

Only hashes of secrets are stored: argon2 for passwords, SHA-256 for the
random tokens and API key secrets (the application makes them). The two
lookups every API request makes are one indexed statement each: a token by
its hash, joined to its staff user; an API key by its prefix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ratel.adapters.db.statements import Prebuilt, Repository, unique_violation
from ratel.adapters.db.tables import (
    access_tokens,
    account_credentials,
    accounts,
    api_keys,
    staff_users,
)
from ratel.domain.account import AccountStatus
from ratel.domain.errors import ConcurrentChange
from ratel.domain.staff import (
    AccessToken,
    ApiKey,
    DuplicateLogin,
    InvalidStaffUser,
    StaffSource,
    StaffStatus,
    StaffUser,
    TokenKind,
    normalize_login,
)
from ratel.ports.identity import TokenHolder

# -- staff users ------------------------------------------------------------------------

_STAFF_BY_ID = Prebuilt(sa.select(staff_users).where(staff_users.c.id == sa.bindparam("id")))
_STAFF_BY_LOGIN = Prebuilt(
    sa.select(staff_users).where(staff_users.c.login == sa.bindparam("login"))
)


def staff_row(user: StaffUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "login": user.login,
        "name": user.name,
        "email": user.email,
        "country": user.country,
        "company": user.company,
        "roles": sorted(user.roles),
        "status": user.status.value,
        "directory_disabled": user.directory_disabled,
        "expires_at": user.expires_at,
        "source": user.source.value,
        "password_hash": user.password_hash,
        "created_at": user.created_at,
        "last_login_at": user.last_login_at,
    }


def staff_from_row(row: RowMapping, prefix: str = "") -> StaffUser:
    def value(name: str) -> Any:
        return row[prefix + name]

    return StaffUser(
        id=value("id"),
        login=value("login"),
        name=value("name"),
        email=value("email"),
        country=value("country"),
        company=value("company"),
        roles=frozenset(value("roles")),
        status=StaffStatus(value("status")),
        directory_disabled=bool(value("directory_disabled")),
        expires_at=value("expires_at"),
        source=StaffSource(value("source")),
        password_hash=value("password_hash"),
        created_at=value("created_at"),
        last_login_at=value("last_login_at"),
    )


class SqlStaffRepository(Repository):
    """Staff users in ``staff_users``. Remembers the users it hands out (the
    identity map of this unit of work) so that ``save`` writes only the
    columns that changed, and nothing when none did."""

    # Keyed by id() of the object handed out (held too, so its id() is not reused).
    _seen: dict[int, tuple[StaffUser, dict[str, Any]]]

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection)
        self._seen = {}

    def forget(self) -> None:
        """Drop the identity map (after a rollback the rows it holds are stale)."""
        self._seen.clear()

    def _remember(self, user: StaffUser, row: dict[str, Any] | None = None) -> StaffUser:
        self._seen[id(user)] = (user, row if row is not None else staff_row(user))
        return user

    async def add(self, user: StaffUser) -> None:
        row = staff_row(user)
        try:
            await self._execute(sa.insert(staff_users).values(**row))
        except IntegrityError as exc:
            if unique_violation(exc, "staff_users", "login"):
                raise DuplicateLogin(f"a staff user with login {user.login} exists") from exc
            raise
        self._remember(user, row)

    async def get(self, staff_id: str, *, lock: bool = False) -> StaffUser | None:
        row = (await self._execute(_STAFF_BY_ID(lock), {"id": staff_id})).mappings().first()
        return None if row is None else self._remember(staff_from_row(row))

    async def by_login(self, login: str, *, lock: bool = False) -> StaffUser | None:
        try:
            key = normalize_login(login)
        except InvalidStaffUser:
            return None  # no stored login looks like that
        row = (await self._execute(_STAFF_BY_LOGIN(lock), {"login": key})).mappings().first()
        return None if row is None else self._remember(staff_from_row(row))

    async def save(self, user: StaffUser) -> None:
        after = staff_row(user)
        seen = self._seen.get(id(user))
        changed = (
            {k: v for k, v in after.items() if v != seen[1][k] and k != "id"}
            if seen is not None
            else {k: v for k, v in after.items() if k != "id"}
        )
        if not changed:
            return  # nothing to write: no statement, no row lock
        try:
            await self._execute(
                sa.update(staff_users).where(staff_users.c.id == user.id).values(**changed)
            )
        except IntegrityError as exc:
            if unique_violation(exc, "staff_users", "login"):
                raise DuplicateLogin(f"a staff user with login {user.login} exists") from exc
            raise
        self._remember(user, after)

    async def remove(self, staff_id: str) -> None:
        await self._execute(sa.delete(staff_users).where(staff_users.c.id == staff_id))
        for key, (user, _) in list(self._seen.items()):
            if user.id == staff_id:
                del self._seen[key]

    async def all(self, *, after_login: str | None = None, limit: int = 1000) -> list[StaffUser]:
        c = staff_users.c
        statement = sa.select(staff_users).order_by(c.login).limit(limit)
        if after_login is not None:
            statement = statement.where(c.login > after_login)
        rows = (await self._execute(statement)).mappings().all()
        return [self._remember(staff_from_row(row)) for row in rows]


# -- API keys ---------------------------------------------------------------------------

_KEY_BY_PREFIX = sa.select(api_keys).where(api_keys.c.prefix == sa.bindparam("prefix"))


def _key_from_row(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scopes=frozenset(row["scopes"]),
        prefix=row["prefix"],
        secret_hash=row["secret_hash"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class SqlApiKeyRepository(Repository):
    """API keys in ``api_keys``; ``prefix`` is unique."""

    async def add(self, key: ApiKey) -> None:
        try:
            await self._execute(
                sa.insert(api_keys).values(
                    id=key.id,
                    name=key.name,
                    prefix=key.prefix,
                    secret_hash=key.secret_hash,
                    scopes=sorted(key.scopes),
                    created_at=key.created_at,
                    revoked_at=key.revoked_at,
                )
            )
        except IntegrityError as exc:
            if unique_violation(exc, "api_keys", "prefix"):
                # 48 random bits collided: making the key again will do
                raise ConcurrentChange(f"the key prefix {key.prefix} is taken") from exc
            raise

    async def get(self, key_id: str) -> ApiKey | None:
        statement = sa.select(api_keys).where(api_keys.c.id == key_id)
        row = (await self._execute(statement)).mappings().first()
        return None if row is None else _key_from_row(row)

    async def by_prefix(self, prefix: str) -> ApiKey | None:
        row = (await self._execute(_KEY_BY_PREFIX, {"prefix": prefix})).mappings().first()
        return None if row is None else _key_from_row(row)

    async def save(self, key: ApiKey) -> None:
        await self._execute(
            sa.update(api_keys)
            .where(api_keys.c.id == key.id)
            .values(name=key.name, scopes=sorted(key.scopes), revoked_at=key.revoked_at)
        )

    async def all(self, *, include_revoked: bool = True) -> list[ApiKey]:
        c = api_keys.c
        statement = sa.select(api_keys).order_by(c.created_at, c.id)
        if not include_revoked:
            statement = statement.where(c.revoked_at.is_(None))
        return [_key_from_row(row) for row in (await self._execute(statement)).mappings().all()]


# -- access tokens ----------------------------------------------------------------------

_STAFF_PREFIX = "staff_"
_TOKEN_BY_HASH = sa.select(access_tokens).where(
    access_tokens.c.token_hash == sa.bindparam("token_hash")
)
_ACCOUNT_STATUS = "holder_account_status"
# One statement per request: the token by its unique hash and, for a staff
# token, its user by the unique login; for an account holder's, the
# account's status by its primary key.
_HOLDER_BY_HASH = (
    sa.select(
        access_tokens,
        *(column.label(_STAFF_PREFIX + column.name) for column in staff_users.c),
        accounts.c.status.label(_ACCOUNT_STATUS),
    )
    .select_from(
        access_tokens.outerjoin(
            staff_users,
            sa.and_(
                access_tokens.c.kind == TokenKind.STAFF.value,
                staff_users.c.login == access_tokens.c.subject,
            ),
        ).outerjoin(accounts, accounts.c.id == access_tokens.c.account_id)
    )
    .where(access_tokens.c.token_hash == sa.bindparam("token_hash"))
)


def _token_from_row(row: RowMapping) -> AccessToken:
    return AccessToken(
        id=row["id"],
        token_hash=row["token_hash"],
        kind=TokenKind(row["kind"]),
        subject=row["subject"],
        account_id=row["account_id"],
        customer_id=row["customer_id"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class SqlTokenRepository(Repository):
    """Access tokens in ``access_tokens``; ``token_hash`` is unique."""

    async def add(self, token: AccessToken) -> None:
        await self._execute(
            sa.insert(access_tokens).values(
                id=token.id,
                token_hash=token.token_hash,
                kind=token.kind.value,
                subject=token.subject,
                account_id=token.account_id,
                customer_id=token.customer_id,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
                revoked_at=token.revoked_at,
            )
        )

    async def by_hash(self, token_hash: str) -> AccessToken | None:
        result = await self._execute(_TOKEN_BY_HASH, {"token_hash": token_hash})
        row = result.mappings().first()
        return None if row is None else _token_from_row(row)

    async def holder(self, token_hash: str) -> TokenHolder | None:
        result = await self._execute(_HOLDER_BY_HASH, {"token_hash": token_hash})
        row = result.mappings().first()
        if row is None:
            return None
        staff = None
        if row[_STAFF_PREFIX + "id"] is not None:
            staff = staff_from_row(row, _STAFF_PREFIX)
        status = row[_ACCOUNT_STATUS]
        return TokenHolder(
            _token_from_row(row), staff, None if status is None else AccountStatus(status)
        )

    async def save(self, token: AccessToken) -> None:
        await self._execute(
            sa.update(access_tokens)
            .where(access_tokens.c.id == token.id)
            .values(revoked_at=token.revoked_at, expires_at=token.expires_at)
        )

    async def revoke_for_subject(
        self, kind: TokenKind, subject: str, now: datetime, *, except_id: str | None = None
    ) -> int:
        c = access_tokens.c
        statement = (
            sa.update(access_tokens)
            .where(
                c.kind == TokenKind(kind).value,
                c.subject == subject,
                c.revoked_at.is_(None),
                c.expires_at > now,
            )
            .values(revoked_at=now)
        )
        if except_id is not None:
            statement = statement.where(c.id != except_id)
        return (await self._execute(statement)).rowcount

    async def remove_expired(self, before: datetime, limit: int = 10_000) -> int:
        c = access_tokens.c
        doomed = sa.select(c.id).where(c.expires_at < before).limit(limit).scalar_subquery()
        return (await self._execute(sa.delete(access_tokens).where(c.id.in_(doomed)))).rowcount


# -- self-care passwords ----------------------------------------------------------------


class SqlCredentialRepository(Repository):
    """Self-care password hashes in ``account_credentials``, one per account."""

    async def get(self, account_id: str) -> str | None:
        c = account_credentials.c
        statement = sa.select(c.password_hash).where(c.account_id == account_id)
        value: str | None = (await self._execute(statement)).scalar_one_or_none()
        return value

    async def set(self, account_id: str, password_hash: str, now: datetime) -> None:
        statement = self._insert(account_credentials).values(
            account_id=account_id, password_hash=password_hash, updated_at=now
        )
        await self._execute(
            statement.on_conflict_do_update(
                index_elements=[account_credentials.c.account_id],
                set_={"password_hash": password_hash, "updated_at": now},
            )
        )
