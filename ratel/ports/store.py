"""The store: repositories and the unit of work that the use cases talk to.

Every repository belongs to one unit of work (one database transaction).
Nothing is written until ``UnitOfWork.commit``; leaving the ``async with``
block without committing rolls everything back. ``lock=True`` loads a row
for update (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite write transactions
are exclusive already), so a read-modify-write is safe across awaits.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self

from ratel.domain.account import Account
from ratel.domain.catalogue import Product, ServicePolicy
from ratel.domain.charging import CreditControlSession, Xdr
from ratel.domain.customer import Customer, CustomerStatus
from ratel.domain.events import DomainEvent
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.quota import QuotaBucket
from ratel.domain.rating import DestinationGroup, DialingPlan, DialingRule, Tariff
from ratel.domain.voucher import Voucher, VoucherStatus
from ratel.ports.identity import (
    ApiKeyRepository,
    CredentialRepository,
    StaffRepository,
    TokenRepository,
)


class IdentifierKind(StrEnum):
    """How the network or a person names an account."""

    ACCOUNT_ID = "account_id"
    MSISDN = "msisdn"
    IMSI = "imsi"
    ICCID = "iccid"
    IMEI = "imei"
    ALIAS = "alias"
    CPE_SERIAL = "cpe_serial"
    STATIC_IP = "static_ip"


class CustomerRepository(Protocol):
    """Customers and their wallets."""

    async def add(self, customer: Customer) -> None:
        """Insert a new customer (its id must be new)."""
        ...

    async def add_many(self, customers: Sequence[Customer]) -> None:
        """Insert new customers (their ids must be new) in one round trip. Each
        is known to the unit of work afterwards, as if added one by one, so a
        later ``save`` writes its wallet as the change since this insert."""
        ...

    async def get(self, customer_id: str, *, lock: bool = False) -> Customer | None:
        """The customer, or None."""
        ...

    async def get_many(
        self,
        customer_ids: Sequence[str],
        *,
        lock: bool = False,
        buckets_of: Sequence[str] = (),
    ) -> dict[str, Customer]:
        """The customers that exist among ``customer_ids``, by id, in one query
        per thousand ids. With ``lock`` they are locked in id order, so that
        transactions locking several customers never deadlock each other.
        ``buckets_of`` (with ``lock``): the accounts whose quota buckets the
        caller locks next with ``QuotaRepository.for_accounts``; the store may
        lock and read them now, in the same round trip (after the customers,
        so the lock order holds)."""
        ...

    async def save_many(self, customers: Sequence[Customer]) -> None:
        """``save`` for several customers loaded or added in this unit of work,
        a round trip for all their wallet changes. Refuses the whole lot
        (``CreditLimitExceeded``, or ``NotFound``) if one change would pass a
        credit limit or names a customer that is gone; the unit of work must
        then be rolled back."""
        ...

    async def save(self, customer: Customer) -> None:
        """Write the customer's fields and its wallet. The wallet is written as
        the change since it was loaded, with a conditional UPDATE that refuses
        (``CreditLimitExceeded``) a change that would raise the exposure past
        the credit limit, whatever other transactions did meanwhile."""
        ...

    async def find(
        self,
        *,
        name: str | None = None,
        country: str | None = None,
        status: CustomerStatus | None = None,
        product_code: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Customer]:
        """Customers matching every filter given, ordered by id, after ``after``.
        ``name`` matches case-insensitively anywhere in the name."""
        ...

    async def count(self) -> int:
        """How many customers there are."""
        ...


class AccountRepository(Protocol):
    """Accounts with their identifiers, custom fields and add-on assignments."""

    async def add(self, account: Account) -> None:
        """Insert a new account; refuses an identifier already used by another
        account (``DuplicateIdentifier``)."""
        ...

    async def add_many(self, accounts: Sequence[Account]) -> None:
        """Insert new accounts, a round trip per table however many there are.
        Refuses (``DuplicateIdentifier``) an account id, MSISDN, IMSI, ICCID or
        alias that an existing account holds or that two accounts of the batch
        share, before writing any of the batch. (One taken by a concurrent
        transaction meanwhile is refused by the database instead; the unit of
        work must then be rolled back, as after any error.)"""
        ...

    async def get(self, account_id: str, *, lock: bool = False) -> Account | None:
        """The account, or None."""
        ...

    async def get_many(self, account_ids: Sequence[str]) -> dict[str, Account]:
        """The accounts that exist among ``account_ids``, by id, in one query."""
        ...

    async def by_identifiers(
        self, kind: IdentifierKind, values: Sequence[str]
    ) -> dict[str, Account]:
        """``by_identifier`` for several values of one kind: each value (as
        given) that names an account, with its account. One query for
        account ids, MSISDNs, IMSIs and ICCIDs; other kinds are looked up one
        by one."""
        ...

    async def save(self, account: Account) -> None:
        """Write the account, its identifiers and its add-on assignments."""
        ...

    async def by_identifier(self, kind: IdentifierKind, value: str) -> Account | None:
        """The account the identifier names, or None."""
        ...

    async def for_customer(self, customer_id: str) -> list[Account]:
        """The customer's accounts, ordered by id."""
        ...

    async def for_customers(self, customer_ids: Sequence[str]) -> dict[str, list[Account]]:
        """The accounts of several customers in one query: every id given is a
        key (an empty list when it has none), accounts ordered by id."""
        ...

    async def with_add_ons_ending(
        self, before: datetime, limit: int = 500, after: str | None = None
    ) -> list[str]:
        """Ids of accounts (not terminated) holding an add-on that ends at or
        before ``before``, in id order; with ``after``, those past it."""
        ...


