"""The one strawberry schema of ratel: queries, mutations and their limits.

Resolvers only translate: GraphQL arguments in, an application use case
called, domain objects out as GraphQL types. Business failures of mutations
(a ``DomainError``: insufficient funds, blocked account, unknown voucher,
...) come back as ``errors: [UserError!]!`` in the payload, never as a
GraphQL error. Every root field carries the ``Guard`` of the permission
matrix; ``build_schema`` refuses to build if one does not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import strawberry
from graphql import GraphQLError
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.types.field import StrawberryField

from ratel.application.queries import CustomerSearch
from ratel.domain import account as account_domain
from ratel.domain import customer as customer_domain
from ratel.domain.customer import Contact
from ratel.domain.errors import NotFound
from ratel.domain.identifiers import Iccid, Identifiers, Imsi, Msisdn
from ratel.graphql.context import CurrentCaller
from ratel.graphql.cost import QueryCostLimiter
from ratel.graphql.crm import CrmMutation, CrmQuery
from ratel.graphql.directory import DirectoryMutation, DirectoryQuery
from ratel.graphql.fields import attempt, guarded, guarded_mutation
from ratel.graphql.fields import own_account as _own_account
from ratel.graphql.identity import IdentityMutation, IdentityQuery
from ratel.graphql.live import Subscription
from ratel.graphql.metrics import OperationMetrics, OperationRecorder
from ratel.graphql.permissions import MATRIX, Guard, may_read
from ratel.graphql.radius import RadiusMutation, RadiusQuery
from ratel.graphql.types import (
    Account,
    AddOn,
    Balance,
    BalanceTransaction,
    Connection,
    Customer,
    CustomerStatus,
    DestinationGroup,
    DomainEvent,
    IdentifierKind,
    Info,
    MoneyInput,
    Product,
    Quota,
    Tariff,
    UserError,
    UssdBalance,
    Xdr,
    account_xdrs,
    connection,
    customer_transactions,
    decode_cursor,
    encode_cursor,
    page_size,
    plain,
    slice_connection,
)
from ratel.ports.store import IdentifierKind as StoreIdentifierKind

#: Limits that keep one request from costing the server much: no deeply
#: nested or alias-multiplied query, no enormous document.
MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000
#: The nodes one query may return, counted before it runs (``ratel.graphql.cost``):
#: GitHub allows 500,000, but a ratel node is often a row read on its own.
MAX_NODES = 50_000


# -- payloads ------------------------------------------------------------------------------


@strawberry.type
class CustomerPayload:
    customer: Customer | None
    errors: list[UserError]


@strawberry.type
class AccountPayload:
    account: Account | None
    errors: list[UserError]


@strawberry.type
class AddOnPayload:
    add_on: AddOn | None
    errors: list[UserError]


@strawberry.type
class BalancePayload:
    customer: Customer | None
    transaction: BalanceTransaction | None
    errors: list[UserError]


@strawberry.type
class VouchersPayload:
    codes: list[str]
    errors: list[UserError]


@strawberry.type
class UssdPayload:
    """What a USSD gateway shows the subscriber, and why it failed if it did."""

    text: str
    errors: list[UserError]


# -- inputs ---------------------------------------------------------------------------------


@strawberry.input
class CustomerFilter:
    name: str | None = None
    country: str | None = None
    status: CustomerStatus | None = None
    product_code: str | None = None
    account_id: str | None = None
    msisdn: str | None = None
    imsi: str | None = None
    iccid: str | None = None

    def to_search(self) -> CustomerSearch:
        return CustomerSearch(
            name=self.name,
            country=self.country,
            status=customer_domain.CustomerStatus(self.status.value) if self.status else None,
            product_code=self.product_code,
            account_id=self.account_id,
            msisdn=self.msisdn,
            imsi=self.imsi,
            iccid=self.iccid,
        )


@strawberry.input
class OpenCustomerInput:
    name: str
    currency: str
    country: str | None = None
    email: str | None = None
    phone: str | None = None
    customer_class: str = ""
    credit_limit: MoneyInput | None = None


@strawberry.input
class UpdateCustomerInput:
    """Only the fields given change."""

    name: str | None = None
    country: str | None = None
    customer_class: str | None = None
    email: str | None = None
    phone: str | None = None


@strawberry.input
class CreateAccountInput:
    customer_id: str
    product_code: str
    msisdn: str | None = None
    imsi: str | None = None
    iccid: str | None = None
    account_id: str | None = None


# -- self-care ---------------------------------------------------------------------------------


@strawberry.type
class Me:
    """The calling account holder's own account and customer."""

    account_id: strawberry.Private[str]
    customer_id: strawberry.Private[str]

    @strawberry.field
    async def account(self, info: Info) -> Account | None:
        account = await info.context.use_cases.find_account(
            StoreIdentifierKind.ACCOUNT_ID, self.account_id
        )
        return Account.of(account) if account else None

    @strawberry.field
    async def customer(self, info: Info) -> Customer | None:
        customer = await info.context.loaders.customer.load(self.customer_id)
        return Customer.of(customer) if customer else None

    @strawberry.field
    async def balance(self, info: Info) -> Balance:
        view = await info.context.use_cases.balance_enquiry(
            StoreIdentifierKind.ACCOUNT_ID, self.account_id
        )
        return Balance.of(view)

    @strawberry.field(description="Active quotas with used, remaining and expiry.")
    async def quotas(self, info: Info) -> list[Quota]:
        return [Quota.of(v) for v in await info.context.use_cases.quota_enquiry(self.account_id)]

    @strawberry.field
    async def add_ons(self, info: Info) -> list[AddOn]:
        account = await info.context.use_cases.find_account(
            StoreIdentifierKind.ACCOUNT_ID, self.account_id
        )
        return [AddOn.of(a) for a in account.add_ons] if account else []

    @strawberry.field(description="Add-ons on sale.")
    async def available_add_ons(self, info: Info) -> list[Product]:
        products = await info.context.use_cases.list_products(add_ons_only=True)
        return [Product.of(p) for p in products]

    @strawberry.field
    async def xdrs(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Xdr]:
        return await account_xdrs(info, self.account_id, first, after)

    @strawberry.field
    async def transactions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[BalanceTransaction]:
        return await customer_transactions(info, self.customer_id, first, after)


