"""The repository methods group commit uses (many rows per statement), on
SQLite and PostgreSQL: they read and write exactly what the one-row methods
do, and refuse what those refuse."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import MIB, NOW, account, bucket, customer, main_product, usd
from store_databases import statements
from test_session_store import Subscriber, charge_in_memory, data, store_subscriber

from ratel.adapters.db.sessions import SessionCache
from ratel.adapters.db.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from ratel.domain.charging import Answer, CreditControlSession
from ratel.domain.errors import ConcurrentChange, CreditLimitExceeded, SessionExists
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.money import Money
from ratel.ports.store import IdentifierKind


async def test_sessions_many_at_once_round_trip(uow: SqlUnitOfWorkFactory) -> None:
    sub = Subscriber("50")
    await store_subscriber(uow, sub)
    sessions = [
        CreditControlSession.open(f"s-{n}", sub.account, sub.customer, NOW) for n in range(5)
    ]
    answers = [charge_in_memory(s, sub.context(), 0, [data()], end=False) for s in sessions]
    async with uow() as work:
        await work.sessions.add_many(sessions)
        await work.commit()
    async with uow() as work:
        loaded = await work.sessions.get_many(["s-4", "s-0", "nope", "s-2", "s-0"], lock=True)
        assert sorted(loaded) == ["s-0", "s-2", "s-4"]
        assert loaded["s-2"].stored_answer(0) == answers[2]
        assert loaded["s-4"].streams == sessions[4].streams
        for n in ("s-0", "s-2"):
            charge_in_memory(loaded[n], sub.context(), 1, [data(used=MIB)], end=False)
        await work.sessions.save_many([loaded["s-0"], loaded["s-2"]])
        # saved twice in one unit of work: the version moved on with the first
        loaded["s-0"].last_activity = NOW + timedelta(minutes=5)
        await work.sessions.save_many([loaded["s-0"]])
        await work.commit()
    async with uow() as work:
        again = await work.sessions.get_many(["s-0", "s-2", "s-4"])
    assert again["s-0"].last_activity == NOW + timedelta(minutes=5)
    assert again["s-2"].last_request == {"": 1}
    assert again["s-4"].last_request == {"": 0}


async def test_a_taken_session_id_refuses_the_batch(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    sub = Subscriber()
    await store_subscriber(uow, sub)
    async with uow() as work:
        await work.sessions.add(CreditControlSession.open("s-1", sub.account, sub.customer, NOW))
        await work.commit()
    async with uow() as work:
        fresh = [
            CreditControlSession.open(n, sub.account, sub.customer, NOW) for n in ("s-0", "s-1")
        ]
        with pytest.raises(SessionExists):
            await work.sessions.add_many(fresh)
    # in a batch's block: raised from the block, with the batch's other writes
    # sent in the same statement on PostgreSQL, and none of them kept
    entry = BalanceTransaction(
        id="t-s-0",
        customer_id=sub.customer.id,
        amount=usd("-1"),
        balance_after=usd("49"),
        reason=TransactionReason.USAGE,
        created_at=NOW,
        reference="s-0",
    )
    with statements(engine) as seen:
        async with uow() as work:
            with pytest.raises(SessionExists):
                async with work.together():
                    await work.sessions.add_many(fresh)
                    await work.transactions.add_many([entry])
    inserts = [sql for sql in seen if "INSERT INTO cc_sessions" in sql]
    assert len(inserts) == 1
    if engine.dialect.name == "postgresql":
        assert "INSERT INTO balance_transactions" in inserts[0]
    async with uow() as work:
        assert await work.sessions.get("s-0") is None
        assert await work.transactions.for_customer(sub.customer.id) == []


async def test_a_stale_session_in_a_batch_is_refused(uow: SqlUnitOfWorkFactory) -> None:
    sub = Subscriber()
    await store_subscriber(uow, sub)
    async with uow() as work:
        await work.sessions.add_many(
            [CreditControlSession.open(n, sub.account, sub.customer, NOW) for n in ("a", "b")]
        )
        await work.commit()
    async with uow() as work:
        stale = await work.sessions.get_many(["a", "b"])
        # another object for the same row, written first (as another node would)
        moved = await work.sessions.get("b")
        assert moved is not None
        moved.last_activity = NOW + timedelta(seconds=1)
        await work.sessions.save(moved)
        with pytest.raises(ConcurrentChange):
            await work.sessions.save_many(list(stale.values()))


async def test_wallets_of_many_customers_in_one_write(uow: SqlUnitOfWorkFactory) -> None:
    owners = [customer(balance=str(n + 1)) for n in range(4)]
    async with uow() as work:
        await work.customers.add_many(owners)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get_many([o.id for o in reversed(owners)], lock=True)
        assert [loaded[o.id].wallet.balance for o in owners] == [usd(n + 1) for n in range(4)]
        loaded[owners[0].id].wallet.reserve(usd("0.5"))
        loaded[owners[1].id].wallet.settle(Money.zero("USD"), usd("1.25"))
        loaded[owners[2].id].wallet.credit(usd("10"))
        await work.customers.save_many(list(loaded.values()))
        await work.commit()
    async with uow() as work:
        after = await work.customers.get_many([o.id for o in owners])
    wallets = [(after[o.id].wallet.balance, after[o.id].wallet.reserved) for o in owners]
    assert wallets == [
        (usd(1), usd("0.5")),
        (usd("0.75"), usd(0)),
        (usd(13), usd(0)),
        (usd(4), usd(0)),
    ]


async def test_a_batch_of_wallets_never_passes_a_credit_limit(uow: SqlUnitOfWorkFactory) -> None:
    """Loaded without a lock, spent elsewhere meanwhile: the conditional write
    refuses the change that no longer fits, and so the whole batch."""
    owners = [customer(balance="1"), customer(balance="1")]
    async with uow() as work:
        await work.customers.add_many(owners)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get_many([o.id for o in owners])
        for owner in loaded.values():
            owner.wallet.reserve(usd("0.8"))
        # another object for the second row spends first (as another node would)
        spender = await work.customers.get(owners[1].id)
        assert spender is not None
        spender.wallet.reserve(usd("0.5"))
        await work.customers.save(spender)
        with pytest.raises(CreditLimitExceeded):
            await work.customers.save_many(list(loaded.values()))
        await work.commit()  # what was written before the refusal stands
    async with uow() as work:
        after = await work.customers.get_many([o.id for o in owners])
    reserved = [after[o.id].wallet.reserved for o in owners]
    # PostgreSQL refuses in one statement; SQLite may have written the first
    # row of the batch, which is why a refused batch is always rolled back
    assert reserved[1] == usd("0.5")
    assert reserved[0] in (usd(0), usd("0.8"))


async def test_accounts_and_buckets_of_many(uow: SqlUnitOfWorkFactory) -> None:
    owner = customer(balance="1")
    first, second = account(owner), account(owner)
    product = main_product()
    buckets = [bucket(first, product.quotas[0]), bucket(first, product.quotas[1])]
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add_many([first, second])
        await work.quotas.add_many(buckets)
        await work.commit()
    msisdn = str(first.identifiers.msisdn)
    async with uow() as work:
        by_msisdn = await work.accounts.by_identifiers(
            IdentifierKind.MSISDN, [f"+{msisdn}", msisdn, "12345", "not a number"]
        )
        assert {k: a.id for k, a in by_msisdn.items()} == {
            f"+{msisdn}": first.id,
            msisdn: first.id,
        }
        by_imsi = await work.accounts.by_identifiers(
            IdentifierKind.IMSI, [str(second.identifiers.imsi)]
        )
        assert [a.id for a in by_imsi.values()] == [second.id]
        alias = sorted(second.identifiers.aliases)[0]
        by_alias = await work.accounts.by_identifiers(IdentifierKind.ALIAS, [alias, "none"])
        assert {k: a.id for k, a in by_alias.items()} == {alias: second.id}
        assert sorted(await work.accounts.get_many([second.id, first.id, "x"])) == sorted(
            [first.id, second.id]
        )
        held = await work.quotas.for_accounts([second.id, first.id], lock=True)
        assert held[second.id] == []
        assert [b.id for b in held[first.id]] == sorted(b.id for b in buckets)
        held[first.id][0].draw(Decimal(10))
        await work.quotas.save(held[first.id])
        await work.commit()
    async with uow() as work:
        used = {b.id: b.used for b in await work.quotas.for_account(first.id)}
    assert sorted(used.values()) == [Decimal(0), Decimal(10)]


async def locked_elsewhere(engine: AsyncEngine, *rows: tuple[str, str]) -> None:
    """Each (table, id) row is locked: another connection cannot take it."""
    for table, row_id in rows:
        async with engine.connect() as other:
            with pytest.raises(DBAPIError, match="could not obtain lock"):
                await other.execute(
                    sa.text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE NOWAIT"),
                    {"id": row_id},
                )


async def test_customers_and_the_buckets_locked_next_come_in_one_round_trip(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    product = main_product()
    owners = [customer(balance="1"), customer(balance="2")]
    lines = [account(owner) for owner in owners] + [account(owners[0])]
    buckets = [bucket(line, quota) for line in lines[:2] for quota in product.quotas[:2]]
    async with uow() as work:
        await work.customers.add_many(owners)
        await work.accounts.add_many(lines)
        await work.quotas.add_many(buckets)
        await work.commit()
    async with uow() as work:  # the same rows read the usual way
        expected = await work.quotas.for_accounts([line.id for line in lines])
        expected_owners = await work.customers.get_many([o.id for o in owners])
    postgresql = engine.dialect.name == "postgresql"
    wanted = [line.id for line in lines]
    with statements(engine) as seen:
        async with uow() as work:
            found = await work.customers.get_many(
                [o.id for o in owners] + ["nobody"], lock=True, buckets_of=wanted
            )
            read = len(seen)
            held = await work.quotas.for_accounts(list(reversed(wanted)), lock=True)
            # PostgreSQL locked and read them with the customers; SQLite reads them now
            assert len(seen) == read + (0 if postgresql else 1)
            assert found == expected_owners and held == expected
            assert held[lines[2].id] == []
            # once: a later read asks the database again
            assert await work.quotas.for_accounts([lines[0].id], lock=True) == {
                lines[0].id: expected[lines[0].id]
            }
            assert len(seen) == read + (1 if postgresql else 2)
            if postgresql:  # locked: another transaction may not take them
                await locked_elsewhere(
                    engine,
                    ("quota_buckets", buckets[2].id),  # not read again since
                    ("customers", owners[1].id),
                )
            held[lines[0].id][0].draw(Decimal(7))
            await work.quotas.save(held[lines[0].id])
            await work.commit()
    async with uow() as work:
        used = {b.id: b.used for b in await work.quotas.for_account(lines[0].id)}
    assert sorted(used.values()) == [Decimal(0), Decimal(7)]


async def test_sessions_held_by_the_process_come_with_their_customers_and_buckets(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    product = main_product()
    owners = [customer(balance="1"), customer(balance="2"), customer(balance="3")]
    lines = [account(owner) for owner in owners]
    buckets = [bucket(line, quota) for line in lines for quota in product.quotas[:2]]
    sessions = [
        CreditControlSession.open(f"o-{n}", line, owner, NOW)
        for n, (line, owner) in enumerate(zip(lines[:2], owners, strict=False))
    ]
    async with uow() as work:
        await work.customers.add_many(owners)
        await work.accounts.add_many(lines)
        await work.quotas.add_many(buckets)
        await work.sessions.add_many(sessions)  # committed: the process holds them
        await work.commit()
    ids = [s.id for s in sessions]
    account_ids = [line.id for line in lines[:2]]
    async with uow() as work:  # the same rows read the usual way
        usual_owners = await work.customers.get_many([o.id for o in owners[:2]])
        usual_buckets = await work.quotas.for_accounts(account_ids)
    postgresql = engine.dialect.name == "postgresql"
    with statements(engine) as seen:
        async with uow() as work:
            found = await work.sessions.get_many(ids, lock=True, with_owners=True)
            assert sorted(found) == ids
            read = len(seen)
            customers_found = await work.customers.get_many(
                [s.customer_id for s in found.values()], lock=True, buckets_of=account_ids
            )
            held = await work.quotas.for_accounts(account_ids, lock=True)
            # PostgreSQL locked and read all three with the sessions; SQLite reads them now
            assert len(seen) == read + (0 if postgresql else 2)
            assert customers_found == usual_owners and held == usual_buckets
            if postgresql:  # locked: another transaction may not take them
                await locked_elsewhere(
                    engine,
                    ("cc_sessions", ids[1]),
                    ("customers", owners[1].id),
                    ("quota_buckets", buckets[3].id),
                )
            customers_found[owners[0].id].wallet.debit(Money.of("0.25", "USD"))
            await work.customers.save_many(list(customers_found.values()))
            await work.commit()
    async with uow() as work:
        stored = await work.customers.get(owners[0].id)
        assert stored is not None and stored.wallet.balance == Money.of("0.75", "USD")

    # a customer the sessions did not name (an account moved since): read as usual
    with statements(engine) as seen:
        async with uow() as work:
            await work.sessions.get_many(ids, lock=True, with_owners=True)
            read = len(seen)
            wider = await work.customers.get_many(
                [o.id for o in owners], lock=True, buckets_of=[line.id for line in lines]
            )
            assert sorted(wider) == sorted(o.id for o in owners)
            third = await work.quotas.for_accounts([lines[2].id], lock=True)
            assert sorted(b.id for b in third[lines[2].id]) == sorted(b.id for b in buckets[4:])
            assert len(seen) == read + (1 if postgresql else 2)


async def test_xdrs_many_at_once_and_once_per_session(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    sub = Subscriber("50")
    await store_subscriber(uow, sub)
    ends = []
    for n in (1, 2):
        session = CreditControlSession.open(f"x-{n}", sub.account, sub.customer, NOW)
        charge_in_memory(session, sub.context(), 0, [data()], end=False)
        later = NOW + timedelta(minutes=1)
        ends.append(session.terminate(sub.context(), 1, [data(used=MIB)], later, xdr_id=f"xdr-{n}"))
    xdrs = [end.xdr for end in ends if end.xdr is not None]
    assert len(xdrs) == 2
    journal = [
        BalanceTransaction(
            id=f"t-{xdr.id}",
            customer_id=sub.customer.id,
            amount=xdr.charge,
            balance_after=usd("50"),
            reason=TransactionReason.USAGE,
            created_at=NOW,
            reference=xdr.session_id,
        )
        for xdr in xdrs
    ]
    with statements(engine) as seen:
        async with uow() as work:
            async with work.together():
                await work.xdrs.add_many(xdrs)
                await work.transactions.add_many(journal)
            await work.commit()
    inserts = [sql for sql in seen if "INSERT INTO xdrs" in sql]
    assert len(inserts) == 1
    if engine.dialect.name == "postgresql":  # with the batch's other writes, in one statement
        assert "INSERT INTO balance_transactions" in inserts[0]
    async with uow() as work:
        assert await work.xdrs.get(xdrs[0].id) == xdrs[0]
        assert await work.xdrs.get(xdrs[1].id) == xdrs[1]
        again = replace(xdrs[0], id="xdr-3")  # another xDR for a session that has one
        with pytest.raises(ConcurrentChange):
            async with work.together():
                await work.xdrs.add_many([again])
        # nor the same id again, whatever the session
        with pytest.raises(ConcurrentChange):
            await work.xdrs.add_many([replace(xdrs[0], session_id="x-9")])


async def test_the_process_session_copy_is_never_stale(engine: AsyncEngine) -> None:
    """Two processes (each its own session cache) on one database: each sees
    the other's commits, and neither keeps what it rolled back."""
    here = SessionCache()
    there = SessionCache()

    def in_process(cache: SessionCache) -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, session_cache=cache)

    sub = Subscriber("50")
    await store_subscriber(SqlUnitOfWorkFactory(engine), sub)
    session = CreditControlSession.open("c-1", sub.account, sub.customer, NOW)
    first = charge_in_memory(session, sub.context(), 0, [data()], end=False)
    async with in_process(here) as work:
        await work.sessions.add_many([session])
        await work.commit()
    async with in_process(there) as work:
        theirs = (await work.sessions.get_many(["c-1"], lock=True))["c-1"]
        charge_in_memory(theirs, sub.context(), 1, [data(used=MIB)], end=False)
        await work.sessions.save_many([theirs])
        await work.commit()
    async with in_process(here) as work:
        mine = (await work.sessions.get_many(["c-1"], lock=True))["c-1"]
        assert mine.last_request == {"": 1}  # the other process's commit
        assert mine.stored_answer(0) == first
        charge_in_memory(mine, sub.context(), 2, [data(used=MIB)], end=False)
        await work.sessions.save_many([mine])
        # no commit: rolled back
    for cache in (here, there):
        async with in_process(cache) as work:
            again = (await work.sessions.get_many(["c-1"]))["c-1"]
        assert again.last_request == {"": 1}
        assert again.streams == theirs.streams


