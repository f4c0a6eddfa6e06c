"""Customer lifecycle: open, update, suspend, resume, close, credit limit.

Suspending or closing a customer makes all its accounts unusable at once
(the charging core checks the customer); provisioning reacts to the events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ratel.application.base import UseCase, found, record
from ratel.domain.customer import BillingPeriod, Contact, Customer
from ratel.domain.money import Money


class OpenCustomer(UseCase):
    """Create a customer with an empty wallet."""

    async def __call__(
        self,
        name: str,
        currency: str,
        *,
        credit_limit: Money | None = None,
        country: str | None = None,
        contact: Contact | None = None,
        billing_period: BillingPeriod | None = None,
        customer_class: str = "",
        custom_fields: Mapping[str, str] | None = None,
        customer_id: str | None = None,
    ) -> Customer:
        customer = Customer.open(
            customer_id or self.deps.ids.new("cus"),
            name,
            currency,
            self.deps.clock.now(),
            credit_limit=credit_limit,
            country=country,
            contact=contact,
            billing_period=billing_period,
            customer_class=customer_class,
            custom_fields=custom_fields,
        )
        async with self.deps.uow() as uow:
            await uow.customers.add(customer)
            await record(uow, customer)
            await uow.commit()
        return customer


class UpdateCustomer(UseCase):
    """Change a customer's descriptive fields (name, contact, country, class,
    billing period, custom fields); only the fields given change."""

    async def __call__(self, customer_id: str, **changes: Any) -> Customer:
        async with self.deps.uow() as uow:
            customer = found(
                await uow.customers.get(customer_id, lock=True), "customer", customer_id
            )
            customer.update(self.deps.clock.now(), **changes)
            await uow.customers.save(customer)
            await record(uow, customer)
            await uow.commit()
        return customer


class SuspendCustomer(UseCase):
    """Suspend for non-payment: every account becomes unusable."""

    async def __call__(self, customer_id: str, reason: str = "non-payment") -> Customer:
        async with self.deps.uow() as uow:
            customer = found(
                await uow.customers.get(customer_id, lock=True), "customer", customer_id
            )
            customer.suspend(reason, self.deps.clock.now())
            await uow.customers.save(customer)
            await record(uow, customer)
            await uow.commit()
        return customer


class ResumeCustomer(UseCase):
    """Lift a suspension."""

    async def __call__(self, customer_id: str) -> Customer:
        async with self.deps.uow() as uow:
            customer = found(
                await uow.customers.get(customer_id, lock=True), "customer", customer_id
            )
            customer.resume(self.deps.clock.now())
            await uow.customers.save(customer)
            await record(uow, customer)
            await uow.commit()
        return customer


class CloseCustomer(UseCase):
    """Terminate the customer and every one of its accounts."""

    async def __call__(self, customer_id: str) -> Customer:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            customer = found(
                await uow.customers.get(customer_id, lock=True), "customer", customer_id
            )
            accounts = await uow.accounts.for_customer(customer_id)
            for account in accounts:
                if account.status.value != "terminated":
                    account.terminate(now)
                    await uow.accounts.save(account)
            customer.close(now)
            await uow.customers.save(customer)
            await record(uow, customer, *accounts)
            await uow.commit()
        return customer


class SetCreditLimit(UseCase):
    """Change how far below zero the balance may go."""

    async def __call__(self, customer_id: str, credit_limit: Money) -> Customer:
        async with self.deps.uow() as uow:
            customer = found(
                await uow.customers.get(customer_id, lock=True), "customer", customer_id
            )
            customer.set_credit_limit(credit_limit, self.deps.clock.now())
            await uow.customers.save(customer)
            await record(uow, customer)
            await uow.commit()
        return customer
