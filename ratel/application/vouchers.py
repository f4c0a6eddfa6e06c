"""Vouchers: create a batch of codes, redeem one onto a balance."""

from __future__ import annotations

import secrets
from datetime import datetime

from ratel.application.base import Dependencies, UseCase, found, journal, record
from ratel.application.throttle import VoucherThrottle
from ratel.domain.customer import Customer
from ratel.domain.ledger import TransactionReason
from ratel.domain.money import Money
from ratel.domain.voucher import Voucher, VoucherUnusable

_CODE_DIGITS = 14


def new_code() -> str:
    """A random 14-digit code (keyable on a phone, about 46 bits)."""
    return "".join(secrets.choice("0123456789") for _ in range(_CODE_DIGITS))


class CreateVouchers(UseCase):
    """Make ``count`` vouchers worth ``value``; returns the codes, which are
    shown this once (only their hashes are stored)."""

    async def __call__(
        self, count: int, value: Money, *, batch: str = "", expires_at: datetime | None = None
    ) -> list[str]:
        if not 1 <= count <= 100_000:
            raise ValueError("a batch holds 1 to 100,000 vouchers")
        now = self.deps.clock.now()
        codes = [new_code() for _ in range(count)]
        async with self.deps.uow() as uow:
            for code in codes:
                await uow.vouchers.add(
                    Voucher(
                        id=self.deps.ids.new("vch"),
                        code_hash=self.deps.hasher.digest(code),
                        value=value,
                        created_at=now,
                        expires_at=expires_at,
                        batch=batch,
                    )
                )
            await uow.commit()
        return codes


class RedeemVoucher(UseCase):
    """Put a voucher's value on a customer's balance, once. A customer's
    unusable codes are counted (``VoucherThrottle``): past five in an hour,
    the next tries are refused (``TooManyAttempts``) before any code is
    looked up, so that guessing codes from an account is slow."""

    def __init__(self, deps: Dependencies, throttle: VoucherThrottle | None = None) -> None:
        super().__init__(deps)
        self.throttle = throttle or VoucherThrottle(deps.clock)

    async def __call__(self, customer_id: str, code: str) -> Customer:
        return await self.throttle.attempt(
            customer_id, None, lambda: self._redeem(customer_id, code)
        )

    async def _redeem(self, customer_id: str, code: str) -> Customer:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            voucher = await uow.vouchers.by_code_hash(
                self.deps.hasher.digest(code.strip()), lock=True
            )
            if voucher is None:
                raise VoucherUnusable("no voucher has this code")
            customer = found(
                await uow.customers.get(customer_id, lock=True), "customer", customer_id
            )
            value = voucher.redeem(customer.id, customer.currency, now)
            before = customer.wallet.balance
            customer.top_up(value, now, f"voucher {voucher.id}")
            await uow.vouchers.save(voucher)
            await uow.customers.save(customer)
            await journal(
                uow, self.deps, customer, before, TransactionReason.VOUCHER, reference=voucher.id
            )
            await record(uow, customer)
            await uow.commit()
        return customer
