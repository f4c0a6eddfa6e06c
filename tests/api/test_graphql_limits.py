# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""What one request may read, and what bad input and a failing resolver
tell the caller: a clear refusal, never an internal message (SQL, paths)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import get_introspection_query

from ratel.adapters.db.records import SqlXdrRepository
from ratel.container import Container
from ratel.domain.charging import Xdr
from ratel.domain.money import Money
from ratel.graphql.schema import INTERNAL, MAX_ALIASES, MAX_DEPTH
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
