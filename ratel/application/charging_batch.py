"""Group commit for credit control: many charging calls, one transaction.

A RADIUS or Diameter server under load has many requests in flight at once;
committing each in its own transaction costs a handful of statements and a
commit apiece. ``ChargingBatch`` runs a batch of calls (INITIAL, UPDATE,
TERMINATE, EVENT, mixed) in one transaction with a bounded number of
statements whatever the batch size: it loads every session, account,
customer and quota bucket the batch needs in a few queries, runs each call's
charging logic in memory in arrival order (so two calls on one session or one
customer see each other's effects exactly as one-by-one calls would), writes
everything with one statement per table and commits. Only then are the
answers handed out: an answer always means "stored".

A call may carry a ``Companion``: what the protocol adapter keeps of it
beside the charging session (a RADIUS session's cumulative counters). The
companions of the calls that got an answer are written in the same
transaction, one statement per writer, so the adapter's record and the
charge commit or fail together and the adapter needs no transaction of its
own per request.

The guarantees of ``CreditControl`` hold: rows are locked as there (sessions,
then customers, then buckets, each in id order, so concurrent batches never
deadlock one another or a one-by-one call); a retransmission finds its stored
answer and writes nothing; wallets are written as conditional changes that
cannot pass a credit limit. A call refused before it changes anything
(unknown session or subscriber) gets its exception alone. A call whose
charging logic raises midway may have changed objects in memory: the batch
reloads its rows (still locked, in the same transaction) and runs again
without it, so its exception touches no other call. A batch that fails in
the store is retried once on a deadlock or serialization failure; anything
else unexpected sends its calls one by one through ``CreditControl``, each
with its companion in its own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from ratel.application.base import Dependencies, UseCase, balance_transaction
from ratel.application.credit_control import (
    CreditControl,
    Subscriber,
    UnknownSession,
    UnknownSubscriber,
    charging_context,
)
from ratel.domain.account import Account
from ratel.domain.charging import Answer, CreditControlSession, UsageRequest, Xdr
from ratel.domain.customer import Customer
from ratel.domain.errors import ConcurrentChange, NotFound
from ratel.domain.events import DomainEvent
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.money import Money
from ratel.domain.quota import QuotaBucket
from ratel.ports.store import IdentifierKind, UnitOfWork

log = logging.getLogger(__name__)

#: Passes over one batch before it is run one by one: each pass after the
#: first leaves out a call whose charging logic raised.
_PASSES = 3


class CallKind(StrEnum):
    START = "start"
    UPDATE = "update"
    TERMINATE = "terminate"
    DEBIT = "debit"


@dataclass(frozen=True, slots=True)
class ChargingCall:
    """One credit-control call as the protocol adapter made it (the arguments
    of the ``CreditControl`` method of the same name)."""

    kind: CallKind
    session_id: str
    number: int
    requests: tuple[UsageRequest, ...]
    subscriber: Subscriber | None = None
    sub_session: str = ""
    cause: str = "normal"
    companion: Companion | None = None
    #: an EVENT's xDR id, when the caller names it (to write it with its companion)
    xdr_id: str | None = None


class CompanionWriter(Protocol):
    """Writes a protocol adapter's records of charged calls inside the
    transaction that charges them."""

    async def write_companions(self, uow: UnitOfWork, records: Sequence[object]) -> None:
        """Store ``records`` (each the ``record`` of a ``Companion`` this
        writer made) in ``uow``'s transaction; do not commit. It runs inside
        ``uow.together()`` with the charge's own writes, so it writes through
        the store's repositories (whose other statements send the pending
        writes first), never on the bare connection."""
        ...


@dataclass(frozen=True, slots=True)
class Companion:
    """What a protocol adapter keeps of a call beside the charging session,
    written with the charge once the call has an answer."""

    writer: CompanionWriter
    record: object


#: What a call gives its caller: the answer, or the exception to raise.
Outcome = Answer | Exception


class Charging(Protocol):
    """The credit-control calls protocol adapters make: ``CreditControl``
    (one transaction per call) and the batching front of ``ChargingBatch``
    both offer them."""

    async def start(
        self,
        session_id: str,
        subscriber: Subscriber,
        requests: Sequence[UsageRequest],
        *,
        number: int = 0,
        sub_session: str = "",
        companion: Companion | None = None,
    ) -> Answer:
        """INITIAL: authorize and grant (see ``CreditControl.start``), and
        ``companion`` with it."""
        ...

    async def update(
        self,
        session_id: str,
        number: int,
        requests: Sequence[UsageRequest],
        *,
        sub_session: str = "",
        companion: Companion | None = None,
    ) -> Answer:
        """UPDATE: commit used units and grant again (and ``companion`` with them)."""
        ...

    async def terminate(
        self,
        session_id: str,
        number: int,
        requests: Sequence[UsageRequest],
        *,
        sub_session: str = "",
        cause: str = "normal",
        companion: Companion | None = None,
    ) -> Answer:
        """TERMINATE: commit the last usage; the last sub-session produces the
        xDR (and ``companion`` is written with it)."""
        ...

    async def debit(
        self,
        session_id: str,
        subscriber: Subscriber,
        request: UsageRequest,
        *,
        number: int = 0,
        companion: Companion | None = None,
        xdr_id: str | None = None,
    ) -> Answer:
        """EVENT with direct debiting: charge now, one xDR (``xdr_id``, when
        given), and ``companion`` with it."""
        ...

    async def price(self, subscriber: Subscriber, request: UsageRequest) -> Money:
        """PRICE_ENQUIRY, changing nothing."""
        ...

    async def can_afford(self, subscriber: Subscriber, request: UsageRequest) -> bool:
        """CHECK_BALANCE, changing nothing."""
        ...

    async def refund(self, xdr_id: str, reason: str = "refund") -> Money:
        """REFUND_ACCOUNT: give back what an xDR's balance paid."""
        ...


