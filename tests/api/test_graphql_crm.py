# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""The CRM apps and the back office over GraphQL: the Zendesk app (find a
customer, link it to an organization, the page URL), the Salesforce tab
(campaign filters, payments, products, an add-on with an end date),
vouchers without their codes, service policies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from ratel.app import create_app
from ratel.container import Container, dispose
from ratel.domain.catalogue import ServicePolicy
from ratel.domain.money import Money
from tests.api.graphql_support import (  # noqa: F401
    GraphQLClient,
    demo,
    demo_container,
    demo_template,
    gql,
)

PAGE = "https://backoffice.example.com/customers/{customer_id}"

CUSTOMER = """query ($id: String!) {
  customer(id: $id) { id zendeskOrganizationId pageUrl }
}"""
LINK = """mutation ($customer: String!, $org: String!) {
  linkZendeskOrganization(customerId: $customer, organizationId: $org) {
    customer { id zendeskOrganizationId } zendeskOrganizationId errors { code }
  }
}"""


@pytest.fixture
async def linked(demo_template: Path, tmp_path: Path) -> AsyncIterator[Container]:
    container = demo_container(demo_template, tmp_path, customer_page_url=PAGE)
    yield container
    await dispose(container)


@pytest.fixture
async def zendesk(linked: Container) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=create_app(linked))
    async with httpx.AsyncClient(transport=transport, base_url="http://ratel.test") as http:
        yield GraphQLClient(http)


async def test_the_zendesk_app_finds_links_and_links_back(zendesk: GraphQLClient) -> None:
    by_name = await zendesk.data(
        '{ customers(filter: {name: "alice"}) { nodes { id name } } }', token="crm_read"
    )
    assert by_name["customers"]["nodes"] == [{"id": "cus_demo_alice", "name": "Alice Prepaid"}]
    by_account = await zendesk.data(
        '{ customers(filter: {accountId: "acc_demo_bob_fibre"}) { nodes { id } } }',
        token="crm_read",
    )
    assert by_account["customers"]["nodes"] == [{"id": "cus_demo_bob"}]

    linked = await zendesk.data(
        LINK, {"customer": "cus_demo_alice", "org": " 360001 "}, token="crm_write"
    )
    assert linked["linkZendeskOrganization"] == {
        "customer": None,  # a crm:write key links; reading the customer takes crm:read
        "zendeskOrganizationId": "360001",
        "errors": [],
    }
    alice = await zendesk.data(CUSTOMER, {"id": "cus_demo_alice"}, token="crm_read")
    assert alice["customer"] == {
        "id": "cus_demo_alice",
        "zendeskOrganizationId": "360001",
        "pageUrl": "https://backoffice.example.com/customers/cus_demo_alice",
    }
    found = await zendesk.data(
        '{ customerByZendeskOrganization(organizationId: "360001") { id } }', token="crm_read"
    )
    assert found["customerByZendeskOrganization"] == {"id": "cus_demo_alice"}

    # an organization is one customer's
    bob = {"customer": "cus_demo_bob", "org": "360001"}
    taken = await zendesk.data(LINK, bob, token="crm_write")
    assert taken["linkZendeskOrganization"]["errors"] == [{"code": "crm_record_taken"}]
    for bad, code in (("", "invalid_crm_record"), ("36 0001", "invalid_crm_record")):
        refused = await zendesk.data(
            LINK, {"customer": "cus_demo_bob", "org": bad}, token="crm_write"
        )
        assert refused["linkZendeskOrganization"]["errors"] == [{"code": code}]
    unknown = await zendesk.data(LINK, {"customer": "cus_nobody", "org": "1"}, token="crm_write")
    assert unknown["linkZendeskOrganization"]["errors"] == [{"code": "not_found"}]

    # a new organization replaces the old link; the change is an event
    await zendesk.data(LINK, {"customer": "cus_demo_alice", "org": "360002"}, token="crm_write")
    old = await zendesk.data(
        '{ customerByZendeskOrganization(organizationId: "360001") { id } }', token="crm_read"
    )
    assert old["customerByZendeskOrganization"] is None
    events = await zendesk.data(
        '{ events(aggregateId: "cus_demo_alice", first: 2) { nodes { eventType payload } } }',
        token="administrator",
    )
    newest = events["events"]["nodes"][0]
    assert newest["eventType"] == "CustomerUpdated"
    assert newest["payload"]["changed"] == ["zendesk_record"]

    unlinked = await zendesk.data(
        'mutation { unlinkZendeskOrganization(customerId: "cus_demo_alice")'
        " { customer { zendeskOrganizationId } errors { code } } }",
        token="crm_write",
    )
    assert unlinked["unlinkZendeskOrganization"] == {"customer": None, "errors": []}
    alice = await zendesk.data(CUSTOMER, {"id": "cus_demo_alice"}, token="crm_read")
    assert alice["customer"]["zendeskOrganizationId"] is None


async def test_without_a_configured_page_there_is_no_page_url(gql: GraphQLClient) -> None:
    alice = await gql.data(CUSTOMER, {"id": "cus_demo_alice"}, token="crm_read")
    assert alice["customer"]["pageUrl"] is None


