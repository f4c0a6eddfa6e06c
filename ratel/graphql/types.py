"""The GraphQL object types: read-only views of domain objects.

Each type is built from a domain object by ``of(...)``; fields that reach
other aggregates (a customer's accounts, an account's product) go through the
request's DataLoaders so a page costs a bounded number of reads. Every list
that can grow is a Relay-style connection (``edges { cursor node }`` and
``pageInfo``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Generic, NamedTuple, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from ratel.application.enquiry import BalanceView, QuotaView
from ratel.domain import account as account_domain
from ratel.domain import catalogue as catalogue_domain
from ratel.domain import customer as customer_domain
from ratel.domain.charging import Xdr as XdrDomain
from ratel.domain.errors import DomainError
from ratel.domain.ledger import BalanceTransaction as TransactionDomain
from ratel.domain.ledger import TransactionReason
from ratel.domain.money import Money as MoneyDomain
from ratel.domain.rating import DestinationGroup as GroupDomain
from ratel.domain.rating import RatedDestination
from ratel.domain.rating import Tariff as TariffDomain
from ratel.domain.voucher import Voucher as VoucherDomain
from ratel.graphql.context import RequestContext
from ratel.ports.store import OutboxEntry

Info = strawberry.Info[RequestContext, None]

N = TypeVar("N")

#: The largest page a caller may ask for.
MAX_FIRST = 100
DEFAULT_FIRST = 20


# -- pagination ---------------------------------------------------------------------


def encode_cursor(kind: str, value: str | int) -> str:
    """An opaque cursor: callers pass it back, they do not read it."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def decode_cursor(cursor: str | None, kind: str) -> str | None:
    """The value in a cursor of ``kind``; None for no cursor or one that is not ours
    (a foreign cursor starts from the beginning rather than failing)."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, value = text.partition(":")
    return value if prefix == kind else None


#: The deepest an offset cursor may go: each page reads the rows it skips.
MAX_OFFSET = 100_000


def offset_after(cursor: str | None) -> int:
    """The position after an offset cursor (0 without one, or with one that
    is not ours). A position past ``MAX_OFFSET`` is refused (``BAD_CURSOR``):
    narrow the list rather than page that deep."""
    value = decode_cursor(cursor, "offset")
    try:
        position = int(value) + 1 if value is not None else 0
    except ValueError:
        return 0
    if position < 0:
        return 0
    if position > MAX_OFFSET:
        raise GraphQLError(
            f"a list is paged at most {MAX_OFFSET:,} items deep",
            extensions={"code": "BAD_CURSOR"},
        )
    return position


def page_size(first: int | None) -> int:
    """``first``, or the default page without it. A ``first`` below 1 or above
    ``MAX_FIRST`` is refused (``BAD_USER_INPUT``): an empty page has no cursor
    to go on from, and a silently shortened one reads as the whole list."""
    if first is None:
        return DEFAULT_FIRST
    if not 1 <= first <= MAX_FIRST:
        raise GraphQLError(
            f"first must be between 1 and {MAX_FIRST}, not {first}",
            extensions={"code": "BAD_USER_INPUT", "argument": "first"},
        )
    return first


class Position(NamedTuple):
    """Where a keyset page ended: the time and the id of its last row (lists
    ordered by both, so rows of the same instant are none skipped, and rows
    added meanwhile shift nothing)."""

    at: datetime
    id: str | None  # None: an older cursor that has the time only


def encode_position(kind: str, at: datetime, row_id: str) -> str:
    """A keyset cursor naming a row by its time and id."""
    return encode_cursor(kind, f"{at.isoformat()}|{row_id}")


def decode_position(cursor: str | None, kind: str) -> Position | None:
    """The position in a keyset cursor of ``kind``; None for no cursor or one
    that is not ours (the list starts over, as ``decode_cursor`` does)."""
    value = decode_cursor(cursor, kind)
    if not value:
        return None
    when, _, row_id = value.partition("|")
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        return None
    if at.tzinfo is None or at.utcoffset() is None:
        return None
    return Position(at, row_id or None)


def keyset_connection(
    rows: Sequence[N],
    first: int,
    kind: str,
    key: Callable[[N], tuple[datetime, str]],
    *,
    after: Position | None,
) -> Connection[N]:
    """A connection over a keyset page (``rows`` may hold one more than
    ``first``); each row's cursor is its ``key``, its time and id."""
    return connection(
        rows,
        first,
        lambda row, _i: encode_position(kind, *key(row)),
        has_previous=after is not None,
    )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    """A page of a list: the edges, and where the next page starts."""

    edges: list[Edge[N]]
    page_info: PageInfo

    @strawberry.field(description="The nodes of the edges, for callers that need no cursors.")
    def nodes(self) -> list[N]:
        return [edge.node for edge in self.edges]


