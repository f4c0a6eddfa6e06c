"""Bulk import: many customers, each with its accounts, in one transaction.

Migrations from another billing system and benchmark data sets create
customers by the hundred thousand; a transaction per customer would spend
its time committing. ``ImportCustomers`` writes a batch (a thousand is a good
size) in one unit of work: all of it or, on any error, none of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ratel.application.accounts import buckets_for
from ratel.application.base import UseCase, found, journal, record
from ratel.domain.account import Account
from ratel.domain.catalogue import Product
from ratel.domain.customer import Contact, Customer
from ratel.domain.errors import InvalidAccount
from ratel.domain.events import DomainEvent
from ratel.domain.identifiers import Identifiers
from ratel.domain.ledger import TransactionReason
from ratel.domain.money import Money


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
    quota buckets, the opening top-ups and every event) in one transaction."""

    async def __call__(self, batch: Sequence[NewCustomer]) -> ImportReport:
        now = self.deps.clock.now()
        accounts = 0
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
                if row.opening_balance is not None and row.opening_balance.is_positive():
                    # credited before the insert: the row is written with its balance
                    customer.top_up(row.opening_balance, now, "opening balance")
                await uow.customers.add(customer)
                await journal(
                    uow, self.deps, customer, before, TransactionReason.TOP_UP, reference="import"
                )
                created: list[Account] = []
                for new in row.accounts:
                    product = products.get(new.product_code)
                    if product is None:
                        product = found(
                            await uow.catalogue.get_product(new.product_code),
                            "product",
                            new.product_code,
                        )
                        if product.is_add_on:
                            raise InvalidAccount(f"{product.code} is an add-on, not a main product")
                        products[product.code] = product
                    account = Account.create(
                        new.account_id or self.deps.ids.new("acc"),
                        customer.id,
                        product.code,
                        now,
                        identifiers=new.identifiers,
                        custom_fields=new.custom_fields,
                    )
                    await uow.accounts.add(account)
                    for bucket in buckets_for(self.deps, account, product, now):
                        await uow.quotas.add(bucket)
                    created.append(account)
                accounts += len(created)
                events.extend(customer.pull_events())
                for account in created:
                    events.extend(account.pull_events())
            # the outbox takes the whole batch in one statement
            await record(uow, extra=events)
            await uow.commit()
        return ImportReport(customers=len(batch), accounts=accounts)
