"""Balance and quota enquiries: what self-care, USSD and softphones show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ratel.application.base import UseCase, found
from ratel.domain.catalogue import Unit
from ratel.domain.money import Money
from ratel.ports.store import IdentifierKind


@dataclass(frozen=True, slots=True)
class BalanceView:
    customer_id: str
    account_id: str
    balance: Money
    credit_limit: Money
    reserved: Money
    available: Money

    @property
    def text(self) -> str:
        """The sentence a USSD gateway shows: 'Your current balance is 43.25 USD'."""
        return f"Your current balance is {self.balance.display()}"


@dataclass(frozen=True, slots=True)
class QuotaView:
    bucket_id: str
    product_code: str
    quota_code: str
    service: str
    unit: Unit
    allowance: Decimal
    used: Decimal
    reserved: Decimal
    remaining: Decimal
    expires_at: datetime | None
    renews_at: datetime | None
    active: bool


class BalanceEnquiry(UseCase):
    """The balance of the customer that owns an account."""

    async def __call__(self, kind: IdentifierKind, value: str) -> BalanceView:
        async with self.deps.uow() as uow:
            account = found(await uow.accounts.by_identifier(kind, value), "account", value)
            customer = found(
                await uow.customers.get(account.customer_id), "customer", account.customer_id
            )
        wallet = customer.wallet
        return BalanceView(
            customer.id,
            account.id,
            wallet.balance,
            wallet.credit_limit,
            wallet.reserved,
            wallet.available(),
        )


class QuotaEnquiry(UseCase):
    """An account's quotas with used and left units (expired ones on request)."""

    async def __call__(self, account_id: str, *, include_expired: bool = False) -> list[QuotaView]:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            found(await uow.accounts.get(account_id), "account", account_id)
            buckets = await uow.quotas.for_account(account_id)
        views = [
            QuotaView(
                bucket_id=b.id,
                product_code=b.product_code,
                quota_code=b.quota_code,
                service=b.scope.service.value,
                unit=b.unit,
                allowance=b.allowance,
                used=b.used,
                reserved=b.reserved,
                remaining=b.left,
                expires_at=b.expires_at,
                renews_at=b.period_end,
                active=b.is_active(now),
            )
            for b in sorted(buckets, key=lambda b: b.order_key())
        ]
        return [v for v in views if include_expired or v.active]
