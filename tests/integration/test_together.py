"""``UnitOfWork.together()``: the writes of a block reach PostgreSQL as one
statement (``Together``), with the same results, checks and order as one by
one; on SQLite the block changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import NOW, customer, usd
from store_databases import statements

from ratel.adapters.db.tables import balance_transactions, outbox
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.domain.customer import Customer
from ratel.domain.errors import CreditLimitExceeded
from ratel.domain.ledger import BalanceTransaction, TransactionReason


def usage(owner: Customer, n: int, amount: str, after: str) -> BalanceTransaction:
    return BalanceTransaction(
        id=f"t-{owner.id}-{n}",
        customer_id=owner.id,
        amount=usd(amount),
        balance_after=usd(after),
        reason=TransactionReason.USAGE,
        created_at=NOW,
        reference=f"session-{n}",
    )


async def saved(uow: SqlUnitOfWorkFactory, balance: str) -> Customer:
    """A customer with ``balance``, committed."""
    owner = customer(balance=balance)
    async with uow() as work:
        await work.customers.add(owner)
        await work.commit()
    return owner


async def stored(uow: SqlUnitOfWorkFactory, owner: Customer) -> Customer:
    async with uow() as work:
        found = await work.customers.get(owner.id)
    assert found is not None
    return found


async def test_a_blocks_writes_are_stored_in_order_and_on_postgresql_in_one_statement(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    owners = [customer(balance="5"), customer(balance="7")]
    async with uow() as work:
        await work.customers.add_many(owners)
        await work.commit()
    with statements(engine) as seen:
        async with uow() as work:
            loaded = await work.customers.get_many([o.id for o in owners], lock=True)
            journal, events = [], []
            for n, owner in enumerate(owners):
                mine = loaded[owner.id]
                mine.charge(usd("1.25"), NOW, "usage")
                journal.append(usage(mine, n, "-1.25", str(mine.wallet.balance.amount)))
                events.extend(mine.pull_events())
            started = len(seen)
            async with work.together():
                await work.customers.save_many(list(loaded.values()))
                await work.transactions.add_many(journal)
                await work.outbox.add(events)
            written = seen[started:]
            await work.commit()
    if engine.dialect.name == "postgresql":
        assert len(written) == 1 and written[0].lstrip().startswith("WITH w0 AS"), written
    else:
        assert len(written) == 3  # one statement per table, as ever
    assert [(await stored(uow, o)).wallet.balance for o in owners] == [usd("3.75"), usd("5.75")]
    async with engine.connect() as connection:
        ids = (
            await connection.execute(
                sa.select(balance_transactions.c.id).order_by(balance_transactions.c.id)
            )
        ).scalars()
        assert list(ids) == sorted(t.id for t in journal)
        kept = (
            await connection.execute(
                sa.select(outbox.c.event_type, outbox.c.aggregate_id)
                .where(outbox.c.aggregate_id.in_([o.id for o in owners]))
                .where(outbox.c.event_type == events[0].event_type)
                .order_by(outbox.c.id)
            )
        ).all()
    # the outbox ids follow the order the events were given in
    assert [tuple(row) for row in kept] == [(e.event_type, e.aggregate_id) for e in events]


async def test_a_read_inside_the_block_sees_the_writes_made_before_it(
    uow: SqlUnitOfWorkFactory,
) -> None:
    owner = await saved(uow, "5")
    async with uow() as work:
        async with work.together():
            await work.transactions.add_many([usage(owner, 1, "-1", "4")])
            found = await work.transactions.for_customer(owner.id)
            assert [t.id for t in found] == [f"t-{owner.id}-1"]
        await work.commit()


async def test_a_refused_write_raises_from_the_block_and_nothing_is_stored(
    uow: SqlUnitOfWorkFactory,
) -> None:
    owner = await saved(uow, "5")
    reached_the_end = False
    with pytest.raises(CreditLimitExceeded):
        async with uow() as work:
            loaded = await work.customers.get(owner.id)
            assert loaded is not None
            loaded.charge(usd("4"), NOW, "usage")
            # meanwhile another transaction spent 3 of the 5
            await work.connection.execute(sa.text("UPDATE customers SET balance = '2'"))
            async with work.together():
                await work.transactions.add_many([usage(owner, 1, "-4", "1")])
                await work.customers.save_many([loaded])
                reached_the_end = True
            await work.commit()
    # PostgreSQL checks when the block sends its writes; SQLite at the call
    assert reached_the_end is (work.shared_connection().dialect.name == "postgresql")
    assert (await stored(uow, owner)).wallet.balance == usd("5")
    async with uow() as work:
        assert await work.transactions.for_customer(owner.id) == []


async def test_on_postgresql_writes_dropped_by_a_failed_block_cannot_be_committed(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs each write at once: a block has nothing pending")
    owner = await saved(uow, "5")
    async with uow() as work:
        with pytest.raises(ValueError, match="midway"):
            async with work.together():
                await work.transactions.add_many([usage(owner, 1, "-1", "4")])
                with pytest.raises(RuntimeError, match="pending"):
                    work.connection  # noqa: B018  # a statement of one's own would not see them
                raise ValueError("the use case failed midway")
        with pytest.raises(RuntimeError, match="roll back"):
            await work.commit()
    # a write refused when the block sends them: the others of the statement
    # were made, so the unit of work can only be rolled back either
    async with uow() as work:
        loaded = await work.customers.get(owner.id)
        assert loaded is not None
        loaded.charge(usd("4"), NOW, "usage")
        await work.connection.execute(sa.text("UPDATE customers SET balance = '2'"))
        with pytest.raises(CreditLimitExceeded):
            async with work.together():
                await work.transactions.add_many([usage(owner, 2, "-4", "1")])
                await work.customers.save_many([loaded])
        with pytest.raises(RuntimeError, match="roll back"):
            await work.commit()
    async with uow() as work:
        assert await work.transactions.for_customer(owner.id) == []
