"""The RADIUS store on SQLAlchemy Core: the NAS registry, accounting sessions
and CHAP secrets, one transaction per ``SqlRadiusStore``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ratel.adapters.db.fast import fast
from ratel.adapters.db.statements import Repository, Transaction, lockable
from ratel.adapters.db.tables import (
    radius_chap_secrets,
    radius_dae_claims,
    radius_nas,
    radius_sessions,
)
from ratel.adapters.db.unit_of_work import SqlUnitOfWork
from ratel.domain.nas import (
    DuplicateNas,
    DuplicateRadiusSession,
    Nas,
    NasVendor,
    RadiusSession,
    RadiusSessionState,
    Restriction,
)
from ratel.ports.store import UnitOfWork


def _nas_row(nas: Nas) -> dict[str, Any]:
    return {
        "id": nas.id,
        "name": nas.name,
        "address": nas.address,
        "secret": nas.secret,
        "vendor": nas.vendor.value,
        "accepts_coa": nas.accepts_coa,
        "accepts_disconnect": nas.accepts_disconnect,
        "dae_port": nas.dae_port,
        "require_message_authenticator": nas.require_message_authenticator,
    }


def _nas(row: Any) -> Nas:
    return Nas(
        id=row.id,
        name=row.name,
        address=row.address,
        secret=row.secret,
        vendor=NasVendor(row.vendor),
        accepts_coa=row.accepts_coa,
        accepts_disconnect=row.accepts_disconnect,
        dae_port=row.dae_port,
        require_message_authenticator=row.require_message_authenticator,
    )


class SqlNasRepository(Repository):
    """NAS entries in ``radius_nas``."""

    async def add(self, nas: Nas) -> None:
        # ON CONFLICT DO NOTHING: the transaction stays usable on PostgreSQL
        statement = self._insert(radius_nas).values(**_nas_row(nas)).on_conflict_do_nothing()
        if (await self._execute(statement)).rowcount == 0:
            raise DuplicateNas(f"a NAS with id {nas.id} or address {nas.address} exists")

    async def save(self, nas: Nas) -> None:
        other = await self.by_address(nas.address)
        if other is not None and other.id != nas.id:
            raise DuplicateNas(f"NAS {other.id} has address {nas.address}")
        row = _nas_row(nas)
        await self._execute(sa.update(radius_nas).where(radius_nas.c.id == nas.id).values(**row))

    async def remove(self, nas_id: str) -> bool:
        result = await self._execute(sa.delete(radius_nas).where(radius_nas.c.id == nas_id))
        return bool(result.rowcount)

    async def get(self, nas_id: str) -> Nas | None:
        row = (await self._execute(sa.select(radius_nas).where(radius_nas.c.id == nas_id))).first()
        return _nas(row) if row is not None else None

    async def by_address(self, address: str) -> Nas | None:
        statement = sa.select(radius_nas).where(radius_nas.c.address == address)
        row = (await self._execute(statement)).first()
        return _nas(row) if row is not None else None

    async def all(self) -> list[Nas]:
        statement = sa.select(radius_nas).order_by(radius_nas.c.name, radius_nas.c.id)
        return [_nas(row) for row in await self._execute(statement)]


def _session_row(session: RadiusSession) -> dict[str, Any]:
    return {
        "nas_address": session.nas_address,
        "acct_session_id": session.acct_session_id,
        "charging_session_id": session.charging_session_id,
        "sub_session": session.sub_session,
        "account_id": session.account_id,
        "customer_id": session.customer_id,
        "user_name": session.user_name,
        "framed_ip": session.framed_ip,
        "input_octets": session.input_octets,
        "output_octets": session.output_octets,
        "session_time": session.session_time,
        "reports": session.reports,
        "state": session.state.value,
        "restricted": session.restricted,
        "restriction": session.restriction.value if session.restriction else None,
        "last_dae": session.last_dae,
        "started_at": session.started_at,
        "updated_at": session.updated_at,
    }


def _session(row: Any) -> RadiusSession:
    return RadiusSession(
        nas_address=row.nas_address,
        acct_session_id=row.acct_session_id,
        charging_session_id=row.charging_session_id,
        sub_session=row.sub_session,
        account_id=row.account_id,
        customer_id=row.customer_id,
        user_name=row.user_name,
        started_at=row.started_at,
        updated_at=row.updated_at,
        framed_ip=row.framed_ip,
        input_octets=row.input_octets,
        output_octets=row.output_octets,
        session_time=row.session_time,
        reports=row.reports,
        state=RadiusSessionState(row.state),
        restriction=_restriction(row),
        last_dae=row.last_dae,
    )


def _restriction(row: Any) -> Restriction | None:
    if row.restriction:
        return Restriction(row.restriction)
    # restricted before the kind was kept (0009): taken as a hotline, which
    # a restore lifts in the way that works for both
    return Restriction.HOTLINE if row.restricted else None


_OPEN = RadiusSessionState.OPEN.value
_USAGE_COLUMNS = (
    "input_octets",
    "output_octets",
    "session_time",
    "reports",
    "state",
    "framed_ip",
    "updated_at",
)


def _usage_update() -> sa.Update:
    """Accounting's write of one session, run with a list of parameter sets
    (executemany). It never takes a session back: a row whose ``reports``
    already reached the new value (written by another process, or by a
    retransmission's twin) is left alone."""
    c = radius_sessions.c
    return (
        sa.update(radius_sessions)
        .where(
            c.nas_address == sa.bindparam("key_nas"),
            c.acct_session_id == sa.bindparam("key_session"),
            c.reports < sa.bindparam("reports"),
        )
        .values({name: sa.bindparam(name) for name in _USAGE_COLUMNS})
    )


_USAGE_UPDATE = _usage_update()

# PostgreSQL: the same guarded write for the whole batch in one statement,
# which names the sessions it wrote.
_PG_USAGE_UPDATE = fast(
    sa.text(
        """
        UPDATE radius_sessions AS r
        SET input_octets = v.input_octets, output_octets = v.output_octets,
            session_time = v.session_time, reports = v.reports, state = v.state,
            framed_ip = v.framed_ip, updated_at = v.updated_at
        FROM unnest(CAST(:key_nas AS VARCHAR[]), CAST(:key_session AS VARCHAR[]),
                    CAST(:input_octets AS BIGINT[]), CAST(:output_octets AS BIGINT[]),
                    CAST(:session_time AS BIGINT[]), CAST(:reports AS INTEGER[]),
                    CAST(:state AS VARCHAR[]), CAST(:framed_ip AS VARCHAR[]),
                    CAST(:updated_at AS TIMESTAMPTZ[])) WITH ORDINALITY
             AS v(key_nas, key_session, input_octets, output_octets, session_time, reports,
                  state, framed_ip, updated_at, n)
        WHERE r.nas_address = v.key_nas AND r.acct_session_id = v.key_session
          AND r.reports < v.reports
        RETURNING v.n
        """
    )
)


def _usage_arrays(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        name: [row[name] for row in rows] for name in ("key_nas", "key_session", *_USAGE_COLUMNS)
    }


class SqlRadiusSessionRepository(Repository):
    """Accounting sessions in ``radius_sessions``."""

    async def add(self, session: RadiusSession) -> None:
        statement = (
            self._insert(radius_sessions).values(**_session_row(session)).on_conflict_do_nothing()
        )
        if (await self._execute(statement)).rowcount == 0:
            raise DuplicateRadiusSession(
                f"session {session.acct_session_id} of {session.nas_address} exists"
            )

    async def add_many(self, sessions: Sequence[RadiusSession]) -> list[RadiusSession]:
        if not sessions:
            return []
        c = radius_sessions.c
        # RETURNING with many rows: multi-row VALUES ("insertmanyvalues"); the
        # keys returned are the sessions inserted.
        statement = (
            self._insert(radius_sessions)
            .on_conflict_do_nothing()
            .returning(c.nas_address, c.acct_session_id)
        )
        result = await self._execute(statement, [_session_row(s) for s in sessions])
        inserted = {(nas, acct_id) for nas, acct_id in result.all()}
        return [s for s in sessions if (s.nas_address, s.acct_session_id) not in inserted]

    async def get(
        self, nas_address: str, acct_session_id: str, *, lock: bool = False
    ) -> RadiusSession | None:
        c = radius_sessions.c
        statement = sa.select(radius_sessions).where(
            c.nas_address == nas_address, c.acct_session_id == acct_session_id
        )
        row = (await self._execute(lockable(statement, lock))).first()
        return _session(row) if row is not None else None

    def _update(self, session: RadiusSession) -> sa.Update:
        c = radius_sessions.c
        return sa.update(radius_sessions).where(
            c.nas_address == session.nas_address,
            c.acct_session_id == session.acct_session_id,
        )

    async def save(self, session: RadiusSession) -> None:
        await self._execute(self._update(session).values(**_session_row(session)))

    async def save_usage(self, session: RadiusSession) -> None:
        row = _session_row(session)
        usage = {name: row[name] for name in _USAGE_COLUMNS}
        await self._execute(self._update(session).values(**usage))

    async def save_usage_many(
        self,
        sessions: Sequence[RadiusSession],
        outdated: Callable[[list[RadiusSession]], None],
    ) -> None:
        if not sessions:
            return
        rows = []
        for session in sessions:
            row = _session_row(session)
            usage = {name: row[name] for name in _USAGE_COLUMNS}
            usage["key_nas"] = session.nas_address
            usage["key_session"] = session.acct_session_id
            rows.append(usage)
        if self._postgresql:

            async def after(positions: list[int]) -> None:
                # WITH ORDINALITY counts from 1 (as text when the block combined writes)
                written = {int(n) - 1 for n in positions}
                outdated([s for n, s in enumerate(sessions) if n not in written])

            # one round trip with the charge's own writes inside a together() block
            await self._write(_PG_USAGE_UPDATE, _usage_arrays(rows), after)
            return
        # The transaction holds SQLite's only write lock (BEGIN IMMEDIATE):
        # what it reads here cannot change before its update.
        c = radius_sessions.c
        wanted = {(s.nas_address, s.acct_session_id): s.reports for s in sessions}
        stored = await self._execute(
            sa.select(c.nas_address, c.acct_session_id, c.reports).where(
                sa.tuple_(c.nas_address, c.acct_session_id).in_(sorted(wanted))
            )
        )
        reports = {(nas, acct_id): n for nas, acct_id, n in stored}
        keys = {key for key, n in wanted.items() if key in reports and reports[key] < n}
        fresh = [r for r in rows if (r["key_nas"], r["key_session"]) in keys]
        if fresh:
            await self._execute(_USAGE_UPDATE, fresh)
        outdated([s for s in sessions if (s.nas_address, s.acct_session_id) not in keys])

    async def _open_where(self, *criteria: sa.ColumnElement[bool]) -> list[RadiusSession]:
        c = radius_sessions.c
        statement = (
            sa.select(radius_sessions)
            .where(c.state == _OPEN, *criteria)
            .order_by(c.started_at, c.acct_session_id)
        )
        return [_session(row) for row in await self._execute(statement)]

    async def open_for_nas(self, nas_address: str) -> list[RadiusSession]:
        return await self._open_where(radius_sessions.c.nas_address == nas_address)

    async def open_for_account(self, account_id: str) -> list[RadiusSession]:
        return await self._open_where(radius_sessions.c.account_id == account_id)

    async def open_for_customer(self, customer_id: str) -> list[RadiusSession]:
        return await self._open_where(radius_sessions.c.customer_id == customer_id)

    async def for_charging_session(self, charging_session_id: str) -> list[RadiusSession]:
        c = radius_sessions.c
        statement = (
            sa.select(radius_sessions)
            .where(c.charging_session_id == charging_session_id)
            .order_by(c.started_at, c.acct_session_id)
        )
        return [_session(row) for row in await self._execute(statement)]


class SqlChapSecretRepository(Repository):
    """CHAP secrets in ``radius_chap_secrets``."""

    async def get(self, account_id: str) -> str | None:
        c = radius_chap_secrets.c
        statement = sa.select(c.secret).where(c.account_id == account_id)
        value: str | None = (await self._execute(statement)).scalar_one_or_none()
        return value

    async def set(self, account_id: str, secret: str, now: datetime) -> None:
        statement = self._insert(radius_chap_secrets).values(
            account_id=account_id, secret=secret, updated_at=now
        )
        await self._execute(
            statement.on_conflict_do_update(
                index_elements=[radius_chap_secrets.c.account_id],
                set_={"secret": secret, "updated_at": now},
            )
        )


class SqlDaeClaimRepository(Repository):
    """Claims of DAE reactions in ``radius_dae_claims``."""

    async def claim(
        self, reaction: str, nas_address: str, acct_session_id: str, now: datetime
    ) -> bool:
        # the primary key decides: a racing insert waits for the first to
        # commit (PostgreSQL) or for the write lock (SQLite), then does nothing
        statement = (
            self._insert(radius_dae_claims)
            .values(
                reaction=reaction,
                nas_address=nas_address,
                acct_session_id=acct_session_id,
                claimed_at=now,
            )
            .on_conflict_do_nothing()
        )
        return (await self._execute(statement)).rowcount == 1

    async def forget_before(self, before: datetime) -> int:
        statement = sa.delete(radius_dae_claims).where(radius_dae_claims.c.claimed_at < before)
        return (await self._execute(statement)).rowcount


class SqlRadiusStore(Transaction):
    """One transaction on the RADIUS tables (see ``ratel.ports.radius``)."""

    nas: SqlNasRepository
    sessions: SqlRadiusSessionRepository
    chap_secrets: SqlChapSecretRepository
    dae_claims: SqlDaeClaimRepository

    def _opened(self, connection: AsyncConnection) -> None:
        self.nas = SqlNasRepository(connection)
        self.sessions = SqlRadiusSessionRepository(connection)
        self.chap_secrets = SqlChapSecretRepository(connection)
        self.dae_claims = SqlDaeClaimRepository(connection)


class SqlRadiusStoreFactory:
    """Makes a ``SqlRadiusStore`` per call on the shared engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def __call__(self) -> SqlRadiusStore:
        return SqlRadiusStore(self.engine)

    def joining(self, uow: UnitOfWork) -> SqlRadiusSessionRepository:
        if not isinstance(uow, SqlUnitOfWork):
            raise TypeError(f"the RADIUS store joins SQL units of work, not {type(uow).__name__}")
        return SqlRadiusSessionRepository(uow.shared_connection())
