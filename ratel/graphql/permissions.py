"""THE permission matrix: who may call which query and mutation.

``MATRIX`` maps every root field (``Query.customers``, ``Mutation.topUp``,
...) to the ``Permission`` it needs and, for fields an account holder may
also use on their own data, the argument that names that data. The schema
refuses to build when a root field is missing here, and ``Guard`` refuses a
field at run time when the matrix does not grant it, so nothing is reachable
by default.

Self-care fields (``me``, ``buyAddOn``, ...) take no account argument at all:
they act on the account of the caller's token, so an account holder cannot
even name somebody else's data.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import FieldExtension

from ratel.application.identity import CallerKind, Permission, Principal


class Owns(StrEnum):
    """What an ownership argument names."""

    ACCOUNT = "account"
    CUSTOMER = "customer"


@dataclass(frozen=True, slots=True)
class Rule:
    """``permission`` grants the field (``public``: every caller may use it);
    an account holder with ``self_permission`` may also use it when the
    ``owner_arg`` argument names their own account or customer (``owner_arg``
    None: the field is about the caller only)."""

    permission: Permission | None
    self_permission: Permission | None = None
    owner_arg: str | None = None
    owns: Owns = Owns.ACCOUNT
    public: bool = False  # anyone, even anonymous (logging in)

    def allows(self, principal: Principal, arguments: Mapping[str, Any]) -> bool:
        if self.public:
            return True
        if self.permission is not None and principal.may(self.permission):
            return True
        if self.self_permission is None or not principal.may(self.self_permission):
            return False
        if self.owner_arg is None:
            return True
        value = arguments.get(self.owner_arg)
        if not isinstance(value, str):
            return False
        if self.owns is Owns.ACCOUNT:
            return principal.owns_account(value)
        return principal.owns_customer(value)


P = Permission

#: Fields every caller may use: logging in (the throttle guards them).
PUBLIC = Rule(None, public=True)


def _own_account(permission: Permission, arg: str, self_permission: Permission) -> Rule:
    return Rule(permission, self_permission, arg, Owns.ACCOUNT)


def _own_customer(permission: Permission, arg: str, self_permission: Permission) -> Rule:
    return Rule(permission, self_permission, arg, Owns.CUSTOMER)


MATRIX: Mapping[str, Rule] = MappingProxyType(
    {
        # -- admin and CRM reads
        "Query.customers": Rule(P.CUSTOMERS_READ),
        "Query.customer": _own_customer(P.CUSTOMERS_READ, "id", P.SELF_READ),
        "Query.account": _own_account(P.ACCOUNTS_READ, "id", P.SELF_READ),
        "Query.accountByIdentifier": Rule(P.ACCOUNTS_READ),
        "Query.products": Rule(P.CATALOGUE_READ),
        "Query.tariffs": Rule(P.CATALOGUE_READ),
        "Query.tariff": Rule(P.CATALOGUE_READ),
        "Query.destinationGroups": Rule(P.CATALOGUE_READ),
        "Query.quotas": _own_account(P.USAGE_READ, "accountId", P.SELF_READ),
        "Query.xdrs": _own_account(P.USAGE_READ, "accountId", P.SELF_READ),
        "Query.transactions": _own_customer(P.USAGE_READ, "customerId", P.SELF_READ),
        "Query.events": Rule(P.EVENTS_READ),
        # -- USSD gateways
        "Query.ussdBalance": Rule(P.USSD),
        "Mutation.ussdRedeemVoucher": Rule(P.USSD),
        "Mutation.ussdChangePackage": Rule(P.USSD),
        # -- self-care: the caller's own account only
        "Query.me": Rule(P.SELF_READ),
        "Mutation.buyAddOn": Rule(P.SELF_WRITE),
        "Mutation.redeemVoucher": Rule(P.SELF_WRITE),
        "Mutation.liftLocationBlock": Rule(P.SELF_WRITE),
        # -- customer lifecycle
        "Mutation.openCustomer": Rule(P.CUSTOMERS_WRITE),
        "Mutation.updateCustomer": Rule(P.CUSTOMERS_WRITE),
        "Mutation.suspendCustomer": Rule(P.CUSTOMERS_WRITE),
        "Mutation.resumeCustomer": Rule(P.CUSTOMERS_WRITE),
        "Mutation.closeCustomer": Rule(P.CUSTOMERS_WRITE),
        # -- account lifecycle
        "Mutation.createAccount": Rule(P.ACCOUNTS_WRITE),
        "Mutation.blockAccount": Rule(P.ACCOUNTS_WRITE),
        "Mutation.unblockAccount": Rule(P.ACCOUNTS_WRITE),
        "Mutation.terminateAccount": Rule(P.ACCOUNTS_WRITE),
        "Mutation.changeProduct": Rule(P.ACCOUNTS_WRITE),
        # -- add-ons (the Salesforce app adds them with crm:write)
        "Mutation.addAddOn": Rule(P.ADD_ONS_WRITE),
        "Mutation.removeAddOn": Rule(P.ADD_ONS_WRITE),
        # -- money
        "Mutation.topUp": Rule(P.MONEY_WRITE),
        "Mutation.recordPayment": Rule(P.MONEY_WRITE),
        "Mutation.manualTransaction": Rule(P.MONEY_WRITE),
        "Mutation.redeemVoucherForCustomer": Rule(P.MONEY_WRITE),
        "Mutation.createVouchers": Rule(P.VOUCHERS_WRITE),
        # -- identity: logins, passwords, staff and API keys
        "Mutation.staffLogin": PUBLIC,
        "Mutation.selfCareLogin": PUBLIC,
        "Mutation.logout": PUBLIC,  # revokes the token presented, if any
        "Mutation.changeOwnPassword": Rule(P.SELF_WRITE),
        "Mutation.setAccountPassword": Rule(P.ACCOUNTS_WRITE),
        "Query.staff": Rule(P.STAFF_READ),
        "Mutation.blockStaffUser": Rule(P.STAFF_MANAGE),
        "Mutation.unblockStaffUser": Rule(P.STAFF_MANAGE),
        "Mutation.revokeStaffTokens": Rule(P.STAFF_MANAGE),
        "Query.apiKeys": Rule(P.API_KEYS_MANAGE),
        "Mutation.createApiKey": Rule(P.API_KEYS_MANAGE),
        "Mutation.revokeApiKey": Rule(P.API_KEYS_MANAGE),
        # -- CRM apps and the back office
        "Query.vouchers": Rule(P.VOUCHERS_READ),
        "Query.servicePolicies": Rule(P.CATALOGUE_READ),
        "Query.customerByZendeskOrganization": Rule(P.CUSTOMERS_READ),
        "Mutation.linkZendeskOrganization": Rule(P.CRM_LINK),
        "Mutation.unlinkZendeskOrganization": Rule(P.CRM_LINK),
        # -- subscriptions (graphql-transport-ws): staff, CRM and the holder
        "Subscription.accountBalance": _own_account(P.USAGE_READ, "accountId", P.SELF_READ),
        "Subscription.accountQuotas": _own_account(P.USAGE_READ, "accountId", P.SELF_READ),
        # -- the directory sync (ratel.graphql.directory)
        "Query.directorySyncRuns": Rule(P.STAFF_MANAGE),
        "Mutation.syncDirectory": Rule(P.STAFF_MANAGE),
        # -- network: the RADIUS NAS registry and CHAP secrets (administrators)
        "Query.nasList": Rule(P.NETWORK_MANAGE),
        "Query.radiusSessions": Rule(P.NETWORK_MANAGE),
        "Mutation.registerNas": Rule(P.NETWORK_MANAGE),
        "Mutation.changeNas": Rule(P.NETWORK_MANAGE),
        "Mutation.removeNas": Rule(P.NETWORK_MANAGE),
        "Mutation.setChapSecret": Rule(P.NETWORK_MANAGE),
    }
)


class Forbidden(GraphQLError):
    """The caller may not use the field (``extensions.code``: UNAUTHENTICATED
    for an anonymous caller, FORBIDDEN otherwise)."""

    def __init__(self, principal: Principal, key: str) -> None:
        anonymous = principal.kind is CallerKind.ANONYMOUS
        super().__init__(
            "authentication required" if anonymous else f"not allowed: {key}",
            extensions={"code": "UNAUTHENTICATED" if anonymous else "FORBIDDEN"},
        )


def rule_for(key: str) -> Rule | None:
    """The matrix entry of ``Type.field``, or None."""
    return MATRIX.get(key)


def allowed(principal: Principal, key: str, arguments: Mapping[str, Any]) -> bool:
    """Whether the matrix lets ``principal`` call ``key`` with ``arguments``
    (a field missing from the matrix is refused)."""
    rule = MATRIX.get(key)
    return rule is not None and rule.allows(principal, arguments)


class Guard(FieldExtension):
    """Put on every root field: checks the matrix before the resolver runs."""

    def _check(self, info: Any, kwargs: Mapping[str, Any]) -> None:
        key = f"{info.path.typename}.{info.field_name}"
        principal: Principal = info.context.principal
        # the matrix speaks GraphQL argument names (camelCase), as callers do
        arguments = {_camel(name): value for name, value in kwargs.items()}
        if not allowed(principal, key, arguments):
            raise Forbidden(principal, key)

    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        self._check(info, kwargs)
        return next_(source, info, **kwargs)

    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        self._check(info, kwargs)
        result = next_(source, info, **kwargs)
        # a subscription's resolver gives an async generator, not a coroutine
        return await result if inspect.isawaitable(result) else result


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def may_read(info: Any, key: str, object_id: str) -> bool:
    """Whether the caller may read the object ``object_id`` through ``key``
    (``Query.customer``, ``Query.account``): a mutation's payload shows it
    only then, since a write permission (a crm:write key linking a customer,
    removing an add-on) is no read permission."""
    return allowed(info.context.principal, key, {"id": object_id})
