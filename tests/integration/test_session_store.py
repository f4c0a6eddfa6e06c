"""Credit-control sessions survive a trip through the database: a session
continued by another node answers exactly as one kept in memory."""

from __future__ import annotations

import copy
from datetime import time, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import MIB, NOW, account, bucket, customer, main_product, tariffs, usd
from store_databases import statements

from ratel.adapters.db.codec import ANSWERS_KEPT_PER_SUB_SESSION
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.domain.account import Account
from ratel.domain.catalogue import Service, Unit
from ratel.domain.charging import (
    Answer,
    ChargingContext,
    CreditControlSession,
    Denial,
    Grant,
    Rater,
    SessionState,
    UsageRequest,
)
from ratel.domain.customer import Customer
from ratel.domain.errors import ConcurrentChange, SessionExists
from ratel.domain.location import LocationPolicy
from ratel.domain.quota import QuotaBucket
from ratel.domain.rating import Rate, RatePeriod, Tariff


def voice(used: int = 0, requested: int | None = 120, dest: str = "447700900123") -> UsageRequest:
    return UsageRequest(Service.VOICE, Unit.SECONDS, "VOICE", dest, requested=requested, used=used)


def data(used: int = 0, requested: int | None = 50 * MIB, rg: int = 10) -> UsageRequest:
    return UsageRequest(
        Service.DATA, Unit.BYTES, "DATA", rating_group=rg, requested=requested, used=used
    )


class Subscriber:
    """A customer, account and buckets, and the context the charging core needs."""

    def __init__(self, balance: str = "3") -> None:
        self.customer = customer(balance=balance, credit_limit="0.1")
        self.account = account(self.customer)
        product = main_product()
        self.buckets = [bucket(self.account, product.quotas[0], allowance=60 * MIB)]
        self.rater = Rater([product], {t.code: t for t in tariffs()})
        self.policy = product.policy

    def context(
        self, owner: Customer | None = None, buckets: list[QuotaBucket] | None = None
    ) -> ChargingContext:
        return ChargingContext(
            account=self.account,
            customer=owner or self.customer,
            buckets=self.buckets if buckets is None else buckets,
            rater=self.rater,
            policy=self.policy,
            location_policy=LocationPolicy(),
        )


async def store_subscriber(uow: SqlUnitOfWorkFactory, sub: Subscriber) -> None:
    async with uow() as work:
        await work.customers.add(sub.customer)
        await work.accounts.add(sub.account)
        for b in sub.buckets:
            await work.quotas.add(b)
        await work.commit()


SESSION = "gw;1;42"


def charge_in_memory(
    session: CreditControlSession,
    ctx: ChargingContext,
    number: int,
    requests: list[UsageRequest],
    *,
    end: bool,
) -> Answer:
    at = NOW + timedelta(seconds=30 * number)
    if end:
        return session.terminate(ctx, number, requests, at, xdr_id="xdr-1")
    if not session.answers:
        return session.reserve(ctx, number, requests, at)
    return session.report(ctx, number, requests, at)


async def charge_from_the_store(
    uow: SqlUnitOfWorkFactory,
    sub: Subscriber,
    number: int,
    requests: list[UsageRequest],
    *,
    end: bool,
) -> Answer:
    """What another node does: everything loaded from the database."""
    async with uow() as work:
        stored = await work.sessions.get(SESSION, lock=True)
        owner = await work.customers.get(sub.customer.id, lock=True)
        buckets = await work.quotas.for_account(sub.account.id, lock=True)
        assert owner is not None
        session = stored or CreditControlSession.open(SESSION, sub.account, owner, NOW)
        answer = charge_in_memory(session, sub.context(owner, buckets), number, requests, end=end)
        await (work.sessions.save(session) if stored else work.sessions.add(session))
        await work.customers.save(owner)
        await work.quotas.save(buckets)
        if answer.xdr is not None:
            await work.xdrs.add(answer.xdr)
        await work.commit()
    return answer


