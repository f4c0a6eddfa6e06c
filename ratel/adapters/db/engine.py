"""The asyncio engine for SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLite is tuned for one embedded server process: WAL (readers never block the
writer), a busy timeout, foreign keys on, and every transaction opened with
``BEGIN IMMEDIATE``. Taking the write lock at BEGIN is what makes concurrent
read-modify-write safe: with the driver's default deferred BEGIN two
transactions may both read and then fail with "database is locked" when
upgrading to write. In one process the pool holds a single connection, so
transactions queue in asyncio instead of polling SQLite's busy handler;
other processes wait on the busy timeout.

PostgreSQL gets a pool sized for a server and READ COMMITTED; balance
updates are conditional UPDATEs and row locks, which READ COMMITTED re-checks
against the newest committed row.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from ratel.adapters.db.types import register_sqlite_functions

DEFAULT_BUSY_TIMEOUT_MS = 30_000

#: JSON columns' text: compact, and without the circular-reference check (our
#: documents are trees). A charging request writes a session snapshot of a
#: few kilobytes, so this is on the hot path.
compact_json = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 20,
    max_overflow: int = 20,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    generic_plans: bool = False,
) -> AsyncEngine:
    """An engine for ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``.

    ``pool_size``/``max_overflow`` apply to PostgreSQL: connections beyond
    ``pool_size`` are opened for one use and closed again, which costs a TCP
    and TLS handshake and asyncpg's type set-up each time, so ``pool_size``
    should cover the transactions usually open at once. ``busy_timeout_ms`` is
    how long a SQLite transaction waits for another process's write lock.
    ``generic_plans`` has PostgreSQL plan each prepared statement once
    (``plan_cache_mode = force_generic_plan`` on every connection of the pool).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, echo=echo, busy_timeout_ms=busy_timeout_ms)
    if backend == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            raise ValueError(
                f"PostgreSQL is reached through asyncpg: postgresql+asyncpg://, not {url}"
            )
        return create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_recycle=1800,
            # the connection used last goes out first: the busy ones keep their
            # prepared statements warm, and the spare ones stay idle
            pool_use_lifo=True,
            isolation_level="READ COMMITTED",
            json_serializer=compact_json,
            connect_args=(
                {"server_settings": {"plan_cache_mode": "force_generic_plan"}}
                if generic_plans
                else {}
            ),
        )
    raise ValueError(f"unsupported database URL (SQLite or PostgreSQL only): {url}")


def charging_engine(engine: AsyncEngine, url: str, connections: int) -> AsyncEngine:
    """The engine of the charging batches: on PostgreSQL a pool of its own of
    ``connections`` (one per charging worker, as many again for a burst)
    whose statements are planned once; on SQLite ``engine`` itself, the one
    connection that writes.

    Every statement of a charging batch finds its rows by key (session,
    customer and account ids, arrays of them) and runs thousands of times a
    second as a prepared statement. PostgreSQL's default keeps planning a
    statement whose parameters are arrays anew at every execution, because
    its generic plan is estimated dearer than a plan for the arrays at hand,
    which for a key lookup is the same plan: planning them once took about a
    fifth of PostgreSQL's CPU per charged request off (the README's
    production setup has the figures). The rest of ratel keeps PostgreSQL's
    default, which plans a range query (the sessions due for supervision, the
    xDRs of a month) for the values it is given."""
    if make_url(url).get_backend_name() != "postgresql":
        return engine
    return create_engine(url, pool_size=connections, max_overflow=connections, generic_plans=True)


def _sqlite_engine(url: str, *, echo: bool, busy_timeout_ms: int) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_driver_name() != "aiosqlite":
        raise ValueError(f"SQLite is reached through aiosqlite: sqlite+aiosqlite://, not {url}")
    memory = parsed.database in (None, "", ":memory:")
    options: dict[str, Any] = {"echo": echo, "json_serializer": compact_json}
    if memory:
        # A memory database lives in one connection: share it.
        options["poolclass"] = StaticPool
    else:
        # One connection: SQLite has one writer at a time anyway, and waiting
        # for the pool is an asyncio wait, not a busy-handler sleep loop.
        options.update(pool_size=1, max_overflow=0, pool_timeout=60)
    engine = create_async_engine(url, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from issuing its own (deferred) BEGIN: "begin" below
        # issues BEGIN IMMEDIATE instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # FULL: a commit is on disk before we answer the network (an
                # accounting answer means "stored"); NORMAL could lose the last
                # commits on power loss.
                cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()
        register_sqlite_functions(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