class CatalogueRepository(Protocol):
    """Products, tariffs, destination groups and the dialing plan. Reads may be
    served from a per-process cache that every write through any process
    invalidates."""

    async def add_product(self, product: Product) -> None:
        """Insert a product (its code must be new)."""
        ...

    async def save_product(self, product: Product) -> None:
        """Replace a product's definition."""
        ...

    async def get_product(self, code: str) -> Product | None:
        """The product, or None."""
        ...

    async def products(self) -> list[Product]:
        """Every product, ordered by code."""
        ...

    async def add_destination_group(self, group: DestinationGroup) -> None:
        """Insert or replace a destination group."""
        ...

    async def destination_groups(self) -> list[DestinationGroup]:
        """Every destination group, ordered by code."""
        ...

    async def add_tariff(self, tariff: Tariff) -> None:
        """Insert or replace a tariff with all its rates."""
        ...

    async def get_tariff(self, code: str) -> Tariff | None:
        """The tariff, or None."""
        ...

    async def tariff_codes(self) -> list[str]:
        """Every tariff code, ordered."""
        ...

    async def set_dialing_rules(self, rules: Sequence[DialingRule]) -> None:
        """Replace the dialing plan."""
        ...

    async def dialing_plan(self) -> DialingPlan:
        """The dialing plan (empty when none is set)."""
        ...

    async def save_service_policy(self, code: str, policy: ServicePolicy) -> None:
        """Insert or replace the named service policy ``code``."""
        ...

    async def service_policies(self) -> dict[str, ServicePolicy]:
        """Every named service policy by code, ordered by code."""
        ...


class QuotaRepository(Protocol):
    """Quota buckets and service wallets."""

    async def add(self, bucket: QuotaBucket) -> None:
        """Insert a new bucket."""
        ...

    async def add_many(self, buckets: Sequence[QuotaBucket]) -> None:
        """Insert new buckets in one round trip; each is known to the unit of
        work afterwards (a later ``save`` skips it if it did not change)."""
        ...

    async def for_account(self, account_id: str, *, lock: bool = False) -> list[QuotaBucket]:
        """Every bucket of the account, active or not."""
        ...

    async def for_accounts(
        self, account_ids: Sequence[str], *, lock: bool = False
    ) -> dict[str, list[QuotaBucket]]:
        """Every bucket of each account (every id given is a key), in one
        query; ``lock`` locks them in bucket id order."""
        ...

    async def save(self, buckets: Sequence[QuotaBucket]) -> None:
        """Write used, reserved, period and expiry of the buckets."""
        ...

    async def remove_for_assignment(self, assignment_id: str) -> None:
        """Delete the buckets an add-on assignment gave (on removal)."""
        ...

    async def due_for_renewal(self, now: datetime, limit: int = 500) -> list[QuotaBucket]:
        """Buckets whose period ended at or before ``now``, the earliest ends
        first, locked in id order (the order charging locks buckets in)."""
        ...


