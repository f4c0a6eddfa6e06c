# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""The money mutations over GraphQL: who may move money, that refusals move
none, and that a retried purchase is paid once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.graphql_support import GraphQLClient, demo, demo_template, gql  # noqa: F401

ADMIN = "administrator"

TOP_UP = """mutation ($c: String!, $m: MoneyInput!, $r: String!) {
  topUp(customerId: $c, amount: $m, reference: $r) {
    customer { balance { amount currency } } transaction { id amount { amount } }
    errors { code message } } }"""


async def balance(gql: GraphQLClient, customer_id: str) -> str:
    data = await gql.data(
        "query ($id: String!) { customer(id: $id) { balance { amount } } }",
        {"id": customer_id},
        token=ADMIN,
    )
    return str(data["customer"]["balance"]["amount"])


async def transactions(gql: GraphQLClient, customer_id: str) -> list[dict[str, Any]]:
    data = await gql.data(
        """query ($id: String!) { transactions(customerId: $id, first: 100) {
             edges { node { amount { amount } reason reference } } } }""",
        {"id": customer_id},
        token=ADMIN,
    )
    return [e["node"] for e in data["transactions"]["edges"]]


@pytest.mark.parametrize(
    ("token", "mutation"),
    [
        (token, m)
        for token in ("alice", "helpdesk", "crm_read", "crm_write", "ussd", None)
        for m in (
            'topUp(customerId: "cus_demo_dave", amount: {amount: "100", currency: "USD"})',
            'recordPayment(customerId: "cus_demo_dave", amount: {amount: "100", currency: "USD"})',
            'manualTransaction(customerId: "cus_demo_dave", amount: {amount: "100", '
            'currency: "USD"}, reason: "x", ledgerCode: "1")',
        )
    ],
)
async def test_money_mutations_need_money_write(
    gql: GraphQLClient, token: str | None, mutation: str
) -> None:
    before = await balance(gql, "cus_demo_dave")
    body = (
        await gql.run(
            f"mutation {{ {mutation} {{ customer {{ id }} errors {{ code }} }} }}", token=token
        )
        if token
        else (await gql.post(f"mutation {{ {mutation} {{ errors {{ code }} }} }}")).json()
    )
    assert body.get("errors"), body
    assert await balance(gql, "cus_demo_dave") == before


async def test_self_care_cannot_read_other_customers_money(gql: GraphQLClient) -> None:
    for query in (
        'query { transactions(customerId: "cus_demo_dave") { edges { node { id } } } }',
        'query { customer(id: "cus_demo_dave") { balance { amount } } }',
        'query { account(id: "acc_demo_dave_sim1") { id } }',
    ):
        body = await gql.run(query, token="alice")
        assert body.get("errors"), (query, body)


async def test_self_care_buy_add_on_beyond_funds_refused(gql: GraphQLClient) -> None:
    """Alice (43.25 USD, no credit limit) buys TURBO until the money runs out:
    the balance never goes below zero and each purchase has its journal row."""
    start = await balance(gql, "cus_demo_alice")
    bought = 0
    for _ in range(30):
        data = await gql.data(
            'mutation { buyAddOn(productCode: "REGULAR") { addOn { id } errors { code } } }',
            token="alice",
        )
        if data["buyAddOn"]["errors"]:
            assert data["buyAddOn"]["errors"][0]["code"] in {"credit_limit_exceeded"}, data
            break
        bought += 1
    end = await balance(gql, "cus_demo_alice")
    assert float(end) >= 0
    charges = [t for t in await transactions(gql, "cus_demo_alice") if t["reason"] == "add_on"]
    assert len(charges) == bought
    assert abs(float(start) - float(end) - 10.0 * bought) < 1e-9


async def test_ussd_voucher_twice_credits_once(gql: GraphQLClient) -> None:
    data = await gql.data(
        """mutation { createVouchers(count: 1, value: {amount: "5", currency: "USD"})
             { codes errors { code } } }""",
        token=ADMIN,
    )
    [code] = data["createVouchers"]["codes"]
    before = await balance(gql, "cus_demo_alice")
    texts = []
    for _ in range(2):
        d = await gql.data(
            """mutation ($c: String!) { ussdRedeemVoucher(msisdn: "12055550100", code: $c)
                 { text errors { code } } }""",
            {"c": code},
            token="ussd",
        )
        texts.append(d["ussdRedeemVoucher"])
    assert texts[0]["errors"] == [] and texts[1]["errors"][0]["code"] == "voucher_unusable"
    after = await balance(gql, "cus_demo_alice")
    assert abs(float(after) - float(before) - 5) < 1e-9


async def test_a_self_care_purchase_retried_with_its_reference_is_paid_once(
    gql: GraphQLClient,
) -> None:
    """The app times out and sends buyAddOn again with the same reference:
    the same add-on comes back and the balance is charged once. The same
    reference for another add-on is refused."""
    start = await balance(gql, "cus_demo_alice")
    buy = """mutation ($p: String!, $r: String!) {
      buyAddOn(productCode: $p, reference: $r) { addOn { id } errors { code } } }"""
    first = await gql.data(buy, {"p": "REGULAR", "r": "app-7"}, token="alice")
    again = await gql.data(buy, {"p": "REGULAR", "r": "app-7"}, token="alice")
    assert first["buyAddOn"]["errors"] == [] and again["buyAddOn"]["errors"] == []
    assert again["buyAddOn"]["addOn"]["id"] == first["buyAddOn"]["addOn"]["id"]
    assert float(start) - float(await balance(gql, "cus_demo_alice")) == pytest.approx(10.0)
    other = await gql.data(buy, {"p": "TURBO", "r": "app-7"}, token="alice")
    assert [e["code"] for e in other["buyAddOn"]["errors"]] == ["reference_reused"]
    charges = [t for t in await transactions(gql, "cus_demo_alice") if t["reason"] == "add_on"]
    assert len(charges) == 1
