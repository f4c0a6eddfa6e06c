"""Logins, tokens, API keys and self-care passwords against the real store
(SQLite and PostgreSQL), real argon2 and the real local directory.

Two stand-ins appear, each for what no real adapter can show yet: a
recording directory proves an empty password never reaches the directory,
and a static directory plays Active Directory (its adapter has its own
issue) for the mirroring of directory users.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import account, customer

from ratel.adapters.db.tables import access_tokens, account_credentials, api_keys, staff_users
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.directory.local import LocalDirectory
from ratel.adapters.passwords import Argon2Hasher
from ratel.adapters.system import HmacHasher, TimeOrderedIds
from ratel.application.auth import (
    Authenticate,
    AuthenticationUnavailable,
    BlockStaffUser,
    ChangeOwnPassword,
    CreateApiKey,
    CreateLocalStaffUser,
    IdentityServices,
    ListApiKeys,
    ListStaff,
    Logout,
    PurgeExpiredTokens,
    RevokeApiKey,
    RevokeStaffTokens,
    SelfCareLogin,
    SetAccountPassword,
    StaffLogin,
    UnblockStaffUser,
)
from ratel.application.base import Dependencies
from ratel.application.identity import CallerKind, Permission, Principal
from ratel.domain.errors import AccountTerminated, NotFound
from ratel.domain.staff import (
    AuthenticationFailed,
    InvalidApiKey,
    InvalidStaffUser,
    LoginNotAllowed,
    StaffSource,
    StaffUser,
    WeakPassword,
)
from ratel.ports.identity import Directory, DirectoryUnavailable, DirectoryUser

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
TTL = timedelta(hours=8)
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at


def cheap_argon2() -> Argon2Hasher:
    # Real argon2id, with costs small enough for a test suite.
    return Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class Identity:
    deps: Dependencies
    clock: Clock
    passwords: Argon2Hasher
    services: IdentityServices
    engine: AsyncEngine

    def __call__(self, cls: type[Any], directory: Directory | None = None) -> Any:
        services = self.services
        if directory is not None:
            services = IdentityServices(self.passwords, directory, TTL)
        return cls(self.deps, services)

    async def rows(self, table: sa.Table) -> list[dict[str, Any]]:
        async with self.engine.connect() as connection:
            return [dict(r) for r in (await connection.execute(sa.select(table))).mappings()]


@pytest.fixture
def identity(engine: AsyncEngine) -> Identity:
    uow = SqlUnitOfWorkFactory(engine)
    clock = Clock()
    deps = Dependencies(uow=uow, clock=clock, ids=TimeOrderedIds(), hasher=HmacHasher("test"))
    passwords = cheap_argon2()
    services = IdentityServices(passwords, LocalDirectory(uow, passwords), TTL)
    return Identity(deps, clock, passwords, services, engine)


async def admin(identity: Identity, login: str = "ada", **options: Any) -> StaffUser:
    roles = options.pop("roles", ("administrator",))
    user: StaffUser = await identity(CreateLocalStaffUser)(
        login, "Ada Lovelace", PASSWORD, roles, **options
    )
    return user


async def subscriber(identity: Identity) -> tuple[str, str]:
    owner = customer()
    line = account(owner)
    async with identity.deps.uow() as uow:
        await uow.customers.add(owner)
        await uow.accounts.add(line)
        await uow.commit()
    return owner.id, line.id


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class RecordingDirectory:
    """Remembers whether it was asked anything."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        self.asked.append(login)
        return None

    async def users(self) -> Sequence[DirectoryUser]:
        return []


class StaticDirectory:
    """Plays Active Directory: fixed entries, one password for all, or down."""

    def __init__(self, *entries: DirectoryUser, down: bool = False) -> None:
        self.entries = {entry.login.lower(): entry for entry in entries}
        self.down = down

    async def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        if self.down:
            raise DirectoryUnavailable("no server answered")
        entry = self.entries.get(login.lower())  # logins compare case-insensitively
        return entry if entry is not None and password == PASSWORD else None

    async def users(self) -> Sequence[DirectoryUser]:
        return list(self.entries.values())


