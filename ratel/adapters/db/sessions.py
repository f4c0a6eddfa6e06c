"""Credit-control sessions: one row each, the state as a JSON snapshot.

Any node may answer the next request of a session, so everything the
charging core keeps between requests is stored: streams with the rate
they were rated at and what they hold, the stored answers (the last
``ANSWERS_KEPT_PER_SUB_SESSION`` per sub-session, for retransmissions),
request numbers, sub-sessions and the xDR.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ratel.adapters.db.codec import session_from_snapshot, session_snapshot
from ratel.adapters.db.statements import Prebuilt, Repository
from ratel.adapters.db.tables import accounts, cc_sessions
from ratel.domain.charging import CreditControlSession, SessionState
from ratel.domain.errors import ConcurrentChange, SessionExists

_BY_ID = Prebuilt(sa.select(cc_sessions).where(cc_sessions.c.id == sa.bindparam("session_id")))


def _update(*, checked: bool) -> sa.Update:
    """The session's UPDATE, built once; ``checked`` adds the version check."""
    c = cc_sessions.c
    statement = sa.update(cc_sessions).where(c.id == sa.bindparam("s_id"))
    if checked:
        statement = statement.where(c.version == sa.bindparam("s_version"))
    # Only what a request changes: ids, currency and start never do.
    return statement.values(
        state=sa.bindparam("s_state", type_=c.state.type),
        last_activity=sa.bindparam("s_last_activity", type_=c.last_activity.type),
        snapshot=sa.bindparam("s_snapshot", type_=c.snapshot.type),
        version=c.version + 1,
    )


_SAVE = _update(checked=True)
_OVERWRITE = _update(checked=False)  # a session this unit of work did not load


class SqlSessionRepository(Repository):
    """Sessions in ``cc_sessions``, with an optimistic version check: a save
    names the version it loaded, so a session changed by another node since
    is refused (``ConcurrentChange``) instead of overwritten."""

    _seen: dict[int, tuple[CreditControlSession, int]]

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection)
        self._seen = {}

    def forget(self) -> None:
        """Drop the identity map (after a rollback the versions it holds are stale)."""
        self._seen.clear()

    async def add(self, session: CreditControlSession) -> None:
        # ON CONFLICT DO NOTHING instead of catching the violation: the
        # transaction stays usable on PostgreSQL, and a retransmitted INITIAL
        # racing the first is an expected event, not an error to log.
        statement = (
            self._insert(cc_sessions)
            .values(**_row(session), version=1)
            .on_conflict_do_nothing(index_elements=[cc_sessions.c.id])
        )
        result = await self._execute(statement)
        if result.rowcount == 0:
            raise SessionExists(f"session {session.id} already exists")
        self._seen[id(session)] = (session, 1)

    async def get(self, session_id: str, *, lock: bool = False) -> CreditControlSession | None:
        row = (await self._execute(_BY_ID(lock), {"session_id": session_id})).mappings().first()
        if row is None:
            return None
        session = session_from_snapshot(
            id=row["id"],
            account_id=row["account_id"],
            customer_id=row["customer_id"],
            currency=row["currency"],
            state=row["state"],
            started_at=row["started_at"],
            last_activity=row["last_activity"],
            snapshot=row["snapshot"],
        )
        self._seen[id(session)] = (session, row["version"])
        return session

    async def save(self, session: CreditControlSession) -> None:
        seen = self._seen.get(id(session))
        values = {
            "s_id": session.id,
            "s_state": session.state.value,
            "s_last_activity": session.last_activity,
            "s_snapshot": session_snapshot(session),
        }
        if seen is None:
            result = await self._execute(_OVERWRITE, values)
        else:
            result = await self._execute(_SAVE, {**values, "s_version": seen[1]})
        if result.rowcount == 0:
            raise ConcurrentChange(
                f"session {session.id} was changed or removed by another request"
            )
        if seen is not None:
            self._seen[id(session)] = (session, seen[1] + 1)

    async def open_for_account(self, account_id: str) -> list[str]:
        c = cc_sessions.c
        statement = (
            sa.select(c.id)
            .where(c.account_id == account_id, c.state == SessionState.OPEN.value)
            .order_by(c.id)
        )
        return list((await self._execute(statement)).scalars().all())

    async def open_for_customer(self, customer_id: str) -> list[str]:
        c = cc_sessions.c
        # through the customer's accounts: both lookups use an index
        of_customer = sa.select(accounts.c.id).where(accounts.c.customer_id == customer_id)
        statement = (
            sa.select(c.id)
            .where(c.account_id.in_(of_customer), c.state == SessionState.OPEN.value)
            .order_by(c.id)
        )
        return list((await self._execute(statement)).scalars().all())

    async def idle_since(self, before: datetime, limit: int = 500) -> list[str]:
        c = cc_sessions.c
        statement = (
            sa.select(c.id)
            .where(c.state == SessionState.OPEN.value, c.last_activity < before)
            .order_by(c.last_activity, c.id)
            .limit(limit)
        )
        return list((await self._execute(statement)).scalars().all())


def _row(session: CreditControlSession) -> dict[str, Any]:
    return {
        "id": session.id,
        "account_id": session.account_id,
        "customer_id": session.customer_id,
        "currency": session.currency,
        "state": session.state.value,
        "started_at": session.started_at,
        "last_activity": session.last_activity,
        "snapshot": session_snapshot(session),
    }
