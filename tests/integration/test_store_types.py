"""Money is exact and times are aware UTC on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import customer

from ratel.adapters.db.tables import balance_transactions
from ratel.adapters.db.types import AmountSql, amount_param
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.domain.money import Money

EXACT = ["0.00015", "12345678901234.12345678", "-9999999999999999.99999999", "0", "0.00000001"]


@pytest.mark.parametrize("text", EXACT)
async def test_amounts_round_trip_exactly(uow: SqlUnitOfWorkFactory, text: str) -> None:
    async with uow() as work:
        owner = customer()
        await work.customers.add(owner)
        await work.connection.execute(
            sa.insert(balance_transactions).values(
                id="t1",
                customer_id=owner.id,
                amount=Decimal(text),
                balance_after=Decimal(text),
                currency="USD",
                reason="manual",
                reference="",
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
        await work.commit()
    async with uow() as work:
        stored = (
            await work.connection.execute(
                sa.select(balance_transactions.c.amount, balance_transactions.c.balance_after)
            )
        ).one()
    assert stored.amount == Decimal(text)
    assert isinstance(stored.amount, Decimal)
    assert stored.amount.as_tuple().exponent == -8  # the stored scale, on both backends
    assert stored.balance_after == stored.amount


async def test_sql_arithmetic_on_amounts_is_exact(engine: AsyncEngine) -> None:
    """What the wallet's conditional UPDATE computes in SQL: no float on the way."""
    amounts = AmountSql(engine.dialect.name)
    big = Decimal("12345678901234.12345678")
    async with engine.connect() as connection:
        total = (
            await connection.execute(
                sa.select(
                    amounts.sum(
                        amount_param("a", big),
                        amount_param("b", Decimal("0.00015")),
                        amounts.negate(amount_param("c", Decimal("0.00000001"))),
                    )
                )
            )
        ).scalar_one()
        at_least = (
            await connection.execute(
                sa.select(amounts.at_least(amount_param("x", big), amount_param("y", big)))
            )
        ).scalar_one()
    assert total == Decimal("12345678901234.12360677")
    assert bool(at_least) is True


async def test_amounts_that_do_not_fit_are_refused(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as work:
        owner = customer()
        # Money.of refuses more than 16 digits; a sum can still get there
        large = Money.of("9000000000000000", "USD")
        owner.wallet.credit(large + large)
        with pytest.raises((ValueError, StatementError), match="out of the stored range"):
            await work.customers.add(owner)


async def test_times_come_back_aware_utc(uow: SqlUnitOfWorkFactory) -> None:
    plus_five = timezone(timedelta(hours=5))
    created = datetime(2026, 7, 1, 17, 30, 15, 123456, tzinfo=plus_five)
    async with uow() as work:
        owner = customer()
        owner.created_at = created
        await work.customers.add(owner)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get(owner.id)
    assert loaded is not None
    assert loaded.created_at == created
    assert loaded.created_at.tzinfo is UTC or loaded.created_at.utcoffset() == timedelta(0)
    assert loaded.created_at.hour == 12


async def test_naive_times_are_refused(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as work:
        owner = customer()
        await work.customers.add(owner)
        with pytest.raises(StatementError, match="naive"):
            await work.connection.execute(
                sa.insert(balance_transactions).values(
                    id="t1",
                    customer_id=owner.id,
                    amount=Decimal(1),
                    balance_after=Decimal(1),
                    currency="USD",
                    reason="manual",
                    reference="",
                    created_at=datetime(2026, 1, 1),  # noqa: DTZ001 - the point of the test
                )
            )
