# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""Pagination of xDRs, transactions and events: keyset pages that stay put
while rows are added, page sizes out of range, and cursors that are not ours."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import GraphQLObjectType

from ratel.container import Container
from ratel.domain.charging import Xdr
from ratel.domain.events import CustomerUpdated
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.money import Money
from ratel.graphql.schema import build_schema
from ratel.graphql.types import MAX_FIRST
from tests.api.graphql_support import (  # noqa: F401
    GraphQLClient,
    demo,
    demo_each,
    demo_template,
    gql,
    gql_each,
)


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


async def _add_xdrs(demo: Container, ended: list[datetime]) -> list[str]:
    ids = []
    factory = demo.uow()
    async with factory() as uow:
        for i, end in enumerate(ended):
            xdr = Xdr(
                id=f"xdr_review_{i:03d}",
                session_id=f"sess_review_{i:03d}",
                account_id="acc_demo_alice",
                customer_id="cus_demo_alice",
                started_at=end - timedelta(seconds=30),
                ended_at=end,
                lines=(),
                charge=Money.of("0.10", "USD"),
            )
            await uow.xdrs.add(xdr)
            ids.append(xdr.id)
        await uow.commit()
    return ids


XDRS = """query($after: String) {
  xdrs(accountId: "acc_demo_alice", first: 2, after: $after) {
    edges { cursor node { id endedAt } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_xdr_pages_do_not_skip_records_with_equal_end_time(
    gql_each: GraphQLClient, demo_each: Container
) -> None:
    """Three xDRs ending in the same second (a batch of SMS events): paging
    two at a time must give all three."""
    gql, demo = gql_each, demo_each
    same = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    ids = await _add_xdrs(demo, [same, same, same])
    seen: list[str] = []
    after = None
    for _ in range(10):
        data = await gql.data(XDRS, {"after": after}, token="administrator")
        page = data["xdrs"]
        seen += [e["node"]["id"] for e in page["edges"] if e["node"]["id"] in ids]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(ids), f"seen {seen} of {ids}"


async def test_self_care_xdr_pages_do_not_skip_records_with_equal_end_time(
    gql_each: GraphQLClient, demo_each: Container
) -> None:
    gql, demo = gql_each, demo_each
    same = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    ids = await _add_xdrs(demo, [same, same, same])
    query = """query($after: String) { me { xdrs(first: 2, after: $after) {
        edges { node { id } } pageInfo { hasNextPage endCursor } } } }"""
    seen: list[str] = []
    after = None
    for _ in range(10):
        data = await gql.data(query, {"after": after}, token="alice")
        page = data["me"]["xdrs"]
        seen += [e["node"]["id"] for e in page["edges"] if e["node"]["id"] in ids]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(ids), f"seen {seen} of {ids}"


async def test_a_malformed_xdr_cursor_starts_over(gql: GraphQLClient) -> None:
    body = await gql.run(XDRS, {"after": cursor("ended:not-a-date")}, token="administrator")
    # decode_cursor's contract: a cursor that is not ours starts from the beginning
    assert "errors" not in body, body["errors"]


async def _top_up(gql: GraphQLClient, reference: str) -> None:
    top_up = """mutation($ref: String!) { topUp(customerId: "cus_demo_alice",
        amount: {amount: "1.00", currency: "USD"}, reference: $ref) { errors { code } } }"""
    data = await gql.data(top_up, {"ref": reference}, token="administrator")
    assert data["topUp"]["errors"] == []


TRANSACTIONS = """query($after: String) {
  transactions(customerId: "cus_demo_alice", first: 1, after: $after) {
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_an_old_offset_cursor_on_transactions_starts_over(gql: GraphQLClient) -> None:
    """Transactions are paged by keyset now: an offset cursor (one a client
    kept from before) is not theirs, and starts over as a foreign xDR cursor does."""
    first = await gql.data(TRANSACTIONS, {"after": None}, token="administrator")
    body = await gql.run(
        TRANSACTIONS, {"after": cursor("offset:99999999999999999999")}, token="administrator"
    )
    assert "errors" not in body, body["errors"]
    assert body["data"] == first


async def test_an_old_offset_cursor_on_events_starts_over(gql: GraphQLClient) -> None:
    query = """query($after: String) { events(first: 1, after: $after) { nodes { id } } }"""
    first = await gql.data(query, {"after": None}, token="administrator")
    for stale in ("offset:99999999999999999999", "event:not-a-number"):
        body = await gql.run(query, {"after": cursor(stale)}, token="administrator")
        assert "errors" not in body, body["errors"]
        assert body["data"] == first


async def test_a_cursor_too_deep_into_a_short_list_is_refused(gql: GraphQLClient) -> None:
    """Lists held whole in memory (products, ...) keep offset cursors, bounded."""
    query = """query($after: String) { products(first: 1, after: $after) { nodes { code } } }"""
    deep = cursor("offset:99999999999999999999")
    body = await gql.run(query, {"after": deep}, token="administrator")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_CURSOR"]


# -- pages stay put while rows are added ------------------------------------------------


async def _page_through(
    gql: GraphQLClient,
    query: str,
    field: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    token: str = "administrator",
    between_pages: Callable[[], Awaitable[None]] | None = None,
) -> list[Any]:
    """Every node id, two at a time; ``between_pages`` runs after the first page."""
    seen: list[Any] = []
    after = None
    for page_number in range(100):
        page = field(await gql.data(query, {"first": 2, "after": after}, token=token))
        seen += [node["id"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        after = page["pageInfo"]["endCursor"]
        if page_number == 0 and between_pages is not None:
            await between_pages()
    raise AssertionError("the list did not end")


async def _journal_at(demo: Container, when: datetime, count: int) -> None:
    """``count`` of Alice's transactions made in the same instant (a batch)."""
    factory = demo.uow()
    async with factory() as uow:
        await uow.transactions.add_many(
            [
                BalanceTransaction(
                    id=f"txn_same_{when:%Y%m%d}_{i:02d}",
                    customer_id="cus_demo_alice",
                    amount=Money.of("1.00", "USD"),
                    balance_after=Money.of("1.00", "USD"),
                    reason=TransactionReason.PAYMENT,
                    created_at=when,
                )
                for i in range(count)
            ]
        )
        await uow.commit()


JOURNAL = """query($first: Int, $after: String) {
  transactions(customerId: "cus_demo_alice", first: $first, after: $after) {
    nodes { id } pageInfo { hasNextPage endCursor }
  }
}"""


async def test_transaction_pages_neither_repeat_nor_skip_when_rows_are_added_between_pages(
    gql_each: GraphQLClient, demo_each: Container
) -> None:
    """Page 1 read, then two top-ups (the newest rows) and a batch of payments
    in one instant: the pages after it give exactly the rest of the list as it
    was, the rows of one instant included."""
    gql, demo = gql_each, demo_each
    await _journal_at(demo, datetime(2021, 5, 1, 9, 0, tzinfo=UTC), 5)
    whole = await gql.data(JOURNAL, {"first": 100}, token="administrator")
    expected = [n["id"] for n in whole["transactions"]["nodes"]]
    assert len(expected) >= 6

    async def added() -> None:
        await _top_up(gql, "between-pages-1")
        await _top_up(gql, "between-pages-2")

    seen = await _page_through(gql, JOURNAL, lambda d: d["transactions"], between_pages=added)
    assert len(seen) == len(set(seen)), f"repeated: {seen}"
    assert seen == expected


async def test_payment_pages_neither_repeat_nor_skip_when_rows_are_added_between_pages(
    gql_each: GraphQLClient, demo_each: Container
) -> None:
    gql, demo = gql_each, demo_each
    await _journal_at(demo, datetime(2021, 5, 1, 9, 0, tzinfo=UTC), 5)
    query = """query($first: Int, $after: String) { customer(id: "cus_demo_alice") {
        payments(first: $first, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } }
    } }"""
    whole = await gql.data(query, {"first": 100}, token="administrator")
    expected = [n["id"] for n in whole["customer"]["payments"]["nodes"]]

    async def added() -> None:
        await _top_up(gql, "between-pages-1")
        await _journal_at(demo, datetime(2030, 1, 1, tzinfo=UTC), 3)

    seen = await _page_through(gql, query, lambda d: d["customer"]["payments"], between_pages=added)
    assert seen == expected


async def test_self_care_transaction_pages_neither_repeat_nor_skip(
    gql_each: GraphQLClient, demo_each: Container
) -> None:
    gql, demo = gql_each, demo_each
    await _journal_at(demo, datetime(2021, 5, 1, 9, 0, tzinfo=UTC), 5)
    query = """query($first: Int, $after: String) { me {
        transactions(first: $first, after: $after) {
            nodes { id } pageInfo { hasNextPage endCursor } } } }"""
    whole = await gql.data(query, {"first": 100}, token="alice")
    expected = [n["id"] for n in whole["me"]["transactions"]["nodes"]]

    async def added() -> None:
        await _top_up(gql, "between-pages-1")

    seen = await _page_through(
        gql, query, lambda d: d["me"]["transactions"], token="alice", between_pages=added
    )
    assert seen == expected


async def _events_at(demo: Container, when: datetime, count: int) -> None:
    """``count`` events of Alice written in the same instant (one use case's)."""
    factory = demo.uow()
    async with factory() as uow:
        await uow.outbox.add(
            [
                CustomerUpdated(customer_id="cus_demo_alice", occurred_at=when, changed=("x",))
                for _ in range(count)
            ]
        )
        await uow.commit()


EVENTS = """query($first: Int, $after: String) {
  events(aggregateId: "cus_demo_alice", first: $first, after: $after) {
    nodes { id } pageInfo { hasNextPage endCursor }
  }
}"""


async def test_event_pages_neither_repeat_nor_skip_when_events_are_written_between_pages(
    gql_each: GraphQLClient, demo_each: Container
) -> None:
    gql, demo = gql_each, demo_each
    await _events_at(demo, datetime(2021, 5, 1, 9, 0, tzinfo=UTC), 5)
    whole = await gql.data(EVENTS, {"first": 100}, token="administrator")
    expected = [n["id"] for n in whole["events"]["nodes"]]
    assert len(expected) >= 6

    async def added() -> None:
        await _top_up(gql, "between-pages-1")
        await _events_at(demo, datetime(2021, 5, 1, 9, 0, tzinfo=UTC), 3)

    seen = await _page_through(gql, EVENTS, lambda d: d["events"], between_pages=added)
    assert len(seen) == len(set(seen)), f"repeated: {seen}"
    assert seen == expected


async def test_customer_xdr_pages_neither_repeat_nor_skip_when_records_are_added(
    gql_each: GraphQLClient, demo_each: Container
) -> None:
    """A customer's xDRs are oldest first; a record that arrives late (a
    mediation file) with an older end time must not push page 1's records
    onto page 2; records ending in the same instant are none skipped."""
    gql, demo = gql_each, demo_each
    same = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    await _add_xdrs(demo, [same] * 5)
    query = """query($first: Int, $after: String) { customer(id: "cus_demo_alice") {
        xdrs(first: $first, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } }
    } }"""
    whole = await gql.data(query, {"first": 100}, token="administrator")
    expected = [n["id"] for n in whole["customer"]["xdrs"]["nodes"]]
    assert len(expected) >= 5

    async def added() -> None:
        factory = demo.uow()
        async with factory() as uow:
            await uow.xdrs.add(
                Xdr(
                    id="xdr_late",
                    session_id="sess_late",
                    account_id="acc_demo_alice",
                    customer_id="cus_demo_alice",
                    started_at=datetime(2020, 1, 1, tzinfo=UTC),
                    ended_at=datetime(2020, 1, 1, 0, 1, tzinfo=UTC),
                    lines=(),
                    charge=Money.of("0.10", "USD"),
                )
            )
            await uow.commit()

    seen = await _page_through(gql, query, lambda d: d["customer"]["xdrs"], between_pages=added)
    assert len(seen) == len(set(seen)), f"repeated: {seen}"
    assert seen == expected


# -- page sizes ---------------------------------------------------------------------------

#: Every paged field, as a query taking ``$first``, and who may ask it.
PAGED: dict[str, tuple[str, str]] = {
    "Query.customers": ("customers(first: $first) { nodes { id } }", "administrator"),
    "Query.products": ("products(first: $first) { nodes { code } }", "administrator"),
    "Query.tariffs": ("tariffs(first: $first) { nodes { code } }", "administrator"),
    "Query.destinationGroups": (
        "destinationGroups(first: $first) { nodes { code } }",
        "administrator",
    ),
    "Query.quotas": (
        'quotas(accountId: "acc_demo_alice", first: $first) { nodes { bucketId } }',
        "administrator",
    ),
    "Query.xdrs": (
        'xdrs(accountId: "acc_demo_alice", first: $first) { nodes { id } }',
        "administrator",
    ),
    "Query.transactions": (
        'transactions(customerId: "cus_demo_alice", first: $first) { nodes { id } }',
        "administrator",
    ),
    "Query.events": ("events(first: $first) { nodes { id } }", "administrator"),
    "Query.staff": ("staff(first: $first) { nodes { login } }", "administrator"),
    "Query.apiKeys": ("apiKeys(first: $first) { nodes { id } }", "administrator"),
    "Query.vouchers": ("vouchers(first: $first) { nodes { id } }", "administrator"),
    "Query.servicePolicies": ("servicePolicies(first: $first) { nodes { code } }", "administrator"),
    "Query.directorySyncRuns": (
        "directorySyncRuns(first: $first) { nodes { id } }",
        "administrator",
    ),
    "Query.nasList": ("nasList(first: $first) { nodes { address } }", "administrator"),
    "Query.radiusSessions": (
        'radiusSessions(accountId: "acc_demo_alice", first: $first) { nodes { acctSessionId } }',
        "administrator",
    ),
    "Tariff.rates": (
        "tariffs(first: 1) { nodes { rates(first: $first) { nodes { destination } } } }",
        "administrator",
    ),
    "Customer.accounts": (
        'customer(id: "cus_demo_alice") { accounts(first: $first) { nodes { id } } }',
        "administrator",
    ),
    "Customer.transactions": (
        'customer(id: "cus_demo_alice") { transactions(first: $first) { nodes { id } } }',
        "administrator",
    ),
    "Customer.payments": (
        'customer(id: "cus_demo_alice") { payments(first: $first) { nodes { id } } }',
        "administrator",
    ),
    "Customer.xdrs": (
        'customer(id: "cus_demo_alice") { xdrs(first: $first) { nodes { id } } }',
        "administrator",
    ),
    "Account.xdrs": (
        'account(id: "acc_demo_alice") { xdrs(first: $first) { nodes { id } } }',
        "administrator",
    ),
    "Me.xdrs": ("me { xdrs(first: $first) { nodes { id } } }", "alice"),
    "Me.transactions": ("me { transactions(first: $first) { nodes { id } } }", "alice"),
}


def test_the_page_size_cases_name_every_paged_field() -> None:
    schema = build_schema()._schema
    paged = {
        f"{name}.{field_name}"
        for name, kind in schema.type_map.items()
        if isinstance(kind, GraphQLObjectType) and not name.startswith("__")
        for field_name, field in kind.fields.items()
        if "first" in field.args
    }
    assert paged == set(PAGED)


@pytest.mark.parametrize("field", sorted(PAGED))
async def test_a_page_size_out_of_range_is_refused_as_bad_user_input(
    gql: GraphQLClient, field: str
) -> None:
    """``first: 0`` answered an empty page with no cursor to go on from (a
    dead end), and ``first`` above the largest page was cut short silently."""
    selection, token = PAGED[field]
    query = f"query($first: Int) {{ {selection} }}"
    for first in (0, -1, MAX_FIRST + 1):
        body = await gql.run(query, {"first": first}, token=token)
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
        assert codes == ["BAD_USER_INPUT"], (field, first, body)
        assert f"between 1 and {MAX_FIRST}" in body["errors"][0]["message"]
    for first in (1, MAX_FIRST):
        await gql.data(query, {"first": first}, token=token)