async def test_stored_answers_go_back_as_they_came(uow: SqlUnitOfWorkFactory) -> None:
    sub = Subscriber("50")
    await store_subscriber(uow, sub)
    session = CreditControlSession.open("a-1", sub.account, sub.customer, NOW)
    answers = [
        charge_in_memory(session, sub.context(), n, [data(used=MIB * (n > 0))], end=False)
        for n in range(4)
    ]
    async with uow() as work:
        await work.sessions.add(session)
        await work.commit()
    for minute in (1, 2, 3):  # from the database, then (twice) from the process's copy
        async with uow() as work:
            loaded = (await work.sessions.get_many(["a-1"], lock=True))["a-1"]
            loaded.last_activity = NOW + timedelta(minutes=minute)  # answers untouched
            await work.sessions.save_many([loaded])
            await work.commit()
    async with uow() as work:
        again = await work.sessions.get("a-1")
    assert again is not None and again.last_activity == NOW + timedelta(minutes=3)
    assert again.answers == session.answers
    assert copy.deepcopy(again.answers) == dict(enumerate_answers(answers))
    assert again.stored_answer(2) == answers[2] and again.stored_answer(9) is None


def enumerate_answers(answers: list[Answer]) -> list[tuple[tuple[str, int], Answer]]:
    return [(("", n), answer) for n, answer in enumerate(answers)]


