"""Group commit for the protocol servers: credit-control calls queue up and a
few workers run whatever is queued as one ``ChargingBatch`` transaction.

``ChargingBatcher`` has the methods (and signatures) of ``CreditControl``, so
a RADIUS or Diameter adapter calls ``container.charging()`` exactly as it
would call ``container.credit_control()``; each call returns once the batch
holding it is committed. There is no artificial wait: a free worker takes
what is queued at once (one call when the load is light, up to the batch size
under load), so latency stays that of one transaction while throughput grows
with the load.

A session's calls never run in two batches at once and keep their arrival
order; workers run their batches concurrently (one on SQLite, whose single
writer makes more pointless; four by default on PostgreSQL). Under load only
two batches run at once, so that one batch's round trips overlap the other's
work while the calls that arrive meanwhile group into the next; while no more
calls are outstanding than there are workers, each gets a worker at once and
waits for no other batch (``ChargingWorkers``).

``ChargingWorkers`` is the ``Component`` that owns the queues and tasks:
``ratel serve`` starts it before the listeners and stops it after them, and
stopping drains what is queued. A call made while the workers are not
running (before start, after stop, in a one-off command) runs at once as a
batch of its own: nothing is refused or lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from ratel.adapters.health import ListenerRegistry
from ratel.application.charging_batch import (
    CallKind,
    ChargingBatch,
    ChargingCall,
    Companion,
    Outcome,
)
from ratel.application.credit_control import CreditControl, Subscriber
from ratel.domain.charging import Answer, UsageRequest
from ratel.domain.money import Money

log = logging.getLogger(__name__)

#: Workers when the setting says 0 (automatic), by database backend. On
#: PostgreSQL four: under load only ``GROUPED`` of them run at once.
DEFAULT_WORKERS = {"sqlite": 1, "postgresql": 4}

#: Batches running at once under load (more calls outstanding than workers).
#: Two let one batch's round trips overlap the other's work; more only split
#: the queue into smaller batches, each with its fixed cost (measured on 2
#: cores: RADIUS with 128 requests in flight fell from 23 to 11 calls per
#: batch and lost throughput with three).
GROUPED = 2


def worker_count(setting: int, database_url: str) -> int:
    """The workers to run: the setting, or when it is 0 the backend's default."""
    if setting:
        return setting
    return DEFAULT_WORKERS.get(make_url(database_url).get_backend_name(), 1)


@dataclass(slots=True)
class _Queued:
    call: ChargingCall
    outcome: asyncio.Future[Outcome]


