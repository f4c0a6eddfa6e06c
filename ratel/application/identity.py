"""Who is calling, and what they may do.

Every API call is made by a ``Principal``: a staff member (roles), an account
holder (self-care: their own account and customer only), an API client
(scopes: the Salesforce and Zendesk apps, USSD gateways) or nobody. Roles and
scopes grant ``Permission``s; the GraphQL layer's permission matrix maps each
field and mutation to the permission it needs, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class CallerKind(StrEnum):
    STAFF = "staff"
    ACCOUNT_HOLDER = "account_holder"
    API_CLIENT = "api_client"
    ANONYMOUS = "anonymous"


class Permission(StrEnum):
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    ACCOUNTS_READ = "accounts:read"
    ACCOUNTS_WRITE = "accounts:write"
    CATALOGUE_READ = "catalogue:read"
    CATALOGUE_WRITE = "catalogue:write"
    MONEY_WRITE = "money:write"  # top-ups, payments, manual transactions
    VOUCHERS_READ = "vouchers:read"
    VOUCHERS_WRITE = "vouchers:write"
    USAGE_READ = "usage:read"  # xDRs, balance transactions, quotas
    EVENTS_READ = "events:read"
    STAFF_READ = "staff:read"
    STAFF_MANAGE = "staff:manage"
    API_KEYS_MANAGE = "api_keys:manage"
    CRM_LINK = "crm:link"  # link a customer to a Zendesk organization
    ADD_ONS_WRITE = "add_ons:write"
    USSD = "ussd"  # balance, vouchers and package change by MSISDN
    SELF_READ = "self:read"  # an account holder's own data
    SELF_WRITE = "self:write"  # buy an add-on, top up by voucher, lift a block, password
    NETWORK_MANAGE = "network:manage"  # NAS registry, CHAP secrets (administrators)


class Role(StrEnum):
    """Built-in staff roles; an operator may define more in ``ROLE_PERMISSIONS``."""

    ADMINISTRATOR = "administrator"
    HELPDESK = "helpdesk"


class Scope(StrEnum):
    """API key scopes."""

    CRM_READ = "crm:read"
    CRM_WRITE = "crm:write"
    USSD = "ussd"


_READ = frozenset(
    {
        Permission.CUSTOMERS_READ,
        Permission.ACCOUNTS_READ,
        Permission.CATALOGUE_READ,
        Permission.VOUCHERS_READ,
        Permission.USAGE_READ,
        Permission.EVENTS_READ,
        Permission.STAFF_READ,
    }
)

ROLE_PERMISSIONS: Mapping[str, frozenset[Permission]] = MappingProxyType(
    {
        Role.ADMINISTRATOR: frozenset(Permission) - {Permission.SELF_READ, Permission.SELF_WRITE},
        Role.HELPDESK: _READ,
    }
)

SCOPE_PERMISSIONS: Mapping[str, frozenset[Permission]] = MappingProxyType(
    {
        Scope.CRM_READ: frozenset(
            {
                Permission.CUSTOMERS_READ,
                Permission.ACCOUNTS_READ,
                Permission.CATALOGUE_READ,
                Permission.USAGE_READ,
            }
        ),
        Scope.CRM_WRITE: frozenset({Permission.ADD_ONS_WRITE, Permission.CRM_LINK}),
        Scope.USSD: frozenset({Permission.USSD}),
    }
)

ACCOUNT_HOLDER_PERMISSIONS = frozenset({Permission.SELF_READ, Permission.SELF_WRITE})


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    kind: CallerKind
    subject: str = ""  # staff login, account id or API key id
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    account_id: str | None = None  # account holders
    customer_id: str | None = None  # account holders

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(CallerKind.ANONYMOUS)

    @property
    def permissions(self) -> frozenset[Permission]:
        granted: set[Permission] = set()
        if self.kind is CallerKind.STAFF:
            for role in self.roles:
                granted |= ROLE_PERMISSIONS.get(role, frozenset())
        elif self.kind is CallerKind.API_CLIENT:
            for scope in self.scopes:
                granted |= SCOPE_PERMISSIONS.get(scope, frozenset())
        elif self.kind is CallerKind.ACCOUNT_HOLDER:
            granted |= ACCOUNT_HOLDER_PERMISSIONS
        return frozenset(granted)

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions

    def owns_account(self, account_id: str) -> bool:
        return self.kind is CallerKind.ACCOUNT_HOLDER and self.account_id == account_id

    def owns_customer(self, customer_id: str) -> bool:
        return self.kind is CallerKind.ACCOUNT_HOLDER and self.customer_id == customer_id
