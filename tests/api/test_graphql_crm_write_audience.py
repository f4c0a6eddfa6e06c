# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""The crm:write scope grants only add_ons:write and crm:link, yet
mutation payloads handed back whole ``Customer`` / ``Account`` objects whose
nested fields (accounts, identifiers, xDRs, transactions, contact details)
were never checked against the caller's permissions."""

from __future__ import annotations

from tests.api.graphql_support import GraphQLClient, demo, demo_template, gql  # noqa: F401

UNLINK = """
mutation {
  unlinkZendeskOrganization(customerId: "cus_demo_alice") {
    customer {
      name email phone balance { amount }
      accounts { nodes { id msisdn imsi xdrs(first: 5) { edges { cursor } } } }
      transactions(first: 5) { edges { node { reason amount { amount } } } }
    }
    errors { code }
  }
}"""


async def test_a_crm_write_key_cannot_read_customer_data_through_a_mutation_payload(
    gql: GraphQLClient,
) -> None:
    """A key with only crm:write (no customers:read, accounts:read,
    usage:read) must not read a customer's name, contact, balance, accounts,
    IMSI or transactions. Now: ``unlinkZendeskOrganization`` on any customer
    id (no link needed: the unlink is a no-op) answers all of it."""
    body = await gql.run(UNLINK, token="crm_write")
    customer = ((body.get("data") or {}).get("unlinkZendeskOrganization") or {}).get("customer")
    leaked = customer is not None and (
        customer.get("name") is not None
        or customer.get("accounts") is not None
        or customer.get("transactions") is not None
    )
    assert not leaked, f"crm:write read a customer it may not read: {customer}"
