"""Group commit of credit control on SQLite and PostgreSQL: a batch answers
exactly what one-by-one calls answer, conserves money, never charges a
retransmission twice, keeps one call's failure to itself, and concurrent
batches never pass a credit limit."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from store_builders import MIB, usd
from store_databases import statements
from use_case_support import CHARGES, SERVICES, Clock, define_tariffs

from ratel.adapters.charging import ChargingBatcher, ChargingWorkers
from ratel.adapters.db.engine import charging_engine
from ratel.adapters.db.tables import customers
from ratel.adapters.db.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from ratel.adapters.diameter.peers import Ended, Opened, SessionPeer, SessionPeers
from ratel.adapters.system import HmacHasher
from ratel.application.accounts import CreateAccount
from ratel.application.base import Dependencies
from ratel.application.catalogue import DefineProduct
from ratel.application.charging_batch import (
    CallKind,
    ChargingBatch,
    ChargingCall,
    Companion,
    Outcome,
)
from ratel.application.credit_control import CreditControl, Subscriber
from ratel.application.customers import OpenCustomer
from ratel.application.payments import TopUp
from ratel.domain.catalogue import (
    Product,
    ProductKind,
    QuotaDefinition,
    Service,
    Unit,
)
from ratel.domain.charging import Answer, Grant, RequestKind, UsageRequest
from ratel.domain.errors import ConcurrentChange
from ratel.domain.identifiers import Identifiers, Msisdn
from ratel.domain.money import Money
from ratel.ports.store import IdentifierKind


class Ids:
    """Ids from a counter, per prefix."""

    def __init__(self) -> None:
        self._next = count(1)

    def new(self, prefix: str) -> str:
        return f"{prefix}_{next(self._next):08d}"


class FailingUow(SqlUnitOfWork):
    """The real unit of work, whose outbox write raises the next of
    ``failures`` while there are any (a deadlock, or anything else)."""

    def __init__(self, engine: AsyncEngine, failures: list[Exception]) -> None:
        super().__init__(engine)
        self._failures = failures

    async def __aenter__(self) -> FailingUow:
        await super().__aenter__()
        add = self.outbox.add
        failures = self._failures

        async def add_or_fail(events: Sequence[Any]) -> None:
            if failures:
                raise failures.pop(0)
            await add(events)

        self.outbox.add = add_or_fail  # type: ignore[method-assign]
        return self


class CountingUow(SqlUnitOfWorkFactory):
    """Real units of work; counts how many are opened, and can make the next
    ones fail."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.opened = 0
        self.failures: list[Exception] = []

    def __call__(self) -> SqlUnitOfWork:
        self.opened += 1
        return FailingUow(self.engine, self.failures)


@pytest.fixture
async def charging(engine: AsyncEngine, database_url: str) -> AsyncIterator[AsyncEngine]:
    """The engine ``ratel serve`` runs batches on (on PostgreSQL a pool of its
    own, whose statements are planned once)."""
    charging = charging_engine(engine, database_url, 4)
    yield charging
    if charging is not engine:
        await charging.dispose()


@pytest.fixture
async def deps(charging: AsyncEngine) -> Dependencies:
    deps = Dependencies(
        uow=CountingUow(charging), clock=Clock(), ids=Ids(), hasher=HmacHasher("test")
    )
    await define_tariffs(deps)
    charges, services = CHARGES, SERVICES
    quota = QuotaDefinition("BASIC-DATA", Service.DATA, Unit.BYTES, Decimal(3 * MIB))
    await DefineProduct(deps)(
        Product(
            "BASIC", "Basic", ProductKind.MAIN, services, usage_charges=charges, quotas=(quota,)
        )
    )
    await DefineProduct(deps)(
        Product("PLAIN", "Plain", ProductKind.MAIN, services, usage_charges=charges)
    )
    return deps


async def test_on_postgresql_batches_have_a_pool_of_their_own_that_plans_once(
    engine: AsyncEngine, charging: AsyncEngine, backend: str
) -> None:
    if backend == "sqlite":
        assert charging is engine  # the one connection that writes
        return

    async def plan_cache_mode(of: AsyncEngine) -> str:
        async with of.connect() as connection:
            return str((await connection.execute(sa.text("SHOW plan_cache_mode"))).scalar())

    assert await plan_cache_mode(charging) == "force_generic_plan"
    assert await plan_cache_mode(engine) == "auto"  # the rest of ratel: PostgreSQL's default


@dataclass(frozen=True)
class Line:
    customer_id: str
    account_id: str
    msisdn: str


