# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""The permission matrix, exhaustively: every query and mutation is called by
every kind of caller over HTTP, and the answer is checked to be allowed or
refused as the matrix and the roles and scopes say."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ratel.application.identity import Permission
from ratel.graphql import permissions
from ratel.graphql.permissions import MATRIX, Guard, Owns
from ratel.graphql.schema import build_schema, check_guarded, root_fields
from tests.api.graphql_support import (  # noqa: F401
    PRINCIPALS,
    GraphQLClient,
    demo,
    demo_template,
    gql,
)

MONEY = '{amount: "1.00", currency: "USD"}'

#: One call of every root field. Account holder "alice" owns acc_demo_alice
#: and cus_demo_alice; ``{own}``/``{own_customer}`` are replaced by hers or
#: by Bob's to ask for somebody else's data.
CALLS: Mapping[str, str] = {
    "Query.customers": "query { customers(first: 1) { edges { node { id } } } }",
    "Query.customer": 'query { customer(id: "{own_customer}") { id } }',
    "Query.account": 'query { account(id: "{own}") { id } }',
    "Query.accountByIdentifier": (
        'query { accountByIdentifier(kind: MSISDN, value: "12055550100") { id } }'
    ),
    "Query.products": "query { products { nodes { code } } }",
    "Query.tariffs": "query { tariffs { edges { node { code } } } }",
    "Query.tariff": 'query { tariff(code: "VOICE") { code } }',
    "Query.destinationGroups": "query { destinationGroups { nodes { code } } }",
    "Query.quotas": 'query { quotas(accountId: "{own}") { nodes { quotaCode } } }',
    "Query.xdrs": 'query { xdrs(accountId: "{own}") { edges { cursor } } }',
    "Query.transactions": (
        'query { transactions(customerId: "{own_customer}") { edges { cursor } } }'
    ),
    "Query.events": "query { events(first: 1) { edges { cursor } } }",
    "Query.ussdBalance": 'query { ussdBalance(msisdn: "12055550100") { text } }',
    "Query.me": "query { me { balance { text } } }",
    "Mutation.openCustomer": (
        'mutation { openCustomer(input: {name: "Zed", currency: "USD"}) { errors { code } } }'
    ),
    "Mutation.updateCustomer": (
        'mutation { updateCustomer(id: "cus_demo_dave", input: {customerClass: "fleet"})'
        " { errors { code } } }"
    ),
    "Mutation.suspendCustomer": (
        'mutation { suspendCustomer(id: "cus_demo_dave") { errors { code } } }'
    ),
    "Mutation.resumeCustomer": (
        'mutation { resumeCustomer(id: "cus_demo_eve") { errors { code } } }'
    ),
    "Mutation.closeCustomer": (
        'mutation { closeCustomer(id: "cus_demo_carol") { errors { code } } }'
    ),
    "Mutation.createAccount": (
        'mutation { createAccount(input: {customerId: "cus_demo_dave", productCode: "IOT_M2M"})'
        " { errors { code } } }"
    ),
    "Mutation.blockAccount": (
        'mutation { blockAccount(id: "acc_demo_dave_sim1") { errors { code } } }'
    ),
    "Mutation.unblockAccount": (
        'mutation { unblockAccount(id: "acc_demo_frank") { errors { code } } }'
    ),
    "Mutation.terminateAccount": (
        'mutation { terminateAccount(id: "acc_demo_carol") { errors { code } } }'
    ),
    "Mutation.changeProduct": (
        'mutation { changeProduct(id: "acc_demo_dave_sim1", productCode: "MOBILE_PREPAID")'
        " { errors { code } } }"
    ),
    "Mutation.addAddOn": (
        'mutation { addAddOn(accountId: "acc_demo_grace", productCode: "SMS50")'
        " { errors { code } } }"
    ),
    "Mutation.removeAddOn": (
        'mutation { removeAddOn(accountId: "acc_demo_grace", addOnId: "aoa_x")'
        " { errors { code } } }"
    ),
    "Mutation.topUp": (
        f'mutation {{ topUp(customerId: "cus_demo_dave", amount: {MONEY})'
        " { errors { code } } }"
    ),
    "Mutation.recordPayment": (
        f'mutation {{ recordPayment(customerId: "cus_demo_bob", amount: {MONEY})'
        " { errors { code } } }"
    ),
    "Mutation.manualTransaction": (
        f'mutation {{ manualTransaction(customerId: "cus_demo_bob", amount: {MONEY},'
        ' reason: "goodwill", ledgerCode: "700000001") { errors { code } } }'
    ),
    "Mutation.redeemVoucherForCustomer": (
        'mutation { redeemVoucherForCustomer(customerId: "cus_demo_bob", code: "123")'
        " { errors { code } } }"
    ),
    "Mutation.createVouchers": (
        f"mutation {{ createVouchers(count: 1, value: {MONEY}) {{ errors {{ code }} }} }}"
    ),
    "Mutation.buyAddOn": 'mutation { buyAddOn(productCode: "SMS50") { errors { code } } }',
    "Mutation.redeemVoucher": 'mutation { redeemVoucher(code: "123") { errors { code } } }',
    "Mutation.liftLocationBlock": "mutation { liftLocationBlock { errors { code } } }",
    "Mutation.ussdRedeemVoucher": (
        'mutation { ussdRedeemVoucher(msisdn: "12055550100", code: "123") { text } }'
    ),
    "Mutation.ussdChangePackage": (
        'mutation { ussdChangePackage(msisdn: "12055550107", code: "MOBILE_PREPAID") { text } }'
    ),
    "Mutation.staffLogin": (
        'mutation { staffLogin(login: "admin", password: "not-the-password") { errors { code } } }'
    ),
    "Mutation.selfCareLogin": (
        'mutation { selfCareLogin(accountId: "acc_demo_alice", password: "not-the-password")'
        " { errors { code } } }"
    ),
    "Mutation.logout": "mutation { logout { loggedOut } }",
    "Mutation.changeOwnPassword": (
        'mutation { changeOwnPassword(currentPassword: "wrong", newPassword: "long-enough-1")'
        " { errors { code } } }"
    ),
    "Mutation.setAccountPassword": (
        'mutation { setAccountPassword(accountId: "acc_demo_bob_fibre", password: "bob-new-pass")'
        " { errors { code } } }"
    ),
    "Query.staff": "query { staff { edges { node { login } } } }",
    "Mutation.blockStaffUser": 'mutation { blockStaffUser(login: "helpdesk") { errors { code } } }',
    "Mutation.unblockStaffUser": (
        'mutation { unblockStaffUser(login: "helpdesk") { errors { code } } }'
    ),
    "Mutation.revokeStaffTokens": ('mutation { revokeStaffTokens(login: "helpdesk") { revoked } }'),
    "Query.apiKeys": "query { apiKeys { edges { node { prefix } } } }",
    "Mutation.createApiKey": (
        'mutation { createApiKey(name: "gw", scopes: ["ussd"]) { errors { code } } }'
    ),
    "Mutation.revokeApiKey": 'mutation { revokeApiKey(id: "key_x") { errors { code } } }',
    "Query.vouchers": "query { vouchers { edges { node { id status } } } }",
    "Query.servicePolicies": "query { servicePolicies { nodes { code } } }",
    "Query.customerByZendeskOrganization": (
        'query { customerByZendeskOrganization(organizationId: "360001") { id } }'
    ),
    "Mutation.linkZendeskOrganization": (
        'mutation { linkZendeskOrganization(customerId: "cus_demo_bob", organizationId: "360001")'
        " { errors { code } } }"
    ),
    "Mutation.unlinkZendeskOrganization": (
        'mutation { unlinkZendeskOrganization(customerId: "cus_demo_bob") { errors { code } } }'
    ),
    "Query.directorySyncRuns": "query { directorySyncRuns(first: 1) { nodes { id } } }",
    "Mutation.syncDirectory": "mutation { syncDirectory { errors { code } } }",
    "Query.nasList": "{ nasList { edges { cursor node { id name address vendor } } } }",
    "Query.radiusSessions": (
        'query { radiusSessions(accountId: "acc_demo_alice")'
        " { edges { node { acctSessionId lastDae } } } }"
    ),
    "Mutation.registerNas": (
        'mutation { registerNas(input: {name: "bras-9", address: "192.0.2.9", secret: "s3cret",'
        " vendor: HUAWEI}) { errors { code } } }"
    ),
    "Mutation.changeNas": (
        'mutation { changeNas(id: "nas_none", input: {name: "b"}) { errors { code } } }'
    ),
    "Mutation.removeNas": 'mutation { removeNas(id: "nas_none") { errors { code } } }',
    "Mutation.setChapSecret": (
        'mutation { setChapSecret(accountId: "acc_demo_alice", secret: "chap-1")'
        " { errors { code } } }"
    ),
}