async def test_the_salesforce_tab(demo: Container, gql: GraphQLClient) -> None:
    campaign = await gql.data(
        '{ customers(filter: {country: "US", productCode: "FIBRE_100"}, first: 50)'
        " { nodes { id products { code } } } }",
        token="crm_read",
    )
    nodes = campaign["customers"]["nodes"]
    assert [n["id"] for n in nodes] == ["cus_demo_bob"]
    assert "FIBRE_100" in {p["code"] for p in nodes[0]["products"]}

    await demo.top_up()("cus_demo_alice", Money.of(Decimal("5"), "USD"), "sf-1")
    await demo.manual_transaction()(
        "cus_demo_alice", Money.of(Decimal("-1"), "USD"), "goodwill back", "700000001", "adj-1"
    )
    payments = await gql.data(
        '{ customer(id: "cus_demo_alice") { payments(first: 10) { nodes { amount { amount }'
        " reason reference } } transactions(first: 10) { nodes { reason } } } }",
        token="crm_read",
    )
    paid = payments["customer"]["payments"]["nodes"]
    assert paid[0] == {"amount": {"amount": "5"}, "reason": "top_up", "reference": "sf-1"}
    assert {p["reason"] for p in paid} <= {"top_up", "payment", "voucher"}
    assert "manual" in {t["reason"] for t in payments["customer"]["transactions"]["nodes"]}

    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    added = await gql.data(
        'mutation ($until: DateTime!) { addAddOn(accountId: "acc_demo_grace",'
        ' productCode: "SMS50", effectiveTo: $until) { addOn { productCode effectiveTo }'
        " errors { code } } }",
        {"until": until.isoformat()},
        token="crm_write",
    )
    add_on = added["addAddOn"]
    assert add_on["errors"] == []
    assert datetime.fromisoformat(add_on["addOn"]["effectiveTo"]) == until


async def test_vouchers_are_listed_without_their_codes(demo: Container, gql: GraphQLClient) -> None:
    made = await gql.data(
        'mutation { createVouchers(count: 3, value: {amount: "5", currency: "USD"},'
        ' batch: "CAMPAIGN-7") { codes errors { code } } }',
        token="administrator",
    )
    codes = made["createVouchers"]["codes"]
    assert len(codes) == 3
    await demo.redeem_voucher()("cus_demo_alice", codes[0])

    query = """query ($after: String, $status: VoucherStatus) {
      vouchers(batch: "CAMPAIGN-7", status: $status, first: 2, after: $after) {
        edges { cursor node { id status batch value { amount currency } redeemedBy } }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    first = await gql.post(query, token="helpdesk")
    assert not any(code in first.text for code in codes)
    page = first.json()["data"]["vouchers"]
    assert len(page["edges"]) == 2 and page["pageInfo"]["hasNextPage"] is True
    rest = await gql.data(query, {"after": page["pageInfo"]["endCursor"]}, token="helpdesk")
    nodes = [e["node"] for e in page["edges"]] + [e["node"] for e in rest["vouchers"]["edges"]]
    assert len({n["id"] for n in nodes}) == 3
    assert {n["batch"] for n in nodes} == {"CAMPAIGN-7"}
    assert {n["value"]["amount"] for n in nodes} == {"5"}
    redeemed = await gql.data(query, {"status": "REDEEMED"}, token="helpdesk")
    [only] = redeemed["vouchers"]["edges"]
    assert only["node"]["status"] == "redeemed"
    assert only["node"]["redeemedBy"] == "cus_demo_alice"


async def test_service_policies_and_an_accounts_effective_policy(
    demo: Container, gql: GraphQLClient
) -> None:
    await demo.define_service_policy()(
        "dpi-gold",
        ServicePolicy(
            name="gold",
            download_kbps=50_000,
            dpi_policy_name="GOLD",
            pakid="PAK-9",
            apn_ids=("internet", "ims"),
            free_rating_groups=frozenset({10, 2}),
        ),
    )
    policies = await gql.data(
        "{ servicePolicies { pageInfo { hasNextPage } nodes { code policy { name downloadKbps"
        " dpiPolicyName pakid apnIds freeRatingGroups uploadKbps } } } }",
        token="crm_read",
    )
    assert not policies["servicePolicies"]["pageInfo"]["hasNextPage"]
    assert policies["servicePolicies"]["nodes"] == [
        {
            "code": "DPI-GOLD",
            "policy": {
                "name": "gold",
                "downloadKbps": 50000,
                "dpiPolicyName": "GOLD",
                "pakid": "PAK-9",
                "apnIds": ["internet", "ims"],
                "freeRatingGroups": [2, 10],
                "uploadKbps": None,
            },
        }
    ]

    effective = await gql.data(
        '{ alice: account(id: "acc_demo_alice") { effectivePolicy { name downloadKbps'
        ' throttleDownloadKbps } } bob: account(id: "acc_demo_bob_fibre") {'
        " effectivePolicy { name ontPortType } } }",
        token="helpdesk",
    )
    # Turbo (high precedence) raises the speed; the main product keeps the rest
    assert effective["alice"]["effectivePolicy"] == {
        "name": "mobile-standard",
        "downloadKbps": 100000,
        "throttleDownloadKbps": 128,
    }
    # the ONT's profile (Gigabit Ethernet) overrides the policy's port type
    assert effective["bob"]["effectivePolicy"] == {"name": "fibre-100", "ontPortType": "GE"}
