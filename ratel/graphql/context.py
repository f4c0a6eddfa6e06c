"""What one GraphQL request knows: who is calling, the use cases it may call,
and the DataLoaders that batch its reads.

The view builds a ``RequestContext`` per HTTP request (or WebSocket
connection): the ``Authorization: Bearer ...`` header goes through the
injected ``Authenticate`` callable, and fresh DataLoaders are made so that
nothing cached leaks from one caller to the next.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from graphql import GraphQLError
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader
from strawberry.extensions import SchemaExtension

from ratel.application.accounts import (
    BlockAccount,
    ChangeProduct,
    CreateAccount,
    LiftLocationBlock,
    TerminateAccount,
    UnblockAccount,
)
from ratel.application.add_ons import AddAddOn, RemoveAddOn
from ratel.application.auth import (
    BlockStaffUser,
    ChangeOwnPassword,
    CreateApiKey,
    ListApiKeys,
    ListStaff,
    Logout,
    RevokeApiKey,
    RevokeStaffTokens,
    SelfCareLogin,
    SetAccountPassword,
    StaffLogin,
    UnblockStaffUser,
)
from ratel.application.crm import (
    CrmRecordsOfCustomers,
    CustomerByCrmRecord,
    LinkCrmRecord,
    UnlinkCrmRecord,
)
from ratel.application.customers import (
    CloseCustomer,
    OpenCustomer,
    ResumeCustomer,
    SuspendCustomer,
    UpdateCustomer,
)
from ratel.application.directory_sync import DirectorySyncRuns, SyncDirectory
from ratel.application.enquiry import BalanceEnquiry, QuotaEnquiry
from ratel.application.identity import Principal
from ratel.application.payments import ManualTransaction, RecordPayment, TopUp
from ratel.application.queries import (
    AccountsOfCustomers,
    AccountXdrs,
    CustomersById,
    CustomerTransactions,
    CustomerXdrs,
    FindAccount,
    FindCustomers,
    GetTariff,
    ListDestinationGroups,
    ListProducts,
    ListServicePolicies,
    ListTariffs,
    ListVouchers,
    RecentEvents,
)
from ratel.application.radius import ManageNas, RadiusSessions, SetChapSecret
from ratel.application.throttle import LoginThrottle
from ratel.application.vouchers import CreateVouchers, RedeemVoucher
from ratel.domain.account import Account
from ratel.domain.catalogue import Product
from ratel.domain.crm import CrmSystem
from ratel.domain.customer import Customer
from ratel.domain.errors import DomainError

if TYPE_CHECKING:
    from ratel.graphql.live import AccountFeed

#: Turns a bearer token into the caller; the identity use case once it lands.
Authenticate = Callable[[str], Awaitable[Principal]]


async def anonymous(token: str) -> Principal:
    """Until tokens can be checked, every caller is anonymous (fail closed)."""
    return Principal.anonymous()


@dataclass(frozen=True, slots=True)
class CustomerLinks:
    """Links the API hands out: the customer's page in the operator's back
    office (``RATEL_CUSTOMER_PAGE_URL``, with ``{customer_id}``)."""

    page_template: str | None = None

    def customer_page(self, customer_id: str) -> str | None:
        if self.page_template is None:
            return None
        return self.page_template.format(customer_id=quote(customer_id, safe=""))


@dataclass(frozen=True, slots=True)
class UseCases:
    """The application use cases the schema calls, injected by the container."""

    # reads
    find_customers: FindCustomers
    customers_by_id: CustomersById
    accounts_of_customers: AccountsOfCustomers
    find_account: FindAccount
    list_products: ListProducts
    list_tariffs: ListTariffs
    get_tariff: GetTariff
    list_destination_groups: ListDestinationGroups
    account_xdrs: AccountXdrs
    customer_xdrs: CustomerXdrs
    customer_transactions: CustomerTransactions
    recent_events: RecentEvents
    balance_enquiry: BalanceEnquiry
    quota_enquiry: QuotaEnquiry
    # lifecycle
    open_customer: OpenCustomer
    update_customer: UpdateCustomer
    suspend_customer: SuspendCustomer
    resume_customer: ResumeCustomer
    close_customer: CloseCustomer
    create_account: CreateAccount
    block_account: BlockAccount
    unblock_account: UnblockAccount
    terminate_account: TerminateAccount
    change_product: ChangeProduct
    lift_location_block: LiftLocationBlock
    add_add_on: AddAddOn
    remove_add_on: RemoveAddOn
    # money
    top_up: TopUp
    record_payment: RecordPayment
    manual_transaction: ManualTransaction
    create_vouchers: CreateVouchers
    redeem_voucher: RedeemVoucher
    # identity
    staff_login: StaffLogin
    self_care_login: SelfCareLogin
    login_throttle: LoginThrottle
    logout: Logout
    change_own_password: ChangeOwnPassword
    set_account_password: SetAccountPassword
    list_staff: ListStaff
    block_staff_user: BlockStaffUser
    unblock_staff_user: UnblockStaffUser
    revoke_staff_tokens: RevokeStaffTokens
    list_api_keys: ListApiKeys
    create_api_key: CreateApiKey
    revoke_api_key: RevokeApiKey
    # subscriptions: wakes them when an event concerns their account
    account_feed: AccountFeed
    # the CRM apps (Zendesk, Salesforce) and the back office
    list_vouchers: ListVouchers
    list_service_policies: ListServicePolicies
    link_crm_record: LinkCrmRecord
    unlink_crm_record: UnlinkCrmRecord
    crm_records_of_customers: CrmRecordsOfCustomers
    customer_by_crm_record: CustomerByCrmRecord
    links: CustomerLinks
    # staff and the directory sync (ratel.graphql.directory)

    directory_sync_runs: DirectorySyncRuns | None = None
    sync_directory: SyncDirectory | None = None
    # network (None in a process without RADIUS)
    manage_nas: ManageNas | None = None
    set_chap_secret: SetChapSecret | None = None
    radius_sessions: RadiusSessions | None = None


class Loaders:
    """Per-request DataLoaders: every account list, customer and product a
    page needs is fetched in one batch per tick instead of one per object."""

    def __init__(self, use_cases: UseCases) -> None:
        self._use_cases = use_cases
        self.accounts_of_customer: DataLoader[str, list[Account]] = DataLoader(
            self._accounts_of_customers
        )
        self.customer: DataLoader[str, Customer | None] = DataLoader(self._customers)
        self.product: DataLoader[str, Product | None] = DataLoader(self._products)
        self.zendesk_organization: DataLoader[str, str | None] = DataLoader(
            self._zendesk_organizations
        )

    async def _accounts_of_customers(self, customer_ids: list[str]) -> list[list[Account]]:
        found = await self._use_cases.accounts_of_customers(customer_ids)
        return [found.get(customer_id, []) for customer_id in customer_ids]

    async def _customers(self, customer_ids: list[str]) -> list[Customer | None]:
        found = await self._use_cases.customers_by_id(customer_ids)
        return [found.get(customer_id) for customer_id in customer_ids]

    async def _zendesk_organizations(self, customer_ids: list[str]) -> list[str | None]:
        found = await self._use_cases.crm_records_of_customers(customer_ids, CrmSystem.ZENDESK)
        return [found.get(customer_id) for customer_id in customer_ids]

    async def _products(self, codes: list[str]) -> list[Product | None]:
        by_code = {p.code: p for p in await self._use_cases.list_products()}
        return [by_code.get(code) for code in codes]


@dataclass
class RequestContext:
    """The context of one GraphQL request (``info.context``)."""

    principal: Principal
    use_cases: UseCases
    loaders: Loaders
    request: Any = None  # the Starlette request or WebSocket, for the view
    response: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    # graphql-transport-ws: the payload of the client's connection_init
    connection_params: dict[str, Any] | None = None
    # What the caller presented and how to check it again: a subscription
    # lives for hours, and a revoked token or blocked user must lose it.
    authorization: str | None = None
    authenticate: Authenticate | None = None

    async def current_principal(self) -> Principal:
        """The caller as the identity rules see them now (``Unauthenticated``
        once their credential is refused)."""
        if self.authenticate is None:
            return self.principal
        self.principal = await principal_for(self.authorization, self.authenticate)
        return self.principal


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Unauthenticated(Exception):
    """A credential was presented and refused (unknown, expired, revoked): the
    client must log in again, so the view answers HTTP 401 rather than
    treating it as anonymous and refusing every field."""


async def principal_for(authorization: str | None, authenticate: Authenticate) -> Principal:
    """The caller named by the header: anonymous without a bearer token;
    ``Unauthenticated`` when the identity rules refuse the token (any other
    failure, a database outage, propagates: it is not the caller's fault)."""
    token = bearer_token(authorization)
    if token is None:
        return Principal.anonymous()
    try:
        return await authenticate(token)
    except DomainError as error:
        raise Unauthenticated(str(error)) from error


class CurrentCaller(SchemaExtension):
    """Over a WebSocket one context serves every operation of the connection,
    with the caller it authenticated at ``connection_init``: each operation
    (query, mutation, new subscription) is checked against the caller as the
    identity rules see them now, so a logged-out token or a blocked user
    loses the open socket, not only the pushes of a running subscription."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, RequestContext) and isinstance(context.request, WebSocket):
            try:
                await context.current_principal()
            except Unauthenticated:
                raise GraphQLError(
                    "authentication failed: log in again",
                    extensions={"code": "UNAUTHENTICATED"},
                ) from None
        yield
