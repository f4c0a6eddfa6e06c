"""Staff users, API keys and access tokens: the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratel.domain.errors import DomainError, IllegalTransition, NaiveDatetime
from ratel.domain.staff import (
    AccessToken,
    ApiKey,
    DirectoryManaged,
    InvalidApiKey,
    InvalidStaffUser,
    StaffSource,
    StaffStatus,
    StaffUser,
    TokenKind,
    normalize_login,
)

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def staff(**overrides: object) -> StaffUser:
    values: dict[str, object] = {
        "id": "stf_1",
        "login": "ada",
        "name": "Ada Lovelace",
        "created_at": NOW,
        "roles": frozenset({"administrator"}),
    }
    values.update(overrides)
    return StaffUser(**values)  # type: ignore[arg-type]


def directory_user(**overrides: object) -> StaffUser:
    return staff(source=StaffSource.DIRECTORY, **overrides)


def key(**overrides: object) -> ApiKey:
    values: dict[str, object] = {
        "id": "key_1",
        "name": "USSD gateway",
        "scopes": frozenset({"ussd"}),
        "prefix": "0a1b2c3d4e5f",
        "secret_hash": "h" * 64,
        "created_at": NOW,
    }
    values.update(overrides)
    return ApiKey(**values)  # type: ignore[arg-type]


def token(**overrides: object) -> AccessToken:
    values: dict[str, object] = {
        "id": "tok_1",
        "token_hash": "t" * 64,
        "kind": TokenKind.STAFF,
        "subject": "ada",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(hours=8),
    }
    values.update(overrides)
    return AccessToken(**values)  # type: ignore[arg-type]


# -- staff users ------------------------------------------------------------------------


def test_a_new_staff_user_is_active_local_and_normalized() -> None:
    user = staff(login="  Ada.Lovelace@Example.COM ", country="gb", email=" ada@example.com ")
    assert user.login == "ada.lovelace@example.com"
    assert user.country == "GB"
    assert user.email == "ada@example.com"
    assert user.status is StaffStatus.ACTIVE
    assert user.source is StaffSource.LOCAL
    assert not user.from_directory
    assert user.is_usable(NOW)


@pytest.mark.parametrize("login", ["", "   ", "two words", "tab\there", "x" * 257, "nul\x00"])
def test_unusable_logins_are_refused(login: str) -> None:
    with pytest.raises(InvalidStaffUser):
        normalize_login(login)


@given(st.text(alphabet=st.characters(categories=["L", "N", "P"]), min_size=1, max_size=40))
def test_login_normalization_is_idempotent(login: str) -> None:
    try:
        once = normalize_login(login)
    except InvalidStaffUser:
        return
    assert normalize_login(once) == once


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "  "),
        ("country", "Germany"),
        ("country", "1A"),
        ("roles", frozenset({" "})),
        ("roles", "administrator"),
        ("id", ""),
    ],
)
def test_malformed_staff_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidStaffUser):
        staff(**{field: value})


def test_times_must_be_aware() -> None:
    with pytest.raises(NaiveDatetime):
        staff(created_at=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(NaiveDatetime):
        staff(expires_at=datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("changes", "usable"),
    [
        ({}, True),
        ({"status": StaffStatus.BLOCKED}, False),
        ({"directory_disabled": True}, False),
        ({"expires_at": NOW}, False),  # expiry is exclusive: at that instant, gone
        ({"expires_at": NOW + timedelta(seconds=1)}, True),
        ({"expires_at": NOW - timedelta(days=1)}, False),
    ],
)
def test_who_is_usable(changes: dict[str, object], usable: bool) -> None:
    assert staff(**changes).is_usable(NOW) is usable


def test_block_and_unblock() -> None:
    user = staff()
    user.block()
    assert user.status is StaffStatus.BLOCKED and not user.is_usable(NOW)
    assert user.effective_status is StaffStatus.BLOCKED
    user.unblock()
    assert user.is_usable(NOW)


def test_unblocking_in_ratel_does_not_lift_the_directorys_block() -> None:
    user = directory_user(directory_disabled=True)
    assert user.effective_status is StaffStatus.BLOCKED
    user.unblock()
    assert not user.is_usable(NOW)


def test_a_directory_sync_enabling_a_user_keeps_ratels_block() -> None:
    user = directory_user(directory_disabled=True)
    user.block()
    user.apply_directory(
        name="Ada",
        email=None,
        country=None,
        company=None,
        roles={"administrator"},
        disabled=False,
        expires_at=None,
    )
    assert not user.directory_disabled
    assert not user.is_usable(NOW)


def test_a_directory_users_fields_are_read_only_in_ratel() -> None:
    user = directory_user()
    with pytest.raises(DirectoryManaged):
        user.update_profile(name="Someone else")
    with pytest.raises(DirectoryManaged):
        user.set_roles({"helpdesk"})
    with pytest.raises(DirectoryManaged):
        user.set_expiry(NOW)
    with pytest.raises(DirectoryManaged):
        user.set_password_hash("$argon2id$...")
    # ratel's own decisions stay possible
    user.block()
    assert user.status is StaffStatus.BLOCKED


def test_a_directory_user_never_holds_a_password_hash() -> None:
    with pytest.raises(InvalidStaffUser):
        directory_user(password_hash="$argon2id$...")


def test_a_local_user_can_be_edited() -> None:
    user = staff()
    user.update_profile(name="Ada King", country="us", company="Analytical Engines")
    user.set_roles({"helpdesk"})
    user.set_expiry(NOW + timedelta(days=30))
    user.set_password_hash("$argon2id$v=19$...")
    assert (user.name, user.country, user.company) == ("Ada King", "US", "Analytical Engines")
    assert user.roles == {"helpdesk"}
    assert user.password_hash == "$argon2id$v=19$..."
    assert "argon2" not in repr(user)  # hashes stay out of logs and tracebacks


def test_applying_the_directory_reports_a_change() -> None:
    user = directory_user(name="Ada", roles=frozenset({"helpdesk"}))
    fields = {
        "name": "Ada",
        "email": None,
        "country": None,
        "company": None,
        "roles": {"helpdesk"},
        "disabled": False,
        "expires_at": None,
    }
    assert not user.apply_directory(**fields)  # type: ignore[arg-type]
    assert user.apply_directory(**{**fields, "roles": {"administrator"}})  # type: ignore[arg-type]
    assert user.roles == {"administrator"}


def test_the_directory_does_not_own_a_local_user() -> None:
    with pytest.raises(IllegalTransition):
        staff().apply_directory(
            name="x",
            email=None,
            country=None,
            company=None,
            roles=(),
            disabled=False,
            expires_at=None,
        )


# -- API keys ------------------------------------------------------------------------


def test_an_api_key_shows_only_its_prefix() -> None:
    api_key = key()
    assert api_key.display == "rk_0a1b2c3d4e5f_..."
    assert "hhhh" not in repr(api_key)
    assert not api_key.revoked


def test_revoking_an_api_key_keeps_the_first_time() -> None:
    api_key = key()
    api_key.revoke(NOW)
    api_key.revoke(NOW + timedelta(hours=1))
    assert api_key.revoked and api_key.revoked_at == NOW


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", " "),
        ("scopes", frozenset()),
        ("scopes", frozenset({""})),
        ("prefix", "has_underscore"),
        ("prefix", ""),
        ("secret_hash", ""),
    ],
)
def test_malformed_api_keys_are_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidApiKey):
        key(**{field: value})


# -- access tokens -------------------------------------------------------------------


def test_a_token_is_valid_until_it_expires_or_is_revoked() -> None:
    access = token()
    assert access.is_valid(NOW)
    assert access.is_valid(NOW + timedelta(hours=8) - timedelta(microseconds=1))
    assert not access.is_valid(NOW + timedelta(hours=8))
    access.revoke(NOW + timedelta(minutes=5))
    assert not access.is_valid(NOW + timedelta(minutes=6))
    access.revoke(NOW + timedelta(hours=1))
    assert access.revoked_at == NOW + timedelta(minutes=5)
    assert "tttt" not in repr(access)


def test_a_token_must_expire_after_it_was_issued() -> None:
    with pytest.raises(DomainError):
        token(expires_at=NOW)


def test_an_account_holders_token_names_account_and_customer() -> None:
    with pytest.raises(DomainError):
        token(kind=TokenKind.ACCOUNT_HOLDER, subject="acc_1", account_id="acc_1")
    access = token(
        kind=TokenKind.ACCOUNT_HOLDER, subject="acc_1", account_id="acc_1", customer_id="cus_1"
    )
    assert access.kind is TokenKind.ACCOUNT_HOLDER


def test_token_kinds_speak_the_caller_kinds_words() -> None:
    from ratel.application.identity import CallerKind

    for kind in TokenKind:
        assert CallerKind(kind.value).value == kind.value
