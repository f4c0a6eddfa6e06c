"""Many concurrent reservations on one balance: the credit limit is never
passed and no money is created or lost.

Each task is its own unit of work (its own connection and transaction), as
concurrent credit-control requests of one customer are. They run with and
without ``lock=True``: with the lock, PostgreSQL serializes them at
``SELECT ... FOR UPDATE``; without it, every task decides on the same stale
balance and only the conditional UPDATE stands between them and the limit.
SQLite serializes writers (``BEGIN IMMEDIATE``) in both cases.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import NOW, customer, new_id, usd

from ratel.adapters.db.engine import create_engine
from ratel.adapters.db.tables import balance_transactions
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.domain.errors import CreditLimitExceeded
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.money import Money

TASKS = 60
BALANCE = Decimal("20")
CREDIT_LIMIT = Decimal("80")


def amounts(seed: int, count: int = TASKS) -> list[Decimal]:
    """Reservations of 0.00000001 to about 12 (8 decimal places), about 3.5
    times what the customer may spend in all."""
    rng = random.Random(seed)
    return [Decimal(rng.randint(1, 1_200_000_000)) / Decimal(100_000_000) for _ in range(count)]


async def reserve(uow: SqlUnitOfWorkFactory, customer_id: str, amount: Decimal, lock: bool) -> str:
    """One credit-control reservation: "accepted", or who refused it: the
    domain (on the balance it loaded) or the database (on the balance as it
    is when the UPDATE runs)."""
    async with uow() as work:
        owner = await work.customers.get(customer_id, lock=lock)
        assert owner is not None
        try:
            owner.wallet.reserve(Money(amount, "USD"))
        except CreditLimitExceeded:
            return "refused by the domain"
        try:
            await work.customers.save(owner)
        except CreditLimitExceeded:
            return "refused by the database"
        await work.commit()
        return "accepted"


async def settle(
    uow: SqlUnitOfWorkFactory, customer_id: str, held: Decimal, charged: Decimal, lock: bool
) -> None:
    """End a reservation: charge ``charged`` of the ``held`` money, journal it."""
    async with uow() as work:
        owner = await work.customers.get(customer_id, lock=lock)
        assert owner is not None
        owner.wallet.settle(Money(held, "USD"), Money(charged, "USD"))
        await work.customers.save(owner)
        await work.transactions.add(
            BalanceTransaction(
                id=new_id("txn"),
                customer_id=customer_id,
                amount=Money(-charged, "USD"),
                balance_after=owner.wallet.balance,
                reason=TransactionReason.USAGE,
                created_at=NOW,
            )
        )
        await work.commit()


async def top_up(uow: SqlUnitOfWorkFactory, customer_id: str, amount: Decimal, lock: bool) -> None:
    async with uow() as work:
        owner = await work.customers.get(customer_id, lock=lock)
        assert owner is not None
        owner.top_up(Money(amount, "USD"), NOW)
        await work.customers.save(owner)
        await work.transactions.add(
            BalanceTransaction(
                id=new_id("txn"),
                customer_id=customer_id,
                amount=Money(amount, "USD"),
                balance_after=owner.wallet.balance,
                reason=TransactionReason.TOP_UP,
                created_at=NOW,
            )
        )
        await work.commit()


async def wallet(uow: SqlUnitOfWorkFactory, customer_id: str) -> tuple[Money, Money, Money]:
    async with uow() as work:
        owner = await work.customers.get(customer_id)
    assert owner is not None
    w = owner.wallet
    return w.balance, w.reserved, w.available()


async def journal_total(engine: AsyncEngine, customer_id: str) -> Decimal:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(balance_transactions.c.amount).where(
                balance_transactions.c.customer_id == customer_id
            )
        )
        return sum(rows.scalars().all(), Decimal(0))


@pytest.mark.parametrize("lock", [True, False], ids=["locked", "unlocked"])
async def test_concurrent_reservations_never_pass_the_credit_limit(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, backend: str, lock: bool
) -> None:
    owner = customer(balance=str(BALANCE), credit_limit=str(CREDIT_LIMIT))
    async with uow() as work:
        await work.customers.add(owner)
        await work.commit()
    wanted = amounts(seed=7)

    # 1. Reserve, all at once.
    outcomes = await asyncio.gather(*(reserve(uow, owner.id, a, lock) for a in wanted))
    accepted = [a for a, said in zip(wanted, outcomes, strict=True) if said == "accepted"]
    refused = [a for a, said in zip(wanted, outcomes, strict=True) if said != "accepted"]
    if backend == "postgresql" and not lock:
        # every task read the same balance: only the database can refuse
        assert "refused by the database" in outcomes
    else:
        # one at a time (row lock, or SQLite's single writer): the domain
        # refuses on a fresh balance and the guard never has to
        assert "refused by the database" not in outcomes
    balance, reserved, available = await wallet(uow, owner.id)
    assert accepted and refused
    assert balance == usd(BALANCE)  # reserving moves no money
    assert reserved == Money(sum(accepted, Decimal(0)), "USD")
    assert not available.is_negative()  # the limit was never passed
    # and nothing was refused that would have fitted: available only shrank
    # after a refusal, so it is still smaller than every refused amount
    assert all(available < Money(a, "USD") for a in refused)

    # 2. Settle every reservation (charging part of it) while top-ups arrive.
    rng = random.Random(11)
    charges = [(a * Decimal(rng.randint(0, 100)) / 100).quantize(Decimal("1E-8")) for a in accepted]
    top_ups = [Decimal(rng.randint(1, 500)) / 100 for _ in range(10)]
    await asyncio.gather(
        *(settle(uow, owner.id, a, c, lock) for a, c in zip(accepted, charges, strict=True)),
        *(top_up(uow, owner.id, t, lock) for t in top_ups),
    )
    balance, reserved, available = await wallet(uow, owner.id)
    expected = BALANCE + sum(top_ups, Decimal(0)) - sum(charges, Decimal(0))
    assert reserved == usd(0)
    assert balance == Money(expected, "USD")  # not a cent created or lost
    assert await journal_total(engine, owner.id) == expected - BALANCE
    assert available == Money(expected + CREDIT_LIMIT, "USD")


async def test_two_processes_writing_one_balance(database_url: str) -> None:
    """Two engines (as two ratel nodes would have) read-modify-write one
    customer at once. On SQLite every transaction starts with BEGIN
    IMMEDIATE, so they queue for the write lock instead of failing with
    "database is locked" when a reader tries to become a writer."""
    engines = [create_engine(database_url), create_engine(database_url)]
    try:
        factories = [SqlUnitOfWorkFactory(e) for e in engines]
        owner = customer(balance="0", credit_limit="50")
        async with factories[0]() as work:
            await work.customers.add(owner)
            await work.commit()
        wanted = amounts(seed=3, count=40)
        outcomes = await asyncio.gather(
            *(reserve(factories[n % 2], owner.id, a, lock=True) for n, a in enumerate(wanted))
        )
        accepted = sum(
            (a for a, said in zip(wanted, outcomes, strict=True) if said == "accepted"), Decimal(0)
        )
        _, reserved, available = await wallet(factories[1], owner.id)
        assert reserved == Money(accepted, "USD")
        assert not available.is_negative()
    finally:
        for e in engines:
            await e.dispose()
