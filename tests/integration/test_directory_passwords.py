"""The LDAP adapter against the real Samba AD DC and slapd: passwords as
the directory holds them, and paging."""

from __future__ import annotations

import pytest
from directory_servers import Samba, Slapd, samba, slapd
from test_directory_ldap import ad_config, openldap_config

from ratel.adapters.directory.ldap import LdapDirectory

__all__ = ["samba", "slapd"]


# A password ldap3's SASLprep would refuse (a control character, or only
# "mapped to nothing" characters) is sent as typed: for a known login it is
# a plain refusal, as for an unknown one (it was taken for a dead server,
# which told which logins exist).
@pytest.mark.parametrize("password", ["\x01", "pass\tword", "\u00ad"])
async def test_sasl_prep_password_for_existing_login_is_plain_refusal(
    samba: Samba, password: str
) -> None:
    directory = LdapDirectory(ad_config(samba))
    assert await directory.authenticate("mallory", password) is None  # unknown login
    assert await directory.authenticate("alice", password) is None  # known login


async def test_sasl_prep_password_openldap(slapd: Slapd) -> None:
    directory = LdapDirectory(openldap_config(slapd))
    assert await directory.authenticate("nobody", "\x01") is None
    assert await directory.authenticate("olga", "\x01") is None


async def test_paging_lists_everyone_with_small_pages(samba: Samba, slapd: Slapd) -> None:
    full = {u.login for u in await LdapDirectory(ad_config(samba)).users()}
    paged = {u.login for u in await LdapDirectory(ad_config(samba, page_size=1)).users()}
    assert paged == full and len(full) >= 4
    full = {u.login for u in await LdapDirectory(openldap_config(slapd)).users()}
    paged = {u.login for u in await LdapDirectory(openldap_config(slapd, page_size=1)).users()}
    assert paged == full and len(full) >= 3


@pytest.mark.parametrize("password", ["Str0ng-\ufb01sh-Passw0rd!", "Str0ng\u00a0Passw0rd!"])
async def test_an_ad_user_logs_in_with_the_password_ad_holds(samba: Samba, password: str) -> None:
    # ldap3 SASLpreps a str password (NFKC, NBSP to space): AD compares the
    # password as set, so this user's right password is refused.
    import secrets

    ou = samba.scratch_ou()
    name = f"sp{secrets.token_hex(3)}"
    from directory_servers import SAMBA_ADMINS

    samba.add_user(name, container=ou, groups=(SAMBA_ADMINS,), password=password)
    # AD holds exactly this password: a bind with its UTF-8 bytes (which
    # ldap3 sends as they are) succeeds
    import ssl

    import ldap3

    server = ldap3.Server(
        samba.address, port=636, use_ssl=True, tls=ldap3.Tls(validate=ssl.CERT_NONE)
    )
    raw = ldap3.Connection(server, user=f"{name}@ratel.test", password=password.encode())
    assert raw.bind(), raw.result
    raw.unbind()
    directory = LdapDirectory(ad_config(samba, base_dn=ou))
    assert await directory.authenticate(name, password) is not None
