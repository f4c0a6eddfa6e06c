"""The RATEL_DIRECTORY_* settings: parsing, defaults and what LDAP needs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ratel.config import DirectoryKind, DirectoryTls, Settings, SettingsError, load_settings
from ratel.domain.directory_sync import DirectorySyncRun

ADMINS = "CN=Ratel-Admins,CN=Users,DC=ratel,DC=test"
HELPDESK = "CN=Ratel-Helpdesk,CN=Users,DC=ratel,DC=test"

LDAP = {
    "RATEL_DIRECTORY": "ldap",
    "RATEL_DIRECTORY_URLS": "ldaps://dc1.ratel.test, ldaps://dc2.ratel.test:3269",
    "RATEL_DIRECTORY_BASE_DN": "DC=ratel,DC=test",
    "RATEL_DIRECTORY_BIND_DN": "svc-ratel@ratel.test",
    "RATEL_DIRECTORY_BIND_PASSWORD": " secret with spaces ",
    "RATEL_DIRECTORY_ROLE_GROUPS": f"administrator={ADMINS}; helpdesk={HELPDESK}",
}


def test_defaults() -> None:
    settings = Settings()
    assert settings.directory is DirectoryKind.LOCAL
    assert settings.directory_sync_interval == 600
    assert settings.directory_tls is DirectoryTls.STARTTLS and settings.directory_tls_verify
    assert settings.directory_login_attribute == "sAMAccountName"
    assert settings.directory_expiry_attribute == "accountExpires"
    assert (settings.directory_connect_timeout, settings.directory_receive_timeout) == (3.0, 5)


def test_an_ldap_directory_from_the_environment() -> None:
    settings = load_settings(env=LDAP)
    assert settings.directory is DirectoryKind.LDAP
    assert settings.directory_urls == ("ldaps://dc1.ratel.test", "ldaps://dc2.ratel.test:3269")
    assert settings.directory_role_groups == ((ADMINS, "administrator"), (HELPDESK, "helpdesk"))
    assert settings.directory_bind_password == " secret with spaces "  # taken as written


def test_an_ldap_directory_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "ratel.toml"
    path.write_text(
        f"""
[directory]
urls = ["ldap://ldap1.example:389", "ldap://ldap2.example"]
base_dn = "dc=example,dc=org"
bind_dn = "cn=reader,dc=example,dc=org"
bind_password_file = "/run/secrets/ldap"
login_attribute = "uid"
role_groups = ["administrator={ADMINS}"]
tls = "plain"
tls_verify = false
sync_interval = 60
receive_timeout = 2
"""
    )
    settings = load_settings(str(path), env={"RATEL_DIRECTORY": "ldap"})
    assert settings.directory_urls == ("ldap://ldap1.example:389", "ldap://ldap2.example")
    assert settings.directory_tls is DirectoryTls.PLAIN and not settings.directory_tls_verify
    assert (settings.directory_sync_interval, settings.directory_receive_timeout) == (60, 2)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("RATEL_DIRECTORY_URLS", "http://dc1", "ldap://host"),
        ("RATEL_DIRECTORY_URLS", "ldaps://", "ldap://host"),
        ("RATEL_DIRECTORY_URLS", "", "required"),
        ("RATEL_DIRECTORY_ROLE_GROUPS", "administrator", "role=group DN"),
        ("RATEL_DIRECTORY_ROLE_GROUPS", "CN=Admins,DC=x", "role=group DN"),
        ("RATEL_DIRECTORY_ROLE_GROUPS", "", "required"),
        ("RATEL_DIRECTORY_BASE_DN", "", "required"),
        ("RATEL_DIRECTORY_BIND_DN", "", "required"),
        ("RATEL_DIRECTORY_BIND_PASSWORD", "", "needs a password"),
        ("RATEL_DIRECTORY_TLS", "ssl", "starttls or plain"),
        ("RATEL_DIRECTORY_TLS_VERIFY", "maybe", "true or false"),
        ("RATEL_DIRECTORY_RECEIVE_TIMEOUT", "0.5", "whole number"),
        ("RATEL_DIRECTORY_CONNECT_TIMEOUT", "0", "positive"),
        ("RATEL_DIRECTORY_SYNC_INTERVAL", "never", "seconds"),
        ("RATEL_DIRECTORY_GROUP_FILTER", "(member=x)", "{dn}"),
    ],
)
def test_bad_directory_settings_name_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env={**LDAP, variable: value})
    assert variable in str(caught.value) and says in str(caught.value)


def test_the_local_directory_needs_no_ldap_setting() -> None:
    assert load_settings(env={"RATEL_DIRECTORY": "local"}).directory_urls == ()


def test_a_sync_run_is_a_value_with_sane_counts() -> None:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    run = DirectorySyncRun(id="dsr_1", started_at=started)
    assert not run.succeeded and run.finished_at is None
    done = run.finish(started, created=2, deleted=1)
    assert done.succeeded and (done.created, done.deleted) == (2, 1)
    assert not run.finish(started, error="the directory did not answer").succeeded
    with pytest.raises(ValueError):
        DirectorySyncRun(id="dsr_2", started_at=started, created=-1)
    with pytest.raises(ValueError):
        DirectorySyncRun(id="", started_at=started)