# -- queries ----------------------------------------------------------------------------------


@strawberry.type
class Query(IdentityQuery, CrmQuery, DirectoryQuery, RadiusQuery):
    @guarded("Customers ordered by id; every filter given must match.")
    async def customers(
        self,
        info: Info,
        filter: CustomerFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Customer]:
        size = page_size(first)
        search = (filter or CustomerFilter()).to_search()
        after_id = decode_cursor(after, "customer")
        rows = await info.context.use_cases.find_customers(search, after=after_id, limit=size + 1)
        return connection(
            [Customer.of(c) for c in rows],
            size,
            lambda c, _i: encode_cursor("customer", c.id),
            has_previous=after_id is not None,
        )

    @guarded("One customer by id.")
    async def customer(self, info: Info, id: str) -> Customer | None:
        customer = await info.context.loaders.customer.load(id)
        return Customer.of(customer) if customer else None

    @guarded("One account by id.")
    async def account(self, info: Info, id: str) -> Account | None:
        account = await info.context.use_cases.find_account(StoreIdentifierKind.ACCOUNT_ID, id)
        return Account.of(account) if account else None

    @guarded("The account an identifier names (MSISDN, IMSI, ICCID, alias, CPE serial, ...).")
    async def account_by_identifier(
        self, info: Info, kind: IdentifierKind, value: str
    ) -> Account | None:
        account = await info.context.use_cases.find_account(StoreIdentifierKind(kind.value), value)
        return Account.of(account) if account else None

    @guarded("Every product, by code; add-ons only when asked.")
    async def products(
        self,
        info: Info,
        add_ons_only: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Product]:
        products = await info.context.use_cases.list_products(add_ons_only=add_ons_only)
        return slice_connection([Product.of(p) for p in products], first, after)

    @guarded("Tariffs ordered by code.")
    async def tariffs(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Tariff]:
        size = page_size(first)
        after_code = decode_cursor(after, "tariff")
        rows = await info.context.use_cases.list_tariffs(after=after_code, limit=size + 1)
        return connection(
            [Tariff.of(t) for t in rows],
            size,
            lambda t, _i: encode_cursor("tariff", t.code),
            has_previous=after_code is not None,
        )

    @guarded("One tariff by code.")
    async def tariff(self, info: Info, code: str) -> Tariff | None:
        tariff = await info.context.use_cases.get_tariff(code)
        return Tariff.of(tariff) if tariff else None

    @guarded("Every destination group.")
    async def destination_groups(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[DestinationGroup]:
        groups = await info.context.use_cases.list_destination_groups()
        return slice_connection([DestinationGroup.of(g) for g in groups], first, after)

    @guarded("An account's quota buckets.")
    async def quotas(
        self,
        info: Info,
        account_id: str,
        include_expired: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Quota]:
        try:
            views = await info.context.use_cases.quota_enquiry(
                account_id, include_expired=include_expired
            )
        except NotFound:
            views = []
        return slice_connection([Quota.of(v) for v in views], first, after)

    @guarded("An account's xDRs, newest first.")
    async def xdrs(
        self, info: Info, account_id: str, first: int | None = None, after: str | None = None
    ) -> Connection[Xdr]:
        return await account_xdrs(info, account_id, first, after)

    @guarded("A customer's balance transactions, newest first.")
    async def transactions(
        self, info: Info, customer_id: str, first: int | None = None, after: str | None = None
    ) -> Connection[BalanceTransaction]:
        return await customer_transactions(info, customer_id, first, after)

    @guarded("The newest domain events, of one customer or account if given.")
    async def events(
        self,
        info: Info,
        aggregate_id: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[DomainEvent]:
        size = page_size(first)
        # the outbox id is the order events were written in: a keyset on it
        # shifts nothing when events are written while a caller pages
        before_id = _event_id(decode_cursor(after, "event"))
        rows = await info.context.use_cases.recent_events(
            aggregate_id=aggregate_id, before_id=before_id, limit=size + 1
        )
        return connection(
            [DomainEvent.of(e) for e in rows],
            size,
            lambda e, _i: encode_cursor("event", e.id),
            has_previous=before_id is not None,
        )

    @guarded("USSD: the balance of the subscriber with this MSISDN (null: unknown number).")
    async def ussd_balance(self, info: Info, msisdn: str) -> UssdBalance | None:
        try:
            await _ussd_account(info, msisdn)
            view = await info.context.use_cases.balance_enquiry(StoreIdentifierKind.MSISDN, msisdn)
        except (NotFound, ValueError):
            return None
        shown = view.balance.for_record()
        return UssdBalance(amount=plain(shown.amount), currency=shown.currency, text=view.text)

    @guarded("Self-care: the caller's own account and customer.")
    async def me(self, info: Info) -> Me:
        account_id, customer_id = _own_account(info)
        return Me(account_id=account_id, customer_id=customer_id)


# -- mutations --------------------------------------------------------------------------------


def _customer_payload(customer: object, errors: list[UserError]) -> CustomerPayload:
    return CustomerPayload(
        customer=Customer.of(customer) if isinstance(customer, customer_domain.Customer) else None,
        errors=errors,
    )


@strawberry.type
class Mutation(IdentityMutation, CrmMutation, DirectoryMutation, RadiusMutation):
    # -- customers
    @guarded_mutation()
    async def open_customer(self, info: Info, input: OpenCustomerInput) -> CustomerPayload:
        use_cases = info.context.use_cases

        async def call() -> customer_domain.Customer:
            contact = Contact(email=input.email, phone=input.phone)
            limit = input.credit_limit.to_domain() if input.credit_limit else None
            return await use_cases.open_customer(
                input.name,
                input.currency.strip().upper(),
                credit_limit=limit,
                country=input.country,
                contact=contact,
                customer_class=input.customer_class,
            )

        return _customer_payload(*await attempt(call))

    @guarded_mutation()
    async def update_customer(
        self, info: Info, id: str, input: UpdateCustomerInput
    ) -> CustomerPayload:
        use_cases = info.context.use_cases

        async def call() -> customer_domain.Customer:
            changes: dict[str, object] = {}
            for name in ("name", "country", "customer_class"):
                value = getattr(input, name)
                if value is not None:
                    changes[name] = value
            if input.email is not None or input.phone is not None:
                found = await use_cases.customers_by_id([id])
                if id not in found:
                    raise NotFound(f"customer {id} does not exist")
                old = found[id].contact
                changes["contact"] = Contact(
                    email=input.email if input.email is not None else old.email,
                    phone=input.phone if input.phone is not None else old.phone,
                    address_lines=old.address_lines,
                )
            return await use_cases.update_customer(id, **changes)

        return _customer_payload(*await attempt(call))

    @guarded_mutation()
    async def suspend_customer(
        self, info: Info, id: str, reason: str = "non-payment"
    ) -> CustomerPayload:
        call = info.context.use_cases.suspend_customer
        return _customer_payload(*await attempt(lambda: call(id, reason)))

    @guarded_mutation()
    async def resume_customer(self, info: Info, id: str) -> CustomerPayload:
        call = info.context.use_cases.resume_customer
        return _customer_payload(*await attempt(lambda: call(id)))

    @guarded_mutation()
    async def close_customer(self, info: Info, id: str) -> CustomerPayload:
        call = info.context.use_cases.close_customer
        return _customer_payload(*await attempt(lambda: call(id)))

    # -- accounts
    @guarded_mutation()
    async def create_account(self, info: Info, input: CreateAccountInput) -> AccountPayload:
        use_cases = info.context.use_cases

        async def call() -> Account:
            identifiers = Identifiers(
                msisdn=Msisdn.parse(input.msisdn) if input.msisdn else None,
                imsi=Imsi.parse(input.imsi) if input.imsi else None,
                iccid=Iccid.parse(input.iccid) if input.iccid else None,
            )
            account = await use_cases.create_account(
                input.customer_id,
                input.product_code,
                identifiers=identifiers,
                account_id=input.account_id,
            )
            return Account.of(account)

        account, errors = await attempt(call)
        return AccountPayload(account=account, errors=errors)

    @guarded_mutation()
    async def block_account(
        self, info: Info, id: str, reason: str = "blocked by staff"
    ) -> AccountPayload:
        call = info.context.use_cases.block_account
        account, errors = await attempt(lambda: call(id, reason))
        return AccountPayload(account=Account.of(account) if account else None, errors=errors)

    @guarded_mutation()
    async def unblock_account(self, info: Info, id: str) -> AccountPayload:
        call = info.context.use_cases.unblock_account
        account, errors = await attempt(lambda: call(id))
        return AccountPayload(account=Account.of(account) if account else None, errors=errors)

    @guarded_mutation()
    async def terminate_account(self, info: Info, id: str) -> AccountPayload:
        call = info.context.use_cases.terminate_account
        account, errors = await attempt(lambda: call(id))
        return AccountPayload(account=Account.of(account) if account else None, errors=errors)

    @guarded_mutation("Move the account to another main product.")
    async def change_product(self, info: Info, id: str, product_code: str) -> AccountPayload:
        call = info.context.use_cases.change_product
        account, errors = await attempt(lambda: call(id, product_code))
        return AccountPayload(account=Account.of(account) if account else None, errors=errors)

    @guarded_mutation(
        "Give an add-on for a window (default: from now for its validity). A non-empty "
        "reference makes the call safe to retry: the same reference again returns the "
        "add-on given the first time, charging nothing."
    )
    async def add_add_on(
        self,
        info: Info,
        account_id: str,
        product_code: str,
        effective_from: datetime | None = None,
        effective_to: datetime | None = None,
        charge: bool = False,
        reference: str = "",
    ) -> AddOnPayload:
        call = info.context.use_cases.add_add_on
        assignment, errors = await attempt(
            lambda: call(
                account_id,
                product_code,
                effective_from=effective_from,
                effective_to=effective_to,
                charge=charge,
                reference=reference,
            )
        )
        return AddOnPayload(add_on=AddOn.of(assignment) if assignment else None, errors=errors)

    @guarded_mutation()
    async def remove_add_on(self, info: Info, account_id: str, add_on_id: str) -> AccountPayload:
        call = info.context.use_cases.remove_add_on
        account, errors = await attempt(lambda: call(account_id, add_on_id))
        # a crm:write key removes add-ons without reading accounts
        shown = account if account and may_read(info, "Query.account", account.id) else None
        return AccountPayload(account=Account.of(shown) if shown else None, errors=errors)

    # -- money
    @guarded_mutation(
        "Raise a prepaid balance. A non-empty reference (the payment's id at the "
        "gateway) makes the call safe to retry: the same reference again returns the "
        "first transaction and credits nothing; with another amount it is refused "
        "(reference_reused)."
    )
    async def top_up(
        self, info: Info, customer_id: str, amount: MoneyInput, reference: str = ""
    ) -> BalancePayload:
        call = info.context.use_cases.top_up
        result, errors = await attempt(lambda: call(customer_id, amount.to_domain(), reference))
        return _balance_payload(result, errors)

    @guarded_mutation(
        "Record a payment received. A non-empty reference makes the call safe to "
        "retry, as for topUp."
    )
    async def record_payment(
        self, info: Info, customer_id: str, amount: MoneyInput, reference: str = ""
    ) -> BalancePayload:
        call = info.context.use_cases.record_payment
        result, errors = await attempt(lambda: call(customer_id, amount.to_domain(), reference))
        return _balance_payload(result, errors)

    @guarded_mutation("A staff adjustment, positive or negative, booked to a ledger code.")
    async def manual_transaction(
        self,
        info: Info,
        customer_id: str,
        amount: MoneyInput,
        reason: str,
        ledger_code: str,
        reference: str = "",
    ) -> BalancePayload:
        call = info.context.use_cases.manual_transaction
        result, errors = await attempt(
            lambda: call(customer_id, amount.to_domain(), reason, ledger_code, reference)
        )
        return _balance_payload(result, errors)

    @guarded_mutation("Make vouchers; their codes are shown this once.")
    async def create_vouchers(
        self,
        info: Info,
        count: int,
        value: MoneyInput,
        batch: str = "",
        expires_at: datetime | None = None,
    ) -> VouchersPayload:
        call = info.context.use_cases.create_vouchers
        codes, errors = await attempt(
            lambda: call(count, value.to_domain(), batch=batch, expires_at=expires_at)
        )
        return VouchersPayload(codes=codes or [], errors=errors)

    @guarded_mutation("Put a voucher's value on a customer's balance (staff).")
    async def redeem_voucher_for_customer(
        self, info: Info, customer_id: str, code: str
    ) -> CustomerPayload:
        call = info.context.use_cases.redeem_voucher
        return _customer_payload(*await attempt(lambda: call(customer_id, code)))

    # -- self-care
    @guarded_mutation(
        "Self-care: buy an add-on; its price is taken from the balance. A non-empty "
        "reference (the app's id of the purchase) makes the call safe to retry: the "
        "same reference again returns the add-on bought the first time."
    )
    async def buy_add_on(self, info: Info, product_code: str, reference: str = "") -> AddOnPayload:
        use_cases = info.context.use_cases

        async def call() -> AddOn:
            account_id, _ = _own_account(info)
            products = await use_cases.list_products(add_ons_only=True)
            if product_code not in {p.code for p in products}:
                raise NotFound(f"add-on {product_code} is not on sale")
            return AddOn.of(
                await use_cases.add_add_on(
                    account_id, product_code, charge=True, reference=reference
                )
            )

        add_on, errors = await attempt(call)
        return AddOnPayload(add_on=add_on, errors=errors)

    @guarded_mutation("Self-care: top up the balance with a voucher.")
    async def redeem_voucher(self, info: Info, code: str) -> CustomerPayload:
        use_cases = info.context.use_cases

        async def call() -> customer_domain.Customer:
            _, customer_id = _own_account(info)
            return await use_cases.redeem_voucher(customer_id, code)

        return _customer_payload(*await attempt(call))

    @guarded_mutation("Self-care: keep data on in a restricted location (a ship, a plane).")
    async def lift_location_block(self, info: Info) -> AccountPayload:
        use_cases = info.context.use_cases

        async def call() -> Account:
            account_id, _ = _own_account(info)
            return Account.of(await use_cases.lift_location_block(account_id))

        account, errors = await attempt(call)
        return AccountPayload(account=account, errors=errors)

    # -- USSD
    @guarded_mutation("USSD: redeem a voucher for the subscriber with this MSISDN.")
    async def ussd_redeem_voucher(self, info: Info, msisdn: str, code: str) -> UssdPayload:
        use_cases = info.context.use_cases

        async def call() -> str:
            account = await _ussd_account(info, msisdn)
            customer = await use_cases.redeem_voucher(account.customer_id, code)
            return f"Voucher accepted. Your current balance is {customer.wallet.balance.display()}"

        text, errors = await attempt(call)
        return UssdPayload(text=text or _ussd_refusal(errors), errors=errors)

    @guarded_mutation("USSD: move the subscriber with this MSISDN to the package ``code``.")
    async def ussd_change_package(self, info: Info, msisdn: str, code: str) -> UssdPayload:
        use_cases = info.context.use_cases

        async def call() -> str:
            account = await _ussd_account(info, msisdn)
            changed = await use_cases.change_product(account.id, code.strip().upper())
            return f"Your package is now {changed.product_code}"

        text, errors = await attempt(call)
        return UssdPayload(text=text or _ussd_refusal(errors), errors=errors)


def _event_id(value: str | None) -> int | None:
    """The event id in an event cursor; None (start over) for one that is not ours."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _ussd_account(info: Info, msisdn: str) -> account_domain.Account:
    """The account dialling from ``msisdn``. A terminated account keeps its
    number in the store, but nobody it belongs to dials from it any more:
    unknown, as a number nobody has."""
    account = await info.context.use_cases.find_account(StoreIdentifierKind.MSISDN, msisdn)
    if account is None or account.status is account_domain.AccountStatus.TERMINATED:
        raise NotFound("this number is not known")
    return account


def _ussd_refusal(errors: list[UserError]) -> str:
    return f"Sorry: {errors[0].message}" if errors else "Sorry, try again later"


def _balance_payload(result: object, errors: list[UserError]) -> BalancePayload:
    if not isinstance(result, tuple):
        return BalancePayload(customer=None, transaction=None, errors=errors)
    customer, transaction = result
    return BalancePayload(
        customer=Customer.of(customer),
        transaction=BalanceTransaction.of(transaction) if transaction else None,
        errors=errors,
    )


# -- the schema ---------------------------------------------------------------------------------


def root_fields(schema: strawberry.Schema) -> dict[str, StrawberryField]:
    """Every root field as ``Type.field`` (GraphQL names)."""
    fields: dict[str, StrawberryField] = {}
    for root in (Query, Mutation, Subscription):
        definition = root.__strawberry_definition__  # type: ignore[attr-defined]
        for f in definition.fields:
            name = schema.config.name_converter.get_graphql_name(f)
            fields[f"{definition.name}.{name}"] = f
    return fields


def check_guarded(schema: strawberry.Schema) -> None:
    """Refuse a schema with a root field that the matrix or the guard misses."""
    problems = []
    for key, f in root_fields(schema).items():
        if key not in MATRIX:
            problems.append(f"{key} is not in the permission matrix")
        if not any(isinstance(e, Guard) for e in f.extensions):
            problems.append(f"{key} has no Guard")
    stale = set(MATRIX) - set(root_fields(schema))
    problems += [f"{key} is in the matrix but not in the schema" for key in sorted(stale)]
    if problems:
        raise RuntimeError("; ".join(problems))


# The limits' validation rules, made once: the validation cache is keyed by
# the rules, and fresh rule classes per request would never hit it.
_LIMIT_RULES: tuple[type[ASTValidationRule], ...] = (
    depth_rule(MAX_DEPTH, None, None),
    aliases_rule(MAX_ALIASES),
)
#: Distinct query texts whose parse and validation are kept (clients send a
#: handful, over and over; an LRU bound keeps invented ones from growing it).
CACHED_DOCUMENTS = 512


log = logging.getLogger("ratel.graphql")

#: Error codes of a caller's mistake: logged in one line, not as a failure.
REFUSAL_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "NOT_FOUND",
        "TOO_MANY_SUBSCRIPTIONS",
        "BAD_CURSOR",
        "BAD_USER_INPUT",
        "QUERY_TOO_COSTLY",
    }
)


#: What a caller is told of a resolver that failed unexpectedly: the exception
#: (an SQL statement, a path) is for the log, not for the client.
INTERNAL = "internal error: the request could not be served (it is logged)"


def _unexpected(error: GraphQLError) -> bool:
    """A resolver's unexpected exception (it has a path), not a refusal said
    on purpose (a ``GraphQLError`` with its code) nor an invalid query or
    argument (no path: the caller's mistake, and its message says which)."""
    original = error.original_error
    return (
        error.path is not None and original is not None and not isinstance(original, GraphQLError)
    )


def _aware(value: object) -> datetime:
    """A DateTime argument: ISO 8601 with its UTC offset (``Z`` or ``+hh:mm``).
    A time without one names no instant (ratel keeps UTC), so it is refused."""
    if not isinstance(value, str):
        raise ValueError("a DateTime is an ISO 8601 string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset: add Z or +hh:mm")
    return parsed


AwareDateTime = strawberry.scalar(
    name="DateTime",
    description="Date with time (ISO 8601) and its UTC offset.",
    serialize=datetime.isoformat,
    parse_value=_aware,
)


class RatelSchema(strawberry.Schema):
    """The schema, logging as ratel does: a refused or invalid request is
    one INFO line (it is the caller's mistake, and a flood of them must not
    bury real failures); a resolver that failed is an ERROR with its trace."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            code = (error.extensions or {}).get("code")
            if error.path is None or code in REFUSAL_CODES:
                log.info(
                    "graphql request refused",
                    extra={"code": code or "invalid_query", "error": error.message[:300]},
                )
            else:
                log.error(
                    "graphql resolver failed",
                    exc_info=error.original_error or error,
                    extra={"path": ".".join(str(p) for p in error.path or [])},
                )


def build_schema(
    *, introspection: bool = True, recorder: OperationRecorder | None = None
) -> strawberry.Schema:
    """The schema with its limits; ``introspection`` False refuses
    ``__schema``/``__type`` queries (production default). Parsing and
    validating a query is most of the cost of a small one: both are cached
    per query text. ``recorder`` counts and times every operation."""
    rules = list(_LIMIT_RULES)
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    # factories: strawberry makes fresh extensions for every request
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=CACHED_DOCUMENTS),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=CACHED_DOCUMENTS),
        # after validation, before any resolver: the count needs the variables
        lambda: QueryCostLimiter(MAX_NODES),
        # a WebSocket's operations: the caller as they are now
        CurrentCaller,
    ]
    if recorder is not None:
        extensions.insert(0, lambda: OperationMetrics(recorder))
    extensions.append(lambda: MaskErrors(should_mask_error=_unexpected, error_message=INTERNAL))
    schema = RatelSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map={datetime: AwareDateTime}),
    )
    check_guarded(schema)
    return schema
