"""Which Diameter peer holds each credit-control session (``diameter_sessions``).

A RAR or ASR goes to the gateway that opened the session (its Origin-Host,
sent as Destination-Host), and a REFUND_ACCOUNT names the direct debit it
gives back by its Session-Id. Only this adapter needs these facts, so they
live in its own table. A session's peer is noted, and forgotten when the
session ends, in the transaction that charges the INITIAL, the EVENT or the
TERMINATE (``SessionPeers`` is the charging calls' ``CompanionWriter``): a
session charged always has its note, and on PostgreSQL the note costs no
round trip of its own. A direct debit's note keeps its xDR's id (the adapter
names the xDR) for a REFUND_ACCOUNT, and stays when the session ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ratel.adapters.db.fast import fast
from ratel.adapters.db.statements import Repository
from ratel.adapters.db.tables import diameter_sessions
from ratel.adapters.db.unit_of_work import SqlUnitOfWork
from ratel.ports.store import UnitOfWork


@dataclass(frozen=True, slots=True)
class SessionPeer:
    session_id: str
    origin_host: str
    origin_realm: str
    xdr_id: str | None


@dataclass(frozen=True, slots=True)
class Opened:
    """A session's peer, noted with the charge of its INITIAL, or of its
    EVENT with the id of the xDR it produces."""

    session_id: str
    origin_host: str
    origin_realm: str
    at: datetime
    xdr_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ended:
    """A session ended by its TERMINATE: its peer is forgotten with the charge."""

    session_id: str


# PostgreSQL: arrays unnested, RETURNING a column: ``Repository._write``
# sends them with the charging batch's other writes.
_PG_REMEMBER = fast(
    sa.text(
        """
        INSERT INTO diameter_sessions (session_id, origin_host, origin_realm, started_at, xdr_id)
        SELECT * FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:hosts AS VARCHAR[]),
                             CAST(:realms AS VARCHAR[]), CAST(:started AS TIMESTAMPTZ[]),
                             CAST(:xdr_ids AS VARCHAR[]))
        ON CONFLICT (session_id) DO NOTHING
        RETURNING session_id
        """
    )
)
_PG_FORGET = fast(
    sa.text(
        """
        DELETE FROM diameter_sessions
        WHERE session_id = ANY(CAST(:ids AS VARCHAR[])) AND xdr_id IS NULL
        RETURNING session_id
        """
    )
)


async def _nothing_to_check(session_ids: list[Any]) -> None:
    """A note taken already (a retransmitted INITIAL) or gone stays so."""


class _Joined(Repository):
    """``diameter_sessions`` inside a transaction: a charging one, or one of
    its own (``SessionPeers.forget``)."""

    async def remember_many(self, opened: Sequence[Opened]) -> None:
        if self._postgresql:
            await self._write(
                _PG_REMEMBER,
                {
                    "ids": [o.session_id for o in opened],
                    "hosts": [o.origin_host for o in opened],
                    "realms": [o.origin_realm for o in opened],
                    "started": self._times(diameter_sessions.c.started_at, [o.at for o in opened]),
                    "xdr_ids": [o.xdr_id for o in opened],
                },
                _nothing_to_check,
            )
            return
        statement = self._insert(diameter_sessions).on_conflict_do_nothing(
            index_elements=[diameter_sessions.c.session_id]
        )
        rows = [
            {
                "session_id": o.session_id,
                "origin_host": o.origin_host,
                "origin_realm": o.origin_realm,
                "xdr_id": o.xdr_id,
                "started_at": o.at,
            }
            for o in opened
        ]
        await self._execute(statement, rows)

    async def forget_many(self, session_ids: Sequence[str]) -> None:
        if self._postgresql:
            await self._write(_PG_FORGET, {"ids": list(session_ids)}, _nothing_to_check)
            return
        c = diameter_sessions.c
        await self._execute(
            sa.delete(diameter_sessions).where(
                c.session_id.in_(list(session_ids)), c.xdr_id.is_(None)
            )
        )


class SessionPeers:
    """``diameter_sessions`` on the process's engine, and in the charging
    transactions of INITIALs, EVENTs and TERMINATEs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write_companions(self, uow: UnitOfWork, records: Sequence[object]) -> None:
        """Note the peers of sessions opened and forget those of sessions
        ended, in ``uow``'s transaction (``CompanionWriter``)."""
        if not isinstance(uow, SqlUnitOfWork):
            raise TypeError(f"Diameter peers join SQL units of work, not {type(uow).__name__}")
        if len(records) != sum(isinstance(r, Opened | Ended) for r in records):
            raise TypeError("Diameter credit control writes session peers only")
        ended = {r.session_id for r in records if isinstance(r, Ended)}
        opened: dict[str, Opened] = {}
        for record in records:
            if isinstance(record, Opened):
                # the first call of a session in the batch is the one charged (a
                # retransmission after it got its answer, and names its xDR)
                opened.setdefault(record.session_id, record)
        # one statement touches a row once: a session opened and ended in
        # one batch leaves nothing to note
        noted = [o for session_id, o in opened.items() if session_id not in ended]
        joined = _Joined(uow.shared_connection())
        if noted:
            await joined.remember_many(noted)
        if ended:
            await joined.forget_many(sorted(ended))

    async def forget(self, session_id: str) -> None:
        """The session ended: nobody will send it a RAR again (in a
        transaction of its own, as a TERMINATE's charge would)."""
        async with self._engine.begin() as connection:
            await _Joined(connection).forget_many([session_id])

    async def of_sessions(self, session_ids: list[str]) -> list[SessionPeer]:
        if not session_ids:
            return []
        c = diameter_sessions.c
        statement = sa.select(c.session_id, c.origin_host, c.origin_realm, c.xdr_id).where(
            c.session_id.in_(session_ids)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [SessionPeer(*row) for row in rows]

    async def get(self, session_id: str) -> SessionPeer | None:
        found = await self.of_sessions([session_id])
        return found[0] if found else None
