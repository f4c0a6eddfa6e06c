"""The RADIUS store: the NAS registry and the wire facts of broadband
sessions (which NAS, which Acct-Session-Id, the cumulative counters last
charged). One ``RadiusStore`` is one transaction, like ``UnitOfWork``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from ratel.domain.nas import Nas, RadiusSession
from ratel.ports.store import UnitOfWork


class NasRepository(Protocol):
    """The NAS registry."""

    async def add(self, nas: Nas) -> None:
        """Insert a NAS; ``DuplicateNas`` if its id or address is taken."""
        ...

    async def save(self, nas: Nas) -> None:
        """Replace a NAS's definition."""
        ...

    async def remove(self, nas_id: str) -> bool:
        """Delete a NAS; False if there was none."""
        ...

    async def get(self, nas_id: str) -> Nas | None:
        """The NAS, or None."""
        ...

    async def by_address(self, address: str) -> Nas | None:
        """The NAS with that source address, or None."""
        ...

    async def all(self) -> list[Nas]:
        """Every NAS, ordered by name."""
        ...


class RadiusSessionRepository(Protocol):
    """Accounting sessions as the NAS reported them."""

    async def add(self, session: RadiusSession) -> None:
        """Insert a session; ``DuplicateRadiusSession`` if (NAS, Acct-Session-Id) is taken."""
        ...

    async def add_many(self, sessions: Sequence[RadiusSession]) -> list[RadiusSession]:
        """Insert sessions in one statement; those whose (NAS, Acct-Session-Id)
        is already taken are left out and returned."""
        ...

    async def get(
        self, nas_address: str, acct_session_id: str, *, lock: bool = False
    ) -> RadiusSession | None:
        """The session, or None."""
        ...

    async def save(self, session: RadiusSession) -> None:
        """Write the session's counters, state and last DAE outcome."""
        ...

    async def save_usage(self, session: RadiusSession) -> None:
        """Write only what accounting changes (counters, reports, state,
        Framed-IP), never the DAE outcome a CoA may be writing meanwhile."""
        ...

    async def save_usage_many(
        self,
        sessions: Sequence[RadiusSession],
        outdated: Callable[[list[RadiusSession]], None],
    ) -> None:
        """``save_usage`` for many sessions at once; a session whose stored
        ``reports`` is already at least the new one is left as it is
        (accounting never takes a session back) and handed to ``outdated``:
        another server charged that report, so what the caller knew of the
        session was old. ``outdated`` is called once the write has run, which
        inside the unit of work's ``together()`` block is when the block's
        writes go (by its end)."""
        ...

    async def open_for_nas(self, nas_address: str) -> list[RadiusSession]:
        """The NAS's open sessions, oldest first."""
        ...

    async def open_for_account(self, account_id: str) -> list[RadiusSession]:
        """The account's open sessions on every NAS."""
        ...

    async def open_for_customer(self, customer_id: str) -> list[RadiusSession]:
        """The customer's open sessions on every NAS."""
        ...

    async def for_charging_session(self, charging_session_id: str) -> list[RadiusSession]:
        """The accounting sessions feeding one charging session (sub-sessions)."""
        ...


class DaeClaimRepository(Protocol):
    """Who sends a CoA or Disconnect to a session: with several ratel nodes
    each one's relay sees every event, and only the node that claims
    (reaction, session) first sends it."""

    async def claim(
        self, reaction: str, nas_address: str, acct_session_id: str, now: datetime
    ) -> bool:
        """Claim the reaction; False if another node (or an earlier call)
        claimed it. Racing claims wait for each other: exactly one wins."""
        ...

    async def forget_before(self, before: datetime) -> int:
        """Delete the claims made before ``before``; how many were deleted."""
        ...


class ChapSecretRepository(Protocol):
    """The passwords CHAP needs in clear, one per account (PAP uses the
    self-care password hash instead)."""

    async def get(self, account_id: str) -> str | None:
        """The account's CHAP secret, or None."""
        ...

    async def set(self, account_id: str, secret: str, now: datetime) -> None:
        """Store (insert or replace) the account's CHAP secret."""
        ...


class RadiusStore(Protocol):
    """One transaction on the RADIUS tables."""

    nas: NasRepository
    sessions: RadiusSessionRepository
    chap_secrets: ChapSecretRepository
    dae_claims: DaeClaimRepository

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless ``commit`` was called."""
        ...

    async def commit(self) -> None:
        """Make the changes durable."""
        ...


class RadiusStoreFactory(Protocol):
    """A fresh ``RadiusStore`` per call."""

    def __call__(self) -> RadiusStore:
        """A new, not yet started transaction."""
        ...

    def joining(self, uow: UnitOfWork) -> RadiusSessionRepository:
        """The accounting sessions inside ``uow``'s transaction, for records
        that must commit with a charge."""
        ...