async def line(deps: Dependencies, msisdn: str, balance: str, product: str = "PLAIN") -> Line:
    customer = await OpenCustomer(deps)("Ada Lovelace", "USD", country="GB")
    if Decimal(balance):
        await TopUp(deps)(customer.id, usd(balance), "card-1")
    account = await CreateAccount(deps)(
        customer.id, product, identifiers=Identifiers(msisdn=Msisdn.parse(msisdn))
    )
    return Line(customer.id, account.id, msisdn)


def call(requested: int | None = 60, used: int = 0) -> UsageRequest:
    return UsageRequest(
        Service.VOICE, Unit.SECONDS, "VOICE", "12025550199", requested=requested, used=used
    )


def data(requested: int | None = MIB, used: int = 0) -> UsageRequest:
    return UsageRequest(
        Service.DATA, Unit.BYTES, "DATA", rating_group=10, requested=requested, used=used
    )


SMS_REQUEST = UsageRequest(Service.SMS, Unit.MESSAGES, "SMS", "12025550199", requested=1)


async def wallet(deps: Dependencies, customer_id: str) -> tuple[Money, Money]:
    async with deps.uow() as uow:
        customer = await uow.customers.get(customer_id)
    assert customer is not None
    return customer.wallet.balance, customer.wallet.reserved


# -- random mixes ------------------------------------------------------------------


def mix(seed: int, lines: Sequence[Line], steps: int = 60) -> list[ChargingCall]:
    """A random mix of calls on the lines, decided without knowing any answer:
    sessions started, updated, retransmitted, ended; SMS; and calls that
    must fail (unknown session or subscriber, out of order, after the end)."""
    rng = random.Random(seed)
    calls: list[ChargingCall] = []
    open_: dict[str, int] = {}  # session -> next request number
    ended: list[str] = []
    kinds: dict[str, str] = {}
    made = count()

    def usage(sid: str, used: int) -> tuple[UsageRequest, ...]:
        if kinds[sid] == "voice":
            return (call(rng.choice([60, 120, None]), used=min(used, 200)),)
        return (data(rng.choice([MIB, 2 * MIB, None]), used=used * 20_000),)

    for _ in range(steps):
        roll = rng.random()
        if roll < 0.2 or not open_:
            target = rng.choice(lines)
            sid = f"s{next(made)}"
            kinds[sid] = rng.choice(["voice", "data"])
            who = rng.choice(
                [
                    Subscriber(IdentifierKind.MSISDN, target.msisdn),
                    Subscriber(IdentifierKind.ACCOUNT_ID, target.account_id),
                ]
            )
            calls.append(ChargingCall(CallKind.START, sid, 0, usage(sid, 0), who))
            open_[sid] = 1
        elif roll < 0.55:
            sid = rng.choice(sorted(open_))
            calls.append(
                ChargingCall(CallKind.UPDATE, sid, open_[sid], usage(sid, rng.randint(0, 150)))
            )
            open_[sid] += 1
        elif roll < 0.65 and calls:
            calls.append(rng.choice(calls[-8:]))  # a retransmission
        elif roll < 0.75:
            sid = rng.choice(sorted(open_))
            last = usage(sid, rng.randint(0, 90))
            calls.append(ChargingCall(CallKind.TERMINATE, sid, open_.pop(sid), last))
            ended.append(sid)
        elif roll < 0.85:
            target = rng.choice(lines)
            who = Subscriber(IdentifierKind.MSISDN, target.msisdn)
            calls.append(ChargingCall(CallKind.DEBIT, f"sms{next(made)}", 0, (SMS_REQUEST,), who))
        elif roll < 0.88:
            calls.append(ChargingCall(CallKind.UPDATE, "never-started", 1, (call(),)))
        elif roll < 0.91:
            who = Subscriber(IdentifierKind.MSISDN, "19999999999")
            calls.append(ChargingCall(CallKind.START, f"s{next(made)}", 0, (call(),), who))
        elif roll < 0.95 and open_:
            sid = rng.choice(sorted(open_))
            if open_[sid] > 2:  # a number below the last one, never answered
                open_[sid] += 1
                calls.append(ChargingCall(CallKind.UPDATE, sid, open_[sid], usage(sid, 10)))
                calls.append(ChargingCall(CallKind.UPDATE, sid, open_[sid] - 1, usage(sid, 10)))
                open_[sid] += 1
        elif ended:
            sid = rng.choice(ended)
            calls.append(ChargingCall(CallKind.UPDATE, sid, 99, (call(),)))
    for sid in sorted(open_):  # everything ends: every hold is settled
        calls.append(ChargingCall(CallKind.TERMINATE, sid, open_[sid], usage(sid, 30)))
    return calls