def connection(
    rows: Sequence[N], first: int, cursor: Callable[[N, int], str], *, has_previous: bool = False
) -> Connection[N]:
    """A connection of the first ``first`` rows; ``rows`` may hold one more,
    which tells that there is a next page. ``cursor(row, index)`` names a row."""
    edges = [Edge(cursor=cursor(row, i), node=row) for i, row in enumerate(rows[:first])]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > first,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


def offset_connection(rows: Sequence[N], start: int, first: int) -> Connection[N]:
    """A connection over rows that start at position ``start`` of the whole list."""
    return connection(
        rows,
        first,
        lambda _row, i: encode_cursor("offset", start + i),
        has_previous=start > 0,
    )


def slice_connection(rows: Sequence[N], first: int | None, after: str | None) -> Connection[N]:
    """A connection over a list held whole in memory (short lists)."""
    start = offset_after(after)
    size = page_size(first)
    return offset_connection(rows[start : start + size + 1], start, size)


# -- values ---------------------------------------------------------------------------


@strawberry.type
class Money:
    """An amount in a currency; the amount is a decimal string (never a float)."""

    amount: Decimal
    currency: str

    @staticmethod
    def of(money: MoneyDomain) -> Money:
        return Money(amount=plain(money.amount), currency=money.currency)


def plain(amount: Decimal) -> Decimal:
    """The exact amount without trailing zeros (the store keeps 8 places):
    43.25000000 -> 43.25, 100.00 -> 100."""
    normal = amount.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


@strawberry.input
class MoneyInput:
    amount: Decimal
    currency: str

    def to_domain(self) -> MoneyDomain:
        return MoneyDomain.of(self.amount, self.currency.strip().upper())


@strawberry.type
class UserError:
    """A business rule refused the mutation; ``code`` is stable, ``message`` is for people."""

    code: str
    message: str

    @staticmethod
    def of(error: Exception) -> UserError:
        if isinstance(error, DomainError):
            return UserError(code=error.code, message=str(error))
        return UserError(code="invalid_input", message=str(error))


# Mirrors of the domain enums (decorating the domain's own would mark it with
# strawberry's metadata); a test checks that the values stay the same.
@strawberry.enum
class CustomerStatus(Enum):
    OPEN = "open"
    SUSPENDED = "suspended"
    CLOSED = "closed"


