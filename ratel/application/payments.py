"""Money in and out of a balance: top-up, payment, manual transaction.

A top-up or payment that names a reference (the payment gateway's or the
USSD gateway's transaction id) is applied once: a client that retries after a
timeout gets the first transaction back and the balance is raised once. The
same reference with another amount is refused. A manual transaction is never
matched this way (its reference defaults to its reason)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ratel.application.base import UseCase, found, journal, record
from ratel.domain.customer import Customer
from ratel.domain.errors import InvalidMoney, ReferenceReused
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.money import Money


class _BalanceChange(UseCase):
    async def _apply(
        self,
        customer_id: str,
        reason: TransactionReason,
        apply: Callable[[Customer, datetime], None],
        amount: Money,
        *,
        reference: str,
        ledger_code: str | None = None,
        once: Money | None = None,
    ) -> tuple[Customer, BalanceTransaction | None]:
        """``amount``: what moves; ``once``: it is applied at most once per
        reference."""
        if amount != amount.stored():
            # the stored balance moves by the rounded amount, the journal would
            # say another, and a retry would not match its first transaction
            raise InvalidMoney(f"{amount} has more than 8 decimal places")
        async with self.deps.uow() as uow:
            # The customer's row lock also serializes two copies of one request.
            customer = found(
                await uow.customers.get(customer_id, lock=True), "customer", customer_id
            )
            if once is not None and reference:
                earlier = await uow.transactions.for_customer(
                    customer_id, limit=1, reasons=[reason], reference=reference
                )
                if earlier:
                    if earlier[0].amount != once:
                        raise ReferenceReused(
                            f"{reason.value} {reference!r} of customer {customer_id} was "
                            f"{earlier[0].amount}, not {once}"
                        )
                    return customer, earlier[0]
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
            amount,
            reference=reference,
            once=amount,
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
            amount,
            reference=reference,
            once=amount,
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
            amount,
            reference=reference or reason,
            ledger_code=ledger_code,
        )
