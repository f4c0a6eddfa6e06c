"""Which Diameter peer holds each credit-control session (``diameter_sessions``).

A RAR or ASR goes to the gateway that opened the session (its Origin-Host,
sent as Destination-Host), and a REFUND_ACCOUNT names the direct debit it
gives back by its Session-Id. Only this adapter needs these facts, so they
live in its own table, written in short transactions of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ratel.adapters.db.tables import diameter_sessions


@dataclass(frozen=True, slots=True)
class SessionPeer:
    session_id: str
    origin_host: str
    origin_realm: str
    xdr_id: str | None


class SessionPeers:
    """``diameter_sessions`` on the process's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def remember(
        self,
        session_id: str,
        origin_host: str,
        origin_realm: str,
        at: datetime,
        xdr_id: str | None = None,
    ) -> None:
        """Note the session's peer (the first note of a session stands)."""
        statement = (
            self._insert(diameter_sessions)
            .values(
                session_id=session_id,
                origin_host=origin_host,
                origin_realm=origin_realm,
                xdr_id=xdr_id,
                started_at=at,
            )
            .on_conflict_do_nothing(index_elements=[diameter_sessions.c.session_id])
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def forget(self, session_id: str) -> None:
        """The session ended: nobody will send it a RAR again."""
        statement = sa.delete(diameter_sessions).where(
            diameter_sessions.c.session_id == session_id, diameter_sessions.c.xdr_id.is_(None)
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

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