# -- staff login --------------------------------------------------------------------------


async def test_staff_login_gives_a_token_that_authenticates(identity: Identity) -> None:
    await admin(identity, "Ada")
    session = await identity(StaffLogin)("ADA", PASSWORD)
    assert session.principal == Principal(
        CallerKind.STAFF, subject="ada", roles=frozenset({"administrator"})
    )
    assert session.expires_at == START + TTL
    assert len(session.token) >= 43  # 32 random bytes, URL-safe

    authenticate = identity(Authenticate)
    assert await authenticate(session.token) == session.principal
    assert await authenticate(f"Bearer {session.token}") == session.principal
    principal = await authenticate(session.token)
    assert principal.may(Permission.STAFF_MANAGE)

    staff = await identity(ListStaff)()
    assert [(s.login, s.last_login_at) for s in staff] == [("ada", START)]


async def test_only_the_hash_of_a_token_is_stored(identity: Identity) -> None:
    await admin(identity)
    session = await identity(StaffLogin)("ada", PASSWORD)
    [row] = await identity.rows(access_tokens)
    assert row["token_hash"] == sha256(session.token)
    assert session.token not in {str(v) for v in row.values()}
    assert row["id"] == session.token_id
    assert "token=" not in repr(session)  # never in a log line or a traceback


async def test_local_staff_passwords_are_stored_as_argon2(identity: Identity) -> None:
    await admin(identity)
    [row] = await identity.rows(staff_users)
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]
    assert row["source"] == "local"


async def test_wrong_password_and_unknown_user_look_the_same(identity: Identity) -> None:
    await admin(identity)
    login = identity(StaffLogin)
    with pytest.raises(AuthenticationFailed) as wrong:
        await login("ada", "not the password")
    with pytest.raises(AuthenticationFailed) as unknown:
        await login("nobody", PASSWORD)
    assert type(wrong.value) is type(unknown.value) is AuthenticationFailed
    assert str(wrong.value) == str(unknown.value)
    assert await identity.rows(access_tokens) == []


async def test_an_empty_password_never_reaches_the_directory(identity: Identity) -> None:
    directory = RecordingDirectory()
    login = identity(StaffLogin, directory)
    for user, password in (("ada", ""), ("", PASSWORD), ("   ", PASSWORD)):
        with pytest.raises(AuthenticationFailed):
            await login(user, password)
    assert directory.asked == []


async def test_an_unreachable_directory_is_its_own_error(identity: Identity) -> None:
    with pytest.raises(AuthenticationUnavailable) as refused:
        await identity(StaffLogin, StaticDirectory(down=True))("ada", PASSWORD)
    assert refused.value.code == "authentication_unavailable"


async def test_every_login_attempt_is_logged_without_the_password(
    identity: Identity, caplog: pytest.LogCaptureFixture
) -> None:
    await admin(identity)
    login = identity(StaffLogin)
    with caplog.at_level(logging.INFO, logger="ratel.auth"):
        await login("ada", PASSWORD)
        with pytest.raises(AuthenticationFailed):
            await login("ada", "wrong password!")
        with pytest.raises(AuthenticationFailed):
            await login("ada", "")
    attempts = [r for r in caplog.records if "staff login" in r.getMessage()]
    assert [(r.levelname, getattr(r, "reason", "ok")) for r in attempts] == [
        ("INFO", "ok"),
        ("WARNING", "invalid_credentials"),
        ("WARNING", "empty"),
    ]
    assert all(getattr(r, "login", None) == "ada" for r in attempts)
    text = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert PASSWORD not in text and "wrong password!" not in text


async def test_an_outdated_password_hash_is_replaced_at_login(identity: Identity) -> None:
    weak = Argon2Hasher(time_cost=1, memory_cost=512, parallelism=1)
    weak_services = IdentityServices(weak, identity.services.directory, TTL)
    await CreateLocalStaffUser(identity.deps, weak_services)(
        "ada", "Ada", PASSWORD, ["administrator"]
    )
    [before] = await identity.rows(staff_users)
    await identity(StaffLogin)("ada", PASSWORD)  # today's parameters: memory_cost=1024
    [after] = await identity.rows(staff_users)
    assert before["password_hash"] != after["password_hash"]
    assert "m=1024" in after["password_hash"]
    await identity(StaffLogin)("ada", PASSWORD)


