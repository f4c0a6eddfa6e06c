"""Staff users, API keys, access tokens and self-care passwords in the store,
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import NOW, account, customer, new_id

from ratel.adapters.db.tables import staff_users
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.domain.account import AccountStatus
from ratel.domain.errors import ConcurrentChange
from ratel.domain.staff import (
    AccessToken,
    ApiKey,
    DuplicateLogin,
    StaffSource,
    StaffStatus,
    StaffUser,
    TokenKind,
)


def staff(login: str = "ada", **changes: Any) -> StaffUser:
    values: dict[str, Any] = {
        "id": new_id("stf"),
        "login": login,
        "name": "Ada Lovelace",
        "created_at": NOW,
        "email": "ada@example.com",
        "country": "GB",
        "company": "Analytical Engines",
        "roles": frozenset({"administrator", "helpdesk"}),
        "expires_at": NOW + timedelta(days=365),
        "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    }
    values.update(changes)
    return StaffUser(**values)


def token(subject: str = "ada", **changes: Any) -> AccessToken:
    values: dict[str, Any] = {
        "id": new_id("tok"),
        "token_hash": new_id("hash"),
        "kind": TokenKind.STAFF,
        "subject": subject,
        "issued_at": NOW,
        "expires_at": NOW + timedelta(hours=8),
    }
    values.update(changes)
    return AccessToken(**values)


def api_key(prefix: str = "0a1b2c3d4e5f", **changes: Any) -> ApiKey:
    values: dict[str, Any] = {
        "id": new_id("key"),
        "name": "USSD gateway",
        "scopes": frozenset({"ussd", "crm:read"}),
        "prefix": prefix,
        "secret_hash": "ab" * 32,
        "created_at": NOW,
    }
    values.update(changes)
    return ApiKey(**values)


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements run on ``engine`` inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


# -- staff users ------------------------------------------------------------------------


async def test_a_staff_user_round_trips(uow: SqlUnitOfWorkFactory) -> None:
    ada = staff(last_login_at=NOW)
    async with uow() as work:
        await work.staff.add(ada)
        await work.commit()
    async with uow() as work:
        loaded = await work.staff.get(ada.id)
        by_login = await work.staff.by_login("  ADA ")
    assert loaded == ada
    assert by_login == ada
    assert loaded is not None and loaded.expires_at is not None
    assert loaded.expires_at.tzinfo is not None


async def test_logins_are_unique_whatever_their_case(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as work:
        await work.staff.add(staff("ada"))
        await work.commit()
    with pytest.raises(DuplicateLogin):
        async with uow() as work:
            await work.staff.add(staff("ADA"))


async def test_save_writes_only_what_changed(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    ada = staff()
    async with uow() as work:
        await work.staff.add(ada)
        await work.commit()
    async with uow() as work:
        loaded = await work.staff.by_login("ada", lock=True)
        assert loaded is not None
        with statements(engine) as seen:
            await work.staff.save(loaded)  # unchanged: nothing to write
        assert seen == []
        loaded.block()
        loaded.logged_in(NOW + timedelta(hours=1))
        with statements(engine) as seen:
            await work.staff.save(loaded)
        assert len(seen) == 1
        assert "password_hash" not in seen[0] and "status" in seen[0]
        await work.commit()
    async with uow() as work:
        again = await work.staff.get(ada.id)
    assert again is not None
    assert again.status is StaffStatus.BLOCKED
    assert again.last_login_at == NOW + timedelta(hours=1)


async def test_a_directory_user_has_no_password_column_value(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    mirrored = staff("grace", source=StaffSource.DIRECTORY, password_hash=None)
    async with uow() as work:
        await work.staff.add(mirrored)
        await work.commit()
    async with engine.connect() as connection:
        stored = await connection.scalar(
            sa.select(staff_users.c.password_hash).where(staff_users.c.login == "grace")
        )
    assert stored is None


async def test_staff_are_listed_by_login_in_pages_and_removed(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as work:
        for login in ("carol", "ada", "bob"):
            await work.staff.add(staff(login))
        await work.commit()
    async with uow() as work:
        assert [u.login for u in await work.staff.all()] == ["ada", "bob", "carol"]
        assert [u.login for u in await work.staff.all(after_login="ada", limit=1)] == ["bob"]
        bob = await work.staff.by_login("bob")
        assert bob is not None
        await work.staff.remove(bob.id)
        await work.commit()
    async with uow() as work:
        assert [u.login for u in await work.staff.all()] == ["ada", "carol"]


async def test_a_rollback_forgets_what_the_staff_repository_saw(
    uow: SqlUnitOfWorkFactory,
) -> None:
    ada = staff()
    async with uow() as work:
        await work.staff.add(ada)
        await work.rollback()
        # the row is gone, so what the identity map remembers of it is stale
        assert work.staff._seen == {}
    async with uow() as work:
        assert await work.staff.get(ada.id) is None


# -- API keys -----------------------------------------------------------------------------


async def test_api_keys_are_found_by_prefix_and_revoked(uow: SqlUnitOfWorkFactory) -> None:
    first = api_key("aaaaaaaaaaaa")
    second = api_key("bbbbbbbbbbbb", name="Zendesk", created_at=NOW + timedelta(minutes=1))
    async with uow() as work:
        await work.api_keys.add(first)
        await work.api_keys.add(second)
        await work.commit()
    async with uow() as work:
        found = await work.api_keys.by_prefix("aaaaaaaaaaaa")
        assert found == first
        assert await work.api_keys.by_prefix("cccccccccccc") is None
        assert found is not None
        found.revoke(NOW)
        await work.api_keys.save(found)
        await work.commit()
    async with uow() as work:
        assert [k.id for k in await work.api_keys.all()] == [first.id, second.id]
        assert [k.id for k in await work.api_keys.all(include_revoked=False)] == [second.id]
        revoked = await work.api_keys.get(first.id)
    assert revoked is not None and revoked.revoked_at == NOW


async def test_key_prefixes_are_unique(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as work:
        await work.api_keys.add(api_key("aaaaaaaaaaaa"))
        await work.commit()
    with pytest.raises(ConcurrentChange, match="prefix"):
        async with uow() as work:
            await work.api_keys.add(api_key("aaaaaaaaaaaa"))


# -- access tokens --------------------------------------------------------------------------


async def test_a_staff_token_comes_with_its_user_in_one_statement(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    ada = staff()
    issued = token("ada")
    async with uow() as work:
        await work.staff.add(ada)
        await work.tokens.add(issued)
        await work.commit()
    async with uow() as work:
        with statements(engine) as seen:
            holder = await work.tokens.holder(issued.token_hash)
        assert len(seen) == 1
        assert await work.tokens.holder("no such hash") is None
        assert await work.tokens.by_hash(issued.token_hash) == issued
    assert holder is not None
    assert holder.token == issued
    assert holder.staff == ada
    assert holder.account_status is None


async def test_an_account_holders_token_has_no_staff_user(uow: SqlUnitOfWorkFactory) -> None:
    # a staff login equal to the account id must not be joined to the token
    owner = customer()
    line = account(owner)
    self_care = token(
        line.id, kind=TokenKind.ACCOUNT_HOLDER, account_id=line.id, customer_id=owner.id
    )
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add(line)
        await work.staff.add(staff(line.id))
        await work.tokens.add(self_care)
        await work.commit()
    async with uow() as work:
        holder = await work.tokens.holder(self_care.token_hash)
    assert holder is not None
    assert holder.staff is None
    assert holder.account_status is AccountStatus.ACTIVE
    assert holder.token.account_id == line.id and holder.token.customer_id == owner.id


async def test_revoking_a_subjects_tokens(uow: SqlUnitOfWorkFactory) -> None:
    live, kept, expired = token("ada"), token("ada"), token("ada", expires_at=NOW + timedelta(1))
    other = token("bob")
    same_name_account = token(
        "ada", kind=TokenKind.ACCOUNT_HOLDER, account_id="ada", customer_id="cus"
    )
    async with uow() as work:
        for t in (live, kept, expired, other, same_name_account):
            await work.tokens.add(t)
        await work.commit()
    later = NOW + timedelta(days=2)  # "expired" is past its expiry by then
    async with uow() as work:
        revoked = await work.tokens.revoke_for_subject(
            TokenKind.STAFF, "ada", NOW + timedelta(hours=1), except_id=kept.id
        )
        assert revoked == 2  # live and the not-yet-expired one
        assert await work.tokens.revoke_for_subject(TokenKind.STAFF, "ada", later) == 0
        await work.commit()
    async with uow() as work:
        states = {t.id: await work.tokens.by_hash(t.token_hash) for t in (live, kept, other)}
        account_token = await work.tokens.by_hash(same_name_account.token_hash)
    assert states[live.id] is not None and states[live.id].revoked_at is not None  # type: ignore[union-attr]
    assert states[kept.id] is not None and states[kept.id].revoked_at is None  # type: ignore[union-attr]
    assert states[other.id] is not None and states[other.id].revoked_at is None  # type: ignore[union-attr]
    assert account_token is not None and account_token.revoked_at is None


async def test_expired_tokens_are_purged(uow: SqlUnitOfWorkFactory) -> None:
    old = token(expires_at=NOW + timedelta(minutes=1))
    fresh = token(expires_at=NOW + timedelta(days=1))
    async with uow() as work:
        await work.tokens.add(old)
        await work.tokens.add(fresh)
        await work.commit()
    async with uow() as work:
        assert await work.tokens.remove_expired(NOW + timedelta(hours=1)) == 1
        await work.commit()
    async with uow() as work:
        assert await work.tokens.by_hash(old.token_hash) is None
        assert await work.tokens.by_hash(fresh.token_hash) is not None


async def test_token_hashes_are_unique(uow: SqlUnitOfWorkFactory) -> None:
    first = token()
    async with uow() as work:
        await work.tokens.add(first)
        await work.commit()
    with pytest.raises(IntegrityError):
        async with uow() as work:
            await work.tokens.add(token(token_hash=first.token_hash))


# -- self-care passwords --------------------------------------------------------------------


async def test_self_care_password_hashes_are_set_and_replaced(uow: SqlUnitOfWorkFactory) -> None:
    owner = customer()
    line = account(owner)
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add(line)
        assert await work.credentials.get(line.id) is None
        await work.credentials.set(line.id, "$argon2id$first", NOW)
        await work.commit()
    async with uow() as work:
        assert await work.credentials.get(line.id) == "$argon2id$first"
        await work.credentials.set(line.id, "$argon2id$second", NOW + timedelta(1))
        await work.commit()
    async with uow() as work:
        assert await work.credentials.get(line.id) == "$argon2id$second"


async def test_a_password_needs_an_existing_account(uow: SqlUnitOfWorkFactory) -> None:
    with pytest.raises(IntegrityError):
        async with uow() as work:
            await work.credentials.set("acc_nobody", "$argon2id$x", NOW)
            await work.commit()
