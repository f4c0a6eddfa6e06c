# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""USSD gateways and self-care over HTTP."""

from __future__ import annotations

from ratel.container import Container
from ratel.domain.money import Money
from tests.api.graphql_support import GraphQLClient, demo, demo_template, gql  # noqa: F401


async def test_ussd_balance(gql: GraphQLClient) -> None:
    data = await gql.data(
        """query { alice: ussdBalance(msisdn: "12055550100") { amount currency text }
                   nobody: ussdBalance(msisdn: "19990000000") { text }
                   garbage: ussdBalance(msisdn: "not a number") { text } }""",
        token="ussd",
    )
    assert data["alice"] == {
        "amount": "43.25",
        "currency": "USD",
        "text": "Your current balance is 43.25 USD",
    }
    assert data["nobody"] is None
    assert data["garbage"] is None


async def test_ussd_voucher_and_package(gql: GraphQLClient, demo: Container) -> None:
    [code] = await demo.create_vouchers()(1, Money.of("5", "USD"))
    data = await gql.data(
        """mutation ($code: String!) {
             ok: ussdRedeemVoucher(msisdn: "12055550100", code: $code) { text errors { code } }
           }""",
        {"code": code},
        token="ussd",
    )
    assert data["ok"] == {
        "text": "Voucher accepted. Your current balance is 48.25 USD",
        "errors": [],
    }
    again = await gql.data(
        """mutation ($code: String!) {
             ussdRedeemVoucher(msisdn: "12055550100", code: $code) { text errors { code } } }""",
        {"code": code},
        token="ussd",
    )
    assert again["ussdRedeemVoucher"]["errors"] == [{"code": "voucher_unusable"}]
    assert again["ussdRedeemVoucher"]["text"].startswith("Sorry: ")

    package = await gql.data(
        """mutation { a: ussdChangePackage(msisdn: "12055550104", code: "mobile_prepaid") {
                        text errors { code } }
                      b: ussdChangePackage(msisdn: "19990000000", code: "MOBILE_PREPAID") {
                        text errors { code } } }""",
        token="ussd",
    )
    assert package["a"] == {"text": "Your package is now MOBILE_PREPAID", "errors": []}
    assert package["b"]["errors"] == [{"code": "not_found"}]


ME = """
query {
  me {
    account { id msisdn }
    customer { id name }
    balance { balance { amount currency } available { amount } text }
    quotas { productCode quotaCode used remaining expiresAt }
    addOns { productCode effectiveTo }
    availableAddOns { code price { amount } }
    xdrs { edges { cursor } }
    transactions { edges { node { reason amount { amount } } } }
  }
}
"""


async def test_self_care_sees_its_own_data(gql: GraphQLClient) -> None:
    me = (await gql.data(ME, token="alice"))["me"]
    assert me["account"] == {"id": "acc_demo_alice", "msisdn": "12055550100"}
    assert me["customer"] == {"id": "cus_demo_alice", "name": "Alice Prepaid"}
    assert me["balance"]["text"] == "Your current balance is 43.25 USD"
    assert me["balance"]["balance"] == {"amount": "43.25", "currency": "USD"}
    turbo = next(q for q in me["quotas"] if q["productCode"] == "TURBO")
    assert turbo["used"] == "0" and turbo["expiresAt"] is not None
    assert {a["productCode"] for a in me["addOns"]} == {"TURBO", "REGULAR"}
    assert [p["code"] for p in me["availableAddOns"]] == ["REGULAR", "SMS50", "TURBO"]
    assert me["transactions"]["edges"][0]["node"]["reason"] == "top_up"


async def test_self_care_buys_an_add_on_and_redeems_a_voucher(
    gql: GraphQLClient, demo: Container
) -> None:
    bought = await gql.data(
        'mutation { buyAddOn(productCode: "SMS50") { addOn { productCode } errors { code } } }',
        token="alice",
    )
    assert bought["buyAddOn"] == {"addOn": {"productCode": "SMS50"}, "errors": []}
    me = (await gql.data("query { me { balance { text } } }", token="alice"))["me"]
    assert me["balance"]["text"] == "Your current balance is 41.25 USD"

    not_on_sale = await gql.data(
        'mutation { buyAddOn(productCode: "FIBRE_100") { addOn { id } errors { code } } }',
        token="alice",
    )
    assert not_on_sale["buyAddOn"]["errors"] == [{"code": "not_found"}]

    unknown = await gql.data(
        'mutation { redeemVoucher(code: "12345") { customer { id } errors { code } } }',
        token="alice",
    )
    assert unknown["redeemVoucher"] == {"customer": None, "errors": [{"code": "voucher_unusable"}]}

    lift = await gql.data(
        "mutation { liftLocationBlock { account { id } errors { code } } }", token="alice"
    )
    # Alice is at home: there is no block to lift
    assert lift["liftLocationBlock"]["errors"] == [{"code": "location_not_restricted"}]
