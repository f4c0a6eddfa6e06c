"""One unit of work is one transaction: all of it is written, or none."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import NOW, account, customer, usd

from ratel.adapters.db.tables import metadata
from ratel.adapters.db.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from ratel.domain.errors import CreditLimitExceeded
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.ports.store import UnitOfWork, UnitOfWorkFactory


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            table.name: (
                await connection.execute(sa.select(sa.func.count()).select_from(table))
            ).scalar_one()
            for table in metadata.sorted_tables
            if table.name != "catalogue_version"
        }


def test_the_adapter_satisfies_the_ports(uow: SqlUnitOfWorkFactory) -> None:
    factory: UnitOfWorkFactory = uow
    work: UnitOfWork = factory()
    assert isinstance(work, SqlUnitOfWork)


async def test_a_failure_half_way_writes_nothing(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    owner = customer(balance="5")
    before = await row_counts(engine)
    with pytest.raises(RuntimeError, match="half-way"):
        async with uow() as work:
            await work.customers.add(owner)
            await work.accounts.add(account(owner))
            owner.top_up(usd("1"), NOW)
            await work.outbox.add(owner.pull_events())
            raise RuntimeError("the use case failed half-way")
    assert await row_counts(engine) == before


async def test_a_refused_wallet_change_rolls_back_the_whole_use_case(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    owner = customer(balance="5")
    async with uow() as work:
        await work.customers.add(owner)
        await work.commit()
    before = await row_counts(engine)
    with pytest.raises(CreditLimitExceeded):
        async with uow() as work:
            loaded = await work.customers.get(owner.id)
            assert loaded is not None
            loaded.charge(usd("4"), NOW, "usage")
            await work.transactions.add(
                BalanceTransaction(
                    id="t1",
                    customer_id=owner.id,
                    amount=usd("-4"),
                    balance_after=usd("1"),
                    reason=TransactionReason.USAGE,
                    created_at=NOW,
                )
            )
            await work.outbox.add(loaded.pull_events())
            # meanwhile another transaction spent 3 of the 5
            await work.connection.execute(sa.text("UPDATE customers SET balance = '2'"))
            await work.customers.save(loaded)
    assert await row_counts(engine) == before
    async with uow() as work:
        again = await work.customers.get(owner.id)
    assert again is not None and again.wallet.balance == usd("5")


async def test_commit_makes_it_durable_and_rollback_discards(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    kept = customer()
    dropped = customer()
    async with uow() as work:
        await work.customers.add(dropped)
        await work.rollback()
        await work.customers.add(kept)
        await work.commit()
    async with uow() as work:
        assert await work.customers.get(kept.id) is not None
        assert await work.customers.get(dropped.id) is None


async def test_leaving_without_commit_rolls_back(uow: SqlUnitOfWorkFactory) -> None:
    forgotten = customer()
    async with uow() as work:
        await work.customers.add(forgotten)
    async with uow() as work:
        assert await work.customers.get(forgotten.id) is None


async def test_a_unit_of_work_runs_once(uow: SqlUnitOfWorkFactory) -> None:
    work = uow()
    async with work:
        pass
    with pytest.raises(RuntimeError):
        async with work:
            pass


async def backend_pid(work: SqlUnitOfWork) -> int:
    # through the shared connection: ``connection`` would begin for real
    result = await work.shared_connection().execute(sa.text("SELECT pg_backend_pid()"))
    return int(result.scalar_one())


async def backend_state(engine: AsyncEngine, pid: int) -> str:
    """What PostgreSQL says the backend ``pid`` is doing, seen from another connection."""
    async with engine.connect() as other:
        statement = sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
        return str((await other.execute(statement, {"pid": pid})).scalar_one())


async def test_on_postgresql_a_unit_of_work_begins_at_its_first_write_or_lock(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite begins IMMEDIATE: its write lock is what serializes writers")
    owner = customer(balance="5")
    async with uow() as work:
        await work.customers.add(owner)
        await work.commit()

    async with uow() as work:
        pid = await backend_pid(work)
        assert await work.customers.get(owner.id) is not None
        # only reads so far: no transaction is held open (no BEGIN, no ROLLBACK to come)
        assert await backend_state(engine, pid) == "idle"
        assert await work.customers.get(owner.id, lock=True) is not None
        assert await backend_state(engine, pid) == "idle in transaction"

    async with uow() as work:
        pid = await backend_pid(work)
        assert await work.customers.get(owner.id) is not None
        assert await backend_state(engine, pid) == "idle"
        later = customer(balance="1")
        await work.customers.add(later)
        assert await backend_state(engine, pid) == "idle in transaction"
        # leaving without commit: the write is undone as ever
    async with uow() as work:
        assert await work.customers.get(later.id) is None
        assert await work.customers.get(owner.id) is not None

    # the pooled connection went back as it came: a plain transaction
    async with engine.connect() as connection, connection.begin():
        await connection.execute(sa.text("SELECT 1"))
        pid = (await connection.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        assert await backend_state(engine, pid) == "idle in transaction"


async def _cancelled_in_a_statement(engine: AsyncEngine, work_with: Callable[[], Any]) -> None:
    task = asyncio.create_task(work_with())
    async with engine.connect() as other:  # until the statement runs
        for _ in range(200):
            running = await other.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'"
                )
            )
            if running.scalar_one():
                break
            await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]  # QueuePool


@pytest.mark.parametrize("inside", ["read", "together"])
async def test_a_unit_of_work_cancelled_in_a_statement_ends_cancelled(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, inside: str
) -> None:
    """A task cancelled while its statement runs (a component stopping) must
    see CancelledError. Leaving the unit of work read the invalidated
    connection's ``info``, which tried to reconnect outside SQLAlchemy's
    greenlet: a MissingGreenlet replaced the cancellation, and a background
    loop that catches Exception (the NAS table's refresh) went on running
    after its component had stopped."""
    if engine.dialect.name != "postgresql":
        pytest.skip("aiosqlite's statement runs to its end in its thread")

    async def sleeping() -> None:
        async with uow() as work:
            if inside == "together":
                async with work.together():
                    await work.shared_connection().execute(sa.text("SELECT pg_sleep(5)"))
            else:
                await work.shared_connection().execute(sa.text("SELECT pg_sleep(5)"))

    await _cancelled_in_a_statement(engine, sleeping)
    # the pool still serves
    async with uow() as work:
        assert (await work.shared_connection().execute(sa.text("SELECT 1"))).scalar_one() == 1
