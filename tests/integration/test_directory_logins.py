"""Staff login and the directory sync through the container, against the
real Samba AD DC and OpenLDAP slapd: passwords SASLprep would change or
refuse, and an entry with several logins."""

from __future__ import annotations

import pytest
from directory_servers import (
    PASSWORD,
    SLAPD_ADMINS,
    SLAPD_BASE,
    SLAPD_HELPDESK,
    Samba,
    Slapd,
    samba,
    slapd,
)
from directory_support import samba_settings, slapd_settings
from test_directory_sync import Build, build

from ratel.application.auth import AuthenticationUnavailable
from ratel.domain.staff import AuthenticationFailed

__all__ = ["build", "samba", "slapd"]


async def test_a_known_login_and_an_unknown_one_are_refused_alike_for_any_password(
    samba: Samba, database_url: str, build: Build
) -> None:
    container = build(samba_settings(database_url, samba))
    login = container.staff_login()
    with pytest.raises(AuthenticationFailed):
        await login("mallory", "\x01")  # unknown login: invalid login or password
    # A known login with the same password gets the same answer, not "the
    # staff directory does not answer" (which told existing logins apart)
    try:
        await login("alice", "\x01")
    except AuthenticationUnavailable as exc:
        pytest.fail(f"known login told apart from an unknown one: {exc}")
    except AuthenticationFailed:
        pass


async def test_the_throttle_counts_sasl_prep_refusals(
    samba: Samba, database_url: str, build: Build
) -> None:
    # Guesses with such passwords against a known login are throttled too.
    container = build(samba_settings(database_url, samba))
    throttle = container.login_throttle()
    login = container.staff_login()
    outcomes = []
    for _ in range(8):
        try:
            await throttle.attempt("staff:alice", "192.0.2.1", lambda: login("alice", "\x01"))
        except Exception as exc:
            outcomes.append(type(exc).__name__)
    assert "TooManyAttempts" in outcomes, outcomes


def _mal_and_vic(slapd: Slapd) -> None:
    """Vic (administrators) and Mal (helpdesk), whose entry holds two uid
    values: "vic" first, then her own "mal" (the RDN)."""
    import ldap3

    admin = slapd.admin()
    people = f"ou=people,{SLAPD_BASE}"
    victim_dn, mal_dn = f"uid=vic,{people}", f"uid=mal,{people}"
    if not admin.search(people, "(cn=Vic Admin)", ldap3.LEVEL):
        admin.add(
            victim_dn,
            ["top", "inetOrgPerson"],
            {"uid": "vic", "cn": "Vic Admin", "sn": "Admin", "userPassword": "Vic-Passw0rd!"},
        )
        admin.modify(SLAPD_ADMINS, {"member": [(ldap3.MODIFY_ADD, [victim_dn])]})
        admin.add(
            mal_dn,
            ["top", "inetOrgPerson"],
            {
                "uid": ["vic", "mal"],
                "cn": "Mal Helpdesk",
                "sn": "Helpdesk",
                "userPassword": PASSWORD,
            },
        )
        admin.modify(SLAPD_HELPDESK, {"member": [(ldap3.MODIFY_ADD, [mal_dn])]})
    admin.unbind()


async def test_an_entry_with_several_logins_signs_nobody_in(
    slapd: Slapd, database_url: str, build: Build
) -> None:
    # An OpenLDAP entry with several uid values ("vic" and "mal"): whoever
    # logs in by one of them could be taken for the other. Nobody is signed
    # in by it; Vic's own entry still signs Vic in.
    _mal_and_vic(slapd)

    container = build(slapd_settings(database_url, slapd))
    with pytest.raises(AuthenticationFailed):
        await container.staff_login()("mal", PASSWORD)  # Mal's own password


async def test_a_sync_gives_no_role_through_an_entry_with_several_logins(
    slapd: Slapd, database_url: str, build: Build
) -> None:
    _mal_and_vic(slapd)

    container = build(slapd_settings(database_url, slapd))
    await container.sync_directory()()
    async with container.deps().uow() as uow:
        mal = await uow.staff.by_login("mal")
    assert mal is None
