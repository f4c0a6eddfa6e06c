# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""USSD flows against accounts that are no longer in service."""

from __future__ import annotations

from tests.api.graphql_support import (  # noqa: F401
    GraphQLClient,
    demo,
    demo_template,
    gql,
)

ALICE_MSISDN = "12055550100"


async def _terminate_alice(gql: GraphQLClient) -> None:
    done = await gql.data(
        'mutation { terminateAccount(id: "acc_demo_alice") '
        "{ account { status } errors { code } } }",
        token="administrator",
    )
    assert done["terminateAccount"]["account"]["status"] == "TERMINATED"


async def _voucher(gql: GraphQLClient) -> str:
    made = await gql.data(
        'mutation { createVouchers(count: 1, value: {amount: "10", currency: "USD"}) '
        "{ codes errors { code } } }",
        token="administrator",
    )
    [code] = made["createVouchers"]["codes"]
    return code


async def test_ussd_voucher_redemption_refuses_a_terminated_accounts_number(
    gql: GraphQLClient,
) -> None:
    """Self-care refuses a terminated account (its token stops working); the
    USSD gateway, naming the same subscriber by MSISDN, must refuse too
    rather than burning the voucher onto the terminated account's customer."""
    code = await _voucher(gql)
    await _terminate_alice(gql)
    answer = await gql.data(
        "mutation($m: String!, $c: String!) { ussdRedeemVoucher(msisdn: $m, code: $c) "
        "{ text errors { code message } } }",
        {"m": ALICE_MSISDN, "c": code},
        token="ussd",
    )
    payload = answer["ussdRedeemVoucher"]
    assert payload["errors"], f"voucher accepted for a terminated account: {payload['text']!r}"


async def test_ussd_balance_is_not_shown_for_a_terminated_accounts_number(
    gql: GraphQLClient,
) -> None:
    await _terminate_alice(gql)
    answer = await gql.data(
        "query($m: String!) { ussdBalance(msisdn: $m) { text } }",
        {"m": ALICE_MSISDN},
        token="ussd",
    )
    assert answer["ussdBalance"] is None, answer["ussdBalance"]