async def test_buckets_are_saved_in_one_statement_and_only_when_changed(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    owner = customer(balance="1")
    first = account(owner)
    product = main_product()
    buckets = [bucket(first, definition) for definition in product.quotas[:3]]
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add(first)
        await work.quotas.add_many(buckets)
        await work.commit()
    later = NOW + timedelta(days=3)
    async with uow() as work:
        held = (await work.quotas.for_accounts([first.id], lock=True))[first.id]
        with statements(engine) as seen:
            await work.quotas.save(held)  # nothing changed
            held[0].used += Decimal("0.000000001")  # below the stored precision
            await work.quotas.save(held)
        assert seen == []
        held[0].draw(Decimal(1))
        held[1].expires_at = later
        held[1].precedence = 7
        held[2].reserved += Decimal("2.5")
        with statements(engine) as seen:
            await work.quotas.save(held)
            await work.quotas.save(held)  # saved already
        assert len(seen) == 1
        await work.commit()
    async with uow() as work:
        again = {b.id: b for b in await work.quotas.for_account(first.id, lock=True)}
        assert again[held[0].id].used == Decimal(1)
        assert (again[held[1].id].expires_at, again[held[1].id].precedence) == (later, 7)
        assert again[held[2].id].reserved == Decimal("2.5")
        again[held[2].id].period_end = later.replace(tzinfo=None)  # naive: refused
        with pytest.raises((ValueError, StatementError)):
            await work.quotas.save(list(again.values()))
