"""Credit-control sessions: one row each, the state as a JSON snapshot.

Any node may answer the next request of a session, so everything the
charging core keeps between requests is stored: streams with the rate
they were rated at and what they hold, the stored answers (the last
``ANSWERS_KEPT_PER_SUB_SESSION`` per sub-session, for retransmissions),
request numbers, sub-sessions and the xDR.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ratel.adapters.db.catalogue import CATALOGUE_VERSION
from ratel.adapters.db.codec import (
    session_from_snapshot,
    session_snapshot,
    snapshot_text,
    stored_copy,
)
from ratel.adapters.db.customers import locked_with_buckets, owners_of
from ratel.adapters.db.engine import compact_json
from ratel.adapters.db.fast import fast
from ratel.adapters.db.statements import Prebuilt, PrebuiltMany, Prefixed, Repository
from ratel.adapters.db.tables import accounts, cc_sessions
from ratel.domain.charging import CreditControlSession, SessionState
from ratel.domain.errors import ConcurrentChange, SessionExists

_BY_ID = Prebuilt(sa.select(cc_sessions).where(cc_sessions.c.id == sa.bindparam("session_id")))
# Sorted by id: concurrent batches lock their sessions in one global order.
_BY_IDS = PrebuiltMany(cc_sessions, cc_sessions.c.id, cc_sessions.c.id, "session_ids")
# What tells whether the process's copy of a session is current (and locks
# it); with the catalogue's version and the session's account, which a batch
# would read next otherwise (the account read, not locked, as a batch reads
# it).
_ACCOUNT = Prefixed(accounts, "account__")
_VERSIONS = PrebuiltMany(
    cc_sessions,
    cc_sessions.c.id,
    cc_sessions.c.id,
    "session_ids",
    columns=(
        cc_sessions.c.id,
        cc_sessions.c.version,
        cc_sessions.c.last_activity,
        CATALOGUE_VERSION.label("catalogue_version"),
        *_ACCOUNT.columns(),
    ),
    joined=cc_sessions.outerjoin(accounts, accounts.c.id == cc_sessions.c.account_id),
)
# PostgreSQL: the version rows of a batch's sessions, then their customers and
# their accounts' quota buckets, locked in that order in one round trip.
_WITH_OWNERS = locked_with_buckets(_VERSIONS("postgresql", lock=True))

#: Hands on the customers and buckets locked with the sessions (the
#: customers repository's ``read_with_sessions``).
OwnersRead = Callable[
    [Sequence[str], list[Mapping[Any, Any]], Sequence[str], list[Mapping[Any, Any]]], None
]

# PostgreSQL: a batch of sessions in one statement (arrays unnested), with
# RETURNING telling which rows were written: asyncpg gives no row count for
# an executemany.
_PG_INSERT_MANY = fast(
    sa.text(
        """
        INSERT INTO cc_sessions (id, account_id, customer_id, currency, state, started_at,
                                 last_activity, snapshot, version)
        SELECT v.id, v.account_id, v.customer_id, v.currency, v.state, v.started_at,
               v.last_activity, CAST(v.snapshot AS JSONB), 1
        FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:account_ids AS VARCHAR[]),
                    CAST(:customer_ids AS VARCHAR[]), CAST(:currencies AS VARCHAR[]),
                    CAST(:states AS VARCHAR[]), CAST(:started AS TIMESTAMPTZ[]),
                    CAST(:activity AS TIMESTAMPTZ[]), CAST(:snapshots AS TEXT[]))
             AS v(id, account_id, customer_id, currency, state, started_at, last_activity, snapshot)
        ON CONFLICT (id) DO NOTHING
        RETURNING id
        """
    )
)
_PG_SAVE_MANY = fast(
    sa.text(
        """
        UPDATE cc_sessions AS s
        SET state = v.state, last_activity = v.last_activity,
            snapshot = CAST(v.snapshot AS JSONB), version = s.version + 1
        FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:versions AS INTEGER[]),
                    CAST(:states AS VARCHAR[]), CAST(:activity AS TIMESTAMPTZ[]),
                    CAST(:snapshots AS TEXT[]))
             AS v(id, version, state, last_activity, snapshot)
        WHERE s.id = v.id AND s.version = v.version
        RETURNING s.id
        """
    )
)


def _update(*, checked: bool, text: bool = False) -> sa.Update:
    """The session's UPDATE, built once; ``checked`` adds the version check;
    ``text``: the snapshot is bound as its JSON text (SQLite keeps JSON as
    text), not as a document to encode."""
    c = cc_sessions.c
    snapshot_type = sa.Text() if text else c.snapshot.type
    statement = sa.update(cc_sessions).where(c.id == sa.bindparam("s_id"))
    if checked:
        statement = statement.where(c.version == sa.bindparam("s_version"))
    # Only what a request changes: ids, currency and start never do.
    return statement.values(
        state=sa.bindparam("s_state", type_=c.state.type),
        last_activity=sa.bindparam("s_last_activity", type_=c.last_activity.type),
        snapshot=sa.bindparam("s_snapshot", type_=snapshot_type),
        version=c.version + 1,
    )


_SAVE = _update(checked=True)
_OVERWRITE = _update(checked=False)  # a session this unit of work did not load
_SQLITE_SAVE_TEXT = _update(checked=True, text=True)
_SQLITE_INSERT_MANY = sqlite.insert(cc_sessions).on_conflict_do_nothing(
    index_elements=[cc_sessions.c.id]
)


def _session_from_row(row: Any) -> CreditControlSession:
    return session_from_snapshot(
        id=row["id"],
        account_id=row["account_id"],
        customer_id=row["customer_id"],
        currency=row["currency"],
        state=row["state"],
        started_at=row["started_at"],
        last_activity=row["last_activity"],
        snapshot=row["snapshot"],
    )


# The snapshot's JSON text for PostgreSQL (which parses it into JSONB).
_dumps = compact_json

# Ids per SELECT ... IN: far below every driver's bound-parameter limit.
_CHUNK = 1000


class SessionCache:
    """The sessions this process last read or committed, decoded, each valid
    for one version (and last activity, so that a row deleted and made again
    under the same id is never mistaken for the old one). A batch reads only
    the version of a session it holds a current copy of: no snapshot crosses
    the wire or goes through the JSON decoder, and no session is rebuilt from
    JSON. What is kept is a copy of the session as its row holds it
    (``stored_copy``), shared with nobody; ``take`` hands it out and forgets
    it, so that whatever the taker does to it stays the taker's. Written
    sessions enter only once their transaction has committed."""

    def __init__(self, size: int = 50_000) -> None:
        self._size = size
        self._sessions: dict[str, tuple[int, datetime, CreditControlSession]] = {}

    def take(
        self, session_id: str, version: int, last_activity: datetime
    ) -> CreditControlSession | None:
        """The session as of ``version``, if held (and no longer held)."""
        entry = self._sessions.pop(session_id, None)
        if entry is None or entry[0] != version or entry[1] != last_activity:
            return None
        return entry[2]

    def owners(self, session_id: str) -> tuple[str, str] | None:
        """The account and customer of a session held, whatever its version
        (a session never changes them)."""
        entry = self._sessions.get(session_id)
        return None if entry is None else (entry[2].account_id, entry[2].customer_id)

    def put(self, version: int, stored: CreditControlSession) -> None:
        """Keep ``stored`` (a ``stored_copy``, shared with nobody) as the
        session's row at ``version``."""
        sessions = self._sessions
        sessions.pop(stored.id, None)  # the newest last: the oldest go first
        sessions[stored.id] = (version, stored.last_activity, stored)
        if len(sessions) > self._size:
            del sessions[next(iter(sessions))]


