# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""tests: one Zendesk organization is one customer's."""

from __future__ import annotations

import pytest

from tests.api.graphql_support import (  # noqa: F401
    GraphQLClient,
    demo,
    demo_container,
    demo_template,
    gql,
)

LINK = """mutation ($customer: String!, $org: String!) {
  linkZendeskOrganization(customerId: $customer, organizationId: $org) {
    zendeskOrganizationId errors { code }
  }
}"""


@pytest.mark.parametrize("same_org", ["0360001", "\uff13\uff16\uff10\uff10\uff10\uff11", "+360001"])
async def test_one_zendesk_organization_is_not_linked_to_two_customers(
    gql: GraphQLClient, same_org: str
) -> None:
    # Zendesk organization ids are integers: "0360001", full-width digits
    # and "+360001" all name organization 360001.
    alice = await gql.data(LINK, {"customer": "cus_demo_alice", "org": "360001"}, token="crm_write")
    assert alice["linkZendeskOrganization"]["errors"] == []
    bob = await gql.data(LINK, {"customer": "cus_demo_bob", "org": same_org}, token="crm_write")
    assert bob["linkZendeskOrganization"]["errors"] != [], (
        f"organization 360001 is now linked to alice and (as {same_org!r}) to bob"
    )