class _ChargingFailed(Exception):
    """A call's charging logic raised after it may have changed objects."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


@dataclass
class _Loaded:
    """The rows of one batch (locked), and what its calls changed."""

    sessions: dict[str, CreditControlSession]
    by_subscriber: dict[Subscriber, Account]
    accounts: dict[str, Account]
    customers: dict[str, Customer]
    buckets: dict[str, list[QuotaBucket]]
    new_sessions: dict[str, CreditControlSession] = field(default_factory=dict)
    changed_sessions: dict[str, CreditControlSession] = field(default_factory=dict)
    touched_customers: dict[str, Customer] = field(default_factory=dict)
    touched_accounts: set[str] = field(default_factory=set)
    xdrs: list[Xdr] = field(default_factory=list)
    transactions: list[BalanceTransaction] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)


class ChargingBatch(UseCase):
    """Runs a batch of credit-control calls in one transaction; each call's
    outcome (answer or exception) is in the same place of the result."""

    def __init__(self, deps: Dependencies, one_by_one: CreditControl | None = None) -> None:
        super().__init__(deps)
        self._one_by_one = one_by_one if one_by_one is not None else CreditControl(deps)

    async def __call__(self, calls: Sequence[ChargingCall]) -> list[Outcome]:
        """The outcome of each call, in order, once the batch is committed."""
        if not calls:
            return []
        for attempt in (1, 2):
            try:
                return await self._grouped(calls)
            except ConcurrentChange as exc:
                # a deadlock, a serialization failure or a row changed by
                # another node: nothing was committed; once more, then alone
                log.warning(
                    "charging batch of %d calls hit a concurrent change (attempt %d): %s",
                    len(calls),
                    attempt,
                    exc,
                )
            except Exception:
                log.exception(
                    "charging batch of %d calls failed: running them one by one", len(calls)
                )
                break
        return await self.one_by_one(calls)

    async def one_by_one(self, calls: Sequence[ChargingCall]) -> list[Outcome]:
        """Each call in its own transaction through ``CreditControl``, in order,
        its companion written in that transaction: a companion that cannot be
        written fails its call, and its charge is rolled back with it."""
        outcomes: list[Outcome] = []
        for call in calls:
            try:
                outcomes.append(await self._single(call))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    async def _single(self, call: ChargingCall) -> Answer:
        cc = self._one_by_one
        if call.kind is CallKind.START:
            return await cc.start(
                call.session_id,
                _subscriber(call),
                call.requests,
                number=call.number,
                sub_session=call.sub_session,
                companion=call.companion,
            )
        if call.kind is CallKind.UPDATE:
            return await cc.update(
                call.session_id,
                call.number,
                call.requests,
                sub_session=call.sub_session,
                companion=call.companion,
            )
        if call.kind is CallKind.TERMINATE:
            return await cc.terminate(
                call.session_id,
                call.number,
                call.requests,
                sub_session=call.sub_session,
                cause=call.cause,
                companion=call.companion,
            )
        return await cc.debit(
            call.session_id,
            _subscriber(call),
            _one_request(call),
            number=call.number,
            companion=call.companion,
            xdr_id=call.xdr_id,
        )

    # -- the grouped transaction --------------------------------------------------

    async def _grouped(self, calls: Sequence[ChargingCall]) -> list[Outcome]:
        left_out: dict[int, Exception] = {}
        async with self.deps.uow() as uow:
            for _ in range(_PASSES):
                loaded = await self._load(uow, calls, left_out)
                try:
                    outcomes = await self._run(uow, loaded, calls, left_out)
                except _ChargingFailed as failed:
                    # Objects in memory may be half changed: reload (the rows
                    # are locked and nothing is written yet) and go again
                    # without the call that failed.
                    left_out[failed.index] = failed.error
                    continue
                async with uow.together():  # one round trip where the store can
                    await self._write(uow, loaded)
                    await _write_companions(uow, calls, outcomes)
                await uow.commit()
                return outcomes
        raise RuntimeError(f"charging logic failed in {len(left_out)} calls of one batch")

    async def _load(
        self, uow: UnitOfWork, calls: Sequence[ChargingCall], left_out: dict[int, Exception]
    ) -> _Loaded:
        """Every row the batch needs, in lock order: sessions, then customers,
        then buckets, each sorted by id (accounts are read without a lock, as
        one-by-one calls do)."""
        active = [call for index, call in enumerate(calls) if index not in left_out]
        # Without a new session (INITIAL, EVENT) every customer and bucket
        # locked next is a session's, so the store may lock them with the sessions.
        sessions = await uow.sessions.get_many(
            [c.session_id for c in active],
            lock=True,
            with_owners=all(call.subscriber is None for call in active),
        )
        wanted: dict[IdentifierKind, list[str]] = {}
        for call in active:
            if call.subscriber is not None and call.session_id not in sessions:
                wanted.setdefault(call.subscriber.kind, []).append(call.subscriber.value)
        by_subscriber: dict[Subscriber, Account] = {}
        for kind, values in wanted.items():
            for value, account in (await uow.accounts.by_identifiers(kind, values)).items():
                by_subscriber[Subscriber(kind, value)] = account
        accounts = {a.id: a for a in by_subscriber.values()}
        missing = {s.account_id for s in sessions.values()} - accounts.keys()
        if missing:
            accounts.update(await uow.accounts.get_many(sorted(missing)))
        # one object per account, whichever way it was found
        by_subscriber = {who: accounts[a.id] for who, a in by_subscriber.items()}
        customer_ids = {s.customer_id for s in sessions.values()}
        customer_ids |= {a.customer_id for a in accounts.values()}
        customers = await uow.customers.get_many(
            sorted(customer_ids), lock=True, buckets_of=sorted(accounts)
        )
        buckets = await uow.quotas.for_accounts(sorted(accounts), lock=True)
        return _Loaded(sessions, by_subscriber, accounts, customers, buckets)

    async def _run(
        self,
        uow: UnitOfWork,
        loaded: _Loaded,
        calls: Sequence[ChargingCall],
        left_out: dict[int, Exception],
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for index, call in enumerate(calls):
            if index in left_out:
                outcomes.append(left_out[index])
                continue
            outcomes.append(await self._apply(uow, loaded, call, index))
        return outcomes

    async def _apply(
        self, uow: UnitOfWork, loaded: _Loaded, call: ChargingCall, index: int
    ) -> Outcome:
        """One call in memory, as ``CreditControl`` runs it. A refusal found
        before anything changed is returned as the outcome; an exception of the
        charging logic itself raises ``_ChargingFailed``."""
        session = loaded.sessions.get(call.session_id)
        if call.kind is CallKind.DEBIT:
            if session is not None:
                stored = session.stored_answer(call.number)
                if stored is not None:
                    return stored
                # what CreditControl.debit ends with: the id is taken, by another call
                return NotFound(f"answer {call.session_id}/{call.number} does not exist")
            return await self._open(uow, loaded, call, index)
        if session is None:
            if call.kind is CallKind.START:
                return await self._open(uow, loaded, call, index)
            return UnknownSession(f"session {call.session_id} was never started")
        stored = session.stored_answer(call.number, call.sub_session)
        if stored is not None:
            return stored  # a retransmission: nothing is written
        customer = loaded.customers.get(session.customer_id)
        if customer is None:
            return NotFound(f"customer {session.customer_id} does not exist")
        account = loaded.accounts.get(session.account_id)
        if account is None:
            return NotFound(f"account {session.account_id} does not exist")
        deps = self.deps
        now = deps.clock.now()
        ctx = await charging_context(
            uow,
            deps.charging,
            deps.location_policy,
            account,
            customer,
            now,
            buckets=loaded.buckets[account.id],
        )
        before = customer.wallet.balance
        try:
            if call.kind is CallKind.START:
                answer = session.reserve(
                    ctx, call.number, call.requests, now, sub_session=call.sub_session
                )
            elif call.kind is CallKind.UPDATE:
                answer = session.report(
                    ctx, call.number, call.requests, now, sub_session=call.sub_session
                )
            else:
                answer = session.terminate(
                    ctx,
                    call.number,
                    call.requests,
                    now,
                    sub_session=call.sub_session,
                    cause=call.cause,
                    xdr_id=deps.ids.new("xdr"),
                )
        except Exception as exc:
            raise _ChargingFailed(index, exc) from exc
        self._changed(loaded, session, account, customer, before, answer, ctx.events, new=False)
        return answer

    async def _open(
        self, uow: UnitOfWork, loaded: _Loaded, call: ChargingCall, index: int
    ) -> Outcome:
        """A new session: INITIAL or EVENT."""
        subscriber = _subscriber(call)
        account = loaded.by_subscriber.get(subscriber)
        if account is None:
            return UnknownSubscriber(f"no account has {subscriber.kind.value} {subscriber.value}")
        customer = loaded.customers.get(account.customer_id)
        if customer is None:
            return NotFound(f"customer {account.customer_id} does not exist")
        deps = self.deps
        now = deps.clock.now()
        ctx = await charging_context(
            uow,
            deps.charging,
            deps.location_policy,
            account,
            customer,
            now,
            buckets=loaded.buckets[account.id],
        )
        session = CreditControlSession.open(call.session_id, account, customer, now)
        before = customer.wallet.balance
        try:
            if call.kind is CallKind.DEBIT:
                answer = session.debit_event(
                    ctx,
                    call.number,
                    _one_request(call),
                    now,
                    xdr_id=call.xdr_id or deps.ids.new("xdr"),
                )
            else:
                answer = session.reserve(
                    ctx, call.number, call.requests, now, sub_session=call.sub_session
                )
        except Exception as exc:
            raise _ChargingFailed(index, exc) from exc
        self._changed(loaded, session, account, customer, before, answer, ctx.events, new=True)
        return answer

    def _changed(
        self,
        loaded: _Loaded,
        session: CreditControlSession,
        account: Account,
        customer: Customer,
        before: Money,
        answer: Answer,
        raised: list[DomainEvent],
        *,
        new: bool,
    ) -> None:
        """Note what one call changed, for the batch's writes (``store_charging``
        of the one-by-one path, without writing yet)."""
        loaded.sessions[session.id] = session
        if new:
            loaded.new_sessions[session.id] = session
        elif session.id not in loaded.new_sessions:
            loaded.changed_sessions[session.id] = session
        loaded.touched_customers[customer.id] = customer
        loaded.touched_accounts.add(account.id)
        if answer.xdr is not None:
            loaded.xdrs.append(answer.xdr)
        transaction = balance_transaction(
            self.deps,
            customer,
            before,
            TransactionReason.USAGE,
            reference=session.id,
            account_id=session.account_id,
        )
        if transaction is not None:
            loaded.transactions.append(transaction)
        loaded.events.extend(customer.pull_events())
        loaded.events.extend(account.pull_events())
        loaded.events.extend(raised)

    async def _write(self, uow: UnitOfWork, loaded: _Loaded) -> None:
        """One statement per table for the whole batch."""
        await uow.sessions.add_many(list(loaded.new_sessions.values()))
        await uow.sessions.save_many(list(loaded.changed_sessions.values()))
        await uow.customers.save_many(list(loaded.touched_customers.values()))
        touched = sorted(loaded.touched_accounts)
        await uow.quotas.save([b for account_id in touched for b in loaded.buckets[account_id]])
        await uow.xdrs.add_many(loaded.xdrs)
        await uow.transactions.add_many(loaded.transactions)
        await uow.outbox.add(loaded.events)


async def _write_companions(
    uow: UnitOfWork, calls: Sequence[ChargingCall], outcomes: Sequence[Outcome]
) -> None:
    """The companions of the calls that got an answer, one write per writer."""
    by_writer: dict[int, tuple[CompanionWriter, list[object]]] = {}
    for call, outcome in zip(calls, outcomes, strict=True):
        if call.companion is None or isinstance(outcome, Exception):
            continue
        writer = call.companion.writer
        by_writer.setdefault(id(writer), (writer, []))[1].append(call.companion.record)
    for writer, records in by_writer.values():
        await writer.write_companions(uow, records)


def _subscriber(call: ChargingCall) -> Subscriber:
    if call.subscriber is None:
        raise ValueError(f"a {call.kind.value} call names its subscriber")
    return call.subscriber


def _one_request(call: ChargingCall) -> UsageRequest:
    if len(call.requests) != 1:
        raise ValueError("a debit carries exactly one usage request")
    return call.requests[0]