_caches: weakref.WeakKeyDictionary[Engine, SessionCache] = weakref.WeakKeyDictionary()


def session_cache_for(engine: AsyncEngine) -> SessionCache:
    """The one session cache of ``engine`` (one database, this process)."""
    cache = _caches.get(engine.sync_engine)
    if cache is None:
        cache = _caches[engine.sync_engine] = SessionCache()
    return cache


class SqlSessionRepository(Repository):
    """Sessions in ``cc_sessions``, with an optimistic version check: a save
    names the version it loaded, so a session changed by another node since
    is refused (``ConcurrentChange``) instead of overwritten."""

    _seen: dict[int, tuple[CreditControlSession, int]]

    def __init__(
        self,
        connection: AsyncConnection,
        cache: SessionCache | None = None,
        catalogue_version: Callable[[int | None], None] | None = None,
        accounts_read: Callable[[list[Mapping[Any, Any]]], None] | None = None,
        owners_read: OwnersRead | None = None,
    ) -> None:
        super().__init__(connection)
        self._seen = {}
        self._cache = cache
        # told the catalogue's version when a batch load reads it
        self._catalogue_version = catalogue_version
        # handed the sessions' account rows when a batch load reads them
        self._accounts_read = accounts_read
        # handed the customers and buckets a batch load locked with the sessions
        self._owners_read = owners_read
        # for the cache, on commit: the version written and the session as stored
        self._written: dict[str, tuple[int, CreditControlSession]] = {}

    def forget(self) -> None:
        """Drop the identity map (after a rollback the versions it holds are stale)."""
        self._seen.clear()
        self._written.clear()

    def committed(self) -> None:
        """The transaction committed: what it wrote is now the current row."""
        if self._cache is not None:
            for version, stored in self._written.values():
                self._cache.put(version, stored)
        self._written.clear()

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
        session = _session_from_row(row)
        self._seen[id(session)] = (session, row["version"])
        return session

    async def get_many(
        self, session_ids: Sequence[str], *, lock: bool = False, with_owners: bool = False
    ) -> dict[str, CreditControlSession]:
        wanted = sorted(set(session_ids))
        found: dict[str, CreditControlSession] = {}
        cache = self._cache
        owners = self._owners(wanted) if with_owners and lock else None
        for start in range(0, len(wanted), _CHUNK):
            chunk = {"session_ids": wanted[start : start + _CHUNK]}
            if cache is None:
                rows = (await self._execute(_BY_IDS(self._dialect, lock), chunk)).mappings()
                for row in rows:
                    self._found(found, row, row["version"])
                continue
            # Versions first (this is what locks); whole rows only for the
            # sessions whose current row the process does not hold.
            missing: list[str] = []
            if owners is not None:
                versions = await self._with_owners(chunk, *owners)
            else:
                statement = _VERSIONS(self._dialect, lock)
                versions = (await self._execute(statement, chunk)).mappings().all()
            if versions and self._catalogue_version is not None:
                self._catalogue_version(versions[0]["catalogue_version"])
            if self._accounts_read is not None:
                read = [_ACCOUNT.row(row) for row in versions]
                self._accounts_read([row for row in read if row is not None])
            for row in versions:
                session_id, version = row["id"], row["version"]
                session = cache.take(session_id, version, row["last_activity"])
                if session is None:
                    missing.append(session_id)
                else:
                    self._seen[id(session)] = (session, version)
                    found[session_id] = session
            if missing:
                result = await self._execute(_BY_IDS(self._dialect), {"session_ids": missing})
                for row in result.mappings():
                    session = self._found(found, row, row["version"])
                    cache.put(row["version"], stored_copy(session))  # committed: it was read
        return found

    def _owners(self, wanted: Sequence[str]) -> tuple[list[str], list[str]] | None:
        """The customers and accounts of ``wanted``, when this process holds
        every one of those sessions (PostgreSQL, one chunk): the customers
        and buckets a batch locks next, which one statement locks with the
        sessions. Otherwise None: they are read after the sessions. (An
        account moved to another customer since its session began brings a
        customer the statement did not lock: it is locked after the buckets,
        out of order; a deadlock that may cause is retried with the batch.)"""
        if (
            self._cache is None
            or self._owners_read is None
            or self._fast is None
            or len(wanted) > _CHUNK
        ):
            return None
        accounts: set[str] = set()
        customers: set[str] = set()
        for session_id in wanted:
            held = self._cache.owners(session_id)
            if held is None:
                return None
            accounts.add(held[0])
            customers.add(held[1])
        return sorted(customers), sorted(accounts)

    async def _with_owners(
        self, chunk: Mapping[str, Any], customer_ids: list[str], account_ids: list[str]
    ) -> list[Mapping[Any, Any]]:
        """The sessions' version rows; their customers and their accounts'
        buckets, locked after them in the same statement, go to the customers
        repository (which hands them to the batch's next locking read)."""
        assert self._owners_read is not None
        parameters = {**chunk, "customer_ids": customer_ids, "account_ids": account_ids}
        rows = (await self._execute(_WITH_OWNERS, parameters)).mappings().all()
        customer_rows, bucket_rows = owners_of(rows)
        self._owners_read(customer_ids, customer_rows, account_ids, bucket_rows)
        return [row for row in rows if row["id"] is not None]

    def _found(
        self, found: dict[str, CreditControlSession], row: Any, version: int
    ) -> CreditControlSession:
        session = _session_from_row(row)
        self._seen[id(session)] = (session, version)
        found[session.id] = session
        return session

    async def add_many(self, sessions: Sequence[CreditControlSession]) -> None:
        if not sessions:
            return
        rows = [_row(session) for session in sessions]

        async def after(written: int) -> None:
            if written != len(rows):
                raise SessionExists(
                    f"{len(rows) - written} of sessions {[r['id'] for r in rows]} already exist"
                )
            for session in sessions:
                self._seen[id(session)] = (session, 1)
                self._written[session.id] = (1, stored_copy(session))

        if self._postgresql:

            async def counted(ids: list[Any]) -> None:
                await after(len(ids))

            # with the batch's other writes when inside ``together``
            await self._write(
                _PG_INSERT_MANY,
                {
                    "ids": [r["id"] for r in rows],
                    "account_ids": [r["account_id"] for r in rows],
                    "customer_ids": [r["customer_id"] for r in rows],
                    "currencies": [r["currency"] for r in rows],
                    "states": [r["state"] for r in rows],
                    "started": [r["started_at"] for r in rows],
                    "activity": [r["last_activity"] for r in rows],
                    "snapshots": [_dumps(r["snapshot"]) for r in rows],
                },
                counted,
            )
            return
        result = await self._execute(_SQLITE_INSERT_MANY, [{**row, "version": 1} for row in rows])
        await after(result.rowcount)

    async def save_many(self, sessions: Sequence[CreditControlSession]) -> None:
        if not sessions:
            return
        versions: list[int] = []
        for session in sessions:
            seen = self._seen.get(id(session))
            if seen is None:
                raise LookupError(
                    f"session {session.id} was not loaded in this unit of work: "
                    "its version is not known"
                )
            versions.append(seen[1])
        snapshots = [snapshot_text(session, _dumps) for session in sessions]

        async def after(written: int) -> None:
            if written != len(sessions):
                raise ConcurrentChange(
                    f"{len(sessions) - written} of sessions {[s.id for s in sessions]} "
                    "were changed or removed by another request"
                )
            for session, w, version in zip(sessions, snapshots, versions, strict=True):
                self._seen[id(session)] = (session, version + 1)
                self._written[session.id] = (version + 1, stored_copy(session, w))

        if self._postgresql:

            async def counted(ids: list[Any]) -> None:
                await after(len(ids))

            await self._write(
                _PG_SAVE_MANY,
                {
                    "ids": [s.id for s in sessions],
                    "versions": versions,
                    "states": [s.state.value for s in sessions],
                    "activity": [s.last_activity for s in sessions],
                    "snapshots": [w.text for w in snapshots],
                },
                counted,
            )
            return
        result = await self._execute(
            _SQLITE_SAVE_TEXT,
            [
                {
                    "s_id": s.id,
                    "s_state": s.state.value,
                    "s_last_activity": s.last_activity,
                    "s_snapshot": w.text,
                    "s_version": version,
                }
                for s, w, version in zip(sessions, snapshots, versions, strict=True)
            ],
        )
        await after(result.rowcount)

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

    async def idle_since(
        self, before: datetime, limit: int = 500, after: tuple[datetime, str] | None = None
    ) -> list[tuple[datetime, str]]:
        c = cc_sessions.c
        statement = (
            sa.select(c.last_activity, c.id)
            .where(c.state == SessionState.OPEN.value, c.last_activity < before)
            .order_by(c.last_activity, c.id)
            .limit(limit)
        )
        if after is not None:
            at, session_id = after
            statement = statement.where(
                sa.or_(c.last_activity > at, sa.and_(c.last_activity == at, c.id > session_id))
            )
        return [(at, session_id) for at, session_id in (await self._execute(statement)).all()]


def _row(session: CreditControlSession, snapshot: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": session.id,
        "account_id": session.account_id,
        "customer_id": session.customer_id,
        "currency": session.currency,
        "state": session.state.value,
        "started_at": session.started_at,
        "last_activity": session.last_activity,
        "snapshot": session_snapshot(session) if snapshot is None else snapshot,
    }
