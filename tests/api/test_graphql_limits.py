# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""What one request may read, and what bad input and a failing resolver
tell the caller: a clear refusal, never an internal message (SQL, paths)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import get_introspection_query, parse

from ratel.adapters.db.records import SqlXdrRepository
from ratel.container import Container
from ratel.domain.charging import Xdr
from ratel.domain.money import Money
from ratel.graphql.cost import LIST_FANOUT, query_cost
from ratel.graphql.schema import INTERNAL, MAX_ALIASES, MAX_DEPTH, MAX_NODES, build_schema
from ratel.graphql.types import DEFAULT_FIRST, MAX_FIRST
from tests.api.graphql_support import (  # noqa: F401
    GraphQLClient,
    demo,
    demo_template,
    gql,
)
from tests.api.test_graphql_schema import PAGE, counting


async def test_customer_xdrs_first_bounds_what_is_read(
    gql: GraphQLClient, demo: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``customer { xdrs(first: 1) }`` must not load every xDR the customer
    ever had (queries.py promises: "limit bounds every read")."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    factory = demo.uow()
    async with factory() as uow:
        for i in range(300):
            end = start + timedelta(minutes=i)
            await uow.xdrs.add(
                Xdr(
                    id=f"xdr_bulk_{i:04d}",
                    session_id=f"sess_bulk_{i:04d}",
                    account_id="acc_demo_alice",
                    customer_id="cus_demo_alice",
                    started_at=end - timedelta(seconds=10),
                    ended_at=end,
                    lines=(),
                    charge=Money.of("0.01", "USD"),
                )
            )
        await uow.commit()

    read: list[int] = []
    original = SqlXdrRepository.for_customer

    async def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        rows = await original(self, *args, **kwargs)
        read.append(len(rows))
        return rows

    monkeypatch.setattr(SqlXdrRepository, "for_customer", spy)
    data = await gql.data(
        'query { customer(id: "cus_demo_alice") { xdrs(first: 1) { nodes { id } } } }',
        token="alice",  # a self-care caller may do this, as often as they like
    )
    assert len(data["customer"]["xdrs"]["nodes"]) == 1
    assert max(read) <= 101, f"one page of 1 xDR read {max(read)} rows"


async def test_a_naive_expiry_on_create_vouchers_is_refused_without_leaking_sql(
    gql: GraphQLClient,
) -> None:
    body = await gql.run(
        'mutation { createVouchers(count: 1, value: {amount: "1", currency: "USD"}, '
        'expiresAt: "2030-01-01T00:00:00") { codes errors { code message } } }',
        token="administrator",
    )
    # a time without its UTC offset names no instant: refused as an invalid
    # argument, saying why (it reached the store, which answered with its SQL)
    assert [e["message"] for e in body["errors"]] != []
    assert all("UTC offset" in e["message"] for e in body["errors"]), body["errors"]
    assert "SQL" not in str(body)


async def test_a_naive_since_on_customer_xdrs_is_refused_for_self_care(
    gql: GraphQLClient,
) -> None:
    body = await gql.run(
        'query { customer(id: "cus_demo_alice") { xdrs(since: "2020-01-01T00:00:00") '
        "{ nodes { id } } } }",
        token="alice",
    )
    assert "SQL" not in str(body)
    assert all("UTC offset" in e["message"] for e in body["errors"]), body["errors"]


async def test_a_large_top_up_amount_is_a_user_error(gql: GraphQLClient) -> None:
    body = await gql.run(
        'mutation { topUp(customerId: "cus_demo_alice", amount: {amount: "1e20", '
        'currency: "USD"}) { errors { code message } } }',
        token="administrator",
    )
    assert "errors" not in body, body["errors"]
    assert body["data"]["topUp"]["errors"], "an absurd amount should be refused"


async def test_an_unexpected_failure_is_masked_for_the_caller_and_logged(
    demo: Container, gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    use_cases = demo.graphql_use_cases()

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("[SQL: SELECT password_hash FROM staff_users]")

    object.__setattr__(use_cases, "list_products", broken)
    with caplog.at_level("ERROR", logger="ratel.graphql"):
        body = await gql.run("query { products { nodes { code } } }", token="administrator")
    assert [e["message"] for e in body["errors"]] == [INTERNAL]
    assert "SQL" not in str(body)
    failed = [r for r in caplog.records if r.getMessage() == "graphql resolver failed"]
    assert failed and "password_hash" in str(failed[0].exc_info[1])


# -- what one query may cost -----------------------------------------------------------


async def test_a_too_deep_query_is_refused_before_it_runs_any_sql(
    gql: GraphQLClient, demo: Container
) -> None:
    nested = "customer { accounts { nodes { " * 4 + "id" + " } } }" * 4
    query = f'{{ account(id: "acc_demo_alice") {{ {nested} }} }}'
    with counting(demo) as statements:
        body = await gql.run(query, token="helpdesk")
    assert body.get("data") is None
    assert [e["message"] for e in body["errors"]] == [
        f"'anonymous' exceeds maximum operation depth of {MAX_DEPTH}"
    ]
    assert statements == []


async def test_an_alias_bomb_is_refused_before_it_runs_any_sql(
    gql: GraphQLClient, demo: Container
) -> None:
    """The same page of customers, each with its journal and usage, asked
    for under many names: each copy costs its statements again."""
    page = (
        "customers(first: 100) { nodes { transactions(first: 100) { nodes { id } } "
        "accounts { nodes { quotas { remaining } xdrs(first: 100) { nodes { id } } } } } }"
    )
    query = "{ " + " ".join(f"c{i}: {page}" for i in range(MAX_ALIASES + 1)) + " }"
    with counting(demo) as statements:
        body = await gql.run(query, token="helpdesk")
    assert body.get("data") is None
    assert [e["message"] for e in body["errors"]] == [
        f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}"
    ]
    assert statements == []


async def test_the_deepest_query_of_the_tests_still_runs(gql: GraphQLClient) -> None:
    """The customer page of the back office (seven levels deep) is well within the limit."""
    data = await gql.data(PAGE, {"first": 5}, token="helpdesk")
    assert data["customers"]["edges"]


async def test_graphiqls_full_introspection_query_passes_the_limits_in_development(
    gql: GraphQLClient,
) -> None:
    """Introspection nests ``ofType`` deeper than any query of ours: the
    depth limit leaves ``__schema`` and ``__type`` alone (the export and
    GraphiQL depend on it)."""
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    data = await gql.data(query)
    names = {t["name"] for t in data["__schema"]["types"]}
    assert {"Query", "Mutation", "Customer", "BalanceTransaction"} <= names


# -- what one query may return ----------------------------------------------------------

#: A page of customers with their journal and their accounts' quotas and usage.
USAGE_PAGE = (
    "customers(first: 100) { nodes { transactions(first: 100) { nodes { id } } "
    "accounts { nodes { quotas { remaining } xdrs(first: 100) { nodes { id } } } } } }"
)
#: What one copy may return: 100 customers, 100 transactions each, the default
#: page of accounts each, a list of quotas and 100 xDRs per account.
USAGE_PAGE_NODES = 100 + 100 * 100 + 100 * DEFAULT_FIRST * (1 + LIST_FANOUT + MAX_FIRST)


def too_costly(nodes: int) -> str:
    return (
        f"this query may return {nodes:,} nodes, more than the {MAX_NODES:,} allowed: "
        "ask for smaller pages (first) or fewer nested lists"
    )


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    """What ``query`` may return, counted as the server counts it."""
    return query_cost(build_schema()._schema, parse(query), None, variables)


async def test_a_costly_query_within_the_other_limits_is_refused_before_it_runs_any_sql(
    gql: GraphQLClient, demo: Container, caplog: pytest.LogCaptureFixture
) -> None:
    """Within the depth, alias and token limits, the usage page under every
    alias allowed ran 1,966 statements on the demo data alone: it is refused
    by what it may return, before anything is read."""
    query = "{ " + " ".join(f"c{i}: {USAGE_PAGE}" for i in range(MAX_ALIASES)) + " }"
    with caplog.at_level("INFO", logger="ratel.graphql"), counting(demo) as statements:
        body = await gql.run(query, token="helpdesk")
    assert statements == []
    assert body.get("data") is None
    (error,) = body["errors"]
    assert error["message"] == too_costly(MAX_ALIASES * USAGE_PAGE_NODES)
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    refused = [r for r in caplog.records if r.getMessage() == "graphql request refused"]
    assert [getattr(r, "code", None) for r in refused] == ["QUERY_TOO_COSTLY"]


async def test_one_copy_of_the_usage_page_is_refused_too(
    gql: GraphQLClient, demo: Container
) -> None:
    with counting(demo) as statements:
        body = await gql.run("{ " + USAGE_PAGE + " }", token="helpdesk")
    assert statements == []
    assert [e["message"] for e in body["errors"]] == [too_costly(USAGE_PAGE_NODES)]


#: 100 customers with 99 transactions each: 10,000 nodes.
TEN_THOUSAND = "customers(first: 100) { nodes { transactions(first: 99) { nodes { id } } } }"


def _at_most(nodes: int) -> str:
    """A query that may return exactly ``nodes`` nodes (within the alias limit)."""
    copies, spare = divmod(nodes, 10_000)
    parts = [f"c{i}: {TEN_THOUSAND}" for i in range(copies)]
    while spare:
        page = min(spare, MAX_FIRST)
        parts.append(f"p{spare}: products(first: {page}) {{ nodes {{ code }} }}")
        spare -= page
    return "{ " + " ".join(parts) + " }"


async def test_a_query_at_the_limit_runs_and_one_node_more_is_refused(
    gql: GraphQLClient, demo: Container
) -> None:
    at_limit = _at_most(MAX_NODES)
    assert cost(at_limit) == MAX_NODES
    data = await gql.data(at_limit, token="helpdesk")
    assert data["c0"]["nodes"]

    over = _at_most(MAX_NODES + 1)
    with counting(demo) as statements:
        body = await gql.run(over, token="helpdesk")
    assert statements == []
    assert [e["message"] for e in body["errors"]] == [too_costly(MAX_NODES + 1)]


async def test_fragments_and_inline_fragments_are_counted_where_they_are_spread(
    gql: GraphQLClient, demo: Container
) -> None:
    query = """
    { customers(first: 100) { ...Rows } }
    fragment Rows on CustomerConnection { nodes { ...Usage } }
    fragment Usage on Customer {
      accounts { nodes { ... on Account { xdrs(first: 100) { nodes { id } } } } }
    }
    """
    nodes = 100 + 100 * DEFAULT_FIRST + 100 * DEFAULT_FIRST * 100
    with counting(demo) as statements:
        body = await gql.run(query, token="helpdesk")
    assert statements == []
    assert [e["message"] for e in body["errors"]] == [too_costly(nodes)]


async def test_first_given_as_a_variable_counts_as_its_value(
    gql: GraphQLClient, demo: Container
) -> None:
    query = """query ($n: Int = 100) { customers(first: $n) { nodes {
      accounts { nodes { xdrs(first: $n) { nodes { id } } } } } } }"""
    data = await gql.data(query, {"n": 5}, token="helpdesk")
    assert data["customers"]["nodes"]
    refused = too_costly(100 + 100 * DEFAULT_FIRST + 100 * DEFAULT_FIRST * 100)
    for variables in ({"n": 100}, None):  # the value given, else the default
        with counting(demo) as statements:
            body = await gql.run(query, variables, token="helpdesk")
        assert statements == []
        assert [e["message"] for e in body["errors"]] == [refused]


def test_introspection_and_scalars_are_not_counted() -> None:
    assert cost(get_introspection_query(descriptions=True)) == 0
    assert cost('{ __typename customer(id: "x") { id name balance { amount } } }') == 0


async def test_the_largest_query_of_the_tests_passes_at_the_largest_page(
    gql: GraphQLClient,
) -> None:
    """The back office's customer page (the costliest query of the tests, the
    README and the CRM, USSD and self-care clients) at ``first: 100``."""
    assert cost(PAGE, {"first": MAX_FIRST}) == 23_100 <= MAX_NODES
    data = await gql.data(PAGE, {"first": MAX_FIRST}, token="helpdesk")
    assert data["customers"]["edges"]