#: Subscriptions go over a websocket: tests/api/test_graphql_subscriptions.py
#: calls them as every caller; their grants are below with the others.
SUBSCRIPTIONS = {"Subscription.accountBalance", "Subscription.accountQuotas"}

#: Everyone may try to log in (the throttle guards it) or log out.
PUBLIC = {"Mutation.staffLogin", "Mutation.selfCareLogin", "Mutation.logout"}

#: Fields an account holder may call about their own data (with its id).
OWNED = {"Query.customer", "Query.account", "Query.quotas", "Query.xdrs", "Query.transactions"}

CALLERS = ["anonymous", "administrator", "helpdesk", "alice", "crm_read", "crm_write", "ussd"]

#: Who may do what, written out by hand: the matrix must agree with it.
GRANTED: Mapping[str, set[str]] = {
    "administrator": (set(CALLS) | SUBSCRIPTIONS) - {
        "Query.me",
        "Mutation.buyAddOn",
        "Mutation.redeemVoucher",
        "Mutation.liftLocationBlock",
        "Mutation.changeOwnPassword",
    },
    "helpdesk": PUBLIC | {
        "Query.customers", "Query.customer", "Query.account", "Query.accountByIdentifier",
        "Query.products", "Query.tariffs", "Query.tariff", "Query.destinationGroups",
        "Query.quotas", "Query.xdrs", "Query.transactions", "Query.events", "Query.staff",
        "Query.vouchers", "Query.servicePolicies", "Query.customerByZendeskOrganization",
        *SUBSCRIPTIONS,
    },
    "alice": PUBLIC | OWNED | SUBSCRIPTIONS | {
        "Query.me", "Mutation.buyAddOn", "Mutation.redeemVoucher", "Mutation.liftLocationBlock",
        "Mutation.changeOwnPassword",
    },
    "crm_read": PUBLIC | {
        "Query.customers", "Query.customer", "Query.account", "Query.accountByIdentifier",
        "Query.products", "Query.tariffs", "Query.tariff", "Query.destinationGroups",
        "Query.quotas", "Query.xdrs", "Query.transactions", *SUBSCRIPTIONS,
        "Query.servicePolicies", "Query.customerByZendeskOrganization",
    },
    "crm_write": PUBLIC | {
        "Mutation.addAddOn", "Mutation.removeAddOn",
        "Mutation.linkZendeskOrganization", "Mutation.unlinkZendeskOrganization",
    },
    "ussd": PUBLIC | {
        "Query.ussdBalance", "Mutation.ussdRedeemVoucher", "Mutation.ussdChangePackage",
    },
    "anonymous": set(PUBLIC),
}  # fmt: skip


