"""The money paths other than network charging, on SQLite and PostgreSQL.

Each use case runs as its own unit of work, concurrently where that matters,
as concurrent GraphQL requests would."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import NOW, account, add_on, customer, main_product, usd

from ratel.adapters.db.tables import balance_transactions, customers, vouchers
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.system import HmacHasher, TimeOrderedIds
from ratel.application.add_ons import AddAddOn
from ratel.application.base import Dependencies
from ratel.application.bulk import ImportCustomers, NewCustomer
from ratel.application.payments import ManualTransaction, RecordPayment, TopUp
from ratel.application.throttle import TooManyAttempts
from ratel.application.vouchers import CreateVouchers, RedeemVoucher
from ratel.domain.errors import DomainError
from ratel.domain.money import Money
from ratel.domain.voucher import VoucherUnusable


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def deps(uow: SqlUnitOfWorkFactory, clock: Clock) -> Dependencies:
    async with uow() as work:
        await work.catalogue.add_product(main_product())
        await work.catalogue.add_product(add_on())
        await work.commit()
    return Dependencies(uow=uow, clock=clock, ids=TimeOrderedIds(), hasher=HmacHasher("test"))


async def new_customer(uow: SqlUnitOfWorkFactory, balance: str = "0", limit: str = "0") -> str:
    owner = customer(balance=balance, credit_limit=limit)
    async with uow() as work:
        await work.customers.add(owner)
        await work.commit()
    return owner.id


async def stored_balance(engine: AsyncEngine, customer_id: str) -> Decimal:
    async with engine.connect() as c:
        value = (
            await c.execute(sa.select(customers.c.balance).where(customers.c.id == customer_id))
        ).scalar_one()
    return Decimal(value)


async def journal(engine: AsyncEngine, customer_id: str) -> list[tuple[Decimal, str, str]]:
    t = balance_transactions.c
    async with engine.connect() as c:
        rows = await c.execute(
            sa.select(t.amount, t.reason, t.reference).where(t.customer_id == customer_id)
        )
        return [(Decimal(a), r, ref) for a, r, ref in rows.all()]


# -- vouchers ------------------------------------------------------------------------------


async def test_concurrent_redemptions_of_one_voucher_credit_once(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies
) -> None:
    a = await new_customer(uow)
    b = await new_customer(uow)
    [code] = await CreateVouchers(deps)(1, usd("5"))
    redeem = RedeemVoucher(deps)

    async def attempt(cid: str) -> str:
        try:
            await redeem(cid, code)
            return "ok"
        except DomainError as e:
            return type(e).__name__

    outcomes = await asyncio.gather(*(attempt(a if n % 2 else b) for n in range(10)))
    assert outcomes.count("ok") == 1, outcomes
    total = await stored_balance(engine, a) + await stored_balance(engine, b)
    assert total == Decimal(5)
    rows = await journal(engine, a) + await journal(engine, b)
    assert [r[0] for r in rows] == [Decimal(5)]


async def test_expired_cancelled_and_foreign_currency_vouchers_refused(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies, clock: Clock
) -> None:
    cid = await new_customer(uow)
    [code] = await CreateVouchers(deps)(1, usd("5"), expires_at=NOW + timedelta(days=1))
    [eur] = await CreateVouchers(deps)(1, Money.of("5", "EUR"))
    with pytest.raises(VoucherUnusable):
        await RedeemVoucher(deps)(cid, eur)
    clock.at = NOW + timedelta(days=1)
    with pytest.raises(VoucherUnusable):
        await RedeemVoucher(deps)(cid, code)
    assert await stored_balance(engine, cid) == 0
    assert await journal(engine, cid) == []
    async with engine.connect() as c:
        statuses = (await c.execute(sa.select(vouchers.c.status))).scalars().all()
    assert set(statuses) == {"active"}


async def test_a_customer_guessing_voucher_codes_is_held_back_for_an_hour(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies, clock: Clock
) -> None:
    """Five unusable codes within an hour: the next try is refused before any
    code is looked up, a real one included, while another customer redeems
    as usual. A redemption that succeeds forgets no failure."""
    cid = await new_customer(uow)
    other = await new_customer(uow)
    codes = await CreateVouchers(deps)(3, usd("5"))
    redeem = RedeemVoucher(deps)
    for n in range(5):
        with pytest.raises(VoucherUnusable):
            await redeem(cid, f"{n:014d}")
        clock.at += timedelta(minutes=1)
    with pytest.raises(TooManyAttempts) as refused:
        await redeem(cid, codes[0])
    assert refused.value.code == "too_many_attempts"
    assert refused.value.retry_after == timedelta(minutes=55)
    assert await stored_balance(engine, cid) == 0
    await redeem(other, codes[1])
    assert await stored_balance(engine, other) == 5

    clock.at = NOW + timedelta(hours=1)  # the first guess leaves the window
    await redeem(cid, codes[0])
    assert await stored_balance(engine, cid) == 5
    with pytest.raises(VoucherUnusable):  # four left in the window, and this one
        await redeem(cid, codes[0])
    with pytest.raises(TooManyAttempts):
        await redeem(cid, codes[2])
    assert await stored_balance(engine, cid) == 5


# -- top-up / payment -----------------------------------------------------------------------


async def test_concurrent_retries_of_one_top_up_credit_once(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies
) -> None:
    cid = await new_customer(uow)
    top_up = TopUp(deps)
    results = await asyncio.gather(*(top_up(cid, usd("10"), "gw-1") for _ in range(8)))
    assert len({t.id for _, t in results if t}) == 1
    assert await stored_balance(engine, cid) == Decimal(10)
    assert len(await journal(engine, cid)) == 1


async def test_concurrent_retries_of_one_payment_credit_once(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies
) -> None:
    cid = await new_customer(uow)
    pay = RecordPayment(deps)
    await asyncio.gather(*(pay(cid, usd("7.25"), "bank-9") for _ in range(8)))
    assert await stored_balance(engine, cid) == Decimal("7.25")
    assert len(await journal(engine, cid)) == 1


@pytest.mark.parametrize("amount", ["-100", "0", "-0.01"])
async def test_non_positive_top_up_and_payment_refused(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies, amount: str
) -> None:
    cid = await new_customer(uow, balance="20")
    for use_case in (TopUp(deps), RecordPayment(deps)):
        with pytest.raises(DomainError):
            await use_case(cid, usd(amount), "x")
    assert await stored_balance(engine, cid) == Decimal(20)
    assert await journal(engine, cid) == []


async def test_foreign_currency_top_up_refused(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies
) -> None:
    cid = await new_customer(uow, balance="20")
    for use_case in (TopUp(deps), RecordPayment(deps)):
        with pytest.raises(DomainError):
            await use_case(cid, Money.of("100", "EUR"), "eur-1")
    with pytest.raises(DomainError):
        await ManualTransaction(deps)(cid, Money.of("100", "EUR"), "fix", "700")
    assert await stored_balance(engine, cid) == Decimal(20)


async def test_an_amount_finer_than_the_journal_keeps_is_refused(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies
) -> None:
    """Balances and the journal keep 8 decimal places. A finer amount would
    move the stored balance by one rounding and the journal by another (a
    tie rounds to even), and a gateway's identical retry would not match its
    first transaction: it is refused, and nothing moves."""
    cid = await new_customer(uow)
    await TopUp(deps)(cid, usd("0.00000001"), "a")
    for change in (
        lambda: TopUp(deps)(cid, usd("0.000000005"), "b"),
        lambda: RecordPayment(deps)(cid, usd("10.123456789"), "gw-precise"),
        lambda: ManualTransaction(deps)(cid, usd("-0.000000001"), "fix", "700"),
        lambda: CreateVouchers(deps)(1, usd("0.000000001")),
    ):
        with pytest.raises(DomainError, match="8 decimal places"):
            await change()
    rows = await journal(engine, cid)
    assert [r[0] for r in rows] == [Decimal("0.00000001")]
    assert await stored_balance(engine, cid) == Decimal("0.00000001")


# -- add-ons ---------------------------------------------------------------------------------


async def test_add_on_purchase_cannot_pass_credit_limit(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies
) -> None:
    owner = customer(balance="2", credit_limit="0")
    acc = account(owner)
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add(acc)
        await work.commit()
    buy = AddAddOn(deps)

    async def attempt() -> str:
        try:
            await buy(acc.id, "DATA-24H", charge=True)
            return "ok"
        except DomainError as e:
            return type(e).__name__

    outcomes = await asyncio.gather(*(attempt() for _ in range(4)))
    assert outcomes.count("ok") == 1, outcomes  # 1.50 each, 2.00 available
    assert await stored_balance(engine, owner.id) == Decimal("0.5")
    rows = await journal(engine, owner.id)
    assert [(r[0], r[1]) for r in rows] == [(Decimal("-1.5"), "add_on")]


# -- bulk import -----------------------------------------------------------------------------


async def test_an_import_keeps_a_migrated_debt(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies
) -> None:
    """A customer migrated from another billing system owing 50 USD arrives
    with the debt, and its journal row."""
    row = NewCustomer(
        name="Debtor",
        currency="USD",
        opening_balance=usd("-50"),
        credit_limit=usd("100"),
        customer_id="cus_debtor",
    )
    await ImportCustomers(deps)([row])
    assert await stored_balance(engine, "cus_debtor") == Decimal(-50)
    assert [r[0] for r in await journal(engine, "cus_debtor")] == [Decimal(-50)]


# -- product change ----------------------------------------------------------------------------


async def test_mixed_concurrent_money_changes_match_the_journal(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies
) -> None:
    """Top-ups, payments, vouchers, manual transactions and add-on purchases
    of one customer at once: the stored balance is the journal's sum, every
    paid add-on is held by the account, every voucher is redeemed once."""
    owner = customer(balance="3", credit_limit="0")
    acc = account(owner)
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add(acc)
        await work.commit()
    codes = await CreateVouchers(deps)(5, usd("2"))

    async def quietly(coro: object) -> None:
        with contextlib.suppress(DomainError):
            await coro  # type: ignore[misc]

    calls = []
    for n in range(5):
        calls.append(TopUp(deps)(owner.id, usd("1.10"), f"t{n % 3}"))
        calls.append(RecordPayment(deps)(owner.id, usd("0.70"), f"p{n}"))
        calls.append(RedeemVoucher(deps)(owner.id, codes[n]))
        calls.append(RedeemVoucher(deps)(owner.id, codes[n]))
        calls.append(ManualTransaction(deps)(owner.id, usd("-0.25"), "fee", "700"))
        calls.append(AddAddOn(deps)(acc.id, "DATA-24H", charge=True))
    await asyncio.gather(*(quietly(c) for c in calls))
    rows = await journal(engine, owner.id)
    assert Decimal(3) + sum((r[0] for r in rows), Decimal(0)) == await stored_balance(
        engine, owner.id
    )
    async with uow() as work:
        held = await work.accounts.get(acc.id)
    assert held is not None
    assert len(held.add_ons) == sum(1 for r in rows if r[1] == "add_on")
    assert sum(1 for r in rows if r[1] == "voucher") == 5
    assert sum(1 for r in rows if r[1] == "top_up") == 3
