"""Add-ons: buy or grant one for a window, remove one."""

from __future__ import annotations

from datetime import datetime

from ratel.application.accounts import buckets_for
from ratel.application.base import UseCase, found, journal, record
from ratel.domain.account import Account, AddOnAssignment
from ratel.domain.errors import InvalidAddOn
from ratel.domain.ledger import TransactionReason


class AddAddOn(UseCase):
    """Give the account an add-on from ``effective_from`` (now) to
    ``effective_to`` (now + the product's validity when not given), with its
    quotas. With ``charge=True`` the add-on's price is debited at once and the
    purchase is refused when the funds do not cover it."""

    async def __call__(
        self,
        account_id: str,
        product_code: str,
        *,
        effective_from: datetime | None = None,
        effective_to: datetime | None = None,
        charge: bool = False,
    ) -> AddOnAssignment:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            account = found(await uow.accounts.get(account_id, lock=True), "account", account_id)
            product = found(await uow.catalogue.get_product(product_code), "product", product_code)
            if not product.is_add_on:
                raise InvalidAddOn(f"{product_code} is a main product, not an add-on")
            customer = found(
                await uow.customers.get(account.customer_id, lock=True),
                "customer",
                account.customer_id,
            )
            start = effective_from or now
            end = effective_to
            if end is None and product.validity is not None:
                end = start + product.validity
            assignment = account.add_add_on(
                self.deps.ids.new("aoa"), product.code, product.precedence, now, start, end
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