def on_lines(calls: Sequence[ChargingCall], tag: str, lines: dict[str, Line]) -> list[ChargingCall]:
    """The same calls for another set of lines (session ids tagged)."""
    moved = []
    for c in calls:
        who = c.subscriber
        if who is not None and who.kind is IdentifierKind.ACCOUNT_ID and who.value in lines:
            who = Subscriber(who.kind, lines[who.value].account_id)
        elif who is not None and who.value in lines:
            who = Subscriber(who.kind, lines[who.value].msisdn)
        moved.append(replace(c, session_id=f"{tag}:{c.session_id}", subscriber=who))
    return moved


def plain(outcome: Outcome) -> object:
    """An outcome without the ids that differ between two runs."""
    if isinstance(outcome, Exception):
        return type(outcome).__name__
    xdr = outcome.xdr
    if xdr is not None:
        lines = tuple(
            replace(x, bucket_units=tuple(("", units) for _, units in x.bucket_units))
            for x in xdr.lines
        )
        xdr = replace(xdr, id="", session_id="", account_id="", customer_id="", lines=lines)
    results = tuple(
        replace(r, message=r.message.split(" ")[0]) if not isinstance(r, Grant) else r
        for r in outcome.results
    )
    return replace(outcome, xdr=xdr, results=results)


async def state(deps: Dependencies, line_: Line) -> dict[str, object]:
    async with deps.uow() as uow:
        customer = await uow.customers.get(line_.customer_id)
        buckets = await uow.quotas.for_account(line_.account_id)
        xdrs = await uow.xdrs.for_customer(line_.customer_id)
        journal = await uow.transactions.for_customer(line_.customer_id, limit=10_000)
        events = await uow.outbox.recent(aggregate_id=line_.customer_id, limit=10_000)
    assert customer is not None
    return {
        "balance": customer.wallet.balance,
        "reserved": customer.wallet.reserved,
        "used": sorted(b.used for b in buckets),
        "xdrs": sorted(x.charge.amount for x in xdrs),
        "paid": sum((x.balance_charge for x in xdrs), usd(0)),
        "journal": sorted(t.amount.amount for t in journal if t.reason.value == "usage"),
        "events": [e.event_type for e in reversed(events)],
    }


@pytest.mark.parametrize("seed", range(6))
async def test_a_batched_mix_answers_and_charges_as_one_by_one(
    deps: Dependencies, seed: int
) -> None:
    balances = ["0.40", "3", "25"]
    products = ["PLAIN", "BASIC", "BASIC"]
    alone = [
        await line(deps, f"1202555{seed}1{n}0", b, p)
        for n, (b, p) in enumerate(zip(balances, products, strict=True))
    ]
    grouped = [
        await line(deps, f"1202555{seed}2{n}0", b, p)
        for n, (b, p) in enumerate(zip(balances, products, strict=True))
    ]
    calls = mix(seed, alone)
    names = {a.msisdn: g for a, g in zip(alone, grouped, strict=True)}
    names.update({a.account_id: g for a, g in zip(alone, grouped, strict=True)})
    batch = ChargingBatch(deps)

    one_by_one = await batch.one_by_one(on_lines(calls, "A", {}))
    rng = random.Random(seed)
    batched: list[Outcome] = []
    pending = on_lines(calls, "B", names)
    while pending:
        size = rng.randint(1, 12)
        batched.extend(await batch(pending[:size]))
        pending = pending[size:]

    assert [plain(o) for o in batched] == [plain(o) for o in one_by_one]
    # the mix is worth comparing: answers and refusals of several kinds
    assert len({type(o).__name__ for o in one_by_one}) >= 3
    for a, g in zip(alone, grouped, strict=True):
        expected, got = await state(deps, a), await state(deps, g)
        assert got == expected
        # money is conserved: what left the balance is what the xDRs charged
        start = usd(balances[alone.index(a)])
        assert got["reserved"] == usd(0)
        assert start - got["balance"] == got["paid"]  # type: ignore[operator]
        assert sum(got["journal"], Decimal(0)) == -(start - got["balance"]).amount  # type: ignore[arg-type, operator]


