"""Health: is the database answering, and is every listener up?

``/healthz`` asks these. Each listener of ``ratel serve`` (HTTP, the
scheduler, and the RADIUS and Diameter servers when they arrive) registers
itself in the ``ListenerRegistry`` and says when it is up and when it goes
down; a listener that is registered but not up makes the node unhealthy, so
a load balancer stops sending it traffic.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


class ListenerState(StrEnum):
    STARTING = "starting"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class ListenerStatus:
    """What a listener said last: its state, where it listens and why it is down."""

    name: str
    state: ListenerState
    address: str = ""
    detail: str = ""


class Listener:
    """A listener's handle in the registry: it reports its own state."""

    def __init__(self, registry: ListenerRegistry, name: str) -> None:
        self._registry = registry
        self.name = name

    def up(self, address: str = "") -> None:
        """Ready to serve (bound, or scheduled), at ``address`` if it has one."""
        self._registry._set(ListenerStatus(self.name, ListenerState.UP, address))

    def down(self, detail: str) -> None:
        """Not serving, and why (stopped, bind failed, peer lost ...)."""
        current = self._registry.status(self.name)
        address = current.address if current else ""
        self._registry._set(ListenerStatus(self.name, ListenerState.DOWN, address, detail))

    def unregister(self) -> None:
        """Leave the registry (a listener that was configured off)."""
        self._registry._remove(self.name)


class ListenerRegistry:
    """The listeners of this process and their last reported state."""

    def __init__(self) -> None:
        self._statuses: dict[str, ListenerStatus] = {}
        # listeners may report from their own threads (pyrad runs its own loop)
        self._lock = threading.Lock()

    def register(self, name: str) -> Listener:
        """Add a listener, starting; registering a name again resets it."""
        self._set(ListenerStatus(name, ListenerState.STARTING))
        return Listener(self, name)

    def status(self, name: str) -> ListenerStatus | None:
        with self._lock:
            return self._statuses.get(name)

    def statuses(self) -> list[ListenerStatus]:
        """Every registered listener, by name."""
        with self._lock:
            return sorted(self._statuses.values(), key=lambda s: s.name)

    def all_up(self) -> bool:
        return all(s.state is ListenerState.UP for s in self.statuses())

    def _set(self, status: ListenerStatus) -> None:
        with self._lock:
            self._statuses[status.name] = status

    def _remove(self, name: str) -> None:
        with self._lock:
            self._statuses.pop(name, None)


class DatabaseCheck:
    """``SELECT 1`` on the engine, within a timeout."""

    def __init__(self, engine: AsyncEngine, timeout: float = 2.0) -> None:
        self._engine = engine
        self._timeout = timeout

    async def __call__(self) -> None:
        """Return when the database answered; raise why it did not."""
        async with asyncio.timeout(self._timeout):
            async with self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
