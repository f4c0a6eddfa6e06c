"""The event relay: hands the domain events of the outbox to the parts of this
process that react at once (CoA and Disconnect to a NAS, RAR and ASR to a
Diameter peer, GraphQL subscriptions).

Every process tails the outbox by id and sees every event, because what it
reacts with is its own: the Diameter peer connection or the websocket a
subscriber holds lives in one process. It starts at the newest event when it
starts (events of the past were for the processes that ran then) and never
marks events published: that flag belongs to the provisioning workers, which
share the backlog between them.

Ids are taken when a transaction inserts its events, but transactions commit
in any order on PostgreSQL: the event with id 100 may become visible after the
one with 101. An id the relay has gone past without seeing is therefore
awaited for a while (``gap_wait``) and handed on when its transaction
commits; an id that never comes belonged to a transaction that was rolled
back. Such a late event comes after newer ones: the handlers decide from the
state of the account when they run (a restoring CoA checks that the account
may use the service now), not from the order of events.

A handler that raises is logged and the relay goes on: one bad handler must
not hold back the others. Handlers return quickly and do their own network
work and retries in tasks of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Final

from ratel.application.base import Dependencies, UseCase
from ratel.ports.store import OutboxEntry

log = logging.getLogger(__name__)

EventHandler = Callable[[OutboxEntry], Awaitable[None]]

#: How long an outbox id passed over is awaited: far longer than any
#: transaction that writes events runs.
GAP_WAIT: Final = timedelta(seconds=30)
#: Ids awaited at most; beyond, the oldest are given up (and logged).
MAX_GAPS: Final = 10_000


class EventRelay(UseCase):
    """Tails the outbox and calls the handlers subscribed to each event's type."""

    def __init__(self, deps: Dependencies, gap_wait: timedelta = GAP_WAIT) -> None:
        super().__init__(deps)
        self._handlers: list[tuple[frozenset[str], EventHandler]] = []
        self._last_id: int | None = None
        self._gap_wait = gap_wait
        # ids passed over, still awaited: id -> until when
        self._gaps: dict[int, datetime] = {}

    def subscribe(self, handler: EventHandler, *event_types: str) -> None:
        """Call ``handler`` for every event of ``event_types`` (of every type
        when none is given), in outbox order."""
        self._handlers.append((frozenset(event_types), handler))

    def unsubscribe(self, handler: EventHandler) -> None:
        """Stop calling ``handler`` (a websocket that closed)."""
        self._handlers = [(types, h) for types, h in self._handlers if h is not handler]

    @property
    def position(self) -> int | None:
        """The id of the last event handed on (None before the first pass)."""
        return self._last_id

    async def start_at_newest(self) -> None:
        """Skip the events written before now."""
        async with self.deps.uow() as uow:
            self._last_id = await uow.outbox.last_id()

    async def __call__(self, limit: int = 200) -> int:
        """One pass: hand on the events written since the last pass (at most
        ``limit``); the number handed on."""
        if self._last_id is None:
            await self.start_at_newest()
            return 0
        # Read in a short transaction of its own, then call the handlers with
        # no transaction open: a handler may use the store itself.
        async with self.deps.uow() as uow:
            entries = await uow.outbox.after(self._last_id, limit)
            late = await uow.outbox.with_ids(sorted(self._gaps)) if self._gaps else []
        now = self.deps.clock.now()
        for entry in late:
            del self._gaps[entry.id]
        self._give_up(now)
        expected = self._last_id + 1
        for entry in entries:
            if entry.id > expected:
                self._await(range(expected, entry.id), now)
            expected = entry.id + 1
        if entries:
            self._last_id = entries[-1].id
        if late:
            log.info(
                "events committed after newer ones handed on",
                extra={"event_ids": [entry.id for entry in late]},
            )
            entries = sorted([*late, *entries], key=lambda entry: entry.id)
        for entry in entries:
            for types, handler in list(self._handlers):
                if types and entry.event_type not in types:
                    continue
                try:
                    await handler(entry)
                except Exception:
                    log.exception(
                        "event handler failed",
                        extra={"event_id": entry.id, "event_type": entry.event_type},
                    )
        return len(entries)

    @property
    def awaited(self) -> list[int]:
        """The ids passed over and still awaited, lowest first."""
        return sorted(self._gaps)

    def _await(self, ids: range, now: datetime) -> None:
        until = now + self._gap_wait
        for missing in ids[-MAX_GAPS:]:
            self._gaps[missing] = until
        if len(self._gaps) > MAX_GAPS:
            dropped = sorted(self._gaps)[: len(self._gaps) - MAX_GAPS]
            for missing in dropped:
                del self._gaps[missing]
            log.warning(
                "too many outbox ids awaited: the oldest are given up",
                extra={"given_up": len(dropped), "lowest": dropped[0]},
            )

    def _give_up(self, now: datetime) -> None:
        expired = [missing for missing, until in self._gaps.items() if until <= now]
        for missing in expired:
            del self._gaps[missing]
        if expired:
            # rolled back (or a sequence that skipped them): nothing to hand on
            log.debug("outbox ids never committed", extra={"event_ids": sorted(expired)})