class SessionRepository(Protocol):
    """Credit-control sessions with their streams, holds and stored answers."""

    async def add(self, session: CreditControlSession) -> None:
        """Insert a new session; ``SessionExists`` if the id is taken (a
        retransmitted INITIAL racing the first)."""
        ...

    async def get(self, session_id: str, *, lock: bool = False) -> CreditControlSession | None:
        """The session, or None."""
        ...

    async def get_many(
        self, session_ids: Sequence[str], *, lock: bool = False, with_owners: bool = False
    ) -> dict[str, CreditControlSession]:
        """The sessions that exist among ``session_ids``, by id, in one query
        per thousand ids; ``lock`` locks them in id order. ``with_owners``
        (with ``lock``): the caller locks the sessions' customers and their
        accounts' quota buckets next (``CustomerRepository.get_many`` with
        ``buckets_of``), which the store may lock in the same round trip."""
        ...

    async def add_many(self, sessions: Sequence[CreditControlSession]) -> None:
        """Insert new sessions in one round trip; ``SessionExists`` if one of
        the ids is taken (then nothing may be committed: roll back)."""
        ...

    async def save_many(self, sessions: Sequence[CreditControlSession]) -> None:
        """Write the state of sessions loaded or added in this unit of work, in
        one round trip, each checked against the version it was loaded at
        (``ConcurrentChange`` if one changed meanwhile: roll back)."""
        ...

    async def save(self, session: CreditControlSession) -> None:
        """Write the session's state."""
        ...

    async def open_for_account(self, account_id: str) -> list[str]:
        """Ids of the account's open sessions."""
        ...

    async def open_for_customer(self, customer_id: str) -> list[str]:
        """Ids of the open sessions of every account of the customer (a
        top-up or a suspension concerns them all)."""
        ...

    async def idle_since(
        self, before: datetime, limit: int = 500, after: tuple[datetime, str] | None = None
    ) -> list[tuple[datetime, str]]:
        """Open sessions with no request since ``before`` (Tcc supervision),
        as (last activity, id), oldest first; with ``after``, those past it
        in that order (the next page)."""
        ...


class XdrRepository(Protocol):
    """Usage records."""

    async def add(self, xdr: Xdr) -> None:
        """Insert an xDR; one per session (a second one for the same session is refused)."""
        ...

    async def add_many(self, records: Sequence[Xdr]) -> None:
        """Insert xDRs in one round trip; ``ConcurrentChange`` if a session of
        theirs already has one (roll back)."""
        ...

    async def get(self, xdr_id: str) -> Xdr | None:
        """The xDR, or None."""
        ...

    async def for_account(
        self,
        account_id: str,
        *,
        before: datetime | None = None,
        before_id: str | None = None,
        limit: int = 100,
    ) -> list[Xdr]:
        """The account's xDRs, newest first."""
        ...

    async def for_customer(
        self,
        customer_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after: datetime | None = None,
        after_id: str | None = None,
        limit: int | None = None,
    ) -> list[Xdr]:
        """The customer's xDRs ended in [since, until), oldest first (the
        first ``limit``); after the xDR that ended at ``after`` with the id
        ``after_id`` if given (after ``after`` without an id)."""
        ...


class TransactionRepository(Protocol):
    """The balance journal."""

    async def add(self, transaction: BalanceTransaction) -> None:
        """Append a balance transaction."""
        ...

    async def add_many(self, transactions: Sequence[BalanceTransaction]) -> None:
        """Append balance transactions in one round trip."""
        ...

    async def for_customer(
        self,
        customer_id: str,
        *,
        limit: int = 100,
        reasons: Sequence[TransactionReason] | None = None,
        reference: str | None = None,
        before: datetime | None = None,
        before_id: str | None = None,
    ) -> list[BalanceTransaction]:
        """The customer's transactions, newest first (of ``reasons`` only, and
        with that ``reference`` only, if given); after the transaction made at
        ``before`` with the id ``before_id`` if given (before ``before``
        without an id)."""
        ...


