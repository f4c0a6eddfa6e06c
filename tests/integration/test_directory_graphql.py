"""GraphQL with staff who logged in through the real directory (Samba AD DC):
the bearer token a directory login gives, the role its groups map to, the
staff list with directory fields, and the sync runs (the first one is the
sync status)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from directory_servers import PASSWORD, SAMBA_ADMINS, Samba, samba
from directory_support import container_for, samba_settings
from sqlalchemy.ext.asyncio import AsyncEngine

from ratel.app import create_app
from ratel.container import Container, dispose

__all__ = ["samba"]  # session fixture

STAFF = """
query { staff(first: 100) {
  nodes { login name email country company roles status source directoryManaged expired }
} }
"""
#: the users list with its sync status, as an administrator's screen asks for it
STAFF_AND_LAST_SYNC = """
query {
  staff(first: 100) {
    nodes { login name email country company roles status source directoryManaged expired
      blockedInRatel disabledInDirectory }
  }
  directorySyncRuns(first: 1) { nodes { id created error succeeded finishedAt } }
}
"""
RUNS = """
query { directorySyncRuns(first: 5) {
  edges { cursor node { id created updated blocked deleted error } }
  pageInfo { hasNextPage }
} }
"""
SYNC = "mutation { syncDirectory { run { id created blocked } errors { code message } } }"


@pytest.fixture
async def container(
    samba: Samba, database_url: str, engine: AsyncEngine
) -> AsyncIterator[Container]:
    made = container_for(samba_settings(database_url, samba))
    yield made
    await dispose(made)


@pytest.fixture
async def http(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://ratel.test") as client:
        yield client


async def ask(http: httpx.AsyncClient, query: str, token: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(body: dict[str, Any]) -> str:
    [error] = body["errors"]
    code: str = error["extensions"]["code"]
    return code


async def test_an_administrator_from_the_directory_sees_and_runs_the_sync(
    container: Container, http: httpx.AsyncClient
) -> None:
    token = (await container.staff_login()("alice", PASSWORD)).token

    before = await ask(http, STAFF_AND_LAST_SYNC, token)
    assert "errors" not in before, before
    assert before["data"]["directorySyncRuns"]["nodes"] == []
    [alice] = before["data"]["staff"]["nodes"]
    assert alice == {
        "login": "alice",
        "name": "Alice Admin",
        "email": "alice@ratel.test",
        "country": "GB",
        "company": "Ratel Telecom",
        "roles": ["administrator"],
        "status": "ACTIVE",
        "source": "DIRECTORY",
        "directoryManaged": True,
        "expired": False,
        "blockedInRatel": False,
        "disabledInDirectory": False,
    }

    synced = await ask(http, SYNC, token)
    assert "errors" not in synced, synced
    payload = synced["data"]["syncDirectory"]
    assert payload["errors"] == [] and payload["run"]["created"] >= 3  # harry, dave, eve, ...

    after = (await ask(http, STAFF_AND_LAST_SYNC, token))["data"]
    users = {u["login"]: u for u in after["staff"]["nodes"]}
    assert {"alice", "harry", "dave", "eve"} <= set(users)
    assert "nora" not in users  # in no mapped group
    assert users["dave"]["status"] == "BLOCKED" and users["eve"]["expired"]
    # disabled in the directory, not blocked by ratel: enabling it there lets dave in again
    assert users["dave"]["disabledInDirectory"] and not users["dave"]["blockedInRatel"]
    assert users["harry"]["roles"] == ["helpdesk"]
    [last_sync] = after["directorySyncRuns"]["nodes"]
    assert last_sync["id"] == payload["run"]["id"] and last_sync["succeeded"]

    runs = (await ask(http, RUNS, token))["data"]["directorySyncRuns"]
    assert [e["node"]["id"] for e in runs["edges"]] == [payload["run"]["id"]]
    assert not runs["pageInfo"]["hasNextPage"]


async def test_helpdesk_from_the_directory_reads_staff_but_may_not_sync(
    container: Container, http: httpx.AsyncClient
) -> None:
    token = (await container.staff_login()("harry", PASSWORD)).token
    listed = await ask(http, STAFF, token)
    assert "errors" not in listed, listed
    assert refused(await ask(http, RUNS, token)) == "FORBIDDEN"
    assert refused(await ask(http, SYNC, token)) == "FORBIDDEN"
    # and nothing of the customers' money either
    topup = (
        'mutation { topUp(customerId: "c", amount: {amount: "1", currency: "USD"})'
        " { errors { code } } }"
    )
    assert refused(await ask(http, topup, token)) == "FORBIDDEN"


async def test_without_a_token_nothing_is_answered(http: httpx.AsyncClient) -> None:
    assert refused(await ask(http, STAFF, None)) == "UNAUTHENTICATED"


async def test_a_token_dies_when_the_sync_finds_the_user_disabled(
    samba: Samba, container: Container, http: httpx.AsyncClient
) -> None:
    ou = samba.scratch_ou()
    login = f"kate{secrets.token_hex(3)}"
    dn = samba.add_user(login, container=ou, name=f"Kate {login}", groups=(SAMBA_ADMINS,))
    token = (await container.staff_login()(login, PASSWORD)).token
    assert "errors" not in await ask(http, STAFF, token)

    samba.disable(dn)
    admin = (await container.staff_login()("alice", PASSWORD)).token
    run = (await ask(http, SYNC, admin))["data"]["syncDirectory"]["run"]
    assert run["blocked"] >= 1
    response = await http.post(
        "/graphql", json={"query": STAFF}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
