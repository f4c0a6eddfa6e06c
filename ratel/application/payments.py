"""Money in and out of a balance: top-up, payment, manual transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ratel.application.base import UseCase, found, journal, record
from ratel.domain.customer import Customer
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.money import Money


class _BalanceChange(UseCase):
    async def _apply(
        self,
        customer_id: str,
        reason: TransactionReason,
        apply: Callable[[Customer, datetime], None],
        *,
        reference: str,
        ledger_code: str | None = None,
    ) -> tuple[Customer, BalanceTransaction | None]:
        async with self.deps.uow() as uow:
            customer = found(
                await uow.customers.get(customer_id, lock=True), "customer", customer_id
            )
            before = customer.wallet.balance
            apply(customer, self.deps.clock.now())
            await uow.customers.save(customer)
            transaction = await journal(
                uow,
                self.deps,
                customer,
                before,
                reason,
                reference=reference,
                ledger_code=ledger_code,
            )
            await record(uow, customer)
            await uow.commit()
        return customer, transaction


class TopUp(_BalanceChange):
    """Prepaid top-up: raises the balance (and lets blocked sessions go on)."""

    async def __call__(
        self, customer_id: str, amount: Money, reference: str = ""
    ) -> tuple[Customer, BalanceTransaction | None]:
        return await self._apply(
            customer_id,
            TransactionReason.TOP_UP,
            lambda c, now: c.top_up(amount, now, reference),
            reference=reference,
        )


class RecordPayment(_BalanceChange):
    """A payment received (bank, card, cash) for a customer's bills."""

    async def __call__(
        self, customer_id: str, amount: Money, reference: str = ""
    ) -> tuple[Customer, BalanceTransaction | None]:
        return await self._apply(
            customer_id,
            TransactionReason.PAYMENT,
            lambda c, now: c.pay(amount, now, reference),
            reference=reference,
        )


class ManualTransaction(_BalanceChange):
    """A staff adjustment (positive or negative) booked to a ledger code."""

    async def __call__(
        self, customer_id: str, amount: Money, reason: str, ledger_code: str, reference: str = ""
    ) -> tuple[Customer, BalanceTransaction | None]:
        return await self._apply(
            customer_id,
            TransactionReason.MANUAL,
            lambda c, now: c.adjust(amount, now, reason, reference),
            reference=reference or reason,
            ledger_code=ledger_code,
        )
