"""The event relay tails the real outbox (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from use_case_support import Clock

from ratel.adapters.component import EventRelayLoop
from ratel.adapters.db.tables import outbox
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.health import ListenerRegistry, ListenerState
from ratel.adapters.system import HmacHasher, SystemClock, TimeOrderedIds
from ratel.application.base import Dependencies
from ratel.application.customers import OpenCustomer, SuspendCustomer
from ratel.application.payments import TopUp
from ratel.application.relay import EventRelay
from ratel.domain.customer import Customer
from ratel.domain.money import Money
from ratel.ports.store import OutboxEntry


def make_deps(engine: AsyncEngine) -> Dependencies:
    return Dependencies(
        uow=SqlUnitOfWorkFactory(engine),
        clock=SystemClock(),
        ids=TimeOrderedIds(),
        hasher=HmacHasher("test"),
    )


async def test_handlers_get_new_events_of_their_types_in_order(engine: AsyncEngine) -> None:
    deps = make_deps(engine)
    before = await OpenCustomer(deps)("Before the start", "USD")
    relay = EventRelay(deps)
    assert await relay() == 0  # the first pass only finds where the outbox ends
    money: list[tuple[str, str]] = []
    everything: list[str] = []

    async def on_money(entry: OutboxEntry) -> None:
        money.append((entry.event_type, entry.aggregate_id))

    async def on_anything(entry: OutboxEntry) -> None:
        everything.append(entry.event_type)

    relay.subscribe(on_money, "BalanceChanged", "CustomerSuspended")
    relay.subscribe(on_anything)
    customer = await OpenCustomer(deps)("Ada", "USD")
    await TopUp(deps)(customer.id, Money.of("5", "USD"), "card-1")
    await SuspendCustomer(deps)(customer.id)
    assert await relay() == 3
    assert money == [("BalanceChanged", customer.id), ("CustomerSuspended", customer.id)]
    assert everything == ["CustomerCreated", "BalanceChanged", "CustomerSuspended"]
    assert before.id not in [aggregate for _, aggregate in money]
    # nothing new: nothing handed on twice
    assert await relay() == 0
    assert len(everything) == 3


async def test_a_failing_handler_does_not_hold_back_the_others(engine: AsyncEngine) -> None:
    deps = make_deps(engine)
    relay = EventRelay(deps)
    await relay.start_at_newest()
    seen: list[str] = []

    async def broken(entry: OutboxEntry) -> None:
        raise RuntimeError("the NAS is gone")

    async def working(entry: OutboxEntry) -> None:
        seen.append(entry.event_type)

    relay.subscribe(broken)
    relay.subscribe(working)
    await OpenCustomer(deps)("Ada", "USD")
    assert await relay() == 1
    assert seen == ["CustomerCreated"]
    relay.unsubscribe(working)
    await OpenCustomer(deps)("Grace", "USD")
    assert await relay() == 1
    assert seen == ["CustomerCreated"]


async def test_a_handler_may_use_the_store(engine: AsyncEngine) -> None:
    # SQLite has one connection: a handler called inside the relay's own
    # transaction would wait for itself forever.
    deps = make_deps(engine)
    relay = EventRelay(deps)
    await relay.start_at_newest()
    balances: list[str] = []

    async def read_balance(entry: OutboxEntry) -> None:
        async with deps.uow() as uow:
            customer = await uow.customers.get(entry.aggregate_id)
            assert customer is not None
            balances.append(str(customer.wallet.balance.amount))

    relay.subscribe(read_balance, "BalanceChanged")
    customer = await OpenCustomer(deps)("Ada", "USD")
    await TopUp(deps)(customer.id, Money.of("7.5", "USD"), "card-1")
    await asyncio.wait_for(relay(), 10)
    assert [b.rstrip("0").rstrip(".") for b in balances] == ["7.5"]


async def test_the_loop_drains_bursts_and_reports_its_state(engine: AsyncEngine) -> None:
    deps = make_deps(engine)
    relay = EventRelay(deps)
    listeners = ListenerRegistry()
    loop = EventRelayLoop(relay, 0.05, listeners, batch=2)
    seen: list[int] = []
    done = asyncio.Event()

    async def count(entry: OutboxEntry) -> None:
        seen.append(entry.id)
        if len(seen) == 5:
            done.set()

    relay.subscribe(count, "CustomerCreated")
    await loop.start()
    status = listeners.status("event-relay")
    assert status is not None and status.state is ListenerState.UP
    for n in range(5):
        await OpenCustomer(deps)(f"Customer {n}", "USD")
    await asyncio.wait_for(done.wait(), 10)
    await loop.stop()
    assert seen == sorted(seen) and len(set(seen)) == 5
    status = listeners.status("event-relay")
    assert status is not None and status.state is ListenerState.DOWN


def with_clock(engine: AsyncEngine, clock: Clock) -> Dependencies:
    return Dependencies(
        uow=SqlUnitOfWorkFactory(engine),
        clock=clock,
        ids=TimeOrderedIds(),
        hasher=HmacHasher("test"),
    )


async def test_an_event_committed_after_a_newer_one_is_still_handed_on(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: its outbox ids commit in order")
    deps = make_deps(engine)
    relay = EventRelay(deps)
    await relay.start_at_newest()
    seen: list[str] = []

    async def note(entry: OutboxEntry) -> None:
        seen.append(entry.aggregate_id)

    relay.subscribe(note, "CustomerCreated")
    async with deps.uow() as slow:  # a transaction that takes its id first...
        early = Customer.open("cust_slow", "Slow", "USD", deps.clock.now())
        await slow.customers.add(early)
        await slow.outbox.add(early.pull_events())
        # ...and commits after another one
        quick = await OpenCustomer(deps)("Quick", "USD")
        assert await relay() == 1
        assert seen == [quick.id]
        assert relay.awaited  # the slow transaction's id
        await slow.commit()
    assert await relay() == 1
    assert seen == [quick.id, "cust_slow"]
    assert relay.awaited == []
    assert await relay() == 0


async def test_an_id_passed_over_is_awaited_then_given_up(engine: AsyncEngine) -> None:
    clock = Clock()
    deps = with_clock(engine, clock)
    relay = EventRelay(deps, gap_wait=timedelta(seconds=30))
    await relay.start_at_newest()
    seen: list[int] = []

    async def note(entry: OutboxEntry) -> None:
        seen.append(entry.id)

    relay.subscribe(note)
    first = await OpenCustomer(deps)("First", "USD")
    [entry] = await relay_entries(engine, first.id)
    # ids handed out to transactions that have not committed (or never will)
    await copy_event(engine, entry, entry.id + 3)
    assert await relay() == 2
    assert seen == [entry.id, entry.id + 3]
    assert relay.awaited == [entry.id + 1, entry.id + 2]
    await copy_event(engine, entry, entry.id + 1)  # one of them commits
    clock.at += timedelta(seconds=10)
    assert await relay() == 1
    assert seen[-1] == entry.id + 1
    assert relay.awaited == [entry.id + 2]
    clock.at += timedelta(seconds=30)  # the other was rolled back
    assert await relay() == 0
    assert relay.awaited == []


async def relay_entries(engine: AsyncEngine, aggregate_id: str) -> list[OutboxEntry]:
    async with SqlUnitOfWorkFactory(engine)() as uow:
        return await uow.outbox.recent(aggregate_id=aggregate_id)


async def copy_event(engine: AsyncEngine, entry: OutboxEntry, new_id: int) -> None:
    """Commit a copy of ``entry`` under ``new_id``, as a transaction that took
    that id would."""
    async with engine.begin() as connection:
        row = (
            (await connection.execute(sa.select(outbox).where(outbox.c.id == entry.id)))
            .mappings()
            .one()
        )
        await connection.execute(sa.insert(outbox).values({**row, "id": new_id}))
