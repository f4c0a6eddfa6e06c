"""Staff login and the directory sync through the container, against a real
Samba AD DC and OpenLDAP slapd, on SQLite and PostgreSQL.

Each test that changes the directory works in an organizational unit of its
own (the sync's base DN), so the counts are its own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from directory_servers import (
    PASSWORD,
    SAMBA_ADMINS,
    SAMBA_HELPDESK,
    Samba,
    SilentServer,
    Slapd,
    closed_port_url,
    filetime,
    samba,
    slapd,
)
from directory_support import container_for, samba_settings, slapd_settings
from sqlalchemy.ext.asyncio import AsyncEngine

from ratel.application.auth import AuthenticationUnavailable
from ratel.application.identity import CallerKind, Role
from ratel.config import Settings
from ratel.container import Container, dispose
from ratel.domain.staff import (
    AuthenticationFailed,
    LoginNotAllowed,
    StaffSource,
    StaffStatus,
    StaffUser,
)

__all__ = ["samba", "slapd"]  # session fixtures

Build = Callable[[Settings], Container]


@pytest.fixture
async def build(engine: AsyncEngine) -> AsyncIterator[Build]:
    """Containers on the emptied test database; disposed after the test."""
    made: list[Container] = []

    def make(settings: Settings) -> Container:
        container = container_for(settings)
        made.append(container)
        return container

    yield make
    for container in made:
        await dispose(container)


def login_name(tag: str) -> str:
    # sAMAccountName holds at most 20 characters
    return f"{tag}{secrets.token_hex(3)}"


async def staff(container: Container) -> dict[str, StaffUser]:
    return {u.login: u for u in await container.list_staff()()}


# -- login through the directory ---------------------------------------------------------


async def test_an_ad_user_logs_in_and_the_token_carries_the_mapped_role(
    samba: Samba, database_url: str, build: Build
) -> None:
    container = build(samba_settings(database_url, samba))
    session = await container.staff_login()("alice", PASSWORD)
    assert session.principal.kind is CallerKind.STAFF
    assert session.principal.roles == {Role.ADMINISTRATOR}
    principal = await container.authenticate_caller()(f"Bearer {session.token}")
    assert principal.subject == "alice" and principal.roles == {Role.ADMINISTRATOR}
    # the first login mirrored the directory's fields, read-only in ratel
    alice = (await staff(container))["alice"]
    assert alice.source is StaffSource.DIRECTORY and alice.password_hash is None
    assert (alice.name, alice.email, alice.country, alice.company) == (
        "Alice Admin",
        "alice@ratel.test",
        "GB",
        "Ratel Telecom",
    )

    helpdesk = await container.staff_login()("harry", PASSWORD)
    assert helpdesk.principal.roles == {Role.HELPDESK}


async def test_refused_logins(samba: Samba, database_url: str, build: Build) -> None:
    container = build(samba_settings(database_url, samba))
    login = container.staff_login()
    for name, password in [
        ("alice", "wrong password"),
        ("mallory", PASSWORD),
        ("alice", ""),
        ("*", PASSWORD),
        ("alice)(|(sAMAccountName=*", PASSWORD),
        ("dave", PASSWORD),  # disabled: AD refuses the bind
        ("eve", PASSWORD),  # expired: AD refuses the bind
    ]:
        with pytest.raises(AuthenticationFailed):
            await login(name, password)
    # right password, but in no group mapped to a role
    with pytest.raises(LoginNotAllowed):
        await login("nora", PASSWORD)
    assert set(await staff(container)) == set()  # refused first logins leave no trace


async def test_a_login_when_no_server_answers_is_unavailable(
    samba: Samba, database_url: str, build: Build
) -> None:
    silent = SilentServer()
    try:
        urls = (closed_port_url(), silent.url)
        container = build(samba_settings(database_url, samba, directory_urls=urls))
        with pytest.raises(AuthenticationUnavailable):
            await container.staff_login()("alice", PASSWORD)
    finally:
        silent.close()


async def test_the_second_server_serves_logins_and_syncs(
    samba: Samba, database_url: str, build: Build
) -> None:
    urls = (closed_port_url(), samba.ldaps_url)
    container = build(samba_settings(database_url, samba, directory_urls=urls))
    assert (await container.staff_login()("alice", PASSWORD)).principal.roles
    run = await container.sync_directory()()
    assert run.error is None and run.created >= 3


async def test_an_openldap_user_logs_in_by_uid(
    slapd: Slapd, database_url: str, build: Build
) -> None:
    container = build(slapd_settings(database_url, slapd))
    session = await container.staff_login()("olga", PASSWORD)
    assert session.principal.roles == {Role.ADMINISTRATOR}
    with pytest.raises(LoginNotAllowed):  # expired (shadowExpire)
        await container.staff_login()("xena", PASSWORD)
    with pytest.raises(AuthenticationFailed):
        await container.staff_login()("olga", "wrong")


# -- the sync ----------------------------------------------------------------------------


async def test_the_sync_creates_updates_blocks_and_deletes(
    samba: Samba, database_url: str, build: Build
) -> None:
    ou = samba.scratch_ou()
    ada, bob, cyd, dan = (login_name(t) for t in ("ada", "bob", "cyd", "dan"))
    ada_dn = samba.add_user(ada, container=ou, name=f"Ada {ada}", groups=(SAMBA_ADMINS,))
    bob_dn = samba.add_user(
        bob,
        container=ou,
        name=f"Bob {bob}",
        groups=(SAMBA_HELPDESK,),
        mail="bob@ratel.test",
        country="FR",
        company="Ratel",
    )
    cyd_dn = samba.add_user(cyd, container=ou, name=f"Cyd {cyd}", groups=(SAMBA_ADMINS,))
    dan_dn = samba.add_user(dan, container=ou, name=f"Dan {dan}")  # no group yet
    container = build(samba_settings(database_url, samba, directory_base_dn=ou))
    sync = container.sync_directory()

    first = await sync()
    assert (first.created, first.updated, first.blocked, first.deleted) == (3, 0, 0, 0)
    assert first.error is None and first.finished_at is not None
    users = await staff(container)
    assert set(users) == {ada, bob, cyd}
    assert users[bob].roles == {Role.HELPDESK} and users[ada].roles == {Role.ADMINISTRATOR}
    assert (users[bob].email, users[bob].country, users[bob].company) == (
        "bob@ratel.test",
        "FR",
        "Ratel",
    )
    assert all(u.source is StaffSource.DIRECTORY for u in users.values())

    # Ada and Cyd are logged in when the directory changes
    ada_token = (await container.staff_login()(ada, PASSWORD)).token
    cyd_token = (await container.staff_login()(cyd, PASSWORD)).token

    samba.disable(ada_dn)  # blocked
    samba.modify(bob_dn, displayName="Robert Renamed", c="DE")  # updated
    samba.delete(cyd_dn)  # deleted
    samba.add_to_group(dan_dn, SAMBA_HELPDESK)  # created
    second = await sync()
    assert (second.created, second.updated, second.blocked, second.deleted) == (1, 1, 1, 1)
    assert second.tokens_revoked == 2 and second.error is None
    users = await staff(container)
    assert set(users) == {ada, bob, dan}
    assert users[ada].effective_status is StaffStatus.BLOCKED
    assert (users[bob].name, users[bob].country) == ("Robert Renamed", "DE")
    assert users[dan].roles == {Role.HELPDESK}
    for token in (ada_token, cyd_token):  # their sessions ended with the sync
        with pytest.raises(AuthenticationFailed):
            await container.authenticate_caller()(token)

    # nothing changed: a run that changes nothing says so
    third = await sync()
    assert (third.created, third.updated, third.blocked, third.deleted) == (0, 0, 0, 0)

    runs = await container.directory_sync_runs()()
    assert [r.id for r in runs] == [third.id, second.id, first.id]
    assert runs[1] == second


async def test_an_unreachable_directory_changes_nothing(
    samba: Samba, database_url: str, build: Build
) -> None:
    ou = samba.scratch_ou()
    names = [login_name("u") for _ in range(3)]
    for name in names:
        samba.add_user(name, container=ou, groups=(SAMBA_ADMINS,))
    container = build(samba_settings(database_url, samba, directory_base_dn=ou))
    assert (await container.sync_directory()()).created == 3
    token = (await container.staff_login()(names[0], PASSWORD)).token
    before = await staff(container)

    silent = SilentServer()
    try:
        down = build(
            samba_settings(
                database_url,
                samba,
                directory_base_dn=ou,
                directory_urls=(closed_port_url(), silent.url),
            )
        )
        run = await down.sync_directory()()
    finally:
        silent.close()
    assert run.error is not None and "did not answer" in run.error
    assert (run.created, run.updated, run.blocked, run.deleted, run.tokens_revoked) == (0,) * 5
    assert await staff(container) == before
    assert (await container.authenticate_caller()(token)).subject == names[0]
    assert (await container.directory_sync_runs()())[0] == run


async def test_a_directory_that_lists_nobody_deletes_nobody(
    samba: Samba, database_url: str, build: Build
) -> None:
    ou = samba.scratch_ou()
    samba.add_user(login_name("k"), container=ou, groups=(SAMBA_ADMINS,))
    container = build(samba_settings(database_url, samba, directory_base_dn=ou))
    assert (await container.sync_directory()()).created == 1
    before = await staff(container)

    empty = build(samba_settings(database_url, samba, directory_base_dn=samba.scratch_ou()))
    run = await empty.sync_directory()()
    assert run.error is not None and "nothing deleted" in run.error
    assert run.deleted == 0
    assert await staff(container) == before


async def test_local_users_are_never_touched_by_the_sync(
    samba: Samba, database_url: str, build: Build
) -> None:
    ou = samba.scratch_ou()
    shared, mirrored = login_name("l"), login_name("m")
    samba.add_user(shared, container=ou, groups=(SAMBA_ADMINS,))
    samba.add_user(mirrored, container=ou, groups=(SAMBA_ADMINS,))
    container = build(samba_settings(database_url, samba, directory_base_dn=ou))
    await container.create_local_staff_user()(shared, "Local Admin", "local-password", ["helpdesk"])
    await container.create_local_staff_user()("root", "Root", "local-password", ["administrator"])

    run = await container.sync_directory()()
    assert run.created == 1 and run.deleted == 0
    assert run.error is not None and shared in run.error and "local user" in run.error
    users = await staff(container)
    assert users[shared].source is StaffSource.LOCAL and users[shared].roles == {"helpdesk"}
    assert users["root"].source is StaffSource.LOCAL
    assert users[mirrored].source is StaffSource.DIRECTORY


async def test_an_expiry_date_in_the_directory_is_mirrored_and_enforced(
    samba: Samba, database_url: str, build: Build
) -> None:
    ou = samba.scratch_ou()
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    name = login_name("x")
    dn = samba.add_user(name, container=ou, groups=(SAMBA_ADMINS,), expires=soon)
    container = build(samba_settings(database_url, samba, directory_base_dn=ou))
    await container.sync_directory()()
    assert (await staff(container))[name].expires_at == soon
    session = await container.staff_login()(name, PASSWORD)
    assert session.expires_at <= soon  # a token never outlives its user

    samba.modify(dn, accountExpires=filetime(datetime(2021, 6, 1, tzinfo=UTC)))
    run = await container.sync_directory()()
    assert run.blocked == 1 and run.tokens_revoked == 1
    with pytest.raises(AuthenticationFailed):
        await container.authenticate_caller()(session.token)


async def test_the_openldap_flavour_syncs(slapd: Slapd, database_url: str, build: Build) -> None:
    container = build(slapd_settings(database_url, slapd))
    run = await container.sync_directory()()
    assert run.error is None and run.created == 3
    users = await staff(container)
    assert set(users) == {"olga", "hank", "xena"}
    assert users["xena"].expires_at == datetime(1970, 1, 2, tzinfo=UTC)
    assert not users["xena"].is_usable(datetime.now(UTC))
    assert users["hank"].roles == {Role.HELPDESK}