async def test_a_user_in_no_role_ratel_knows_cannot_log_in(identity: Identity) -> None:
    user = await admin(identity)
    async with identity.deps.uow() as uow:
        loaded = await uow.staff.get(user.id)
        assert loaded is not None
        loaded.set_roles({"auditor"})  # a role no ROLE_PERMISSIONS entry grants
        await uow.staff.save(loaded)
        await uow.commit()
    with pytest.raises(LoginNotAllowed):
        await identity(StaffLogin)("ada", PASSWORD)


async def test_local_staff_need_known_roles_and_a_good_password(identity: Identity) -> None:
    create = identity(CreateLocalStaffUser)
    with pytest.raises(InvalidStaffUser, match="unknown role"):
        await create("ada", "Ada", PASSWORD, ["superuser"])
    with pytest.raises(InvalidStaffUser, match="at least one role"):
        await create("ada", "Ada", PASSWORD, [])
    with pytest.raises(WeakPassword):
        await create("ada", "Ada", "short", ["helpdesk"])
    assert await identity(ListStaff)() == []


# -- tokens: expiry, revocation, blocked staff ----------------------------------------------


async def test_an_expired_token_is_refused(identity: Identity) -> None:
    await admin(identity)
    session = await identity(StaffLogin)("ada", PASSWORD)
    authenticate = identity(Authenticate)
    identity.clock.at = START + TTL - timedelta(seconds=1)
    assert (await authenticate(session.token)).kind is CallerKind.STAFF
    identity.clock.at = START + TTL
    with pytest.raises(AuthenticationFailed):
        await authenticate(session.token)


async def test_a_token_never_outlives_its_users_expiry(identity: Identity) -> None:
    await admin(identity, expires_at=START + timedelta(hours=2))
    session = await identity(StaffLogin)("ada", PASSWORD)
    assert session.expires_at == START + timedelta(hours=2)
    identity.clock.at = START + timedelta(hours=2)
    with pytest.raises(LoginNotAllowed):
        await identity(StaffLogin)("ada", PASSWORD)


async def test_logout_revokes_the_token(identity: Identity) -> None:
    await admin(identity)
    first = await identity(StaffLogin)("ada", PASSWORD)
    second = await identity(StaffLogin)("ada", PASSWORD)
    logout = identity(Logout)
    assert await logout(f"Bearer {first.token}")
    assert not await logout(first.token)  # already revoked
    assert not await logout("unknown")
    authenticate = identity(Authenticate)
    with pytest.raises(AuthenticationFailed):
        await authenticate(first.token)
    assert (await authenticate(second.token)).subject == "ada"


async def test_revoking_a_staff_members_tokens(identity: Identity) -> None:
    await admin(identity)
    await admin(identity, "bob")
    sessions = [await identity(StaffLogin)("ada", PASSWORD) for _ in range(3)]
    bobs = await identity(StaffLogin)("bob", PASSWORD)
    assert await identity(RevokeStaffTokens)("ADA") == 3
    authenticate = identity(Authenticate)
    for session in sessions:
        with pytest.raises(AuthenticationFailed):
            await authenticate(session.token)
    assert (await authenticate(bobs.token)).subject == "bob"
    # a fresh login works: revoking sessions is not blocking
    await identity(StaffLogin)("ada", PASSWORD)


async def test_a_blocked_staff_member_is_locked_out_at_once(identity: Identity) -> None:
    await admin(identity)
    session = await identity(StaffLogin)("ada", PASSWORD)
    blocked = await identity(BlockStaffUser)("ada")
    assert not blocked.is_usable(START)
    with pytest.raises(AuthenticationFailed):
        await identity(Authenticate)(session.token)
    with pytest.raises(LoginNotAllowed):
        await identity(StaffLogin)("ada", PASSWORD)
    await identity(UnblockStaffUser)("ada")
    # the old token stays revoked; a new login works
    with pytest.raises(AuthenticationFailed):
        await identity(Authenticate)(session.token)
    fresh = await identity(StaffLogin)("ada", PASSWORD)
    assert (await identity(Authenticate)(fresh.token)).subject == "ada"
    with pytest.raises(NotFound):
        await identity(BlockStaffUser)("nobody")


