# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""Lifecycle, money and voucher mutations; business refusals come back as
typed user errors in the payload, never as GraphQL errors or a 500."""

from __future__ import annotations

from typing import Any

from tests.api.graphql_support import GraphQLClient, demo, demo_template, gql  # noqa: F401

ADMIN = "administrator"


async def mutate(gql: GraphQLClient, document: str, **variables: Any) -> dict[str, Any]:
    data = await gql.data(document, variables, token=ADMIN)
    [payload] = data.values()
    assert isinstance(payload, dict)
    return payload


async def test_customer_lifecycle(gql: GraphQLClient) -> None:
    opened = await mutate(
        gql,
        """mutation ($input: OpenCustomerInput!) { openCustomer(input: $input) {
             customer { id name country status creditLimit { amount currency } }
             errors { code message } } }""",
        input={
            "name": "Zed Campaign",
            "currency": "usd",
            "country": "gb",
            "email": "zed@example.com",
            "creditLimit": {"amount": "50", "currency": "USD"},
        },
    )
    assert opened["errors"] == []
    customer = opened["customer"]
    assert customer["country"] == "GB" and customer["status"] == "OPEN"
    assert customer["creditLimit"] == {"amount": "50", "currency": "USD"}
    cid = customer["id"]

    updated = await mutate(
        gql,
        """mutation ($id: String!) { updateCustomer(id: $id, input: {name: "Zed Ltd",
             phone: "+441234"}) { customer { name email phone } errors { code } } }""",
        id=cid,
    )
    assert updated["customer"] == {
        "name": "Zed Ltd",
        "email": "zed@example.com",
        "phone": "+441234",
    }

    for name, status in (("suspendCustomer", "SUSPENDED"), ("resumeCustomer", "OPEN")):
        payload = await mutate(
            gql,
            f"mutation ($id: String!) {{ {name}(id: $id) "
            "{ customer { status } errors { code } } }",
            id=cid,
        )
        assert payload == {"customer": {"status": status}, "errors": []}

    account = await mutate(
        gql,
        """mutation ($c: String!) { createAccount(input: {customerId: $c,
             productCode: "MOBILE_PREPAID", msisdn: "447700900123"}) {
             account { id msisdn status quotas { quotaCode } } errors { code } } }""",
        c=cid,
    )
    assert account["errors"] == []
    assert account["account"]["msisdn"] == "447700900123"
    assert {q["quotaCode"] for q in account["account"]["quotas"]} == {"DATA_1GB", "SMS_100"}
    aid = account["account"]["id"]

    for name, status in (
        ("blockAccount", "BLOCKED"),
        ("unblockAccount", "ACTIVE"),
        ("terminateAccount", "TERMINATED"),
    ):
        payload = await mutate(
            gql,
            f"mutation ($id: String!) {{ {name}(id: $id) "
            "{ account { status } errors { code } } }",
            id=aid,
        )
        assert payload == {"account": {"status": status}, "errors": []}

    closed = await mutate(
        gql,
        "mutation ($id: String!) { closeCustomer(id: $id) "
        "{ customer { status } errors { code } } }",
        id=cid,
    )
    assert closed == {"customer": {"status": "CLOSED"}, "errors": []}


async def test_user_errors_not_graphql_errors(gql: GraphQLClient) -> None:
    # unknown customer
    payload = await mutate(
        gql,
        'mutation { suspendCustomer(id: "cus_nope") { customer { id } errors { code message } } }',
    )
    assert payload["customer"] is None
    assert payload["errors"][0]["code"] == "not_found"
    # a terminated account cannot be blocked; a suspended customer cannot be suspended
    await mutate(gql, 'mutation { terminateAccount(id: "acc_demo_carol") { errors { code } } }')
    payload = await mutate(
        gql, 'mutation { blockAccount(id: "acc_demo_carol") { account { id } errors { code } } }'
    )
    assert payload == {"account": None, "errors": [{"code": "account_terminated"}]}
    # an add-on bought with charge=true by a suspended customer (Eve, who has no money either)
    payload = await mutate(
        gql,
        """mutation { addAddOn(accountId: "acc_demo_eve", productCode: "REGULAR", charge: true) {
             addOn { id } errors { code } } }""",
    )
    assert payload["addOn"] is None
    assert payload["errors"][0]["code"] == "customer_suspended"
    # bad money and bad identifiers are user errors too
    payload = await mutate(
        gql,
        """mutation { topUp(customerId: "cus_demo_dave", amount: {amount: "1", currency: "US"}) {
             errors { code } } }""",
    )
    assert payload["errors"][0]["code"] == "invalid_money"
    payload = await mutate(
        gql,
        """mutation { createAccount(input: {customerId: "cus_demo_dave", productCode: "IOT_M2M",
             msisdn: "12055550100"}) { errors { code } } }""",
    )
    assert payload["errors"][0]["code"] == "duplicate_identifier"
    payload = await mutate(
        gql,
        """mutation { createVouchers(count: 0, value: {amount: "5", currency: "USD"}) {
             codes errors { code } } }""",
    )
    assert payload == {"codes": [], "errors": [{"code": "invalid_input"}]}
    payload = await mutate(
        gql,
        """mutation { redeemVoucherForCustomer(customerId: "cus_demo_bob", code: "000") {
             errors { code } } }""",
    )
    assert payload["errors"][0]["code"] == "voucher_unusable"


async def test_money_and_vouchers(gql: GraphQLClient) -> None:
    usd = {"amount": "10.5", "currency": "USD"}
    for name in ("topUp", "recordPayment"):
        payload = await mutate(
            gql,
            f"""mutation ($m: MoneyInput!) {{ {name}(customerId: "cus_demo_dave", amount: $m,
                 reference: "r1") {{ customer {{ balance {{ amount }} }}
                 transaction {{ amount {{ amount }} reason }} errors {{ code }} }} }}""",
            m=usd,
        )
        assert payload["errors"] == []
        assert payload["transaction"]["amount"]["amount"] == "10.5"
    assert payload["customer"]["balance"]["amount"] == "41"
    # a client retrying after a timeout: the first transaction, credited once
    retried = await mutate(
        gql,
        """mutation ($m: MoneyInput!) { topUp(customerId: "cus_demo_dave", amount: $m,
             reference: "r1") { customer { balance { amount } }
             transaction { id amount { amount } } errors { code } } }""",
        m=usd,
    )
    assert retried["errors"] == []
    assert retried["customer"]["balance"]["amount"] == "41"
    assert retried["transaction"]["amount"]["amount"] == "10.5"
    # the same reference for another amount is someone's mistake: refused
    other = await mutate(
        gql,
        """mutation { topUp(customerId: "cus_demo_dave", amount: {amount: "99", currency: "USD"},
             reference: "r1") { customer { balance { amount } } errors { code message } } }""",
    )
    assert other["customer"] is None
    assert other["errors"][0]["code"] == "reference_reused"

    payload = await mutate(
        gql,
        """mutation { manualTransaction(customerId: "cus_demo_dave",
             amount: {amount: "-1", currency: "USD"}, reason: "fix", ledgerCode: "700")
             { customer { balance { amount } } errors { code } } }""",
    )
    assert payload["customer"]["balance"]["amount"] == "40"

    vouchers = await mutate(
        gql,
        """mutation { createVouchers(count: 2, value: {amount: "5", currency: "USD"}, batch: "b1")
             { codes errors { code } } }""",
    )
    assert len(vouchers["codes"]) == 2
    code = vouchers["codes"][0]
    redeemed = await mutate(
        gql,
        """mutation ($code: String!) { redeemVoucherForCustomer(customerId: "cus_demo_dave",
             code: $code) { customer { balance { amount } } errors { code } } }""",
        code=code,
    )
    assert redeemed == {"customer": {"balance": {"amount": "45"}}, "errors": []}
    again = await mutate(
        gql,
        """mutation ($code: String!) { redeemVoucherForCustomer(customerId: "cus_demo_dave",
             code: $code) { customer { id } errors { code message } } }""",
        code=code,
    )
    assert again["customer"] is None
    assert again["errors"][0]["code"] == "voucher_unusable"


async def test_products_and_add_ons(gql: GraphQLClient) -> None:
    changed = await mutate(
        gql,
        """mutation { changeProduct(id: "acc_demo_dave_sim1", productCode: "MOBILE_PREPAID") {
             account { productCode } errors { code } } }""",
    )
    assert changed == {"account": {"productCode": "MOBILE_PREPAID"}, "errors": []}
    refused = await mutate(
        gql,
        """mutation { changeProduct(id: "acc_demo_dave_sim1", productCode: "TURBO") {
             account { productCode } errors { code } } }""",
    )
    assert refused["errors"][0]["code"] == "invalid_account"

    # the Salesforce tab: an add-on with an effective-to date
    added = await gql.data(
        """mutation { addAddOn(accountId: "acc_demo_grace", productCode: "SMS50",
             effectiveTo: "2099-01-31T00:00:00+00:00") {
             addOn { id productCode effectiveTo product { name } } errors { code } } }""",
        token="crm_write",
    )
    add_on = added["addAddOn"]["addOn"]
    assert add_on["effectiveTo"].startswith("2099-01-31")
    assert add_on["product"]["name"] == "50 domestic SMS"
    removed = await mutate(
        gql,
        """mutation ($id: String!) { removeAddOn(accountId: "acc_demo_grace", addOnId: $id) {
             account { addOns { id } } errors { code } } }""",
        id=add_on["id"],
    )
    assert removed == {"account": {"addOns": []}, "errors": []}
    missing = await mutate(
        gql,
        """mutation { removeAddOn(accountId: "acc_demo_grace", addOnId: "aoa_none") {
             errors { code } } }""",
    )
    assert missing["errors"][0]["code"] == "unknown_add_on"