def test_every_root_field_is_in_the_matrix_and_guarded() -> None:
    schema = build_schema()
    assert set(root_fields(schema)) == set(MATRIX) == set(CALLS) | SUBSCRIPTIONS
    for field in root_fields(schema).values():
        assert any(isinstance(e, Guard) for e in field.extensions)


def test_a_field_missing_from_the_matrix_stops_the_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = build_schema()
    trimmed = {k: v for k, v in MATRIX.items() if k != "Query.events"}
    monkeypatch.setattr("ratel.graphql.schema.MATRIX", trimmed)
    with pytest.raises(RuntimeError, match=r"Query\.events is not in the permission matrix"):
        check_guarded(schema)


def _call(key: str, caller: str, *, other: bool = False) -> str:
    own, own_customer = (
        ("acc_demo_bob_fibre", "cus_demo_bob") if other else ("acc_demo_alice", "cus_demo_alice")
    )
    return CALLS[key].replace("{own_customer}", own_customer).replace("{own}", own)


def _refused(body: dict[str, object]) -> bool:
    errors = body.get("errors") or []
    assert isinstance(errors, list)
    codes = {e.get("extensions", {}).get("code") for e in errors}
    return bool(codes & {"FORBIDDEN", "UNAUTHENTICATED"})


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("key", sorted(CALLS))
async def test_matrix(gql: GraphQLClient, key: str, caller: str) -> None:
    token = None if caller == "anonymous" else caller
    body = await gql.run(_call(key, caller), token=token)
    expected = key in GRANTED[caller]
    assert _refused(body) is not expected, body
    if expected:
        # allowed means answered: no GraphQL error at all (business refusals
        # are user errors inside the payload)
        assert "errors" not in body, body
    else:
        [error] = body["errors"]
        code = "UNAUTHENTICATED" if caller == "anonymous" else "FORBIDDEN"
        assert error["extensions"]["code"] == code


@pytest.mark.parametrize("key", sorted(OWNED))
async def test_an_account_holder_cannot_ask_for_another_account(
    gql: GraphQLClient, key: str
) -> None:
    body = await gql.run(_call(key, "alice", other=True), token="alice")
    assert _refused(body)
    assert not any((body["data"] or {}).values())


def test_the_hand_written_grants_follow_the_roles_and_scopes() -> None:
    for caller, granted in GRANTED.items():
        principal = PRINCIPALS.get(caller)
        if principal is None:
            continue
        for key, rule in MATRIX.items():
            owner = principal.customer_id if rule.owns is Owns.CUSTOMER else principal.account_id
            arguments = {rule.owner_arg: owner} if rule.owner_arg else {}
            assert permissions.allowed(principal, key, arguments) is (key in granted), (caller, key)
    assert Permission.SELF_READ not in PRINCIPALS["administrator"].permissions
