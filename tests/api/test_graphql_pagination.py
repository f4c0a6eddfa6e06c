# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""Pagination of xDRs, transactions and events, and cursors that are not ours."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from ratel.container import Container
from ratel.domain.charging import Xdr
from ratel.domain.money import Money
from tests.api.graphql_support import (  # noqa: F401
    GraphQLClient,
    demo,
    demo_template,
    gql,
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
    gql: GraphQLClient, demo: Container
) -> None:
    """Three xDRs ending in the same second (a batch of SMS events): paging
    two at a time must give all three."""
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
    gql: GraphQLClient, demo: Container
) -> None:
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


async def test_a_cursor_too_deep_is_refused_not_an_internal_error(gql: GraphQLClient) -> None:
    body = await gql.run(
        TRANSACTIONS, {"after": cursor("offset:99999999999999999999")}, token="administrator"
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_CURSOR"]


async def test_a_cursor_too_deep_on_events_is_refused(gql: GraphQLClient) -> None:
    query = """query($after: String) { events(first: 1, after: $after) { nodes { id } } }"""
    deep = cursor("offset:99999999999999999999")
    body = await gql.run(query, {"after": deep}, token="administrator")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_CURSOR"]