async def test_retransmissions_charge_once_in_a_batch_and_across_batches(
    deps: Dependencies,
) -> None:
    owner = await line(deps, "12025550100", "10")
    uow = deps.uow
    assert isinstance(uow, CountingUow)
    batch = ChargingBatch(deps)
    who = Subscriber(IdentifierKind.MSISDN, owner.msisdn)
    initial = ChargingCall(CallKind.START, "r1", 0, (call(120),), who)
    update = ChargingCall(CallKind.UPDATE, "r1", 1, (call(120, used=100),))
    first = await batch([initial, initial, update, update])
    assert isinstance(first[0], Answer) and first[1] == first[0] and first[3] == first[2]
    after_first = await wallet(deps, owner.customer_id)
    async with deps.uow() as work:
        events = len(await work.outbox.recent(limit=1000))
    again = await batch([update, initial, update])
    assert again == [first[2], first[0], first[2]]
    assert await wallet(deps, owner.customer_id) == after_first
    async with deps.uow() as work:
        assert len(await work.outbox.recent(limit=1000)) == events
    end = ChargingCall(CallKind.TERMINATE, "r1", 2, (call(None, used=30),))
    sms = ChargingCall(CallKind.DEBIT, "r2", 0, (SMS_REQUEST,), who)
    closing = await batch([end, sms, end, sms])
    assert closing[2] == closing[0] and closing[3] == closing[1]
    assert isinstance(closing[0], Answer) and closing[0].xdr is not None
    assert closing[0].xdr.charge == usd("0.35")  # 130 s = 3 min at 0.10 + 0.05
    assert await wallet(deps, owner.customer_id) == (usd("9.60"), usd(0))
    assert await batch([end, sms]) == closing[:2]
    assert await wallet(deps, owner.customer_id) == (usd("9.60"), usd(0))
    async with deps.uow() as work:
        assert len(await work.xdrs.for_account(owner.account_id)) == 2


async def test_a_failing_call_keeps_its_failure_to_itself(deps: Dependencies) -> None:
    owner = await line(deps, "12025550100", "10")
    who = Subscriber(IdentifierKind.ACCOUNT_ID, owner.account_id)
    calls = [
        ChargingCall(CallKind.START, "f1", 0, (call(60),), who),
        ChargingCall(CallKind.UPDATE, "nobody", 1, (call(),)),
        ChargingCall(CallKind.START, "f2", 0, (call(),), Subscriber(IdentifierKind.MSISDN, "1999")),
        ChargingCall(CallKind.UPDATE, "f1", 2, (call(60, used=60),)),
        ChargingCall(CallKind.UPDATE, "f1", 1, (call(60, used=60),)),  # out of order
        ChargingCall(CallKind.TERMINATE, "f1", 3, (call(None, used=20),)),
        ChargingCall(CallKind.UPDATE, "f1", 4, (call(),)),  # after the end
        ChargingCall(CallKind.DEBIT, "f1", 7, (SMS_REQUEST,), who),  # the id is taken
        ChargingCall(CallKind.DEBIT, "f3", 0, (SMS_REQUEST,), who),
    ]
    outcomes = await ChargingBatch(deps)(calls)
    assert [type(o).__name__ for o in outcomes] == [
        "Answer",
        "UnknownSession",
        "UnknownSubscriber",
        "Answer",
        "OutOfOrderRequest",
        "Answer",
        "SessionClosed",
        "NotFound",
        "Answer",
    ]
    end = outcomes[5]
    assert isinstance(end, Answer) and end.xdr is not None
    assert end.xdr.charge == usd("0.25")  # 80 s: 2 min at 0.10 and the 0.05 fee
    assert await wallet(deps, owner.customer_id) == (usd("9.70"), usd(0))


async def test_a_deadlock_retries_the_batch_and_anything_else_runs_it_one_by_one(
    deps: Dependencies,
) -> None:
    owner = await line(deps, "12025550100", "10")
    uow = deps.uow
    assert isinstance(uow, CountingUow)
    who = Subscriber(IdentifierKind.ACCOUNT_ID, owner.account_id)
    batch = ChargingBatch(deps)
    calls = [ChargingCall(CallKind.START, f"d{n}", 0, (call(60),), who) for n in range(3)]

    uow.failures.append(ConcurrentChange("deadlock detected"))
    opened = uow.opened
    outcomes = await batch(calls)
    assert uow.opened - opened == 2  # the failed transaction and its retry
    assert all(isinstance(o, Answer) and o.granted for o in outcomes)

    uow.failures.append(RuntimeError("the disk is on fire"))
    opened = uow.opened
    more = [ChargingCall(CallKind.UPDATE, f"d{n}", 1, (call(60, used=60),)) for n in range(3)]
    outcomes = await batch(more)
    assert uow.opened - opened == 1 + 3  # the failed batch, then each call alone
    assert all(isinstance(o, Answer) and o.granted for o in outcomes)
    # three sessions, each charged its 0.15 once and holding 0.10 more
    assert await wallet(deps, owner.customer_id) == (usd("9.55"), usd("0.30"))


