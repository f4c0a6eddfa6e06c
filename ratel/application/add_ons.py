"""Add-ons: buy or grant one for a window, remove one."""

from __future__ import annotations

import hashlib
from datetime import datetime

from ratel.application.accounts import buckets_for
from ratel.application.base import UseCase, found, journal, record
from ratel.domain.account import Account, AddOnAssignment
from ratel.domain.customer import CustomerStatus
from ratel.domain.errors import CustomerSuspended, InvalidAddOn, ReferenceReused
from ratel.domain.ledger import TransactionReason


def _referenced_id(account_id: str, reference: str) -> str:
    """The assignment id of the purchase ``reference`` on ``account_id``."""
    digest = hashlib.sha256(f"{account_id}\x00{reference}".encode()).hexdigest()
    return f"aoa_ref_{digest[:32]}"


class AddAddOn(UseCase):
    """Give the account an add-on from ``effective_from`` (now) to
    ``effective_to`` (now + the product's validity when not given), with its
    quotas. With ``charge=True`` the add-on's price is debited at once and the
    purchase is refused when the funds do not cover it. A ``reference`` (the
    client's id of the purchase) makes the call safe to retry: the same
    reference again returns the add-on given the first time, charging
    nothing (its assignment id is made from the account and the reference)."""

    async def __call__(
        self,
        account_id: str,
        product_code: str,
        *,
        effective_from: datetime | None = None,
        effective_to: datetime | None = None,
        charge: bool = False,
        reference: str = "",
    ) -> AddOnAssignment:
        now = self.deps.clock.now()
        assignment_id = (
            _referenced_id(account_id, reference) if reference else self.deps.ids.new("aoa")
        )
        async with self.deps.uow() as uow:
            account = found(await uow.accounts.get(account_id, lock=True), "account", account_id)
            for earlier in account.add_ons:
                if earlier.id == assignment_id:
                    if earlier.product_code != product_code:
                        raise ReferenceReused(
                            f"add-on purchase {reference!r} of account {account_id} was "
                            f"{earlier.product_code}, not {product_code}"
                        )
                    return earlier  # a retry: given, and paid, once
            product = found(await uow.catalogue.get_product(product_code), "product", product_code)
            if not product.is_add_on:
                raise InvalidAddOn(f"{product_code} is a main product, not an add-on")
            customer = found(
                await uow.customers.get(account.customer_id, lock=True),
                "customer",
                account.customer_id,
            )
            if charge and customer.status is CustomerStatus.SUSPENDED:
                # the balance would pay for a service the account may not use
                raise CustomerSuspended(f"customer {customer.id} is suspended: it buys no add-on")
            start = effective_from or now
            end = effective_to
            if end is None and product.validity is not None:
                end = start + product.validity
            assignment = account.add_add_on(
                assignment_id, product.code, product.precedence, now, start, end
            )
            if charge and product.price is not None and product.price.is_positive():
                before = customer.wallet.balance
                customer.charge(product.price, now, "add-on purchase", assignment.id)
                await uow.customers.save(customer)
                await journal(
                    uow,
                    self.deps,
                    customer,
                    before,
                    TransactionReason.ADD_ON,
                    reference=assignment.id,
                    ledger_code=product.ledger_code,
                    account_id=account.id,
                )
            await uow.quotas.add_many(
                buckets_for(
                    self.deps, account, product, start, ends_at=end, assignment_id=assignment.id
                )
            )
            await uow.accounts.save(account)
            await record(uow, account, customer)
            await uow.commit()
        return assignment


class RemoveAddOn(UseCase):
    """Take an add-on away now, with the quotas it gave."""

    async def __call__(self, account_id: str, assignment_id: str) -> Account:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            account = found(await uow.accounts.get(account_id, lock=True), "account", account_id)
            account.remove_add_on(assignment_id, now)
            await uow.quotas.remove_for_assignment(assignment_id)
            await uow.accounts.save(account)
            await record(uow, account)
            await uow.commit()
        return account