async def test_a_session_continued_elsewhere_answers_as_one_kept_in_memory(
    uow: SqlUnitOfWorkFactory,
) -> None:
    sub = Subscriber(balance="0.35")  # runs out: final units, then a denial
    await store_subscriber(uow, sub)
    # The reference: the same subscriber and session, never stored.
    memory = copy.deepcopy(sub)
    kept = CreditControlSession.open(SESSION, memory.account, memory.customer, NOW)
    steps = [
        [voice(), data()],
        [voice(used=45), data(used=40 * MIB)],
        [voice(used=120, requested=600), data(used=50 * MIB)],
        [voice(used=61), data(used=12 * MIB, rg=11)],
    ]
    for number, requests in enumerate(steps):
        end = number == len(steps) - 1
        expected = charge_in_memory(kept, memory.context(), number, requests, end=end)
        assert await charge_from_the_store(uow, sub, number, requests, end=end) == expected
        async with uow() as work:  # a retransmission finds the stored answer
            again = await work.sessions.get(SESSION)
            assert again is not None and again.stored_answer(number) == expected

    async with uow() as work:
        final = await work.sessions.get(SESSION)
        owner = await work.customers.get(sub.customer.id)
        buckets = await work.quotas.for_account(sub.account.id)
        xdr = await work.xdrs.get("xdr-1")
    assert final == kept
    assert final is not None and final.state is SessionState.CLOSED
    assert owner is not None and owner.wallet == memory.customer.wallet
    assert buckets == memory.buckets
    assert xdr is not None and xdr == kept.xdr
    assert xdr.charge.is_positive()
    results = [r for a in kept.answers.values() for r in a.results]
    assert any(isinstance(r, Grant) and r.final is not None for r in results)
    assert any(isinstance(r, Denial) for r in results)


async def test_a_session_id_is_started_once(uow: SqlUnitOfWorkFactory) -> None:
    sub = Subscriber()
    await store_subscriber(uow, sub)
    session = CreditControlSession.open("s-1", sub.account, sub.customer, NOW)
    async with uow() as work:
        await work.sessions.add(session)
        await work.commit()
    async with uow() as work:
        with pytest.raises(SessionExists):
            await work.sessions.add(
                CreditControlSession.open("s-1", sub.account, sub.customer, NOW)
            )
        # the unit of work is still usable (no aborted transaction)
        assert await work.sessions.get("s-1") == session