@pytest.mark.parametrize("workers", [1, 4])
async def test_concurrent_batches_never_pass_the_credit_limit(
    deps: Dependencies, backend: str, workers: int
) -> None:
    """As the one-by-one test: 50 sessions start at once on a balance of 1.00,
    each wanting 0.15; exactly 6 fit, and 0.90 is charged."""
    owner = await line(deps, "12025550100", "1")
    charging = ChargingWorkers(ChargingBatch(deps), workers, 16)
    cc = ChargingBatcher(charging, CreditControl(deps))
    await charging.start()
    try:
        who = Subscriber(IdentifierKind.ACCOUNT_ID, owner.account_id)
        answers = await asyncio.gather(*(cc.start(f"c{n}", who, [call(60)]) for n in range(50)))
        granted = [
            a.results[0] for a in answers if isinstance(a.results[0], Grant) and a.results[0].units
        ]
        assert len(granted) == 6
        balance, reserved = await wallet(deps, owner.customer_id)
        assert reserved <= usd(1) and balance == usd(1)
        used = [a.results[0].units if isinstance(a.results[0], Grant) else 0 for a in answers]
        ends = await asyncio.gather(
            *(cc.terminate(f"c{n}", 1, [call(None, used=used[n])]) for n in range(50))
        )
    finally:
        await charging.stop()
    charged = sum((e.xdr.charge for e in ends if e.xdr is not None), usd(0))
    assert charged == usd("0.90")
    assert await wallet(deps, owner.customer_id) == (usd("0.10"), usd(0))
    assert charging.calls == 100 and charging.batches < 100  # calls were grouped


async def test_concurrent_mixes_through_the_batcher_conserve_money(deps: Dependencies) -> None:
    lines = [await line(deps, f"120255501{n}0", "2", "BASIC") for n in range(4)]
    charging = ChargingWorkers(ChargingBatch(deps), 3, 8)
    cc = ChargingBatcher(charging, CreditControl(deps))
    await charging.start()

    async def session(n: int) -> None:
        rng = random.Random(n)
        target = lines[n % len(lines)]
        who = Subscriber(IdentifierKind.MSISDN, target.msisdn)
        sid = f"m{n}"
        await cc.start(sid, who, [data(MIB)])
        number = 1
        for _ in range(rng.randint(1, 4)):
            used = data(MIB, used=rng.randint(0, 2 * MIB))
            first = await cc.update(sid, number, [used])
            assert await cc.update(sid, number, [used]) == first  # a retransmission
            number += 1
        await cc.terminate(sid, number, [data(None, used=rng.randint(0, MIB))])

    try:
        await asyncio.gather(*(session(n) for n in range(40)))
    finally:
        await charging.stop()
    for target in lines:
        got = await state(deps, target)
        assert got["reserved"] == usd(0)
        assert usd(2) - got["balance"] == got["paid"]  # type: ignore[operator]
        assert got["balance"] >= usd(0)  # type: ignore[operator]


class Watched(ChargingBatch):
    """The real batch, noting which sessions run in batches at the same time
    and in which order each session's calls arrive."""

    def __init__(self, deps: Dependencies) -> None:
        super().__init__(deps)
        self.running: list[set[str]] = []
        self.overlaps = 0
        self.order: dict[str, list[int]] = {}
        self.sizes: list[int] = []

    async def __call__(self, calls: Sequence[ChargingCall]) -> list[Outcome]:
        sessions = {c.session_id for c in calls}
        self.overlaps += sum(1 for other in self.running if other & sessions)
        self.running.append(sessions)
        self.sizes.append(len(calls))
        for c in calls:
            self.order.setdefault(c.session_id, []).append(c.number)
        try:
            return await super().__call__(calls)
        finally:
            self.running.remove(sessions)