class VoucherRepository(Protocol):
    """Vouchers, found by the hash of their code."""

    async def add(self, voucher: Voucher) -> None:
        """Insert a voucher."""
        ...

    async def by_code_hash(self, code_hash: str, *, lock: bool = False) -> Voucher | None:
        """The voucher, or None."""
        ...

    async def save(self, voucher: Voucher) -> None:
        """Write the voucher's status."""
        ...

    async def page(
        self,
        *,
        batch: str | None = None,
        status: VoucherStatus | None = None,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[Voucher]:
        """Vouchers ordered by id after ``after_id``, of one batch or status if
        given (never their codes: the store has only hashes)."""
        ...


class CrmLinkRepository(Protocol):
    """Links of customers to records of CRM systems (a Zendesk organization):
    one record per customer and system, one customer per record."""

    async def link(self, customer_id: str, system: str, external_id: str, now: datetime) -> None:
        """Link the customer to ``external_id`` in ``system`` (replacing its
        link there); ``CrmRecordTaken`` if another customer holds that record."""
        ...

    async def unlink(self, customer_id: str, system: str) -> bool:
        """Remove the customer's link in ``system``; whether there was one."""
        ...

    async def for_customers(self, customer_ids: Sequence[str], system: str) -> dict[str, str]:
        """The ``system`` record of each customer that has one, in one query."""
        ...

    async def customer_for(self, system: str, external_id: str) -> str | None:
        """The customer linked to the record, or None."""
        ...


class OutboxEntry(Protocol):
    """An event as stored in the outbox."""

    id: int
    event_type: str
    aggregate: str
    aggregate_id: str
    payload: dict[str, object]
    occurred_at: datetime


class Outbox(Protocol):
    """Domain events written in the same transaction as the change (the
    transactional outbox); provisioning and notifications read them."""

    async def add(self, events: Sequence[DomainEvent]) -> None:
        """Append events, in order, in one round trip however many there are."""
        ...

    async def pending(self, limit: int = 100) -> list[OutboxEntry]:
        """Unpublished events, oldest first."""
        ...

    async def mark_published(self, ids: Sequence[int], at: datetime) -> None:
        """Mark events as handed on."""
        ...

    async def recent(
        self, *, aggregate_id: str | None = None, before_id: int | None = None, limit: int = 100
    ) -> list[OutboxEntry]:
        """The newest events, optionally of one aggregate, newest first (by
        id: the order they were written in); with ``before_id``, those older
        than that event."""
        ...

    async def after(self, last_id: int, limit: int = 200) -> list[OutboxEntry]:
        """Events with an id above ``last_id``, oldest first (a process tailing
        the outbox; ``published_at`` is left to the workers that own it)."""
        ...

    async def with_ids(self, ids: Sequence[int]) -> list[OutboxEntry]:
        """The events among ``ids`` that exist (committed), oldest first."""
        ...

    async def last_id(self) -> int:
        """The id of the newest event, 0 when there is none."""
        ...


class UnitOfWork(Protocol):
    """One transaction and the repositories that work inside it."""

    customers: CustomerRepository
    accounts: AccountRepository
    catalogue: CatalogueRepository
    quotas: QuotaRepository
    sessions: SessionRepository
    xdrs: XdrRepository
    transactions: TransactionRepository
    vouchers: VoucherRepository
    outbox: Outbox
    staff: StaffRepository
    api_keys: ApiKeyRepository
    tokens: TokenRepository
    credentials: CredentialRepository
    crm_links: CrmLinkRepository

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless ``commit`` was called."""
        ...

    async def commit(self) -> None:
        """Make every change of this unit of work durable at once."""
        ...

    async def rollback(self) -> None:
        """Discard every change of this unit of work."""
        ...

    def together(self) -> AbstractAsyncContextManager[None]:
        """A block whose writes the store may send together when it ends (one
        round trip for a batch's writes to several tables). A write's error
        or failed check may then be raised when the block ends rather than
        by the call; a read inside the block still sees the writes made
        before it. An exception inside the block leaves a unit of work that
        can only be rolled back."""
        ...


class UnitOfWorkFactory(Protocol):
    """Makes a fresh unit of work per use-case call."""

    def __call__(self) -> UnitOfWork:
        """A new, not yet started unit of work."""
        ...
