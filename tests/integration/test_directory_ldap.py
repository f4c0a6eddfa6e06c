"""The LDAP directory adapter against real servers: Samba as an Active
Directory domain controller (LDAPS and StartTLS, its CA pinned) and OpenLDAP
slapd (uid and memberOf), plus a dead port and a server that never answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from directory_servers import (
    PASSWORD,
    SAMBA_ADMINS,
    SAMBA_HELPDESK,
    SAMBA_OTHERS,
    SERVICE_PASSWORD,
    Samba,
    SilentServer,
    Slapd,
    closed_port_url,
    samba,
    slapd,
)

from ratel.adapters.directory.ldap import LdapConfig, LdapDirectory, dn_key, parse_expiry
from ratel.ports.identity import DirectoryUnavailable

__all__ = ["samba", "slapd"]  # session fixtures


def ad_config(server: Samba, **changes: object) -> LdapConfig:
    config = LdapConfig(
        urls=(server.ldaps_url,),
        base_dn=server.base_dn,
        bind_dn=server.service_upn,
        bind_password=SERVICE_PASSWORD,
        role_groups=server.role_groups,
        ca_file=server.ca_file,
        tls_server_name=server.tls_server_name,
        connect_timeout=2,
        receive_timeout=1,
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def openldap_config(server: Slapd, **changes: object) -> LdapConfig:
    config = LdapConfig(
        urls=(server.url,),
        base_dn=server.base_dn,
        bind_dn=server.service_dn,
        bind_password=SERVICE_PASSWORD,
        role_groups=server.role_groups,
        login_attribute="uid",
        user_filter="(objectClass=inetOrgPerson)",
        expiry_attribute="shadowExpire",
        starttls=False,  # plain LDAP, explicitly asked for
        connect_timeout=2,
        receive_timeout=1,
    )
    return replace(config, **changes)  # type: ignore[arg-type]


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


# -- Active Directory (Samba) ----------------------------------------------------------


async def test_an_ad_user_logs_in_over_ldaps_with_the_ca_pinned(samba: Samba) -> None:
    directory = LdapDirectory(ad_config(samba))
    user = await directory.authenticate("alice", PASSWORD)
    assert user is not None
    assert (user.login, user.name, user.email, user.country, user.company) == (
        "alice",
        "Alice Admin",
        "alice@ratel.test",
        "GB",
        "Ratel Telecom",
    )
    assert user.roles == {"administrator"}
    assert {dn_key(g) for g in user.groups} == {dn_key(SAMBA_ADMINS), dn_key(SAMBA_OTHERS)}
    assert not user.disabled and user.expires_at is None


async def test_an_ad_user_logs_in_over_starttls(samba: Samba) -> None:
    directory = LdapDirectory(ad_config(samba, urls=(samba.ldap_url,)))
    user = await directory.authenticate("harry", PASSWORD)
    assert user is not None and user.roles == {"helpdesk"}


async def test_the_login_is_found_by_user_principal_name_too(samba: Samba) -> None:
    directory = LdapDirectory(ad_config(samba, login_attribute="userPrincipalName"))
    user = await directory.authenticate("ALICE@ratel.test", PASSWORD)
    assert user is not None and user.login == "alice@ratel.test"


async def test_a_wrong_password_and_an_unknown_user_are_both_none(samba: Samba) -> None:
    directory = LdapDirectory(ad_config(samba))
    assert await directory.authenticate("alice", "not-her-password") is None
    assert await directory.authenticate("mallory", PASSWORD) is None


@pytest.mark.parametrize("password", ["", None])
async def test_an_empty_password_is_refused_before_any_bind(
    samba: Samba, password: str | None
) -> None:
    # An empty password would be an unauthenticated bind, which succeeds on
    # many servers. Pointed at a dead server, the directory proves it asks
    # nobody: no DirectoryUnavailable, just None.
    directory = LdapDirectory(ad_config(samba, urls=(closed_port_url(),)))
    assert await directory.authenticate("alice", password) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "login",
    [
        "*",
        "al*",
        "alice)(sAMAccountName=*",
        "*)(|(sAMAccountName=*",
        "alice)(|(objectClass=*)",
        "alice\\2a",
        "alice\x00",
        "(&)",
    ],
)
async def test_injection_attempts_find_nobody(samba: Samba, login: str) -> None:
    directory = LdapDirectory(ad_config(samba))
    assert await directory.authenticate(login, PASSWORD) is None


async def test_a_disabled_or_expired_ad_user_is_never_let_in(samba: Samba) -> None:
    directory = LdapDirectory(ad_config(samba))
    # Active Directory itself refuses the bind of a disabled or expired account
    assert await directory.authenticate("dave", PASSWORD) is None
    assert await directory.authenticate("eve", PASSWORD) is None
    # and the sync sees them as they are
    users = {u.login: u for u in await directory.users()}
    assert users["dave"].disabled and users["dave"].roles == {"administrator"}
    assert users["eve"].expires_at == datetime(2020, 1, 1, tzinfo=UTC)


async def test_a_user_in_no_mapped_group_has_no_role(samba: Samba) -> None:
    directory = LdapDirectory(ad_config(samba))
    nora = await directory.authenticate("nora", PASSWORD)
    assert nora is not None and nora.roles == frozenset()
    assert "nora" not in {u.login for u in await directory.users()}


async def test_users_lists_everyone_in_a_mapped_group(samba: Samba) -> None:
    directory = LdapDirectory(ad_config(samba))
    logins = {u.login for u in await directory.users()}
    assert {"alice", "harry", "dave", "eve"} <= logins
    assert not {"nora", "svc-ratel", "Administrator"} & logins


async def test_groups_may_come_from_a_group_search(samba: Samba) -> None:
    # AD's nested-group rule: member, transitively
    directory = LdapDirectory(
        ad_config(samba, group_filter="(member:1.2.840.113556.1.4.1941:={dn})")
    )
    user = await directory.authenticate("harry", PASSWORD)
    assert user is not None and {dn_key(g) for g in user.groups} == {dn_key(SAMBA_HELPDESK)}
    assert user.roles == {"helpdesk"}


async def test_plain_ldap_to_samba_is_refused_by_samba(samba: Samba) -> None:
    # Samba refuses simple binds without TLS (strongerAuthRequired): with
    # StartTLS switched off nothing works, and it says so.
    directory = LdapDirectory(ad_config(samba, urls=(samba.ldap_url,), starttls=False))
    with pytest.raises(DirectoryUnavailable, match="bind as the service account refused"):
        await directory.authenticate("alice", PASSWORD)


async def test_a_certificate_of_another_name_is_refused(samba: Samba) -> None:
    directory = LdapDirectory(ad_config(samba, tls_server_name="dc9.elsewhere.test"))
    with pytest.raises(DirectoryUnavailable, match="certificate"):
        await directory.authenticate("alice", PASSWORD)


async def test_a_wrong_service_password_makes_the_directory_unavailable(samba: Samba) -> None:
    directory = LdapDirectory(ad_config(samba, bind_password="wrong"))
    with pytest.raises(DirectoryUnavailable):
        await directory.authenticate("alice", PASSWORD)


async def test_the_service_password_may_come_from_a_file(samba: Samba, tmp_path: object) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "password"
    secret.write_text(SERVICE_PASSWORD + "\n")
    directory = LdapDirectory(ad_config(samba, bind_password="", bind_password_file=str(secret)))
    assert await directory.authenticate("alice", PASSWORD) is not None


# -- failover ----------------------------------------------------------------------------


async def test_the_second_server_serves_when_the_first_is_down(samba: Samba) -> None:
    directory = LdapDirectory(ad_config(samba, urls=(closed_port_url(), samba.ldaps_url)))
    assert await directory.authenticate("alice", PASSWORD) is not None
    assert await directory.authenticate("alice", "wrong") is None
    assert "alice" in {u.login for u in await directory.users()}


async def test_a_server_that_accepts_and_never_answers_is_left_for_the_next(
    samba: Samba, silent: SilentServer
) -> None:
    directory = LdapDirectory(ad_config(samba, urls=(silent.url, samba.ldaps_url)))
    user = await directory.authenticate("alice", PASSWORD)
    assert user is not None and user.roles == {"administrator"}
    assert silent.accepted == 1
    # it rests now: the next login goes to the good server first
    assert await directory.authenticate("harry", PASSWORD) is not None
    assert silent.accepted == 1
    # the sync fails over the same way
    fresh = LdapDirectory(ad_config(samba, urls=(silent.url, samba.ldaps_url)))
    assert "alice" in {u.login for u in await fresh.users()}
    assert silent.accepted == 2


async def test_ldaps_to_a_silent_server_times_out_in_the_handshake(
    samba: Samba, silent: SilentServer
) -> None:
    url = silent.url.replace("ldap://", "ldaps://")
    directory = LdapDirectory(ad_config(samba, urls=(url, samba.ldaps_url)))
    assert await directory.authenticate("alice", PASSWORD) is not None


async def test_no_server_answering_is_unavailable_never_a_refusal(
    samba: Samba, silent: SilentServer
) -> None:
    directory = LdapDirectory(ad_config(samba, urls=(closed_port_url(), silent.url)))
    with pytest.raises(DirectoryUnavailable, match="no directory server answered"):
        await directory.authenticate("alice", PASSWORD)
    with pytest.raises(DirectoryUnavailable):
        await directory.users()


async def test_logins_run_off_the_event_loop(samba: Samba, silent: SilentServer) -> None:
    # While one login waits on the silent server, the loop keeps serving.
    directory = LdapDirectory(ad_config(samba, urls=(silent.url, samba.ldaps_url)))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        assert await directory.authenticate("alice", PASSWORD) is not None
    finally:
        ticker.cancel()
    assert ticks >= 10  # the receive timeout is 1 s: the loop ran meanwhile


# -- OpenLDAP ----------------------------------------------------------------------------


async def test_an_openldap_user_logs_in_by_uid_with_roles_from_member_of(slapd: Slapd) -> None:
    directory = LdapDirectory(openldap_config(slapd))
    olga = await directory.authenticate("olga", PASSWORD)
    assert olga is not None
    assert (olga.login, olga.name, olga.email, olga.company) == (
        "olga",
        "Olga Operator",
        "olga@ratel.org",
        "Ratel Org",
    )
    assert olga.roles == {"administrator"}
    hank = await directory.authenticate("hank", PASSWORD)
    assert hank is not None and hank.roles == {"helpdesk"}
    assert await directory.authenticate("olga", "wrong") is None
    assert await directory.authenticate("nobody", PASSWORD) is None
    assert await directory.authenticate("olga", "") is None
    assert await directory.authenticate("*", PASSWORD) is None
    assert await directory.authenticate("o*", PASSWORD) is None


async def test_an_openldap_expiry_attribute_is_read(slapd: Slapd) -> None:
    directory = LdapDirectory(openldap_config(slapd))
    xena = await directory.authenticate("xena", PASSWORD)
    assert xena is not None and xena.expires_at == datetime(1970, 1, 2, tzinfo=UTC)
    users = {u.login: u for u in await directory.users()}
    assert set(users) == {"olga", "hank", "xena"}  # nick is in no mapped group


async def test_openldap_groups_from_a_group_search(slapd: Slapd) -> None:
    directory = LdapDirectory(
        openldap_config(slapd, group_filter="(&(objectClass=groupOfNames)(member={dn}))")
    )
    olga = await directory.authenticate("olga", PASSWORD)
    assert olga is not None and olga.roles == {"administrator"}
    assert {u.login for u in await directory.users()} == {"olga", "hank", "xena"}


# -- reading values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "value", "expected"),
    [
        ("accountExpires", "0", None),
        ("accountExpires", "9223372036854775807", None),
        ("accountExpires", "132223104000000000", datetime(2020, 1, 1, tzinfo=UTC)),
        ("shadowExpire", "-1", None),
        ("shadowExpire", "19723", datetime(2024, 1, 1, tzinfo=UTC)),
        ("expiresAt", "20300101120000Z", datetime(2030, 1, 1, 12, tzinfo=UTC)),
        ("expiresAt", "20300101120000.0+0200", datetime(2030, 1, 1, 10, tzinfo=UTC)),
    ],
)
def test_expiry_dates_in_every_form(attribute: str, value: str, expected: datetime | None) -> None:
    assert parse_expiry(attribute, value) == expected


def test_an_unreadable_expiry_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_expiry("expiresAt", "next tuesday")


def test_dns_compare_without_case_or_spaces() -> None:
    assert dn_key("CN=Ratel-Admins, CN=Users,DC=ratel , DC=test") == dn_key(
        "cn=ratel-admins,cn=users,dc=ratel,dc=test"
    )


def test_the_config_refuses_what_cannot_work() -> None:
    good = {
        "urls": ("ldaps://dc1.example",),
        "base_dn": "DC=example",
        "bind_dn": "svc",
        "bind_password": "x",
        "role_groups": (("CN=A,DC=example", "administrator"),),
    }
    LdapConfig(**good)  # type: ignore[arg-type]
    for bad in (
        {"urls": ()},
        {"urls": ("http://dc1",)},
        {"role_groups": ()},
        {"group_filter": "(member=x)"},
        {"receive_timeout": 0},
    ):
        with pytest.raises(ValueError):
            LdapConfig(**{**good, **bad})  # type: ignore[arg-type]
