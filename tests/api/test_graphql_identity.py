# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""Logins, passwords, staff users and API keys over GraphQL, with the real
identity use cases behind the bearer tokens (no test tokens here)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from ratel.app import create_app
from ratel.config import Settings
from ratel.container import Container, build_container, dispose
from ratel.demo import SELF_CARE_ACCOUNT, SELF_CARE_PASSWORD
from tests.api.graphql_support import GraphQLClient, demo_template  # noqa: F401

STAFF_LOGIN = """
mutation ($login: String!, $password: String!) {
  staffLogin(login: $login, password: $password) {
    token tokenId expiresAt caller { kind subject roles } errors { code message }
  }
}"""

SELF_CARE_LOGIN = """
mutation ($accountId: String!, $password: String!) {
  selfCareLogin(accountId: $accountId, password: $password) {
    token expiresAt caller { kind accountId customerId } errors { code message }
  }
}"""


class MovableClock:
    """The system time, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def real(
    demo_template: Path, tmp_path: Path, clock: MovableClock
) -> AsyncIterator[Container]:
    """A container on a copy of the demo database, with real authentication."""
    path = tmp_path / "ratel.db"
    shutil.copyfile(demo_template, path)
    container = build_container(
        Settings(
            database_url=f"sqlite+aiosqlite:///{path}",
            login_max_failures=3,
            login_max_failures_per_address=6,
            login_throttle_seconds=600,
        )
    )
    container.clock.override(providers.Object(clock))
    yield container
    await dispose(container)


@pytest.fixture
async def api(real: Container) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=create_app(real), client=("192.0.2.10", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ratel.test") as http:
        yield GraphQLClient(http)


async def staff_login(api: GraphQLClient, login: str, password: str) -> dict[str, Any]:
    data = await api.data(STAFF_LOGIN, {"login": login, "password": password})
    payload: dict[str, Any] = data["staffLogin"]
    return payload


async def admin_token(api: GraphQLClient) -> str:
    payload = await staff_login(api, "admin", "ratel-admin-demo")
    assert payload["errors"] == [], payload
    token: str = payload["token"]
    return token


async def test_a_staff_login_gives_a_bearer_token_that_expires(api: GraphQLClient) -> None:
    before = datetime.now(UTC)
    payload = await staff_login(api, "Admin", "ratel-admin-demo")
    assert payload["errors"] == []
    assert payload["caller"] == {"kind": "STAFF", "subject": "admin", "roles": ["administrator"]}
    expires = datetime.fromisoformat(payload["expiresAt"])
    # the default lifetime: 8 hours
    assert timedelta(hours=7, minutes=59) < expires - before <= timedelta(hours=8, minutes=1)

    staff = await api.data(
        "{ staff { edges { node { login roles status lastLoginAt } } } }", token=payload["token"]
    )
    nodes = [e["node"] for e in staff["staff"]["edges"]]
    assert [n["login"] for n in nodes] == ["admin", "helpdesk"]
    assert nodes[0]["lastLoginAt"] is not None


STAFF_PAGE = """
query ($first: Int, $after: String) { staff(first: $first, after: $after) {
  edges { cursor node { login status blockedInRatel disabledInDirectory expiresAt expired
    source directoryManaged } }
  pageInfo { hasNextPage hasPreviousPage endCursor }
} }
"""


async def test_the_staff_list_judges_expiry_by_ratels_clock_and_pages_by_login(
    real: Container, api: GraphQLClient, clock: MovableClock
) -> None:
    admin = await admin_token(api)
    expires_at = datetime.now(UTC) + timedelta(hours=1)
    await real.create_local_staff_user()(
        "temp", "Temp Worker", "temp-password-1", ["helpdesk"], expires_at=expires_at
    )

    async def staff(**variables: Any) -> dict[str, Any]:
        page: dict[str, Any] = (await api.data(STAFF_PAGE, variables, token=admin))["staff"]
        return page

    now = await staff()
    nodes = {e["node"]["login"]: e["node"] for e in now["edges"]}
    assert list(nodes) == ["admin", "helpdesk", "temp"]
    assert nodes["temp"] == {
        "login": "temp",
        "status": "ACTIVE",
        "blockedInRatel": False,
        "disabledInDirectory": False,
        "expiresAt": expires_at.isoformat(),
        "expired": False,
        "source": "LOCAL",
        "directoryManaged": False,
    }

    # ratel's clock, not the machine's, says the date has passed
    clock.offset = timedelta(hours=2)
    later = {e["node"]["login"]: e["node"] for e in (await staff())["edges"]}
    assert later["temp"]["expired"] and later["temp"]["status"] == "ACTIVE"
    assert not later["admin"]["expired"]

    blocked = await api.data(
        'mutation { blockStaffUser(login: "temp") { staffUser { status blockedInRatel expired }'
        " errors { code } } }",
        token=admin,
    )
    assert blocked["blockStaffUser"]["staffUser"] == {
        "status": "BLOCKED",
        "blockedInRatel": True,
        "expired": True,
    }

    first = await staff(first=2)
    assert [e["node"]["login"] for e in first["edges"]] == ["admin", "helpdesk"]
    assert first["pageInfo"]["hasNextPage"] and not first["pageInfo"]["hasPreviousPage"]
    rest = await staff(first=2, after=first["pageInfo"]["endCursor"])
    assert [e["node"]["login"] for e in rest["edges"]] == ["temp"]
    assert not rest["pageInfo"]["hasNextPage"] and rest["pageInfo"]["hasPreviousPage"]


async def test_unknown_login_and_wrong_password_are_told_the_same(api: GraphQLClient) -> None:
    unknown = await staff_login(api, "nobody", "ratel-admin-demo")
    wrong = await staff_login(api, "admin", "not-the-password")
    assert unknown["token"] is None and wrong["token"] is None
    assert unknown["errors"] == wrong["errors"]
    assert unknown["errors"][0]["code"] == "authentication_failed"

    alice_unknown = await api.data(
        SELF_CARE_LOGIN, {"accountId": "acc_nobody", "password": "whatever-1"}
    )
    alice_wrong = await api.data(
        SELF_CARE_LOGIN, {"accountId": SELF_CARE_ACCOUNT, "password": "whatever-1"}
    )
    assert (
        alice_unknown["selfCareLogin"]["errors"]
        == alice_wrong["selfCareLogin"]["errors"]
        == [{"code": "authentication_failed", "message": "invalid login or password"}]
    )


async def test_a_blocked_staff_user_is_refused_and_loses_their_sessions(
    api: GraphQLClient,
) -> None:
    admin = await admin_token(api)
    helpdesk = (await staff_login(api, "helpdesk", "ratel-helpdesk-demo"))["token"]
    assert (await api.post("{ staff { edges { cursor } } }", token=helpdesk)).status_code == 200

    blocked = await api.data(
        'mutation { blockStaffUser(login: "helpdesk") { staffUser { status } errors { code } } }',
        token=admin,
    )
    assert blocked["blockStaffUser"] == {"staffUser": {"status": "BLOCKED"}, "errors": []}
    # the open session ends at once: the client is told to log in again
    assert (await api.post("{ staff { edges { cursor } } }", token=helpdesk)).status_code == 401
    refused = await staff_login(api, "helpdesk", "ratel-helpdesk-demo")
    assert refused["token"] is None
    assert refused["errors"][0]["code"] == "login_not_allowed"

    unblock = 'mutation { unblockStaffUser(login: "helpdesk") { errors { code } } }'
    await api.data(unblock, token=admin)
    again = await staff_login(api, "helpdesk", "ratel-helpdesk-demo")
    assert again["errors"] == [] and again["token"]

    revoked = await api.data(
        'mutation { revokeStaffTokens(login: "helpdesk") { revoked errors { code } } }',
        token=admin,
    )
    assert revoked["revokeStaffTokens"] == {"revoked": 1, "errors": []}
    after = await api.post("{ staff { edges { cursor } } }", token=again["token"])
    assert after.status_code == 401


async def test_failed_logins_are_throttled_per_login_until_the_window_passes(
    api: GraphQLClient, clock: MovableClock
) -> None:
    for _ in range(3):
        failed = await staff_login(api, "admin", "not-the-password")
        assert failed["errors"][0]["code"] == "authentication_failed"
    # now even the right password is not looked at
    throttled = await staff_login(api, "admin", "ratel-admin-demo")
    assert throttled["token"] is None
    [error] = throttled["errors"]
    assert error["code"] == "too_many_attempts"
    assert "try again in" in error["message"]
    # another login from the same address is not throttled yet
    assert (await staff_login(api, "helpdesk", "ratel-helpdesk-demo"))["errors"] == []

    clock.offset = timedelta(seconds=601)
    assert (await staff_login(api, "admin", "ratel-admin-demo"))["errors"] == []


async def test_failed_logins_are_throttled_per_client_address(
    real: Container, api: GraphQLClient
) -> None:
    # six failures spread over logins: the address is out of attempts
    for n in range(6):
        await staff_login(api, f"guess{n}", "not-the-password")
    from_there = await staff_login(api, "admin", "ratel-admin-demo")
    assert from_there["errors"][0]["code"] == "too_many_attempts"

    # another address is not affected
    transport = httpx.ASGITransport(app=create_app(real), client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ratel.test") as http:
        elsewhere = await staff_login(GraphQLClient(http), "admin", "ratel-admin-demo")
    assert elsewhere["errors"] == []


async def test_self_care_login_password_change_and_logout(api: GraphQLClient) -> None:
    data = await api.data(
        SELF_CARE_LOGIN, {"accountId": SELF_CARE_ACCOUNT, "password": SELF_CARE_PASSWORD}
    )
    login = data["selfCareLogin"]
    assert login["errors"] == []
    assert login["caller"] == {
        "kind": "ACCOUNT_HOLDER",
        "accountId": "acc_demo_alice",
        "customerId": "cus_demo_alice",
    }
    token = login["token"]
    me = await api.data("{ me { balance { text } } }", token=token)
    assert me["me"]["balance"]["text"] == "Your current balance is 43.25 USD"

    change = """
    mutation ($old: String!, $new: String!) {
      changeOwnPassword(currentPassword: $old, newPassword: $new) { changed errors { code } }
    }"""
    weak = await api.data(change, {"old": SELF_CARE_PASSWORD, "new": "short"}, token=token)
    assert weak["changeOwnPassword"] == {"changed": False, "errors": [{"code": "weak_password"}]}
    wrong = await api.data(change, {"old": "not-it-at-all", "new": "a-new-passphrase"}, token=token)
    assert wrong["changeOwnPassword"]["errors"] == [{"code": "authentication_failed"}]
    done = await api.data(
        change, {"old": SELF_CARE_PASSWORD, "new": "a-new-passphrase"}, token=token
    )
    assert done["changeOwnPassword"] == {"changed": True, "errors": []}

    # the session that made the change stays; the old password is gone
    assert (await api.post("{ me { balance { text } } }", token=token)).status_code == 200
    old = await api.data(
        SELF_CARE_LOGIN, {"accountId": SELF_CARE_ACCOUNT, "password": SELF_CARE_PASSWORD}
    )
    assert old["selfCareLogin"]["errors"][0]["code"] == "authentication_failed"
    new = await api.data(
        SELF_CARE_LOGIN, {"accountId": SELF_CARE_ACCOUNT, "password": "a-new-passphrase"}
    )
    assert new["selfCareLogin"]["errors"] == []

    out = await api.data("mutation { logout { loggedOut } }", token=token)
    assert out["logout"] == {"loggedOut": True}
    assert (await api.post("{ me { balance { text } } }", token=token)).status_code == 401
    anonymous = await api.data("mutation { logout { loggedOut } }")
    assert anonymous["logout"] == {"loggedOut": False}


async def test_staff_set_an_account_password(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    query = """
    mutation ($password: String!) {
      setAccountPassword(accountId: "acc_demo_bob_fibre", password: $password) {
        changed errors { code }
      }
    }"""
    weak = await api.data(query, {"password": "1234"}, token=admin)
    assert weak["setAccountPassword"] == {"changed": False, "errors": [{"code": "weak_password"}]}
    done = await api.data(query, {"password": "bob-fibre-pass"}, token=admin)
    assert done["setAccountPassword"] == {"changed": True, "errors": []}
    bob = await api.data(
        SELF_CARE_LOGIN, {"accountId": "acc_demo_bob_fibre", "password": "bob-fibre-pass"}
    )
    assert bob["selfCareLogin"]["caller"]["customerId"] == "cus_demo_bob"


async def test_an_api_key_secret_is_shown_once_and_revocation_is_immediate(
    api: GraphQLClient,
) -> None:
    admin = await admin_token(api)
    created = await api.data(
        'mutation { createApiKey(name: "Gateway 2", scopes: ["ussd"])'
        " { secret apiKey { id prefix scopes display } errors { code } } }",
        token=admin,
    )
    payload = created["createApiKey"]
    secret = payload["secret"]
    key = payload["apiKey"]
    assert payload["errors"] == [] and secret.startswith(f"rk_{key['prefix']}_")
    assert key["scopes"] == ["ussd"] and key["display"] == f"rk_{key['prefix']}_..."

    balance = await api.data('{ ussdBalance(msisdn: "12055550100") { text } }', token=secret)
    assert balance["ussdBalance"]["text"] == "Your current balance is 43.25 USD"

    listed = await api.post("{ apiKeys { edges { node { id prefix display } } } }", token=admin)
    assert secret.split("_", 2)[2] not in listed.text  # the secret is never shown again
    assert key["id"] in listed.text

    bad = await api.data(
        'mutation { createApiKey(name: "x", scopes: ["root"]) { secret errors { code } } }',
        token=admin,
    )
    assert bad["createApiKey"] == {"secret": None, "errors": [{"code": "invalid_api_key"}]}

    revoked = await api.data(
        "mutation ($id: String!) {"
        " revokeApiKey(id: $id) { apiKey { revokedAt } errors { code } } }",
        {"id": key["id"]},
        token=admin,
    )
    assert revoked["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    again = await api.post('{ ussdBalance(msisdn: "12055550100") { text } }', token=secret)
    assert again.status_code == 401


async def test_housekeeping_purges_tokens_a_day_after_they_expired(
    real: Container, api: GraphQLClient, clock: MovableClock
) -> None:
    await admin_token(api)
    await admin_token(api)
    assert (await real.housekeeping()()).tokens_purged == 0
    clock.offset = timedelta(hours=8) + timedelta(days=1, minutes=1)
    assert (await real.housekeeping()()).tokens_purged == 2
    assert (await real.housekeeping()()).tokens_purged == 0