async def test_a_blocked_user_is_refused_even_if_a_token_escaped_revocation(
    identity: Identity,
) -> None:
    user = await admin(identity)
    session = await identity(StaffLogin)("ada", PASSWORD)
    async with identity.deps.uow() as uow:  # blocked behind the use cases' back
        loaded = await uow.staff.get(user.id)
        assert loaded is not None
        loaded.block()
        await uow.staff.save(loaded)
        await uow.commit()
    with pytest.raises(AuthenticationFailed):
        await identity(Authenticate)(session.token)


async def test_role_changes_apply_to_existing_tokens(identity: Identity) -> None:
    user = await admin(identity)
    session = await identity(StaffLogin)("ada", PASSWORD)
    async with identity.deps.uow() as uow:
        loaded = await uow.staff.get(user.id)
        assert loaded is not None
        loaded.set_roles({"helpdesk"})
        await uow.staff.save(loaded)
        await uow.commit()
    principal = await identity(Authenticate)(session.token)
    assert principal.roles == {"helpdesk"}
    assert principal.may(Permission.CUSTOMERS_READ)
    assert not principal.may(Permission.CUSTOMERS_WRITE)


async def test_expired_tokens_are_purged(identity: Identity) -> None:
    await admin(identity)
    await identity(StaffLogin)("ada", PASSWORD)
    identity.clock.at = START + TTL + timedelta(days=1, seconds=1)
    assert await identity(PurgeExpiredTokens)() == 1
    assert await identity.rows(access_tokens) == []


@pytest.mark.parametrize("bearer", [None, "", "   ", "Bearer "])
async def test_no_credential_is_an_anonymous_caller(identity: Identity, bearer: str | None) -> None:
    assert await identity(Authenticate)(bearer) == Principal.anonymous()


@pytest.mark.parametrize(
    "bearer",
    ["not-a-token", "Bearer not-a-token", "rk_", "rk_abc", "rk_abc_", "rk__secret", "x" * 5000],
)
async def test_a_bad_credential_is_refused_not_anonymous(identity: Identity, bearer: str) -> None:
    with pytest.raises(AuthenticationFailed):
        await identity(Authenticate)(bearer)


# -- directory users ----------------------------------------------------------------------


GRACE = DirectoryUser(
    login="Grace",
    name="Grace Hopper",
    email="grace@example.com",
    country="US",
    company="Navy",
    roles=frozenset({"helpdesk", "unmapped-role"}),
    groups=frozenset({"CN=Ratel-Helpdesk,OU=Groups,DC=example,DC=com"}),
)


async def test_a_directory_user_is_mirrored_at_each_login(identity: Identity) -> None:
    directory = StaticDirectory(GRACE)
    session = await identity(StaffLogin, directory)("grace", PASSWORD)
    assert session.principal.roles == {"helpdesk"}  # only roles ratel knows
    [user] = await identity(ListStaff)()
    assert (user.login, user.name, user.source) == ("grace", "Grace Hopper", StaffSource.DIRECTORY)
    assert user.password_hash is None

    # the directory changed: promoted, moved; the next login brings it over
    directory.entries["grace"] = DirectoryUser(
        login="Grace",
        name="Grace Hopper",
        country="GB",
        roles=frozenset({"administrator"}),
    )
    again = await identity(StaffLogin, directory)("grace", PASSWORD)
    assert again.principal.roles == {"administrator"}
    [user] = await identity(ListStaff)()
    assert (user.country, user.email, user.id) == ("GB", None, user.id)