class ChargingWorkers:
    """One queue of credit-control calls and the workers that run it in
    batches of at most ``max_batch``.

    A free worker takes everything queued (up to the batch size) except the
    calls of sessions another worker's batch holds: those wait, in order,
    for that batch to end. So one worker under load takes all that arrived
    while the others were busy (large batches, little CPU per call), and the
    others run meanwhile (one batch's database round trips overlap another's
    work); a session's calls still run one batch at a time, in arrival order.

    How many batches run at once depends on the load. While the calls
    outstanding (queued or in a running batch) are no more than the workers,
    a free worker takes a call as soon as it arrives: no call waits for
    another's batch, which keeps the latency of a few sessions at that of
    one transaction. Beyond that only ``GROUPED`` batches run at once: the
    calls that arrive meanwhile wait and go together into the next, whose
    fixed cost (its round trips) they share.
    """

    name = "charging"

    def __init__(
        self,
        batch: ChargingBatch,
        workers: int,
        max_batch: int,
        listeners: ListenerRegistry | None = None,
    ) -> None:
        if workers < 1 or max_batch < 1:
            raise ValueError("charging needs at least one worker and a batch of one")
        self._batch = batch
        self._workers = workers
        self._max_batch = max_batch
        self._queue: deque[_Queued] = deque()
        self._busy: set[str] = set()  # sessions in a running batch
        self._running = 0  # batches running, and the calls in them
        self._in_batches = 0
        self._grouped = min(workers, GROUPED)
        self._idle: deque[asyncio.Future[None]] = deque()  # workers waiting for work
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._listener = listeners.register(self.name) if listeners is not None else None
        self.batches = 0  # batches run, and the calls in them (for metrics and benchmarks)
        self.calls = 0

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        if self._tasks:
            return
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._work(), name=f"{self.name}-{n}") for n in range(self._workers)
        ]
        if self._listener is not None:
            self._listener.up(f"{self._workers} workers, batches of up to {self._max_batch}")

    async def stop(self) -> None:
        """Finish every queued call, then end the workers."""
        tasks, self._tasks = self._tasks, []  # new calls now run on their own
        self._stopping = True
        self._wake_all()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._listener is not None:
            self._listener.down("stopped")

    async def submit(self, call: ChargingCall) -> Answer:
        """The call's answer once the batch holding it is committed (or its
        exception, raised)."""
        if not self._tasks:
            outcome = (await self._batch([call]))[0]
        else:
            future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            self._queue.append(_Queued(call, future))
            if self._may_start():  # else a batch's end lets a worker take it
                self._wake_one()
            outcome = await future
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _wake_one(self) -> None:
        """Wake one idle worker: one is enough, it takes everything queued
        (waking them all would cost each call a task switch per worker)."""
        self._wake(every=False)

    def _wake_all(self) -> None:
        self._wake(every=True)

    def _wake(self, *, every: bool) -> None:
        while self._idle:
            waiting = self._idle.popleft()
            if not waiting.done():  # a cancelled worker's wait is skipped
                waiting.set_result(None)
                if not every:
                    return

    def _may_start(self) -> bool:
        """Whether a free worker may start a batch now: always while fewer
        than ``GROUPED`` run; beyond, only while every call outstanding can
        have a worker of its own (light load)."""
        if self._running < self._grouped:
            return True
        return self._in_batches + len(self._queue) <= self._workers

    def _take(self) -> list[_Queued]:
        """The next batch: queued calls in arrival order, up to the batch
        size, leaving those of sessions another batch holds. A session's
        calls keep their order: all of a held session's calls are left, and
        once the batch is full everything after is. Nothing while the load
        says to wait (``_may_start``)."""
        if not self._may_start():
            return []
        taken: list[_Queued] = []
        left: deque[_Queued] = deque()
        for queued in self._queue:
            if len(taken) < self._max_batch and queued.call.session_id not in self._busy:
                taken.append(queued)
            else:
                left.append(queued)
        self._queue = left
        self._busy.update(q.call.session_id for q in taken)
        return taken

    async def _work(self) -> None:
        while True:
            taken = self._take()
            if not taken:
                if self._stopping and not self._queue:
                    self._wake_all()  # the others end too
                    return
                waiting = asyncio.get_running_loop().create_future()
                self._idle.append(waiting)
                await waiting
                continue
            self._running += 1
            self._in_batches += len(taken)
            if self._queue and self._may_start():
                self._wake_one()  # what this batch left (a held session's calls, a full batch)
            try:
                await self._run(taken)
            finally:
                self._running -= 1
                self._in_batches -= len(taken)
                # this worker takes next what waited for these sessions or
                # for a batch to end
                self._busy.difference_update(q.call.session_id for q in taken)

    async def _run(self, taken: Sequence[_Queued]) -> None:
        try:
            outcomes: Sequence[Outcome] = await self._batch([q.call for q in taken])
        except Exception as exc:
            # ChargingBatch answers every call itself; this is a last resort so
            # that a worker never dies and no caller waits for ever
            log.exception("charging batch failed")
            outcomes = [exc] * len(taken)
        self.batches += 1
        self.calls += len(taken)
        for queued, outcome in zip(taken, outcomes, strict=True):
            if not queued.outcome.done():  # the caller may have given up
                queued.outcome.set_result(outcome)


class ChargingBatcher:
    """``CreditControl``'s calls, group-committed by ``ChargingWorkers``; the
    enquiries and refunds pass through to ``CreditControl``."""

    def __init__(self, workers: ChargingWorkers, credit_control: CreditControl) -> None:
        self._workers = workers
        self._credit_control = credit_control

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
        """INITIAL: authorize and grant (``CreditControl.start``), ``companion``
        in the same transaction."""
        return await self._workers.submit(
            ChargingCall(
                CallKind.START,
                session_id,
                number,
                tuple(requests),
                subscriber,
                sub_session,
                companion=companion,
            )
        )

    async def update(
        self,
        session_id: str,
        number: int,
        requests: Sequence[UsageRequest],
        *,
        sub_session: str = "",
        companion: Companion | None = None,
    ) -> Answer:
        """UPDATE: commit used units and grant again (``CreditControl.update``),
        ``companion`` in the same transaction."""
        return await self._workers.submit(
            ChargingCall(
                CallKind.UPDATE,
                session_id,
                number,
                tuple(requests),
                sub_session=sub_session,
                companion=companion,
            )
        )

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
        """TERMINATE (``CreditControl.terminate``), ``companion`` in the same transaction."""
        return await self._workers.submit(
            ChargingCall(
                CallKind.TERMINATE,
                session_id,
                number,
                tuple(requests),
                sub_session=sub_session,
                cause=cause,
                companion=companion,
            )
        )

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
        """EVENT with direct debiting (``CreditControl.debit``), ``companion``
        in the same transaction."""
        return await self._workers.submit(
            ChargingCall(
                CallKind.DEBIT,
                session_id,
                number,
                (request,),
                subscriber,
                companion=companion,
                xdr_id=xdr_id,
            )
        )

    async def price(self, subscriber: Subscriber, request: UsageRequest) -> Money:
        """PRICE_ENQUIRY (``CreditControl.price``)."""
        return await self._credit_control.price(subscriber, request)

    async def can_afford(self, subscriber: Subscriber, request: UsageRequest) -> bool:
        """CHECK_BALANCE (``CreditControl.can_afford``)."""
        return await self._credit_control.can_afford(subscriber, request)

    async def refund(self, xdr_id: str, reason: str = "refund") -> Money:
        """REFUND_ACCOUNT (``CreditControl.refund``)."""
        return await self._credit_control.refund(xdr_id, reason)