async def test_workers_share_one_queue_and_keep_each_sessions_calls_in_order(
    deps: Dependencies,
) -> None:
    owner = await line(deps, "12025550100", "50", "BASIC")
    watched = Watched(deps)
    charging = ChargingWorkers(watched, 2, 8)
    cc = ChargingBatcher(charging, CreditControl(deps))
    who = Subscriber(IdentifierKind.ACCOUNT_ID, owner.account_id)
    await charging.start()
    try:
        await asyncio.gather(*(cc.start(f"q{n}", who, [data()]) for n in range(12)))
        # every session sends its next three reports without waiting (and
        # repeats the first): pipelined, as a misbehaving gateway would
        updates = [
            cc.update(f"q{n}", number, [data(used=MIB // 2)])
            for number in (1, 1, 2, 3)
            for n in range(12)
        ]
        answers = await asyncio.gather(*updates)
    finally:
        await charging.stop()
    assert all(isinstance(a, Answer) for a in answers)  # none out of order
    assert watched.overlaps == 0  # a session never in two running batches
    for n in range(12):
        assert watched.order[f"q{n}"] == [0, 1, 1, 2, 3]
    assert max(watched.sizes) > 1 and sum(watched.sizes) == 12 + 48


async def test_calls_outside_the_workers_run_on_their_own(deps: Dependencies) -> None:
    owner = await line(deps, "12025550100", "1")
    charging = ChargingWorkers(ChargingBatch(deps), 2, 8)
    cc = ChargingBatcher(charging, CreditControl(deps))
    who = Subscriber(IdentifierKind.MSISDN, owner.msisdn)
    first = await cc.start("o1", who, [call(60)])  # not started yet
    await charging.start()
    await charging.stop()
    end = await cc.terminate("o1", 1, [call(None, used=60)])  # stopped already
    assert first.granted and end.xdr is not None and end.xdr.charge == usd("0.15")
    assert await cc.price(who, call(120)) == usd("0.25")
    assert await cc.can_afford(who, call(60))
    with pytest.raises(Exception, match="never started"):
        await cc.update("o2", 1, [call()])


# -- companions: a protocol adapter's records, written with the charge ---------------


class RecordingWriter:
    """Keeps what it is asked to write and whether a transaction was open;
    raises the next of ``failures`` first while there are any."""

    def __init__(self) -> None:
        self.writes: list[list[object]] = []
        self.failures: list[Exception] = []

    async def write_companions(self, uow: Any, records: Sequence[object]) -> None:
        assert uow.shared_connection().in_transaction()
        if self.failures:
            raise self.failures.pop(0)
        self.writes.append(list(records))


async def test_companions_of_answered_calls_are_written_once_per_writer(
    deps: Dependencies,
) -> None:
    owner = await line(deps, "12025550100", "10")
    who = Subscriber(IdentifierKind.ACCOUNT_ID, owner.account_id)
    first, second = RecordingWriter(), RecordingWriter()
    calls = [
        ChargingCall(CallKind.START, "c1", 0, (call(60),), who, companion=Companion(first, "a")),
        ChargingCall(CallKind.UPDATE, "nobody", 1, (call(),), companion=Companion(first, "x")),
        ChargingCall(CallKind.START, "c2", 0, (call(60),), who, companion=Companion(second, "b")),
        ChargingCall(
            CallKind.UPDATE, "c1", 1, (call(60, used=60),), companion=Companion(first, "c")
        ),
    ]
    outcomes = await ChargingBatch(deps)(calls)
    assert [type(o).__name__ for o in outcomes] == ["Answer", "UnknownSession", "Answer", "Answer"]
    # the refused call's record is not written; each writer writes once
    assert first.writes == [["a", "c"]]
    assert second.writes == [["b"]]


async def test_a_companion_is_written_in_the_transaction_of_its_charge(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    owner = await line(deps, "12025550100", "10")
    who = Subscriber(IdentifierKind.ACCOUNT_ID, owner.account_id)
    writer = RecordingWriter()
    batch = ChargingBatch(deps)
    await batch([ChargingCall(CallKind.START, "k1", 0, (call(60),), who)])
    update = ChargingCall(
        CallKind.UPDATE, "k1", 1, (call(60, used=60),), companion=Companion(writer, "k1/1")
    )
    seen: list[tuple[object, object]] = []

    class Witness(RecordingWriter):
        """Reads the balance inside the charge's transaction and outside it."""

        async def write_companions(self, uow: Any, records: Sequence[object]) -> None:
            query = sa.select(customers.c.balance).where(customers.c.id == owner.customer_id)
            # through the unit of work's store, which sends the charge's writes first
            stored = await uow.customers.get(owner.customer_id)
            inside = stored.wallet.balance.amount
            async with reader.connect() as other:
                outside = (await other.execute(query)).scalar_one()
            seen.append((inside, outside))
            await super().write_companions(uow, records)

    witness = Witness()
    witness.failures.append(ConcurrentChange("deadlock detected"))
    update = replace(update, companion=Companion(witness, "k1/1"))
    reader = create_async_engine(engine.url)  # SQLite's engine has one connection
    try:
        (outcome,) = await batch([update])
    finally:
        await reader.dispose()
    assert isinstance(outcome, Answer) and outcome.granted
    # the companion ran in the charge's transaction: the charge visible there
    # and not yet committed; the failed attempt rolled its charge back
    assert seen == [(usd("9.85").amount, usd("10").amount)] * 2
    assert await wallet(deps, owner.customer_id) == (usd("9.85"), usd("0.10"))
    assert witness.writes == [["k1/1"]]


async def test_one_by_one_calls_write_their_companions_with_their_charge(
    deps: Dependencies,
) -> None:
    owner = await line(deps, "12025550100", "10")
    who = Subscriber(IdentifierKind.ACCOUNT_ID, owner.account_id)
    writer = RecordingWriter()
    batch = ChargingBatch(deps)
    calls = [
        ChargingCall(CallKind.START, "o1", 0, (call(60),), who, companion=Companion(writer, "s")),
        ChargingCall(CallKind.UPDATE, "nobody", 1, (call(),), companion=Companion(writer, "x")),
    ]
    outcomes = await batch.one_by_one(calls)
    assert [type(o).__name__ for o in outcomes] == ["Answer", "UnknownSession"]
    assert writer.writes == [["s"]]
    started = await wallet(deps, owner.customer_id)

    # a companion that cannot be written fails its call and rolls its charge back
    update = ChargingCall(
        CallKind.UPDATE, "o1", 1, (call(60, used=60),), companion=Companion(writer, "u")
    )
    writer.failures.append(RuntimeError("the adapter's table is gone"))
    (failed,) = await batch.one_by_one([update])
    assert isinstance(failed, RuntimeError)
    assert await wallet(deps, owner.customer_id) == started
    assert writer.writes == [["s"]]

    # the network sends it again: charged once, with its record
    (answer,) = await batch.one_by_one([update])
    assert isinstance(answer, Answer) and answer.granted
    assert await wallet(deps, owner.customer_id) == (usd("9.85"), usd("0.10"))
    assert writer.writes == [["s"], ["u"]]

    # and once more: the stored answer, nothing charged, the record written again
    (again,) = await batch.one_by_one([update])
    assert again == answer
    assert await wallet(deps, owner.customer_id) == (usd("9.85"), usd("0.10"))
    assert writer.writes == [["s"], ["u"], ["u"]]


class Held:
    """A batch that holds every call until the test releases it, noting the
    batches that run at once and the calls in each."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.most_at_once = 0
        self.sizes: list[int] = []

    async def __call__(self, calls: Sequence[ChargingCall]) -> list[Outcome]:
        self.sizes.append(len(calls))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        return [Answer(call.number, RequestKind.UPDATE, ()) for call in calls]


async def settle() -> None:
    for _ in range(20):  # let every woken task run
        await asyncio.sleep(0)


async def arrive(
    charging: ChargingWorkers, numbers: range, *, one_by_one: bool
) -> list[asyncio.Task[Answer]]:
    """A call of session ``s<n>`` (request number n) for each of ``numbers``,
    submitted in tasks; ``one_by_one``: each after the last one was taken up."""
    calls = []
    for n in numbers:
        call_ = ChargingCall(CallKind.UPDATE, f"s{n}", n, ())
        calls.append(asyncio.create_task(charging.submit(call_)))
        if one_by_one:
            await settle()
    await settle()
    return calls


async def test_while_few_calls_are_outstanding_each_has_a_worker_at_once() -> None:
    """Three sessions on four workers: none waits for another's batch."""
    held = Held()
    charging = ChargingWorkers(held, 4, 8)  # type: ignore[arg-type]
    await charging.start()
    try:
        calls = await arrive(charging, range(3), one_by_one=True)
        assert held.running == 3 and held.sizes == [1, 1, 1]
        held.release.set()
        await asyncio.gather(*calls)
    finally:
        held.release.set()
        await charging.stop()


async def test_under_load_two_batches_run_and_the_rest_wait_to_go_together() -> None:
    """Two batches running on four workers and five calls arriving at once:
    more calls outstanding than workers, so the five wait for one of the two
    batches to end and then go together, although two workers were free."""
    held = Held()
    charging = ChargingWorkers(held, 4, 16)  # type: ignore[arg-type]
    await charging.start()
    try:
        calls = await arrive(charging, range(2), one_by_one=True)
        calls += await arrive(charging, range(2, 7), one_by_one=False)
        assert held.sizes == [1, 1] and held.running == 2
        held.release.set()
        answers = await asyncio.gather(*calls)
        assert [a.request_number for a in answers] == list(range(7))
        assert held.sizes == [1, 1, 5] and held.most_at_once == 2
        assert charging.batches == 3 and charging.calls == 7
    finally:
        held.release.set()
        await charging.stop()


async def test_on_postgresql_a_batch_sends_a_bounded_number_of_statements(
    deps: Dependencies, charging: AsyncEngine, backend: str
) -> None:
    """Besides BEGIN and COMMIT: the sessions with their customers and
    buckets in one statement, and every write (sessions, wallets, buckets,
    xDRs, journal, events) in one. Two more when sessions open: the
    subscribers' accounts (with the catalogue's version, which the sessions'
    read brings when it finds any), then their customers and buckets."""
    if backend != "postgresql":
        pytest.skip("SQLite runs in-process: a statement costs no round trip")
    owners = [await line(deps, f"120255501{n}0", "10") for n in range(3)]
    batch = ChargingBatch(deps)

    def opening(n: int) -> ChargingCall:
        who = Subscriber(IdentifierKind.ACCOUNT_ID, owners[n].account_id)
        return ChargingCall(CallKind.START, f"r{n}", 0, (call(60),), who)

    async def sent(calls: list[ChargingCall]) -> list[str]:
        with statements(charging) as seen:
            outcomes = await batch(calls)
        assert all(isinstance(o, Answer) for o in outcomes), outcomes
        return seen

    await sent([opening(2)])  # the process reads the catalogue once, here
    opened = await sent([opening(0), opening(1)])
    reported = await sent(
        [ChargingCall(CallKind.UPDATE, f"r{n}", 1, (call(60, used=60),)) for n in range(2)]
    )
    ended = await sent(
        [ChargingCall(CallKind.TERMINATE, f"r{n}", 2, (call(0, used=30),)) for n in range(2)]
    )
    assert [len(opened), len(reported), len(ended)] == [4, 2, 2]
    assert "INSERT INTO cc_sessions" in opened[-1] and "UPDATE customers" in opened[-1]
    assert "UPDATE cc_sessions" in reported[-1] and "UPDATE customers" in reported[-1]
    assert "INSERT INTO xdrs" in ended[-1] and "UPDATE cc_sessions" in ended[-1]
    async with deps.uow() as uow:
        assert [(await uow.xdrs.for_customer(o.customer_id)) != [] for o in owners] == [
            True,
            True,
            False,
        ]


async def test_diameter_session_peers_are_noted_and_forgotten_with_their_charge(
    deps: Dependencies, charging: AsyncEngine, backend: str
) -> None:
    """The Diameter adapter's companion: a session's peer (where its RAR
    goes) is written in the INITIAL's charging transaction, and forgotten in
    the TERMINATE's: on PostgreSQL in the batch's one write statement."""
    owner = await line(deps, "12025550100", "10")
    peers = SessionPeers(charging)
    batch = ChargingBatch(deps)
    at = deps.clock.now()

    def opening(session_id: str, who: Subscriber) -> ChargingCall:
        noted = Opened(session_id, "gw1.test", "gw.test", at)
        return ChargingCall(
            CallKind.START, session_id, 0, (call(60),), who, companion=Companion(peers, noted)
        )

    outcomes = await batch(
        [
            opening("d1", Subscriber(IdentifierKind.ACCOUNT_ID, owner.account_id)),
            opening("d2", Subscriber(IdentifierKind.MSISDN, "12025550999")),  # nobody's
        ]
    )
    assert [type(o).__name__ for o in outcomes] == ["Answer", "UnknownSubscriber"]
    assert await peers.get("d1") == SessionPeer("d1", "gw1.test", "gw.test", None)
    assert await peers.get("d2") is None  # a refused call's note is not written

    ending = ChargingCall(
        CallKind.TERMINATE, "d1", 1, (call(0, used=30),), companion=Companion(peers, Ended("d1"))
    )
    with statements(charging) as seen:
        (ended,) = await batch([ending])
    assert isinstance(ended, Answer) and ended.xdr is not None
    assert await peers.get("d1") is None
    if backend == "postgresql":
        (write,) = [sql for sql in seen if "DELETE FROM diameter_sessions" in sql]
        assert "UPDATE cc_sessions" in write and "INSERT INTO xdrs" in write

    # an EVENT: the adapter names the xDR, which the note keeps for a refund
    who = Subscriber(IdentifierKind.ACCOUNT_ID, owner.account_id)
    for attempt in ("xdr_named", "xdr_again"):  # the second is a retransmission
        noted = Opened("e1", "gw1.test", "gw.test", at, xdr_id=attempt)
        debit = ChargingCall(
            CallKind.DEBIT,
            "e1",
            0,
            (SMS_REQUEST,),
            who,
            companion=Companion(peers, noted),
            xdr_id=attempt,
        )
        (debited,) = await batch([debit])
        assert isinstance(debited, Answer) and debited.xdr is not None
        assert debited.xdr.id == "xdr_named"  # the first answer stands
    assert await peers.get("e1") == SessionPeer("e1", "gw1.test", "gw.test", "xdr_named")
    # a retransmission in the same batch: the note names the xDR of the charge
    twice = [
        replace(
            debit,
            session_id="e3",
            xdr_id=named,
            companion=Companion(peers, Opened("e3", "gw1.test", "gw.test", at, xdr_id=named)),
        )
        for named in ("xdr_first", "xdr_second")
    ]
    first, second = await batch(twice)
    assert isinstance(first, Answer) and first.xdr is not None and first.xdr.id == "xdr_first"
    assert second == first
    assert await peers.get("e3") == SessionPeer("e3", "gw1.test", "gw.test", "xdr_first")
    alone_call = replace(debit, session_id="e2", xdr_id="xdr_alone", companion=None)
    (alone,) = await batch.one_by_one([alone_call])
    assert isinstance(alone, Answer) and alone.xdr is not None and alone.xdr.id == "xdr_alone"