async def test_a_directory_user_disabled_there_is_refused_and_logged_out(
    identity: Identity,
) -> None:
    directory = StaticDirectory(GRACE)
    session = await identity(StaffLogin, directory)("grace", PASSWORD)
    directory.entries["grace"] = DirectoryUser(
        login="Grace", name="Grace Hopper", roles=frozenset({"helpdesk"}), disabled=True
    )
    with pytest.raises(LoginNotAllowed):
        await identity(StaffLogin, directory)("grace", PASSWORD)
    with pytest.raises(AuthenticationFailed):
        await identity(Authenticate)(session.token)
    [user] = await identity(ListStaff)()
    assert user.directory_disabled


async def test_a_directory_user_without_a_mapped_group_cannot_log_in(identity: Identity) -> None:
    outsider = DirectoryUser(login="mallory", name="Mallory", roles=frozenset({"unmapped"}))
    with pytest.raises(LoginNotAllowed):
        await identity(StaffLogin, StaticDirectory(outsider))("mallory", PASSWORD)
    assert await identity.rows(access_tokens) == []
    assert await identity(ListStaff)() == []  # anyone may try: no row for them


async def test_a_directory_user_losing_their_groups_loses_their_sessions(
    identity: Identity,
) -> None:
    directory = StaticDirectory(GRACE)
    session = await identity(StaffLogin, directory)("grace", PASSWORD)
    directory.entries["grace"] = DirectoryUser(
        login="Grace", name="Grace Hopper", roles=frozenset({"unmapped"})
    )
    with pytest.raises(LoginNotAllowed):
        await identity(StaffLogin, directory)("grace", PASSWORD)
    with pytest.raises(AuthenticationFailed):
        await identity(Authenticate)(session.token)
    [user] = await identity(ListStaff)()
    assert user.roles == frozenset()


async def test_a_directory_entry_cannot_take_over_a_local_login(identity: Identity) -> None:
    await admin(identity, "grace")
    with pytest.raises(AuthenticationFailed):
        await identity(StaffLogin, StaticDirectory(GRACE))("grace", PASSWORD)
    assert await identity.rows(access_tokens) == []


async def test_the_local_directory_lists_local_users_only(identity: Identity) -> None:
    await admin(identity)
    await identity(StaffLogin, StaticDirectory(GRACE))("grace", PASSWORD)
    listed = await identity.services.directory.users()
    assert [(u.login, u.source) for u in listed] == [("ada", StaffSource.LOCAL)]
    # and it never authenticates a directory user, whatever the password
    assert await identity.services.directory.authenticate("grace", PASSWORD) is None


# -- API keys -----------------------------------------------------------------------------


async def test_an_api_key_authenticates_with_its_scopes(identity: Identity) -> None:
    key, secret = await identity(CreateApiKey)("USSD gateway", ["ussd"])
    mark, prefix, rest = secret.split("_", 2)
    assert (mark, prefix) == ("rk", key.prefix)
    assert len(rest) >= 43
    principal = await identity(Authenticate)(secret)
    assert principal == Principal(CallerKind.API_CLIENT, subject=key.id, scopes=frozenset({"ussd"}))
    assert principal.may(Permission.USSD)
    assert not principal.may(Permission.CUSTOMERS_READ)

    [row] = await identity.rows(api_keys)
    assert row["secret_hash"] == sha256(rest)
    assert rest not in {str(v) for v in row.values()}


async def test_a_wrong_or_revoked_key_is_refused(identity: Identity) -> None:
    key, secret = await identity(CreateApiKey)("Salesforce", ["crm:read", "crm:write"])
    authenticate = identity(Authenticate)
    principal = await authenticate(f"Bearer {secret}")
    assert principal.may(Permission.CRM_LINK) and principal.may(Permission.CUSTOMERS_READ)
    with pytest.raises(AuthenticationFailed):
        await authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    with pytest.raises(AuthenticationFailed):
        await authenticate(f"rk_ffffffffffff_{secret.split('_', 2)[2]}")
    revoked = await identity(RevokeApiKey)(key.id)
    assert revoked.revoked_at == START
    with pytest.raises(AuthenticationFailed):
        await authenticate(secret)
    assert await identity(ListApiKeys)(include_revoked=False) == []
    assert [k.id for k in await identity(ListApiKeys)()] == [key.id]
    # logging out with a key does nothing: keys are revoked by administrators
    assert not await identity(Logout)(secret)
    with pytest.raises(NotFound):
        await identity(RevokeApiKey)("key_nobody")


