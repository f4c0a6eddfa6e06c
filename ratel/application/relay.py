"""The event relay: hands the domain events of the outbox to the parts of this
process that react at once (CoA and Disconnect to a NAS, RAR and ASR to a
Diameter peer, GraphQL subscriptions).

Every process tails the outbox by id and sees every event, because what it
reacts with is its own: the Diameter peer connection or the websocket a
subscriber holds lives in one process. It starts at the newest event when it
starts (events of the past were for the processes that ran then) and never
marks events published: that flag belongs to the provisioning workers, which
share the backlog between them.

A handler that raises is logged and the relay goes on: one bad handler must
not hold back the others. Handlers return quickly and do their own network
work and retries in tasks of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ratel.application.base import Dependencies, UseCase
from ratel.ports.store import OutboxEntry

log = logging.getLogger(__name__)

EventHandler = Callable[[OutboxEntry], Awaitable[None]]


class EventRelay(UseCase):
    """Tails the outbox and calls the handlers subscribed to each event's type."""

    def __init__(self, deps: Dependencies) -> None:
        super().__init__(deps)
        self._handlers: list[tuple[frozenset[str], EventHandler]] = []
        self._last_id: int | None = None

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
        for entry in entries:
            self._last_id = entry.id
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
