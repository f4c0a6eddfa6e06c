"""The pure parts of authentication: password policy, bearer parsing, token
making, argon2 hashing and the identity settings."""

from __future__ import annotations

import pytest

from ratel.adapters.passwords import Argon2Hasher
from ratel.application.auth import _credential, check_password, digest, new_bearer
from ratel.config import DirectoryKind, Settings, SettingsError, load_settings
from ratel.domain.staff import WeakPassword


@pytest.mark.parametrize("password", ["", "        ", "1234567", "x" * 1025])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password(password)


@pytest.mark.parametrize("password", ["12345678", "correct horse battery staple", "x" * 1024])
def test_passwords_of_8_to_1024_characters_pass(password: str) -> None:
    check_password(password)


@pytest.mark.parametrize(
    ("header", "credential"),
    [
        (None, ""),
        ("", ""),
        ("Bearer", ""),
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("  rk_a_b ", "rk_a_b"),
        ("BEARER rk_a_b", "rk_a_b"),
    ],
)
def test_the_credential_of_an_authorization_value(header: str | None, credential: str) -> None:
    assert _credential(header) == credential


def test_bearer_tokens_are_random_and_never_look_like_api_keys() -> None:
    tokens = {new_bearer() for _ in range(200)}
    assert len(tokens) == 200
    assert not any(t.startswith("rk_") for t in tokens)
    assert all(len(t) == 43 for t in tokens)
    assert digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


async def test_argon2_hashes_verify_and_never_raise() -> None:
    hasher = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)
    hashed = await hasher.hash("correct horse")
    assert hashed.startswith("$argon2id$")
    assert await hasher.verify(hashed, "correct horse")
    assert not await hasher.verify(hashed, "wrong horse")
    for broken in ("", "not a hash", "$argon2id$v=19$garbage", hashed[:-5]):
        assert not await hasher.verify(broken, "correct horse")
    assert not hasher.needs_rehash(hashed)
    assert Argon2Hasher(time_cost=2, memory_cost=1024, parallelism=1).needs_rehash(hashed)
    assert hasher.needs_rehash("not a hash")


def test_identity_settings() -> None:
    assert Settings().directory is DirectoryKind.LOCAL
    assert Settings().token_ttl_seconds == 28800
    settings = load_settings(env={"RATEL_DIRECTORY": "LOCAL", "RATEL_TOKEN_TTL_SECONDS": "600"})
    assert (settings.directory, settings.token_ttl_seconds) == (DirectoryKind.LOCAL, 600)
    with pytest.raises(SettingsError, match="RATEL_DIRECTORY"):
        load_settings(env={"RATEL_DIRECTORY": "openldap"})
    with pytest.raises(SettingsError, match="RATEL_TOKEN_TTL_SECONDS"):
        load_settings(env={"RATEL_TOKEN_TTL_SECONDS": "0"})
