"""Bulk import: many customers, each with its accounts, in one transaction.

Migrations from another billing system and benchmark data sets create
customers by the hundred thousand; a transaction per customer would spend
its time committing, and a statement per row its time in round trips and
statement building. ``ImportCustomers`` writes a batch (a thousand is a good
size) in one unit of work, a statement per table: all of it or, on any
error, none of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ratel.application.accounts import buckets_for
from ratel.application.base import UseCase, balance_transaction, found, record
from ratel.domain.account import Account
from ratel.domain.catalogue import Product
from ratel.domain.customer import Contact, Customer
from ratel.domain.errors import InvalidAccount
from ratel.domain.events import DomainEvent
from ratel.domain.identifiers import Identifiers
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.money import Money
from ratel.domain.quota import QuotaBucket
from ratel.ports.store import UnitOfWork


@dataclass(frozen=True, slots=True)
class NewAccount:
    """An account to create on a main product."""

    product_code: str
    identifiers: Identifiers = field(default_factory=Identifiers)
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """A customer to create, with its accounts and an opening top-up."""

    name: str
    currency: str
    accounts: Sequence[NewAccount] = ()
    opening_balance: Money | None = None
    credit_limit: Money | None = None
    country: str | None = None
    contact: Contact | None = None
    customer_class: str = ""
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class ImportReport:
    customers: int
    accounts: int


class ImportCustomers(UseCase):
    """Create a batch of customers with their accounts (and the accounts'
    quota buckets, the opening top-ups and every event) in one transaction.

    The domain objects are made first, then written with one statement per
    table for the whole batch (customers, journal, accounts, buckets,
    outbox), so a batch costs a handful of round trips however large it is.
    An identifier that an existing account holds, or that two new accounts
    share, refuses the whole batch (``DuplicateIdentifier``)."""

    async def __call__(self, batch: Sequence[NewCustomer]) -> ImportReport:
        now = self.deps.clock.now()
        customers: list[Customer] = []
        accounts: list[Account] = []
        buckets: list[QuotaBucket] = []
        transactions: list[BalanceTransaction] = []
        events: list[DomainEvent] = []
        async with self.deps.uow() as uow:
            products: dict[str, Product] = {}
            for row in batch:
                customer = Customer.open(
                    row.customer_id or self.deps.ids.new("cus"),
                    row.name,
                    row.currency,
                    now,
                    credit_limit=row.credit_limit,
                    country=row.country,
                    contact=row.contact,
                    customer_class=row.customer_class,
                    custom_fields=row.custom_fields,
                )
                before = customer.wallet.balance
                reason = TransactionReason.TOP_UP
                opening = row.opening_balance
                # booked before the insert: the row is written with its balance
                if opening is not None and opening.is_positive():
                    customer.top_up(opening, now, "opening balance")
                elif opening is not None and not opening.is_zero():
                    # a debt carried over from the system migrated from
                    customer.adjust(opening, now, "opening balance")
                    reason = TransactionReason.MANUAL
                transaction = balance_transaction(
                    self.deps, customer, before, reason, reference="import"
                )
                if transaction is not None:
                    transactions.append(transaction)
                customers.append(customer)
                created: list[Account] = []
                for new in row.accounts:
                    product = products.get(new.product_code)
                    if product is None:
                        product = await _main_product(uow, new.product_code)
                        products[product.code] = product
                    account = Account.create(
                        new.account_id or self.deps.ids.new("acc"),
                        customer.id,
                        product.code,
                        now,
                        identifiers=new.identifiers,
                        custom_fields=new.custom_fields,
                    )
                    buckets.extend(buckets_for(self.deps, account, product, now))
                    created.append(account)
                accounts.extend(created)
                events.extend(customer.pull_events())
                for account in created:
                    events.extend(account.pull_events())
            # Parents before children (foreign keys), a statement per table.
            await uow.customers.add_many(customers)
            await uow.transactions.add_many(transactions)
            await uow.accounts.add_many(accounts)
            await uow.quotas.add_many(buckets)
            await record(uow, extra=events)
            await uow.commit()
        return ImportReport(customers=len(customers), accounts=len(accounts))


async def _main_product(uow: UnitOfWork, code: str) -> Product:
    product = found(await uow.catalogue.get_product(code), "product", code)
    if product.is_add_on:
        raise InvalidAccount(f"{product.code} is an add-on, not a main product")
    return product
