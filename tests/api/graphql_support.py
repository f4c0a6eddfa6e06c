"""Shared by the GraphQL API tests: a demo database made once and copied per
test, callers of every kind behind bearer tokens, and a small client."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from ratel.adapters.db.migrations import upgrade
from ratel.app import create_app
from ratel.application.identity import CallerKind, Principal, Role, Scope
from ratel.config import Environment, Settings
from ratel.container import Container, build_container, dispose
from ratel.demo import load_demo
from ratel.domain.errors import DomainError

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from store_databases import BACKENDS, fresh_database

#: Every kind of caller the permission matrix knows, by bearer token.
PRINCIPALS: Mapping[str, Principal] = {
    "administrator": Principal(CallerKind.STAFF, "root", roles=frozenset({Role.ADMINISTRATOR})),
    "helpdesk": Principal(CallerKind.STAFF, "hd", roles=frozenset({Role.HELPDESK})),
    "alice": Principal(
        CallerKind.ACCOUNT_HOLDER,
        "acc_demo_alice",
        account_id="acc_demo_alice",
        customer_id="cus_demo_alice",
    ),
    "crm_read": Principal(CallerKind.API_CLIENT, "sf", scopes=frozenset({Scope.CRM_READ})),
    "crm_write": Principal(CallerKind.API_CLIENT, "zd", scopes=frozenset({Scope.CRM_WRITE})),
    "ussd": Principal(CallerKind.API_CLIENT, "gw", scopes=frozenset({Scope.USSD})),
}


async def authenticate(token: str) -> Principal:
    """Stands in for the identity use case: a known token names its principal."""
    try:
        return PRINCIPALS[token]
    except KeyError:
        raise DomainError("unknown token") from None


def _template(directory: Path) -> Path:
    path = directory / "demo.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)

    async def load() -> None:
        container = build_container(Settings(database_url=url))
        try:
            await load_demo(container)
        finally:
            await dispose(container)

    asyncio.run(load())
    return path


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with the demo operator, made once per test run."""
    return _template(tmp_path_factory.mktemp("graphql-demo"))


# never the well-known RADIUS and Diameter ports: other test runs share the machine
_PORTS = {"radius_auth_port": 0, "radius_acct_port": 0, "diameter_port": 0}


def demo_container(template: Path, directory: Path, **settings: Any) -> Container:
    """A container on a fresh copy of the demo database, with test tokens."""
    path = directory / "ratel.db"
    shutil.copyfile(template, path)
    container = build_container(
        Settings(database_url=f"sqlite+aiosqlite:///{path}", **{**_PORTS, **settings})
    )
    container.authenticate.override(providers.Object(authenticate))
    return container


@pytest.fixture
async def demo(demo_template: Path, tmp_path: Path) -> AsyncIterator[Container]:
    container = demo_container(demo_template, tmp_path)
    yield container
    await dispose(container)


@pytest.fixture(params=BACKENDS)
async def demo_each(
    request: pytest.FixtureRequest, demo_template: Path, tmp_path: Path
) -> AsyncIterator[Container]:
    """The demo operator on SQLite and on a fresh PostgreSQL database (the
    server of ``RATEL_TEST_PG_URL``): for what the store's SQL decides."""
    if request.param == "sqlite":
        container = demo_container(demo_template, tmp_path)
        yield container
        await dispose(container)
        return
    async with fresh_database(request.param, tmp_path) as url:
        upgrade(url)
        container = build_container(Settings(database_url=url, **_PORTS))
        container.authenticate.override(providers.Object(authenticate))
        try:
            await load_demo(container)
            yield container
        finally:
            await dispose(container)


class GraphQLClient:
    """POSTs GraphQL documents to ``/graphql`` as one caller or another."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(
        self, query: str, variables: Mapping[str, Any] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(
            "/graphql", json={"query": query, "variables": dict(variables or {})}, headers=headers
        )

    async def run(
        self, query: str, variables: Mapping[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """The JSON body of a successful HTTP exchange (200)."""
        response = await self.post(query, variables, token=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: Mapping[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """The data of an answer that must have no errors."""
        body = await self.run(query, variables, token=token)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
async def gql(demo: Container) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=create_app(demo))
    async with httpx.AsyncClient(transport=transport, base_url="http://ratel.test") as http:
        yield GraphQLClient(http)


PRODUCTION = {"environment": Environment.PRODUCTION, "secret": "a-production-secret-0123456789"}


@pytest.fixture
async def gql_each(demo_each: Container) -> AsyncIterator[GraphQLClient]:
    """A client of ``demo_each``: on SQLite, then on PostgreSQL."""
    transport = httpx.ASGITransport(app=create_app(demo_each))
    async with httpx.AsyncClient(transport=transport, base_url="http://ratel.test") as http:
        yield GraphQLClient(http)
