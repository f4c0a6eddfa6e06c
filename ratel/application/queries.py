"""Read-side use cases: what the GraphQL API (and any other reader) shows.

Each opens its own unit of work, reads through the repository ports and
returns domain objects; nothing here writes. Lists come in pages: ``limit``
bounds every read, so a caller can never ask the store for everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ratel.application.base import UseCase
from ratel.domain.account import Account
from ratel.domain.catalogue import Product, ServicePolicy
from ratel.domain.charging import Xdr
from ratel.domain.customer import Customer, CustomerStatus
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.rating import DestinationGroup, Tariff
from ratel.domain.voucher import Voucher, VoucherStatus
from ratel.ports.store import IdentifierKind, OutboxEntry

#: The most rows one page may hold, whatever the caller asks for.
MAX_PAGE = 100


def _page_size(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE + 1))


@dataclass(frozen=True, slots=True)
class CustomerSearch:
    """Filters of a customer search; every filter given must match. An
    identifier (account id, MSISDN, IMSI, ICCID) names at most one customer."""

    name: str | None = None
    country: str | None = None
    status: CustomerStatus | None = None
    product_code: str | None = None
    account_id: str | None = None
    msisdn: str | None = None
    imsi: str | None = None
    iccid: str | None = None

    def identifier(self) -> tuple[IdentifierKind, str] | None:
        """The identifier to search by, if one was given (the first of them)."""
        for kind, value in (
            (IdentifierKind.ACCOUNT_ID, self.account_id),
            (IdentifierKind.MSISDN, self.msisdn),
            (IdentifierKind.IMSI, self.imsi),
            (IdentifierKind.ICCID, self.iccid),
        ):
            if value:
                return kind, value.strip()
        return None


def _matches(customer: Customer, search: CustomerSearch) -> bool:
    """Whether a customer found by identifier also passes the other filters
    (the product filter is checked by the caller, which has the accounts)."""
    if search.name and search.name.lower() not in customer.name.lower():
        return False
    if search.country and customer.country != search.country.strip().upper():
        return False
    return search.status is None or customer.status is CustomerStatus(search.status)


class FindCustomers(UseCase):
    """A page of customers ordered by id, after the customer id ``after``."""

    async def __call__(
        self, search: CustomerSearch, *, after: str | None = None, limit: int = 20
    ) -> list[Customer]:
        async with self.deps.uow() as uow:
            identifier = search.identifier()
            if identifier is None:
                return await uow.customers.find(
                    name=search.name,
                    country=search.country,
                    status=search.status,
                    product_code=search.product_code,
                    after=after,
                    limit=_page_size(limit),
                )
            account = await uow.accounts.by_identifier(*identifier)
            if account is None:
                return []
            customer = await uow.customers.get(account.customer_id)
            if customer is None or not _matches(customer, search):
                return []
            if after is not None and customer.id <= after:
                return []
            if search.product_code:
                accounts = await uow.accounts.for_customer(customer.id)
                if all(a.product_code != search.product_code for a in accounts):
                    return []
            return [customer]


class CustomersById(UseCase):
    """Customers by id, in one unit of work (a DataLoader batch); ids that do
    not exist are left out."""

    async def __call__(self, customer_ids: Sequence[str]) -> dict[str, Customer]:
        found: dict[str, Customer] = {}
        async with self.deps.uow() as uow:
            for customer_id in dict.fromkeys(customer_ids):
                customer = await uow.customers.get(customer_id)
                if customer is not None:
                    found[customer_id] = customer
        return found


class AccountsOfCustomers(UseCase):
    """The accounts of several customers, ordered by id, in one query (a
    DataLoader batch)."""

    async def __call__(self, customer_ids: Sequence[str]) -> dict[str, list[Account]]:
        async with self.deps.uow() as uow:
            return await uow.accounts.for_customers(customer_ids)


class FindAccount(UseCase):
    """The account an identifier names (account id, MSISDN, IMSI, ICCID, ...), or None."""

    async def __call__(self, kind: IdentifierKind, value: str) -> Account | None:
        async with self.deps.uow() as uow:
            if kind is IdentifierKind.ACCOUNT_ID:
                return await uow.accounts.get(value.strip())
            return await uow.accounts.by_identifier(kind, value.strip())


class ListProducts(UseCase):
    """Every product (main products and add-ons), ordered by code; served from
    the catalogue cache, so a call costs at most a version check."""

    async def __call__(self, *, add_ons_only: bool = False) -> list[Product]:
        async with self.deps.uow() as uow:
            products = await uow.catalogue.products()
        return [p for p in products if p.is_add_on or not add_ons_only]


class ListTariffs(UseCase):
    """Tariffs ordered by code, after the code ``after``."""

    async def __call__(self, *, after: str | None = None, limit: int = 20) -> list[Tariff]:
        async with self.deps.uow() as uow:
            codes = [c for c in await uow.catalogue.tariff_codes() if after is None or c > after]
            tariffs = []
            for code in codes[: _page_size(limit)]:
                tariff = await uow.catalogue.get_tariff(code)
                if tariff is not None:
                    tariffs.append(tariff)
        return tariffs


class GetTariff(UseCase):
    """One tariff with its rates, or None."""

    async def __call__(self, code: str) -> Tariff | None:
        async with self.deps.uow() as uow:
            return await uow.catalogue.get_tariff(code)


class ListDestinationGroups(UseCase):
    """Every destination group, ordered by code."""

    async def __call__(self) -> list[DestinationGroup]:
        async with self.deps.uow() as uow:
            return await uow.catalogue.destination_groups()


class AccountXdrs(UseCase):
    """An account's xDRs, newest first, after the one that ended at
    ``before`` with the id ``before_id`` (before ``before`` without an id)."""

    async def __call__(
        self,
        account_id: str,
        *,
        before: datetime | None = None,
        before_id: str | None = None,
        limit: int = 20,
    ) -> list[Xdr]:
        async with self.deps.uow() as uow:
            return await uow.xdrs.for_account(
                account_id, before=before, before_id=before_id, limit=_page_size(limit)
            )


class CustomerXdrs(UseCase):
    """A customer's xDRs ended in [since, until), oldest first, after the one
    that ended at ``after`` with the id ``after_id`` if given."""

    async def __call__(
        self,
        customer_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after: datetime | None = None,
        after_id: str | None = None,
        limit: int | None = None,
    ) -> list[Xdr]:
        async with self.deps.uow() as uow:
            return await uow.xdrs.for_customer(
                customer_id, since=since, until=until, after=after, after_id=after_id, limit=limit
            )


class CustomerTransactions(UseCase):
    """A customer's newest balance transactions, newest first, after the one
    made at ``before`` with the id ``before_id`` if given; of ``reasons`` only
    if given (payments: payment, top-up, voucher)."""

    async def __call__(
        self,
        customer_id: str,
        *,
        before: datetime | None = None,
        before_id: str | None = None,
        limit: int = 20,
        reasons: Sequence[TransactionReason] | None = None,
    ) -> list[BalanceTransaction]:
        async with self.deps.uow() as uow:
            return await uow.transactions.for_customer(
                customer_id,
                limit=_page_size(limit),
                reasons=reasons,
                before=before,
                before_id=before_id,
            )


class RecentEvents(UseCase):
    """The newest domain events of the outbox, optionally of one aggregate
    (a customer or account id), newest first, older than the event
    ``before_id`` if given."""

    async def __call__(
        self, *, aggregate_id: str | None = None, before_id: int | None = None, limit: int = 20
    ) -> list[OutboxEntry]:
        async with self.deps.uow() as uow:
            return await uow.outbox.recent(
                aggregate_id=aggregate_id, before_id=before_id, limit=_page_size(limit)
            )


class ListVouchers(UseCase):
    """A page of vouchers ordered by id (status, value, batch: never the
    code, which the store does not have), of one batch or status if given."""

    async def __call__(
        self,
        *,
        batch: str | None = None,
        status: VoucherStatus | None = None,
        after: str | None = None,
        limit: int = 20,
    ) -> list[Voucher]:
        async with self.deps.uow() as uow:
            return await uow.vouchers.page(
                batch=batch, status=status, after_id=after, limit=_page_size(limit)
            )


class ListServicePolicies(UseCase):
    """Every named service policy (what the network needs to deliver a
    service), by code."""

    async def __call__(self) -> dict[str, ServicePolicy]:
        async with self.deps.uow() as uow:
            return await uow.catalogue.service_policies()
