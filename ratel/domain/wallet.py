"""The customer's money: balance, credit limit and reservations.

``available = balance + credit_limit - reserved``. A reservation never takes
``available`` below zero; the store enforces the same rule atomically with a
conditional UPDATE so that concurrent sessions cannot pass the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from ratel.domain.errors import CreditLimitExceeded, CurrencyMismatch, InvalidMoney
from ratel.domain.money import Money, _exact


@dataclass(slots=True)
class Wallet:
    """Balance (may be negative down to ``-credit_limit``), credit limit (>= 0)
    and the money held by open credit-control reservations."""

    balance: Money
    credit_limit: Money
    reserved: Money

    def __post_init__(self) -> None:
        currencies = {self.balance.currency, self.credit_limit.currency, self.reserved.currency}
        if len(currencies) != 1:
            raise CurrencyMismatch(f"a wallet holds one currency, got {sorted(currencies)}")
        if self.credit_limit.is_negative():
            raise InvalidMoney("a credit limit is zero or positive")
        if self.reserved.is_negative():
            raise InvalidMoney("reserved money is zero or positive")

    @classmethod
    def empty(cls, currency: str, credit_limit: Money | None = None) -> Wallet:
        zero = Money.zero(currency)
        return cls(zero, credit_limit or zero, zero)

    @property
    def currency(self) -> str:
        return self.balance.currency

    def available(self) -> Money:
        """What may still be reserved or spent."""
        balance, limit, reserved = self.balance, self.credit_limit, self.reserved
        if (
            type(balance) is Money
            and type(limit) is Money
            and type(reserved) is Money
            and balance.currency == limit.currency == reserved.currency
        ):
            # one Money instead of two: a credit-control grant asks twice
            return _exact(balance.amount + limit.amount - reserved.amount, balance.currency)
        return balance + limit - reserved

    def can_reserve(self, amount: Money) -> bool:
        return amount <= self.available()

    def reserve(self, amount: Money) -> None:
        """Hold ``amount`` for a session; refuse if it would pass the credit limit."""
        if amount.is_negative():
            raise InvalidMoney("a reservation is zero or positive")
        if amount.is_zero():
            # Holding nothing never passes the limit, even when usage beyond the
            # last grant left the balance below it; refusing would roll back the
            # charge of that usage.
            return
        if not self.can_reserve(amount):
            raise CreditLimitExceeded(
                f"reserving {amount} would pass the credit limit (available {self.available()})"
            )
        self.reserved = self.reserved + amount

    def release(self, amount: Money) -> None:
        """Give back held money that was not used."""
        if amount.is_negative() or amount > self.reserved:
            raise InvalidMoney(f"cannot release {amount} of {self.reserved} reserved")
        self.reserved = self.reserved - amount

    def settle(self, held: Money, charged: Money) -> None:
        """Close a reservation of ``held`` and debit ``charged`` (which may differ:
        less when the network used less, more when it used more than granted)."""
        if charged.is_negative():
            raise InvalidMoney("a charge is zero or positive")
        # compute the new balance first: a refused charge leaves the hold in place
        balance = self.balance - charged
        self.release(held)
        self.balance = balance

    def credit(self, amount: Money) -> None:
        """Top-up, payment or refund."""
        if not amount.is_positive():
            raise InvalidMoney("a credit is positive")
        self.balance = self.balance + amount

    def debit(self, amount: Money) -> None:
        """Charge ``amount`` at once (direct debit, fee); refuse past the credit limit."""
        if amount.is_negative():
            raise InvalidMoney("a debit is zero or positive")
        if amount > self.available():
            raise CreditLimitExceeded(
                f"debiting {amount} would pass the credit limit (available {self.available()})"
            )
        self.balance = self.balance - amount

    def adjust(self, delta: Money) -> None:
        """A manual transaction or recurring fee by staff: may pass the limit on purpose."""
        self.balance = self.balance + delta
