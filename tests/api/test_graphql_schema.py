# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""The schema as a whole: the SDL file, limits, introspection and GraphiQL by
environment, GET queries, DataLoader statement counts, and a fuzz run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from ratel.app import create_app
from ratel.container import Container, dispose
from ratel.demo import load_demo
from ratel.graphql.export import SCHEMA_FILE, sdl
from ratel.graphql.schema import MAX_ALIASES, MAX_DEPTH
from tests.api.graphql_support import (  # noqa: F401
    PRODUCTION,
    GraphQLClient,
    demo,
    demo_container,
    demo_template,
    gql,
)


def test_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == sdl(), (
        "schema.graphql is stale: run `uv run python -m ratel.graphql.export`"
    )


async def test_get_queries_work(gql: GraphQLClient) -> None:
    response = await gql.http.get(
        "/graphql",
        params={"query": '{ ussdBalance(msisdn: "12055550100") { text } }'},
        headers={"Authorization": "Bearer ussd"},
    )
    assert response.status_code == 200
    assert response.json()["data"]["ussdBalance"]["text"] == "Your current balance is 43.25 USD"


async def test_mutations_over_get_are_refused(gql: GraphQLClient) -> None:
    response = await gql.http.get(
        "/graphql",
        params={"query": 'mutation { suspendCustomer(id: "cus_demo_dave") { errors { code } } }'},
        headers={"Authorization": "Bearer administrator"},
    )
    assert response.status_code in {400, 405}  # strawberry: 400 "mutations are not allowed"


async def test_no_bearer_token_is_anonymous(gql: GraphQLClient) -> None:
    for header in ("Basic abc", "Bearer", ""):
        response = await gql.http.post(
            "/graphql",
            json={"query": "{ products { nodes { code } } }"},
            headers={"Authorization": header},
        )
        assert response.status_code == 200
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_refused_token_is_401(gql: GraphQLClient) -> None:
    response = await gql.http.post(
        "/graphql",
        json={"query": "{ products { nodes { code } } }"},
        headers={"Authorization": "Bearer expired-or-unknown"},
    )
    assert response.status_code == 401


async def test_a_too_deep_query_is_refused(gql: GraphQLClient) -> None:
    nested = "customer { accounts { nodes { " * 4 + "id" + " } } }" * 4
    query = f'{{ account(id: "acc_demo_alice") {{ {nested} }} }}'
    body = await gql.run(query, token="administrator")
    assert "data" not in body or body["data"] is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    assert query.count("{") > MAX_DEPTH


async def test_too_many_aliases_are_refused(gql: GraphQLClient) -> None:
    aliases = " ".join(f"p{i}: products {{ nodes {{ code }} }}" for i in range(MAX_ALIASES + 1))
    body = await gql.run(f"{{ {aliases} }}", token="administrator")
    assert "aliases" in body["errors"][0]["message"].lower()


async def test_too_many_tokens_are_refused(gql: GraphQLClient) -> None:
    fields = " ".join(["code"] * 3000)
    body = await gql.run(f"{{ products {{ nodes {{ {fields} }} }} }}", token="administrator")
    assert "token" in body["errors"][0]["message"].lower()


INTROSPECTION = "{ __schema { queryType { name } } }"


async def test_introspection_and_graphiql_in_development(gql: GraphQLClient) -> None:
    body = await gql.run(INTROSPECTION)
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    page = await gql.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


@pytest.fixture
async def production(demo_template: Path, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    container = demo_container(demo_template, tmp_path, **PRODUCTION)
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://ratel.test") as http:
        yield GraphQLClient(http)
    await dispose(container)


async def test_introspection_and_graphiql_are_off_in_production(production: GraphQLClient) -> None:
    body = await production.run(INTROSPECTION, token="administrator")
    assert "introspection" in body["errors"][0]["message"].lower()
    page = await production.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 404
    # ordinary queries still work
    data = await production.data("{ products { nodes { code } } }", token="administrator")
    assert len(data["products"]["nodes"]) == 8


# -- statement counts ---------------------------------------------------------------


@contextmanager
def counting(container: Container) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(*args: Any) -> None:
        statements.append(args[2])

    engine = container.engine().sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


PAGE = """
query ($first: Int) { customers(first: $first) { edges { node { id name
  accounts { nodes { id msisdn product { code name } addOns { product { code } }
    effectivePolicy { downloadKbps } } }
  products { code } zendeskOrganizationId pageUrl } } } }
"""


async def _count(gql: GraphQLClient, demo: Container, first: int) -> int:
    with counting(demo) as statements:
        data = await gql.data(PAGE, {"first": first}, token="administrator")
    assert len(data["customers"]["edges"]) == first
    return len(statements)


async def test_a_page_of_customers_costs_a_bounded_number_of_statements(
    gql: GraphQLClient, demo: Container
) -> None:
    await load_demo(demo, customers=100)
    await gql.data(PAGE, {"first": 1}, token="administrator")  # warm the catalogue cache
    small = await _count(gql, demo, 10)
    large = await _count(gql, demo, 100)
    # products and customers are batched: they add nothing per customer. The
    # accounts cost one statement per customer until the store port offers a
    # finder for many customers (see AccountsOfCustomers).
    assert large - small <= 90
    assert large <= 100 + 5


async def test_a_page_of_customers_costs_a_constant_number_of_statements(
    gql: GraphQLClient, demo: Container
) -> None:
    await load_demo(demo, customers=100)
    await gql.data(PAGE, {"first": 1}, token="administrator")
    assert await _count(gql, demo, 100) <= 10


def test_graphql_enums_mirror_the_domain() -> None:
    from ratel.domain.account import AccountStatus
    from ratel.domain.customer import CustomerStatus
    from ratel.domain.staff import StaffSource, StaffStatus
    from ratel.graphql import identity, types
    from ratel.ports.store import IdentifierKind

    assert {s.value for s in types.CustomerStatus} == {s.value for s in CustomerStatus}
    assert {s.value for s in types.AccountStatus} == {s.value for s in AccountStatus}
    assert {s.value for s in types.IdentifierKind} == {s.value for s in IdentifierKind}
    assert {s.value for s in identity.StaffStatus} == {s.value for s in StaffStatus}
    assert {s.value for s in identity.StaffSource} == {s.value for s in StaffSource}