async def test_a_batch_load_of_sessions_brings_their_accounts_as_they_are_now(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    sub = Subscriber()
    await store_subscriber(uow, sub)
    async with uow() as work:
        await work.sessions.add(CreditControlSession.open("s-1", sub.account, sub.customer, NOW))
        await work.commit()
    async with uow() as work:  # meanwhile the account was blocked
        blocked = await work.accounts.get(sub.account.id)
        assert blocked is not None
        blocked.block("fraud", NOW)
        await work.accounts.save(blocked)
        await work.commit()
    with statements(engine) as seen:
        async with uow() as work:
            assert set(await work.sessions.get_many(["s-1", "nobody"], lock=True)) == {"s-1"}
            read = len(seen)
            first = await work.accounts.get_many([sub.account.id])
            # read with the session, in its statement: not read again...
            assert len(seen) == read
            assert first == {sub.account.id: blocked}
            # ...once: a later read asks the database
            assert await work.accounts.get_many([sub.account.id]) == first
            assert len(seen) == read + 1


async def test_only_the_latest_answers_are_kept(uow: SqlUnitOfWorkFactory) -> None:
    sub = Subscriber()
    await store_subscriber(uow, sub)
    session = CreditControlSession.open("s-long", sub.account, sub.customer, NOW)
    session.reserve(sub.context(), 0, [data(requested=1)], NOW)
    for n in range(1, 40):
        session.report(sub.context(), n, [data(used=1, requested=1)], NOW)
    session.reserve(sub.context(), 0, [data(requested=1, rg=11)], NOW, sub_session="b")
    async with uow() as work:
        await work.sessions.add(session)
        await work.commit()
    async with uow() as work:
        loaded = await work.sessions.get("s-long")
    assert loaded is not None
    kept = sorted(n for sub_session, n in loaded.answers if sub_session == "")
    assert kept == list(range(40 - ANSWERS_KEPT_PER_SUB_SESSION, 40))
    assert ("b", 0) in loaded.answers
    assert loaded.last_request == {"": 39, "b": 0}
    assert loaded.streams == session.streams


async def test_a_stale_session_is_not_overwritten(uow: SqlUnitOfWorkFactory) -> None:
    sub = Subscriber()
    await store_subscriber(uow, sub)
    async with uow() as work:
        await work.sessions.add(CreditControlSession.open("s-2", sub.account, sub.customer, NOW))
        await work.commit()
    async with uow() as work:
        first = await work.sessions.get("s-2")
        second = await work.sessions.get("s-2")
        assert first is not None and second is not None
        first.last_activity = NOW + timedelta(seconds=1)
        await work.sessions.save(first)
        second.last_activity = NOW + timedelta(seconds=2)
        with pytest.raises(ConcurrentChange):
            await work.sessions.save(second)


async def test_open_and_idle_sessions(uow: SqlUnitOfWorkFactory) -> None:
    sub = Subscriber()
    await store_subscriber(uow, sub)
    other: Account = account(sub.customer)
    sessions = []
    for n, minutes in enumerate((1, 5, 10)):
        s = CreditControlSession.open(f"s-{n}", sub.account, sub.customer, NOW)
        s.last_activity = NOW + timedelta(minutes=minutes)
        sessions.append(s)
    sessions[2].state = SessionState.CLOSED
    elsewhere = CreditControlSession.open("s-x", other, sub.customer, NOW)
    async with uow() as work:
        await work.accounts.add(other)
        for s in (*sessions, elsewhere):
            await work.sessions.add(s)
        await work.commit()
    async with uow() as work:
        assert await work.sessions.open_for_account(sub.account.id) == ["s-0", "s-1"]
        idle = await work.sessions.idle_since(NOW + timedelta(minutes=6))
        assert [session_id for _, session_id in idle] == ["s-x", "s-0", "s-1"]
        first = await work.sessions.idle_since(NOW + timedelta(minutes=2), limit=1)
        assert [session_id for _, session_id in first] == ["s-x"]
        # the next page: past the last one seen (same time, greater id)
        rest = await work.sessions.idle_since(NOW + timedelta(minutes=6), after=first[0])
        assert [session_id for _, session_id in rest] == ["s-0", "s-1"]
        # a top-up concerns the sessions of every account of the customer
        assert await work.sessions.open_for_customer(sub.customer.id) == ["s-0", "s-1", "s-x"]
        assert await work.sessions.open_for_customer("cus_nobody") == []


async def test_a_grant_across_a_tariff_change_is_stored_with_its_change(
    uow: SqlUnitOfWorkFactory,
) -> None:
    """The time-banded rate, the grant's start and its Tariff-Time-Change
    survive the store, so another node rates the split usage the same."""
    night = Rate.per_interval(usd("0.04"), 60)
    banded = Tariff("VOICE-STD", "USD", "peak and off-peak", "Europe/Paris")
    banded.add_prefix(
        "44", Rate.per_interval(usd("0.10"), 60), periods=[RatePeriod(time(20), time(8), night)]
    )
    sub = Subscriber()
    sub.rater = Rater([main_product()], {banded.code: banded})
    await store_subscriber(uow, sub)
    start = NOW.replace(hour=18, minute=58)  # 19:58 in Paris
    session = CreditControlSession.open(SESSION, sub.account, sub.customer, start)
    grant = session.reserve(sub.context(), 0, [voice(requested=300)], start).results[0]
    assert isinstance(grant, Grant) and grant.tariff_change_at == start.replace(hour=19, minute=0)
    async with uow() as work:
        await work.sessions.add(session)
        await work.commit()
    async with uow() as work:
        loaded = await work.sessions.get(SESSION)
    assert loaded == session
    assert loaded is not None and loaded.stored_answer(0) == session.stored_answer(0)
    split = UsageRequest(
        Service.VOICE, Unit.SECONDS, "VOICE", "447700900123", used=300, used_after_change=180
    )
    answer = loaded.terminate(sub.context(), 1, [split], start + timedelta(minutes=5))
    # 2 minutes at 0.10, then 3 at 0.04
    assert answer.xdr is not None and answer.xdr.charge == usd("0.32")