@strawberry.enum
class AccountStatus(Enum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    TERMINATED = "terminated"


@strawberry.enum
class IdentifierKind(Enum):
    ACCOUNT_ID = "account_id"
    MSISDN = "msisdn"
    IMSI = "imsi"
    ICCID = "iccid"
    IMEI = "imei"
    ALIAS = "alias"
    CPE_SERIAL = "cpe_serial"
    STATIC_IP = "static_ip"


# -- catalogue ----------------------------------------------------------------------


@strawberry.type
class QuotaDefinition:
    code: str
    service: str
    unit: str
    allowance: Decimal
    renewal: str
    destination_group: str | None
    validity_seconds: int | None


@strawberry.type
class ServicePolicy:
    """What the network needs to deliver a service; null: not set here (an
    add-on's policy overrides only the fields it sets)."""

    name: str | None
    download_kbps: int | None
    upload_kbps: int | None
    throttle_download_kbps: int | None
    throttle_upload_kbps: int | None
    hotline_url: str | None
    on_exhaustion: str | None
    pakid: str | None
    apn_ids: list[str] | None
    roaming_profile_id: str | None
    ont_port_type: str | None
    bandwidth_profile_id: str | None
    satellite_default_profile_id: str | None
    satellite_restricted_profile_id: str | None
    dpi_policy_name: str | None
    provision_translated_number: bool | None
    raise_mscc_result_code: bool | None
    push_events: bool | None
    free_rating_groups: list[int] | None

    @staticmethod
    def of(policy: catalogue_domain.ServicePolicy) -> ServicePolicy:
        return ServicePolicy(
            name=policy.name,
            download_kbps=policy.download_kbps,
            upload_kbps=policy.upload_kbps,
            throttle_download_kbps=policy.throttle_download_kbps,
            throttle_upload_kbps=policy.throttle_upload_kbps,
            hotline_url=policy.hotline_url,
            on_exhaustion=policy.on_exhaustion.value if policy.on_exhaustion else None,
            pakid=policy.pakid,
            apn_ids=list(policy.apn_ids) if policy.apn_ids is not None else None,
            roaming_profile_id=policy.roaming_profile_id,
            ont_port_type=policy.ont_port_type,
            bandwidth_profile_id=policy.bandwidth_profile_id,
            satellite_default_profile_id=policy.satellite_default_profile_id,
            satellite_restricted_profile_id=policy.satellite_restricted_profile_id,
            dpi_policy_name=policy.dpi_policy_name,
            provision_translated_number=policy.provision_translated_number,
            raise_mscc_result_code=policy.raise_mscc_result_code,
            push_events=policy.push_events,
            free_rating_groups=(
                sorted(policy.free_rating_groups) if policy.free_rating_groups is not None else None
            ),
        )


@strawberry.type
class NamedServicePolicy:
    """A reusable service policy of the catalogue."""

    code: str
    policy: ServicePolicy


@strawberry.type
class Product:
    code: str
    name: str
    kind: str
    is_add_on: bool
    services: list[str]
    precedence: int
    validity_seconds: int | None
    price: Money | None
    quotas: list[QuotaDefinition]
    policy: ServicePolicy

    @staticmethod
    def of(product: catalogue_domain.Product) -> Product:
        policy = product.policy
        return Product(
            code=product.code,
            name=product.name,
            kind=product.kind.value,
            is_add_on=product.is_add_on,
            services=sorted(s.value for s in product.services),
            precedence=product.precedence,
            validity_seconds=_seconds(product.validity),
            price=Money.of(product.price) if product.price is not None else None,
            quotas=[
                QuotaDefinition(
                    code=q.code,
                    service=q.service.value,
                    unit=q.unit.value,
                    allowance=plain(q.allowance),
                    renewal=q.renewal.value,
                    destination_group=q.destination_group,
                    validity_seconds=_seconds(q.validity),
                )
                for q in product.quotas
            ],
            policy=ServicePolicy.of(policy),
        )


def _seconds(value: object) -> int | None:
    total = getattr(value, "total_seconds", None)
    return int(total()) if total is not None else None


@strawberry.type
class DestinationGroup:
    code: str
    name: str
    ledger_code: str

    @staticmethod
    def of(group: GroupDomain) -> DestinationGroup:
        return DestinationGroup(code=group.code, name=group.name, ledger_code=group.ledger_code)


@strawberry.type
class Rate:
    """One destination of a tariff: a number prefix or a custom code (``DATA``, ``*101#``)."""

    destination: str
    is_prefix: bool
    destination_group: str | None
    price_first: Money
    first_interval: int
    next_interval: int
    price_next: Money
    connection_fee: Money
    free_units: int

    @staticmethod
    def of(entry: RatedDestination, *, is_prefix: bool) -> Rate:
        rate = entry.rate
        return Rate(
            destination=entry.destination,
            is_prefix=is_prefix,
            destination_group=entry.group.code if entry.group else None,
            price_first=Money.of(rate.price_first),
            first_interval=rate.first_interval,
            next_interval=rate.next_interval,
            price_next=Money.of(rate.price_next),
            connection_fee=Money.of(rate.connection_fee),
            free_units=rate.free_units,
        )


@strawberry.type
class Tariff:
    code: str
    name: str
    currency: str
    entries_count: int
    _tariff: strawberry.Private[TariffDomain]

    @staticmethod
    def of(tariff: TariffDomain) -> Tariff:
        return Tariff(
            code=tariff.code,
            name=tariff.name,
            currency=tariff.currency,
            entries_count=len(tariff),
            _tariff=tariff,
        )

    @strawberry.field(description="The rates: custom destinations first, then prefixes in order.")
    def rates(self, first: int | None = None, after: str | None = None) -> Connection[Rate]:
        entries = [Rate.of(e, is_prefix=False) for e in self._tariff.custom_entries()]
        entries += [Rate.of(e, is_prefix=True) for e in self._tariff.prefix_entries()]
        return slice_connection(entries, first, after)


# -- usage and money --------------------------------------------------------------------


@strawberry.type
class Quota:
    """A quota bucket of an account: what it allows, what is used and what is left."""

    bucket_id: str
    product_code: str
    quota_code: str
    service: str
    unit: str
    allowance: Decimal
    used: Decimal
    reserved: Decimal
    remaining: Decimal
    expires_at: datetime | None
    renews_at: datetime | None
    active: bool

    @staticmethod
    def of(view: QuotaView) -> Quota:
        return Quota(
            bucket_id=view.bucket_id,
            product_code=view.product_code,
            quota_code=view.quota_code,
            service=view.service,
            unit=view.unit.value,
            allowance=plain(view.allowance),
            used=plain(view.used),
            reserved=plain(view.reserved),
            remaining=plain(view.remaining),
            expires_at=view.expires_at,
            renews_at=view.renews_at,
            active=view.active,
        )


@strawberry.type
class XdrLine:
    service: str
    unit: str
    access_code: str
    destination: str | None
    destination_group: str | None
    units: int
    charge: Money


@strawberry.type
class Xdr:
    """The usage record of one charging session."""

    id: str
    session_id: str
    account_id: str
    customer_id: str
    started_at: datetime
    ended_at: datetime
    charge: Money
    cause: str
    lines: list[XdrLine]

    @staticmethod
    def of(xdr: XdrDomain) -> Xdr:
        return Xdr(
            id=xdr.id,
            session_id=xdr.session_id,
            account_id=xdr.account_id,
            customer_id=xdr.customer_id,
            started_at=xdr.started_at,
            ended_at=xdr.ended_at,
            charge=Money.of(xdr.charge),
            cause=xdr.cause,
            lines=[
                XdrLine(
                    service=line.service.value,
                    unit=line.unit.value,
                    access_code=line.access_code,
                    destination=line.destination,
                    destination_group=line.destination_group,
                    units=line.units,
                    charge=Money.of(line.charge),
                )
                for line in xdr.lines
            ],
        )


@strawberry.type
class BalanceTransaction:
    """One movement of a balance (top-up, payment, charge, adjustment)."""

    id: str
    customer_id: str
    account_id: str | None
    amount: Money
    balance_after: Money
    reason: str
    reference: str
    ledger_code: str | None
    created_at: datetime

    @staticmethod
    def of(transaction: TransactionDomain) -> BalanceTransaction:
        return BalanceTransaction(
            id=transaction.id,
            customer_id=transaction.customer_id,
            account_id=transaction.account_id,
            amount=Money.of(transaction.amount),
            balance_after=Money.of(transaction.balance_after),
            reason=transaction.reason.value,
            reference=transaction.reference,
            ledger_code=transaction.ledger_code,
            created_at=transaction.created_at,
        )


@strawberry.type
class Voucher:
    """A voucher as the back office sees it: never its code (ratel keeps only
    a hash of it)."""

    id: str
    status: str
    value: Money
    batch: str
    created_at: datetime
    expires_at: datetime | None
    redeemed_by: str | None
    redeemed_at: datetime | None

    @staticmethod
    def of(voucher: VoucherDomain) -> Voucher:
        return Voucher(
            id=voucher.id,
            status=voucher.status.value,
            value=Money.of(voucher.value),
            batch=voucher.batch,
            created_at=voucher.created_at,
            expires_at=voucher.expires_at,
            redeemed_by=voucher.redeemed_by,
            redeemed_at=voucher.redeemed_at,
        )


@strawberry.type
class DomainEvent:
    """A state change as recorded in the outbox."""

    id: int
    event_type: str
    aggregate: str
    aggregate_id: str
    occurred_at: datetime
    payload: JSON

    @staticmethod
    def of(entry: OutboxEntry) -> DomainEvent:
        return DomainEvent(
            id=entry.id,
            event_type=entry.event_type,
            aggregate=entry.aggregate,
            aggregate_id=entry.aggregate_id,
            occurred_at=entry.occurred_at,
            payload=entry.payload,
        )


@strawberry.type
class Balance:
    """What a customer may spend: balance, credit limit, money held by open sessions."""

    customer_id: str
    account_id: str
    balance: Money
    credit_limit: Money
    reserved: Money
    available: Money
    text: str

    @staticmethod
    def of(view: BalanceView) -> Balance:
        return Balance(
            customer_id=view.customer_id,
            account_id=view.account_id,
            balance=Money.of(view.balance),
            credit_limit=Money.of(view.credit_limit),
            reserved=Money.of(view.reserved),
            available=Money.of(view.available),
            text=view.text,
        )


@strawberry.type
class UssdBalance:
    """The balance as a USSD gateway shows it: a number and the ready sentence."""

    amount: Decimal
    currency: str
    text: str


# -- customers and accounts -------------------------------------------------------------


@strawberry.type
class AddOn:
    """An add-on held by an account, for a window."""

    id: str
    product_code: str
    precedence: int
    effective_from: datetime
    effective_to: datetime | None

    @staticmethod
    def of(assignment: account_domain.AddOnAssignment) -> AddOn:
        return AddOn(
            id=assignment.id,
            product_code=assignment.product_code,
            precedence=assignment.precedence,
            effective_from=assignment.effective_from,
            effective_to=assignment.effective_to,
        )

    @strawberry.field
    async def product(self, info: Info) -> Product | None:
        product = await info.context.loaders.product.load(self.product_code)
        return Product.of(product) if product else None


@strawberry.type
class Account:
    id: str
    customer_id: str
    product_code: str
    status: AccountStatus
    created_at: datetime
    msisdn: str | None
    imsi: str | None
    iccid: str | None
    imei: str | None
    aliases: list[str]
    location: str | None
    location_block_lifted: bool
    add_ons: list[AddOn]
    custom_fields: JSON
    _account: strawberry.Private[account_domain.Account]

    @staticmethod
    def of(account: account_domain.Account) -> Account:
        ids = account.identifiers
        return Account(
            id=account.id,
            customer_id=account.customer_id,
            product_code=account.product_code,
            status=AccountStatus(account.status.value),
            created_at=account.created_at,
            msisdn=str(ids.msisdn) if ids.msisdn else None,
            imsi=str(ids.imsi) if ids.imsi else None,
            iccid=str(ids.iccid) if ids.iccid else None,
            imei=str(ids.imei) if ids.imei else None,
            aliases=sorted(ids.aliases),
            location=account.location,
            location_block_lifted=account.location_block_lifted,
            add_ons=[AddOn.of(a) for a in account.add_ons],
            custom_fields=dict(account.custom_fields),
            _account=account,
        )

    @strawberry.field(
        description="The policy the network gets now: the add-ons in force over the main "
        "product, the CPE profile's port type last."
    )
    async def effective_policy(self, info: Info) -> ServicePolicy | None:
        account = self._account
        active = account.active_add_ons(datetime.now(UTC))
        codes = [account.product_code, *(a.product_code for a in active)]
        main, *add_ons = await info.context.loaders.product.load_many(codes)
        if main is None:
            return None
        policy = catalogue_domain.effective_policy(
            main,
            [p for p in add_ons if p is not None],
            account.identifiers.cpe.port_type if account.identifiers.cpe else None,
        )
        return ServicePolicy.of(policy)

    @strawberry.field
    async def product(self, info: Info) -> Product | None:
        product = await info.context.loaders.product.load(self.product_code)
        return Product.of(product) if product else None

    @strawberry.field
    async def customer(self, info: Info) -> Customer | None:
        customer = await info.context.loaders.customer.load(self.customer_id)
        return Customer.of(customer) if customer else None

    @strawberry.field(description="Quota buckets; expired ones only when asked for.")
    async def quotas(self, info: Info, include_expired: bool = False) -> list[Quota]:
        views = await info.context.use_cases.quota_enquiry(self.id, include_expired=include_expired)
        return [Quota.of(v) for v in views]

    @strawberry.field(description="The account's xDRs, newest first.")
    async def xdrs(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Xdr]:
        return await account_xdrs(info, self.id, first, after)


async def account_xdrs(
    info: Info, account_id: str, first: int | None, after: str | None
) -> Connection[Xdr]:
    """A page of an account's xDRs, newest first; the cursor is the end time
    and the id of the last one (the finder pages by both: xDRs ending in the
    same instant are none skipped). A cursor that is not one of these starts over."""
    size = page_size(first)
    position = decode_position(after, "ended")
    rows = await info.context.use_cases.account_xdrs(
        account_id,
        before=position.at if position else None,
        before_id=position.id if position else None,
        limit=size + 1,
    )
    return keyset_connection([Xdr.of(x) for x in rows], size, "ended", _xdr_key, after=position)


def _xdr_key(xdr: Xdr) -> tuple[datetime, str]:
    return xdr.ended_at, xdr.id


#: What the Salesforce tab shows as payments: money the customer brought in.
PAYMENT_REASONS = (TransactionReason.PAYMENT, TransactionReason.TOP_UP, TransactionReason.VOUCHER)


async def customer_transactions(
    info: Info,
    customer_id: str,
    first: int | None,
    after: str | None,
    *,
    reasons: Sequence[TransactionReason] | None = None,
) -> Connection[BalanceTransaction]:
    """A page of a customer's balance transactions, newest first; the cursor
    is the time and id of the last one (transactions made while a caller
    pages shift nothing). A cursor that is not one of these starts over."""
    size = page_size(first)
    position = decode_position(after, "created")
    rows = await info.context.use_cases.customer_transactions(
        customer_id,
        before=position.at if position else None,
        before_id=position.id if position else None,
        limit=size + 1,
        reasons=reasons,
    )
    return keyset_connection(
        [BalanceTransaction.of(t) for t in rows],
        size,
        "created",
        lambda t: (t.created_at, t.id),
        after=position,
    )


@strawberry.type
class Customer:
    id: str
    name: str
    currency: str
    status: CustomerStatus
    country: str | None
    customer_class: str
    email: str | None
    phone: str | None
    created_at: datetime
    balance: Money
    credit_limit: Money
    custom_fields: JSON

    @staticmethod
    def of(customer: customer_domain.Customer) -> Customer:
        return Customer(
            id=customer.id,
            name=customer.name,
            currency=customer.currency,
            status=CustomerStatus(customer.status.value),
            country=customer.country,
            customer_class=customer.customer_class,
            email=customer.contact.email,
            phone=customer.contact.phone,
            created_at=customer.created_at,
            balance=Money.of(customer.wallet.balance),
            credit_limit=Money.of(customer.wallet.credit_limit),
            custom_fields=dict(customer.custom_fields),
        )

    @strawberry.field(description="The customer's accounts, ordered by id.")
    async def accounts(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Account]:
        accounts = await info.context.loaders.accounts_of_customer.load(self.id)
        return slice_connection([Account.of(a) for a in accounts], first, after)

    @strawberry.field(description="The products of the customer's accounts (main and add-ons).")
    async def products(self, info: Info) -> list[Product]:
        accounts = await info.context.loaders.accounts_of_customer.load(self.id)
        codes = dict.fromkeys(
            code
            for a in accounts
            for code in (a.product_code, *(x.product_code for x in a.add_ons))
        )
        products = await info.context.loaders.product.load_many(list(codes))
        return [Product.of(p) for p in products if p is not None]

    @strawberry.field(description="Balance transactions, newest first.")
    async def transactions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[BalanceTransaction]:
        return await customer_transactions(info, self.id, first, after)

    @strawberry.field(description="Money received (payments, top-ups, vouchers), newest first.")
    async def payments(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[BalanceTransaction]:
        return await customer_transactions(info, self.id, first, after, reasons=PAYMENT_REASONS)

    @strawberry.field(description="The Zendesk organization the customer is linked to.")
    async def zendesk_organization_id(self, info: Info) -> str | None:
        return await info.context.loaders.zendesk_organization.load(self.id)

    @strawberry.field(
        description="The customer's page in the operator's back office (null: not configured)."
    )
    def page_url(self, info: Info) -> str | None:
        return info.context.use_cases.links.customer_page(self.id)

    @strawberry.field(
        description="xDRs of every account of the customer ended in [since, until), oldest first."
    )
    async def xdrs(
        self,
        info: Info,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Xdr]:
        size = page_size(first)
        # oldest first: the page after the cursor's xDR, read alone
        position = decode_position(after, "ended")
        rows = await info.context.use_cases.customer_xdrs(
            self.id,
            since=since,
            until=until,
            after=position.at if position else None,
            after_id=position.id if position else None,
            limit=size + 1,
        )
        return keyset_connection([Xdr.of(x) for x in rows], size, "ended", _xdr_key, after=position)