async def test_an_api_key_needs_known_scopes(identity: Identity) -> None:
    with pytest.raises(InvalidApiKey, match="unknown scope"):
        await identity(CreateApiKey)("Anything", ["ussd", "admin"])
    with pytest.raises(InvalidApiKey):
        await identity(CreateApiKey)("Nothing", [])
    assert await identity.rows(api_keys) == []


# -- self-care ----------------------------------------------------------------------------


async def test_self_care_login_and_password_change(identity: Identity) -> None:
    customer_id, account_id = await subscriber(identity)
    await identity(SetAccountPassword)(account_id, PASSWORD)
    [row] = await identity.rows(account_credentials)
    assert row["password_hash"].startswith("$argon2id$")

    login = identity(SelfCareLogin)
    session = await login(f" {account_id} ", PASSWORD)
    assert session.principal == Principal(
        CallerKind.ACCOUNT_HOLDER,
        subject=account_id,
        account_id=account_id,
        customer_id=customer_id,
    )
    authenticate = identity(Authenticate)
    assert await authenticate(session.token) == session.principal
    assert (await authenticate(session.token)).owns_account(account_id)

    other = await login(account_id, PASSWORD)
    change = identity(ChangeOwnPassword)
    with pytest.raises(AuthenticationFailed):
        await change(account_id, "not the password", "a new passphrase")
    with pytest.raises(WeakPassword):
        await change(account_id, PASSWORD, "short")
    await change(account_id, PASSWORD, "a new passphrase", current_bearer=session.token)

    with pytest.raises(AuthenticationFailed):
        await login(account_id, PASSWORD)
    await login(account_id, "a new passphrase")
    # the session that made the change stays; the other one ended
    assert await authenticate(session.token) == session.principal
    with pytest.raises(AuthenticationFailed):
        await authenticate(other.token)


async def test_self_care_refusals_look_the_same(identity: Identity) -> None:
    _, account_id = await subscriber(identity)
    _, without_password = await subscriber(identity)
    await identity(SetAccountPassword)(account_id, PASSWORD)
    login = identity(SelfCareLogin)
    messages = set()
    for who, password in (
        (account_id, "wrong password"),
        ("acc_nobody", PASSWORD),
        (without_password, PASSWORD),
        (account_id, ""),
    ):
        with pytest.raises(AuthenticationFailed) as refused:
            await login(who, password)
        assert type(refused.value) is AuthenticationFailed
        messages.add(str(refused.value))
    assert len(messages) == 1


async def test_a_terminated_account_cannot_log_in(identity: Identity) -> None:
    _, account_id = await subscriber(identity)
    await identity(SetAccountPassword)(account_id, PASSWORD)
    session = await identity(SelfCareLogin)(account_id, PASSWORD)
    async with identity.deps.uow() as uow:
        line = await uow.accounts.get(account_id, lock=True)
        assert line is not None
        line.terminate(START)
        await uow.accounts.save(line)
        await uow.commit()
    with pytest.raises(LoginNotAllowed):
        await identity(SelfCareLogin)(account_id, PASSWORD)
    with pytest.raises(AuthenticationFailed):  # and its open session ends with it
        await identity(Authenticate)(session.token)
    with pytest.raises(AccountTerminated):
        await identity(SetAccountPassword)(account_id, "another passphrase")


async def test_a_staff_password_reset_ends_self_care_sessions(identity: Identity) -> None:
    _, account_id = await subscriber(identity)
    reset = identity(SetAccountPassword)
    await reset(account_id, PASSWORD)
    session = await identity(SelfCareLogin)(account_id, PASSWORD)
    with pytest.raises(WeakPassword):
        await reset(account_id, "1234567")  # seven characters
    await reset(account_id, "12345678")  # eight: the minimum
    with pytest.raises(AuthenticationFailed):
        await identity(Authenticate)(session.token)
    with pytest.raises(NotFound):
        await reset("acc_nobody", PASSWORD)
