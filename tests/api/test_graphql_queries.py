# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""Admin and CRM queries over HTTP: customers with filters and search,
accounts, catalogue, usage and events, with Relay-style pagination."""

from __future__ import annotations

from tests.api.graphql_support import GraphQLClient, demo, demo_template, gql  # noqa: F401

CUSTOMERS = """
query ($filter: CustomerFilter, $first: Int, $after: String) {
  customers(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id name status country balance { amount currency }
      accounts { nodes { id productCode status msisdn product { code name } } }
      products { code } } }
    pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
  }
}
"""


async def test_customers_page_through_with_cursors(gql: GraphQLClient) -> None:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = await gql.data(CUSTOMERS, {"first": 3, "after": after}, token="administrator")
        connection = data["customers"]
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        pages += 1
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 7


async def test_customer_with_accounts_and_products(gql: GraphQLClient) -> None:
    data = await gql.data(CUSTOMERS, {"filter": {"name": "alice"}}, token="administrator")
    [edge] = data["customers"]["edges"]
    alice = edge["node"]
    assert alice["balance"] == {"amount": "43.25", "currency": "USD"}
    [account] = alice["accounts"]["nodes"]
    assert account["msisdn"] == "12055550100"
    assert account["product"] == {"code": "MOBILE_PREPAID", "name": "Mobile Prepaid"}
    assert {p["code"] for p in alice["products"]} == {"MOBILE_PREPAID", "TURBO", "REGULAR"}


async def test_customer_filters(gql: GraphQLClient) -> None:
    async def ids(filter: dict[str, object]) -> list[str]:
        data = await gql.data(CUSTOMERS, {"filter": filter}, token="crm_read")
        return [e["node"]["id"] for e in data["customers"]["edges"]]

    assert await ids({"status": "SUSPENDED"}) == ["cus_demo_eve"]
    assert await ids({"productCode": "FIBRE_100"}) == ["cus_demo_bob"]
    assert await ids({"country": "fr"}) == []
    assert len(await ids({"country": "US", "productCode": "MOBILE_PREPAID"})) == 4
    assert await ids({"msisdn": "12055550106"}) == ["cus_demo_frank"]
    assert await ids({"accountId": "acc_demo_bob_iptv"}) == ["cus_demo_bob"]
    assert await ids({"imsi": "310150123456704"}) == ["cus_demo_dave"]
    assert await ids({"msisdn": "12055550106", "status": "OPEN"}) == ["cus_demo_frank"]
    assert await ids({"msisdn": "12055550106", "name": "alice"}) == []
    assert await ids({"msisdn": "19999999999"}) == []


async def test_account_by_id_and_identifier(gql: GraphQLClient) -> None:
    query = """
    query {
      account(id: "acc_demo_carol") { id aliases customer { name } quotas { quotaCode remaining } }
      byAlias: accountByIdentifier(kind: ALIAS, value: "MODEM-00A1B2C3") { id }
      missing: account(id: "acc_nope") { id }
    }
    """
    data = await gql.data(query, token="helpdesk")
    assert data["account"]["aliases"] == ["MODEM-00A1B2C3"]
    assert data["account"]["customer"] == {"name": "Carol Satellite"}
    assert data["account"]["quotas"][0]["quotaCode"] == "SAT_DATA_20GB"
    assert data["byAlias"] == {"id": "acc_demo_carol"}
    assert data["missing"] is None


async def test_catalogue(gql: GraphQLClient) -> None:
    query = """
    query {
      products { nodes { code isAddOn price { amount } } }
      addOns: products(addOnsOnly: true) { nodes { code } }
      tariffs(first: 2) { edges { node { code } } pageInfo { hasNextPage endCursor } }
      voice: tariff(code: "VOICE") {
        currency entriesCount
        rates(first: 2) { edges { node { destination isPrefix destinationGroup
          priceFirst { amount } connectionFee { amount } } } pageInfo { hasNextPage } }
      }
      destinationGroups { nodes { code ledgerCode } }
    }
    """
    data = await gql.data(query, token="crm_read")
    assert len(data["products"]["nodes"]) == 8
    assert [p["code"] for p in data["addOns"]["nodes"]] == ["REGULAR", "SMS50", "TURBO"]
    assert data["tariffs"]["pageInfo"]["hasNextPage"] is True
    voice = data["voice"]
    assert voice["currency"] == "USD"
    assert voice["entriesCount"] == 5
    first = voice["rates"]["edges"][0]["node"]
    assert first["destination"] == "1" and first["isPrefix"] is True
    assert first["connectionFee"]["amount"] == "0.05"
    assert {"code": "LOCAL", "ledgerCode": "400000001"} in data["destinationGroups"]["nodes"]

    after = data["tariffs"]["pageInfo"]["endCursor"]
    rest = await gql.data(
        "query ($a: String) { tariffs(after: $a) { edges { node { code } } } }",
        {"a": after},
        token="crm_read",
    )
    codes = [e["node"]["code"] for e in data["tariffs"]["edges"]]
    codes += [e["node"]["code"] for e in rest["tariffs"]["edges"]]
    assert codes == ["DATA", "DATA_FLAT", "SMS", "USSD", "VOICE"]


async def test_usage_transactions_and_events(gql: GraphQLClient) -> None:
    query = """
    query {
      quotas(accountId: "acc_demo_alice") {
        nodes { productCode service used remaining expiresAt }
      }
      xdrs(accountId: "acc_demo_alice") { edges { node { id } } pageInfo { hasNextPage } }
      transactions(customerId: "cus_demo_alice", first: 1) {
        edges { cursor node { reason amount { amount } balanceAfter { amount } } }
        pageInfo { hasNextPage endCursor }
      }
      events(aggregateId: "acc_demo_frank") { edges { node { eventType aggregateId } } }
      customer(id: "cus_demo_alice") { xdrs { nodes { id } } transactions { nodes { id } } }
    }
    """
    data = await gql.data(query, token="administrator")
    data_quotas = [q["productCode"] for q in data["quotas"]["nodes"] if q["service"] == "data"]
    assert data_quotas == ["TURBO", "REGULAR", "MOBILE_PREPAID"]
    assert data["xdrs"]["edges"] == []
    [top_up] = data["transactions"]["edges"]
    assert top_up["node"]["reason"] == "top_up"
    assert top_up["node"]["balanceAfter"]["amount"] == "43.25"
    types = {e["node"]["eventType"] for e in data["events"]["edges"]}
    assert "AccountBlocked" in types
    assert {e["node"]["aggregateId"] for e in data["events"]["edges"]} == {"acc_demo_frank"}
    assert data["customer"]["xdrs"]["nodes"] == []
