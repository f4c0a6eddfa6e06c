"""The PostgreSQL fast path (``ratel.adapters.db.fast``): each hot statement
of the charging batch gives on asyncpg exactly what SQLAlchemy's path gives
(keys, values and their types, row counts, what it writes), the batch's
repository calls take it, and errors surface as they do through SQLAlchemy
(the same ``DBAPIError`` subclass and SQLSTATE, ``ConcurrentChange`` for a
lock timeout, a transaction to roll back). SQLite never takes it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from store_builders import MIB, NOW, usd
from test_session_store import Subscriber, charge_in_memory, data, store_subscriber

from ratel.adapters.db import accounts, catalogue, customers, quotas, radius, sessions
from ratel.adapters.db.fast import FastPath, FastResult, fast
from ratel.adapters.db.statements import retryable, unique_violation
from ratel.adapters.db.tables import radius_sessions
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.domain.charging import CreditControlSession
from ratel.domain.errors import ConcurrentChange
from ratel.ports.store import IdentifierKind

PG = "postgresql"

# a statement of this test only: a plain INSERT that can break a unique constraint
_ALIAS_INSERT = fast(
    sa.text("INSERT INTO account_aliases (alias, account_id) VALUES (:alias, :account_id)")
)


def _typed(value: Any) -> Any:
    """A value with its exact type and form (Decimal exponent, tzinfo...)."""
    if isinstance(value, list | tuple):
        return [_typed(v) for v in value]
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    return (type(value).__name__, repr(value))


async def _run(
    engine: AsyncEngine,
    statement: Any,
    parameters: dict[str, Any],
    *,
    on_fast_path: bool,
    after: sa.Select[Any] | None = None,
) -> tuple[Any, ...]:
    """Run ``statement`` one way in a transaction rolled back afterwards:
    what it returned, and what ``after`` then reads."""
    async with engine.connect() as connection:
        await connection.begin()
        if on_fast_path:
            result: Any = await FastPath(connection).execute(statement, parameters)
            assert isinstance(result, FastResult), "the statement took SQLAlchemy's path"
        else:
            result = await connection.execute(statement, parameters)
        keys = list(result.keys()) if result.returns_rows else None
        rows = [_typed(tuple(row)) for row in result] if result.returns_rows else None
        rowcount = result.rowcount
        state = None
        if after is not None:
            state = [_typed(tuple(row)) for row in await connection.execute(after)]
        await connection.rollback()
    return keys, rows, rowcount, state


async def _same_both_ways(
    engine: AsyncEngine,
    statement: Any,
    parameters: dict[str, Any],
    after: sa.Select[Any] | None = None,
) -> tuple[Any, ...]:
    fast_way = await _run(engine, statement, parameters, on_fast_path=True, after=after)
    sa_way = await _run(engine, statement, parameters, on_fast_path=False, after=after)
    assert fast_way == sa_way
    return fast_way


async def _stored(uow: SqlUnitOfWorkFactory) -> tuple[list[Subscriber], list[str]]:
    """Two subscribers, each with two charged sessions (JSON snapshots)."""
    subscribers = [Subscriber("50"), Subscriber("7.25")]
    session_ids = []
    for n, sub in enumerate(subscribers):
        await store_subscriber(uow, sub)
        opened = [
            CreditControlSession.open(f"s-{n}-{k}", sub.account, sub.customer, NOW)
            for k in range(2)
        ]
        for session in opened:
            charge_in_memory(session, sub.context(), 0, [data()], end=False)
        async with uow() as work:
            await work.sessions.add_many(opened)
            await work.commit()
        session_ids += [s.id for s in opened]
    return subscribers, session_ids


def _postgresql_only(backend: str, engine: AsyncEngine) -> None:
    if backend != PG:
        pytest.skip("the fast path is PostgreSQL's")


async def test_sqlite_never_takes_the_fast_path(
    backend: str, uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    async with uow() as work:
        assert (work.customers._fast is None) is (backend != PG)
        assert FastPath.applies(work.connection) is (backend == PG)


async def test_hot_selects_read_the_same_both_ways(
    backend: str, uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    _postgresql_only(backend, engine)
    subscribers, session_ids = await _stored(uow)
    account_ids = sorted(s.account.id for s in subscribers)
    customer_ids = sorted(s.customer.id for s in subscribers)
    cases: list[tuple[Any, dict[str, Any]]] = []
    for lock in (False, True):
        cases += [
            (sessions._BY_ID(lock), {"session_id": session_ids[0]}),
            (sessions._BY_IDS(PG, lock), {"session_ids": session_ids}),
            (sessions._VERSIONS(PG, lock), {"session_ids": session_ids}),
            (accounts._BY_ID(lock), {"account_id": account_ids[0]}),
            (customers._BY_ID(lock), {"customer_id": customer_ids[1]}),
            (customers._BY_IDS(PG, lock), {"customer_ids": customer_ids}),
            (quotas._OF_ACCOUNT(lock), {"account_id": account_ids[1]}),
            (quotas.OF_ACCOUNTS(PG, lock), {"account_ids": account_ids}),
        ]
    msisdns = sorted(str(s.account.identifiers.msisdn) for s in subscribers)
    for kind, values in (
        (IdentifierKind.ACCOUNT_ID, account_ids),
        (IdentifierKind.MSISDN, msisdns),
        (IdentifierKind.IMSI, sorted(str(s.account.identifiers.imsi) for s in subscribers)),
        (IdentifierKind.ICCID, sorted(str(s.account.identifiers.iccid) for s in subscribers)),
    ):
        cases.append((accounts._BY_COLUMN[kind](PG), {"values": values}))
    for statement, parameters in cases:
        _, rows, rowcount, _ = await _same_both_ways(engine, statement, parameters)
        assert rows, (statement, parameters)
        assert rowcount == len(rows)
    _, rows, *_ = await _same_both_ways(engine, sessions._BY_IDS(PG), {"session_ids": ["nope"]})
    assert rows == []
    # a literal bound value (the version row's id), no parameters
    await _same_both_ways(engine, catalogue._VERSION, {})
    # what was compared: exact amounts, aware UTC times, JSON documents
    keys, rows, *_ = await _run(
        engine,
        customers._BY_ID(),
        {"customer_id": subscribers[0].customer.id},
        on_fast_path=True,
    )
    row = dict(zip(keys, rows[0], strict=True))
    assert row["balance"] == ("Decimal", repr(Decimal("50.00000000")))
    assert row["created_at"] == ("datetime", repr(NOW))
    assert row["custom_fields"] == {"crm_id": ("str", "'CRM-1'"), "segment": ("str", "'gold'")}
    keys, rows, *_ = await _run(
        engine, sessions._BY_ID(), {"session_id": session_ids[0]}, on_fast_path=True
    )
    assert isinstance(dict(zip(keys, rows[0], strict=True))["snapshot"], dict)


async def test_hot_writes_write_the_same_both_ways(
    backend: str, uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    _postgresql_only(backend, engine)
    subscribers, session_ids = await _stored(uow)
    customer_ids = [s.customer.id for s in subscribers]
    sub = subscribers[0]
    bucket_id = sub.buckets[0].id
    # wallets: one change unguarded, one guarded and passing, one refused
    await _same_both_ways(
        engine,
        customers._PG_WALLETS,
        {
            "ids": [*customer_ids, customer_ids[0]],
            "d_balance": [Decimal("-1.25"), Decimal("0.5"), Decimal("-100")],
            "d_reserved": [Decimal("0.125"), Decimal(0), Decimal(0)],
            "floor": [Decimal(0), None, Decimal(0)],
        },
        after=sa.select(customers.customers).order_by(customers.customers.c.id),
    )
    later = NOW + timedelta(minutes=1)
    snapshot = '{"streams":[],"note":"as text"}'
    table = sessions.cc_sessions
    await _same_both_ways(
        engine,
        sessions._PG_SAVE_MANY,
        {
            "ids": session_ids[:3],
            "versions": [1, 1, 7],  # the third is stale: not written
            "states": ["OPEN", "CLOSED", "OPEN"],
            "activity": [later] * 3,
            "snapshots": [snapshot] * 3,
        },
        after=sa.select(table).order_by(table.c.id),
    )
    await _same_both_ways(
        engine,
        sessions._PG_INSERT_MANY,
        {
            "ids": ["s-new", session_ids[0]],  # the second exists: not written
            "account_ids": [sub.account.id] * 2,
            "customer_ids": [sub.customer.id] * 2,
            "currencies": ["USD"] * 2,
            "states": ["OPEN"] * 2,
            "started": [NOW] * 2,
            "activity": [later] * 2,
            "snapshots": [snapshot] * 2,
        },
        after=sa.select(table).order_by(table.c.id),
    )
    buckets = quotas.quota_buckets
    await _same_both_ways(
        engine,
        quotas._PG_SAVE_MANY,
        {
            "ids": [bucket_id],
            "allowance": [Decimal(60 * MIB)],
            "used": [Decimal("1234.5")],
            "reserved": [Decimal(MIB)],
            "expires_at": [None],
            "period_end": [later],
            "precedence": [3],
        },
        after=sa.select(buckets).order_by(buckets.c.id),
    )
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(radius_sessions),
            [
                {
                    "nas_address": "10.0.0.1",
                    "acct_session_id": f"acct-{n}",
                    "charging_session_id": session_ids[n],
                    "sub_session": "",
                    "account_id": sub.account.id,
                    "customer_id": sub.customer.id,
                    "user_name": "ada",
                    "framed_ip": None,
                    "input_octets": 0,
                    "output_octets": 0,
                    "session_time": 0,
                    "reports": 1,
                    "state": "OPEN",
                    "restricted": False,
                    "last_dae": None,
                    "started_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(2)
            ],
        )
    keys, rows, *_ = await _same_both_ways(
        engine,
        radius._PG_USAGE_UPDATE,
        {
            "key_nas": ["10.0.0.1"] * 2,
            "key_session": ["acct-0", "acct-1"],
            "input_octets": [10, 20],
            "output_octets": [30, 40],
            "session_time": [5, 6],
            "reports": [2, 1],  # the second is not newer: not written
            "state": ["OPEN", "OPEN"],
            "framed_ip": ["100.64.0.1", None],
            "updated_at": [later, later],
        },
        after=sa.select(radius_sessions).order_by(radius_sessions.c.acct_session_id),
    )
    assert keys == ["n"]  # the positions written, counted from 1
    assert rows == [_typed((1,))]


async def test_the_batch_statements_take_the_fast_path(
    backend: str,
    uow: SqlUnitOfWorkFactory,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _postgresql_only(backend, engine)
    subscribers, session_ids = await _stored(uow)
    taken: list[bool] = []
    execute = FastPath.execute

    async def spied(self: FastPath, statement: Any, parameters: Any) -> Any:
        result = await execute(self, statement, parameters)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(FastPath, "execute", spied)
    async with uow() as work:
        loaded = await work.sessions.get_many(session_ids, lock=True)
        found = await work.accounts.by_identifiers(
            IdentifierKind.MSISDN, [str(s.account.identifiers.msisdn) for s in subscribers]
        )
        before = len(taken)
        accounts = await work.accounts.get_many([s.account.id for s in subscribers])
        # read with their sessions (one statement), not again
        assert len(taken) == before and set(accounts) == {s.account.id for s in subscribers}
        owners = await work.customers.get_many([s.customer.id for s in subscribers], lock=True)
        buckets = await work.quotas.for_accounts([a.id for a in found.values()], lock=True)
        for session in loaded.values():
            session.last_activity = NOW + timedelta(minutes=1)
        for owner in owners.values():
            owner.wallet.credit(usd("1.5"))
        for held in buckets.values():
            for b in held:
                b.used = Decimal(MIB)
        await work.sessions.save_many([loaded[session_ids[0]], loaded[session_ids[2]]])
        await work.customers.save_many(list(owners.values()))
        await work.quotas.save([b for bs in buckets.values() for b in bs])
        await work.commit()
    assert len(taken) >= 7
    assert all(taken)


async def _violation(connection: AsyncConnection, on_fast_path: bool, account_id: str) -> Any:
    parameters = {"alias": "taken", "account_id": account_id}
    if on_fast_path:
        return await FastPath(connection).execute(_ALIAS_INSERT, parameters)
    return await connection.execute(_ALIAS_INSERT, parameters)


async def test_a_unique_violation_surfaces_as_through_sqlalchemy(
    backend: str, uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    _postgresql_only(backend, engine)
    subscribers, _ = await _stored(uow)
    account_id = subscribers[0].account.id
    async with engine.begin() as connection:
        await connection.execute(_ALIAS_INSERT, {"alias": "taken", "account_id": account_id})
    seen = []
    for on_fast_path in (True, False):
        async with engine.connect() as connection:
            await connection.begin()
            with pytest.raises(IntegrityError) as raised:
                await _violation(connection, on_fast_path, account_id)
            error = raised.value
            assert unique_violation(error, "account_aliases", "alias")
            # the transaction is aborted, and stays to be rolled back
            with pytest.raises(DBAPIError) as aborted:
                await _violation(connection, on_fast_path, account_id)
            assert connection.in_transaction()
            await connection.rollback()
            # usable again
            await connection.begin()
            statement = customers._BY_ID()
            parameters = {"customer_id": subscribers[0].customer.id}
            assert await FastPath(connection).execute(statement, parameters) is not None
            await connection.rollback()
        seen.append(
            (
                type(error),
                type(error.orig),
                error.orig.sqlstate,  # type: ignore[union-attr]
                str(error),
                type(aborted.value),
                aborted.value.orig.sqlstate,  # type: ignore[union-attr]
            )
        )
    assert seen[0] == seen[1]
    assert seen[0][2] == "23505"


async def _lock_timeout(
    uow: SqlUnitOfWorkFactory, customer_id: str, on_fast_path: bool
) -> ConcurrentChange:
    async with uow() as holder:
        await holder.customers.get(customer_id, lock=True)
        async with uow() as waiter:
            if not on_fast_path:
                waiter.customers._fast = None
            await waiter.connection.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
            with pytest.raises(ConcurrentChange) as raised:
                await waiter.customers.get(customer_id, lock=True)
            assert waiter.connection.in_transaction()
        # the waiter rolled back on leaving: the holder goes on
        assert await holder.customers.get(customer_id) is not None
    return raised.value


async def test_a_lock_timeout_becomes_concurrent_change_as_through_sqlalchemy(
    backend: str, uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    _postgresql_only(backend, engine)
    subscribers, _ = await _stored(uow)
    customer_id = subscribers[0].customer.id
    seen = []
    for on_fast_path in (True, False):
        error = await _lock_timeout(uow, customer_id, on_fast_path)
        cause = error.__cause__
        assert isinstance(cause, DBAPIError) and retryable(cause)
        seen.append((type(cause), type(cause.orig), cause.orig.sqlstate, str(error)))  # type: ignore[union-attr]
    assert seen[0] == seen[1]
    assert seen[0][2] == "55P03"


async def test_a_deadlock_becomes_concurrent_change(
    backend: str, uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    _postgresql_only(backend, engine)
    subscribers, _ = await _stored(uow)
    first, second = (s.customer.id for s in subscribers)
    both_hold_one = asyncio.Barrier(2)

    async def lock(one: str, other: str) -> BaseException | None:
        async with uow() as work:
            await work.customers.get(one, lock=True)
            await both_hold_one.wait()
            try:
                await work.customers.get(other, lock=True)
            except ConcurrentChange as error:
                return error
        return None

    outcomes = await asyncio.gather(lock(first, second), lock(second, first))
    refused = [o for o in outcomes if o is not None]
    assert len(refused) == 1  # PostgreSQL breaks the deadlock by failing one of them
    cause = refused[0].__cause__
    assert isinstance(cause, DBAPIError) and cause.orig.sqlstate == "40P01"  # type: ignore[union-attr]
