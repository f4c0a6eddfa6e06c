"""Balance transactions: every change of a balance is one row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ratel.domain.money import Money


class TransactionReason(StrEnum):
    TOP_UP = "top_up"
    PAYMENT = "payment"
    VOUCHER = "voucher"
    MANUAL = "manual"
    USAGE = "usage"
    REFUND = "refund"
    SUBSCRIPTION = "subscription"
    ADD_ON = "add_on"


@dataclass(frozen=True, slots=True)
class BalanceTransaction:
    """One movement of a customer's balance: ``amount`` is signed (a charge
    is negative), ``balance_after`` the balance it left."""

    id: str
    customer_id: str
    amount: Money
    balance_after: Money
    reason: TransactionReason
    created_at: datetime
    reference: str = ""
    ledger_code: str | None = None
    account_id: str | None = None
