"""Vouchers: prepaid codes that raise a customer's balance once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ratel.domain.errors import DomainError
from ratel.domain.money import Money


class VoucherStatus(StrEnum):
    ACTIVE = "active"
    REDEEMED = "redeemed"
    CANCELLED = "cancelled"


class VoucherUnusable(DomainError):
    """Unknown, already redeemed, cancelled or expired voucher."""

    code = "voucher_unusable"


@dataclass(kw_only=True)
class Voucher:
    """A code worth ``value``, usable once before ``expires_at``. The store
    keeps only a hash of the code; ``code_hash`` is that hash."""

    id: str
    code_hash: str
    value: Money
    created_at: datetime
    expires_at: datetime | None = None
    batch: str = ""
    status: VoucherStatus = VoucherStatus.ACTIVE
    redeemed_by: str | None = None  # customer id
    redeemed_at: datetime | None = None

    def __post_init__(self) -> None:
        self.status = VoucherStatus(self.status)
        if not self.value.is_positive():
            raise DomainError("a voucher is worth a positive amount")
        if self.value != self.value.stored():
            raise DomainError(f"{self.value} has more than 8 decimal places")

    def redeem(self, customer_id: str, currency: str, now: datetime) -> Money:
        """Mark the voucher used by ``customer_id``; return what it is worth."""
        if self.status is VoucherStatus.REDEEMED:
            raise VoucherUnusable("this voucher has already been used")
        if self.status is VoucherStatus.CANCELLED:
            raise VoucherUnusable("this voucher has been cancelled")
        if self.expires_at is not None and now >= self.expires_at:
            raise VoucherUnusable("this voucher has expired")
        if currency != self.value.currency:
            raise VoucherUnusable(
                f"this voucher is in {self.value.currency}, the account in {currency}"
            )
        self.status = VoucherStatus.REDEEMED
        self.redeemed_by = customer_id
        self.redeemed_at = now
        return self.value

    def cancel(self) -> None:
        if self.status is VoucherStatus.REDEEMED:
            raise VoucherUnusable("a redeemed voucher cannot be cancelled")
        self.status = VoucherStatus.CANCELLED
