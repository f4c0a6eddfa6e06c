"""What every repository shares: running statements on the unit of work's
connection, turning database errors into domain errors, and the few
statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import MappingProxyType, TracebackType
from typing import Any, Final, Generic, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from ratel.adapters.db.fast import FastPath, fast
from ratel.domain.errors import ConcurrentChange

# PostgreSQL SQLSTATEs after which the whole call may simply be retried.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, lock


def retryable(exc: DBAPIError) -> bool:
    """A deadlock, serialization failure or lock timeout (PostgreSQL), or a
    write lock not obtained within the busy timeout (SQLite)."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def unique_violation(exc: IntegrityError, table: str, column: str) -> bool:
    """Whether ``exc`` is the unique (or primary key) violation of
    ``table.column``. PostgreSQL names the constraint (our naming convention
    makes it ``uq_<table>_<column>`` or ``pk_<table>``); SQLite names the
    column."""
    message = str(exc.orig)
    return (
        f'"uq_{table}_{column}"' in message
        or f'"pk_{table}"' in message
        or f"{table}.{column}" in message
    )


class Repository:
    """Base of the repositories: one connection, inside the unit of work's
    transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._dialect = connection.dialect.name
        # PostgreSQL: registered statements (``fast``) run straight on asyncpg
        self._fast = FastPath(connection) if FastPath.applies(connection) else None
        self._info = connection.info  # the dict itself: see ``DeferredBegin``
        self._begin: DeferredBegin | None = self._info.get(DeferredBegin.KEY)

    @property
    def _postgresql(self) -> bool:
        return self._dialect == "postgresql"

    async def _execute(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> CursorResult[Any]:
        """Run ``statement``; a deadlock or lock timeout becomes ``ConcurrentChange``.
        On PostgreSQL a statement registered with ``fast`` (one parameter set)
        runs straight on asyncpg, with the same result and errors."""
        together: Together | None = self._info.get(Together.KEY)
        if together is not None and together.pending:
            await together.flush()  # what this statement reads or writes follows them
        if self._begin is not None:
            self._begin.before(statement, parameters)
        try:
            if self._fast is not None and not isinstance(parameters, Sequence):
                result = await self._fast.execute(statement, parameters)
                if result is not None:
                    return result  # type: ignore[return-value]  # FastResult: the same API
            if parameters is None:
                return await self._connection.execute(statement)
            return await self._connection.execute(statement, parameters)
        except DBAPIError as exc:
            if retryable(exc):
                raise ConcurrentChange(f"the database asked to retry: {exc.orig}") from exc
            raise

    async def _write(
        self,
        statement: sa.TextClause,
        parameters: Mapping[str, Any],
        after: Callable[[list[Any]], Awaitable[None]],
    ) -> None:
        """Run a PostgreSQL write that returns one column (``... RETURNING x``)
        and hand ``after`` the returned values: at once, or inside
        ``Transaction.together()`` when the block's writes go to the server
        (``Together``). ``after`` checks them (and may raise) and records what
        was written; nothing else may depend on the write before it runs."""
        together: Together | None = self._info.get(Together.KEY)
        if together is not None:
            await together.add(statement, parameters, after)
            return
        result = await self._execute(statement, parameters)
        await after([row[0] for row in result.all()])

    def _times(self, column: sa.Column[Any], values: Sequence[Any]) -> list[Any]:
        """``values`` bound as ``column`` binds them (aware, in UTC), for a
        statement that takes them as an array."""
        bind = column.type.process_bind_param  # type: ignore[attr-defined]
        dialect = self._connection.dialect
        return [bind(value, dialect) for value in values]

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """The dialect's INSERT, which knows ``ON CONFLICT``."""
        if self._postgresql:
            return postgresql.insert(table)
        return sqlite.insert(table)


class Prebuilt:
    """A hot-path SELECT built once, in an unlocked and a locked variant:
    executed with parameters, it costs neither statement construction nor
    SQLAlchemy cache-key computation per request, and on PostgreSQL it takes
    the fast path (``ratel.adapters.db.fast``)."""

    def __init__(self, statement: sa.Select[Any], *, of: sa.Table | None = None) -> None:
        self._plain = fast(statement)
        self._locked = fast(lockable(statement, True, of=of))

    def __call__(self, lock: bool = False) -> sa.Select[Any]:
        return self._locked if lock else self._plain


class PrebuiltMany:
    """A hot-path SELECT of the rows whose ``column`` is one of a list of
    values, built once per dialect and lock variant, ordered by ``order``
    (a global order, so that concurrent batches lock rows deadlock-free).

    PostgreSQL gets ``column = ANY(:values)`` with one array parameter: one
    prepared statement whatever the number of values (``IN`` would prepare
    one per list length). SQLite gets an expanding ``IN``. Execute it with
    ``{name: [values]}``."""

    def __init__(
        self,
        table: sa.Table,
        column: sa.ColumnElement[Any],
        order: sa.ColumnElement[Any],
        name: str = "values",
        *,
        columns: Sequence[sa.ColumnElement[Any]] = (),
        joined: sa.FromClause | None = None,
    ) -> None:
        array = postgresql.ARRAY(column.type)
        selected = sa.select(*columns) if columns else sa.select(table)
        if joined is not None:
            # rows of ``table`` with what ``joined`` adds; only ``table``'s are locked
            selected = selected.select_from(joined)
        of = table if joined is not None else None
        pg = selected.where(column == sa.any_(sa.bindparam(name, type_=array)))
        lite = selected.where(column.in_(sa.bindparam(name, expanding=True)))
        self._by_dialect = {
            "postgresql": Prebuilt(pg.order_by(order), of=of),
            "sqlite": Prebuilt(lite.order_by(order), of=of),
        }

    def __call__(self, dialect: str, lock: bool = False) -> sa.Select[Any]:
        return self._by_dialect[dialect](lock)


def lockable(
    statement: sa.Select[Any],
    lock: bool,
    *,
    skip_locked: bool = False,
    of: sa.Table | None = None,
) -> sa.Select[Any]:
    """``SELECT ... FOR NO KEY UPDATE`` when ``lock`` (PostgreSQL): exclusive
    against other lockers and writers of the row, but not against inserts
    whose foreign key points at it (a journal row for a locked customer),
    since we never change a key. ``of``: only that table's rows (a join's
    others are read, not locked). SQLite renders no lock clause: its
    transactions begin IMMEDIATE and already hold the only write lock."""
    if not lock:
        return statement
    return statement.with_for_update(key_share=True, skip_locked=skip_locked, of=of)


class Prefixed:
    """A table's columns under a prefix in a wider row (a join, or a union of
    two tables' rows), and the table's own row taken back out of it: one
    round trip reads two tables' rows."""

    def __init__(self, table: sa.Table, prefix: str) -> None:
        self._table = table
        self._prefix = prefix
        self._names = [(prefix + column.name, column.name) for column in table.c]

    def columns(self, source: Any = None) -> list[sa.ColumnElement[Any]]:
        """The table's columns (or those of ``source``, a CTE of the table),
        labelled with the prefix."""
        columns = (source if source is not None else self._table).c
        return [columns[name].label(label) for label, name in self._names]

    def nulls(self) -> list[sa.ColumnElement[Any]]:
        """Typed NULLs in the table's place (the other half of a union row)."""
        return [
            sa.cast(sa.null(), column.type).label(label)
            for (label, _), column in zip(self._names, self._table.c, strict=True)
        ]

    def row(self, wide: Any) -> Mapping[Any, Any] | None:
        """The table's row in ``wide``; None where its key is NULL (no row)."""
        if wide[self._names[0][0]] is None:
            return None
        # read-only: repositories that keep rows as read tell them from rows they built
        return MappingProxyType({name: wide[label] for label, name in self._names})


V = TypeVar("V")


class Interned(Generic[V]):
    """Immutable values (frozen dataclasses) rebuilt from the same column
    values, made and checked once: a charging batch rebuilds the same
    contacts, identifiers and scopes for every request of the same customer
    or account. Equal inputs give the one equal, shared object; the memo is
    emptied when it grows large. ``make`` raising remembers nothing."""

    def __init__(self, make: Callable[..., V], size: int = 10_000) -> None:
        self._make = make
        self._size = size
        self._values: dict[Hashable, V] = {}

    def __call__(self, *key: Hashable) -> V:
        value = self._values.get(key)
        if value is None:
            value = self._make(*key)
            if len(self._values) >= self._size:
                self._values.clear()
            self._values[key] = value
        return value


# SELECTs that lock rows without saying so at their top (a locking CTE), by
# identity: module-level statements, marked with ``locking``.
_LOCKING: set[int] = set()

S = TypeVar("S", bound=sa.Select[Any])


def locking(statement: S) -> S:
    """Mark a module-level SELECT whose CTEs lock rows, so that a unit of
    work begins its transaction before it (``DeferredBegin``)."""
    _LOCKING.add(id(statement))
    return statement


class DeferredBegin:
    """PostgreSQL: a unit of work sends BEGIN only before its first write or
    locking read. Until then each SELECT runs on its own (the driver's
    autocommit mode). At READ COMMITTED that reads exactly what it would read
    inside the transaction, since there every statement takes a fresh
    snapshot and a plain SELECT holds nothing; and a unit of work that only
    reads (a login, a session lookup, a GraphQL query) saves the BEGIN and
    ROLLBACK round trips. The state is the asyncpg adapter's own
    ``autocommit`` flag (a DB-API attribute of SQLAlchemy's adapter), so the
    statements of every path, fast or not, see it; ``close`` restores it
    before the connection goes back to the pool."""

    KEY: Final = "ratel.deferred_begin"

    def __init__(self, connection: AsyncConnection) -> None:
        self._adapter: Any = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        self._adapter.autocommit = True
        self.deferred = True
        # the dict itself: a statement cancelled or failed on the wire
        # invalidates the connection, and reading its ``info`` then tries to
        # reconnect (outside SQLAlchemy's greenlet: a MissingGreenlet that
        # would replace the cancellation)
        self._info = connection.info
        self._info[self.KEY] = self

    def before(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    ) -> None:
        """Begin for real before ``statement`` unless it is a plain SELECT."""
        if not self.deferred:
            return
        if (
            isinstance(statement, sa.Select)
            and statement._for_update_arg is None
            and id(statement) not in _LOCKING
            and not isinstance(parameters, Sequence)
        ):
            return
        self.now()

    def now(self) -> None:
        """Begin with the next statement, whatever it is."""
        if self.deferred:
            self.deferred = False
            self._adapter.autocommit = False  # the driver sends BEGIN with the next statement

    def close(self) -> None:
        self._info.pop(self.KEY, None)
        if self.deferred:
            self.deferred = False
            self._adapter.autocommit = False


# SQLAlchemy's own pattern for a named parameter in ``text()``.
_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)")

# Combined statements by the identities of their parts (the parts are
# module-level statements, so the set is small and lives with the process).
_COMBINED: dict[tuple[int, ...], sa.TextClause] = {}


def _renamed(sql: str, n: int) -> str:
    """``sql`` with each parameter ``:x`` renamed ``:wN_x``."""
    return _BIND.sub(lambda match: f":w{n}_{match.group(1)}", sql)


def combined(parts: Sequence[sa.TextClause]) -> sa.TextClause:
    """One statement running ``parts`` (writes returning one column each) as
    data-modifying CTEs: one row, column ``wN`` holding part N's returned
    values as text. Part N's parameter ``x`` is named ``wN_x``."""
    key = tuple(id(part) for part in parts)
    statement = _COMBINED.get(key)
    if statement is None:
        ctes = ", ".join(f"w{n} AS ({_renamed(part.text, n)})" for n, part in enumerate(parts))
        columns = ", ".join(
            f"ARRAY(SELECT CAST(v.r AS TEXT) FROM w{n} AS v(r)) AS w{n}" for n in range(len(parts))
        )
        statement = _COMBINED[key] = fast(sa.text(f"WITH {ctes} SELECT {columns}"))
    return statement


#: One write of a ``Together``: its statement, parameters and ``after``.
_Part = tuple[sa.TextClause, Mapping[str, Any], Callable[[list[Any]], Awaitable[None]]]


class Together:
    """PostgreSQL: the writes of a ``Transaction.together()`` block, sent as
    one statement (data-modifying CTEs) when the block ends, or before any
    other statement a repository of the unit of work runs meanwhile, so that
    statement sees them. A charging batch's session, wallet, bucket, journal
    and outbox writes so cost one round trip instead of five.

    The parts must touch distinct rows: the CTEs of one statement see the
    same snapshot, not each other's changes. A statement added twice sends
    what is pending first. Each part's ``after`` runs once the statement
    has, in the order the parts were added."""

    KEY: Final = "ratel.together"

    def __init__(self, connection: AsyncConnection) -> None:
        self._runner = Repository(connection)
        self._parts: list[_Part] = []
        self.failed = False  # a flush raised: what it held may be half written

    @property
    def pending(self) -> bool:
        return bool(self._parts)

    async def add(
        self,
        statement: sa.TextClause,
        parameters: Mapping[str, Any],
        after: Callable[[list[Any]], Awaitable[None]],
    ) -> None:
        if any(part[0] is statement for part in self._parts):
            await self.flush()
        self._parts.append((statement, parameters, after))

    async def flush(self) -> None:
        """Send the pending writes, then run their ``after``."""
        parts, self._parts = self._parts, []
        if not parts:
            return
        try:
            await self._send(parts)
        except BaseException:
            self.failed = True
            raise

    async def _send(self, parts: list[_Part]) -> None:
        if len(parts) == 1:
            statement, parameters, after = parts[0]
            result = await self._runner._execute(statement, parameters)
            await after([row[0] for row in result.all()])
            return
        values = {
            f"w{n}_{name}": value
            for n, (_, parameters, _) in enumerate(parts)
            for name, value in parameters.items()
        }
        result = await self._runner._execute(combined([part[0] for part in parts]), values)
        row = result.one()
        for n, (_, _, after) in enumerate(parts):
            await after(list(row[n]))


class Transaction:
    """One database transaction on a connection of its own: ``async with``
    begins it, ``commit()`` makes every change durable at once (a deadlock or
    serialization failure becomes ``ConcurrentChange``), and leaving the block
    without committing rolls everything back. A subclass makes the
    repositories that work inside it in ``_opened``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._begin: DeferredBegin | None = None
        self._lost_writes = False

    @property
    def connection(self) -> AsyncConnection:
        """The transaction's connection, for statements of one's own: the
        transaction has begun for real (see ``DeferredBegin``)."""
        connection = self.shared_connection()
        together: Together | None = connection.info.get(Together.KEY)
        if together is not None and together.pending:
            # a statement of one's own would not see them (nor they it)
            raise RuntimeError("writes of a 'together' block are pending: use it after the block")
        if self._begin is not None:
            self._begin.now()
        return connection

    def shared_connection(self) -> AsyncConnection:
        """The connection, for repositories of other adapters (``Repository``
        begins the transaction before their first write or lock)."""
        if self._connection is None:
            raise RuntimeError(f"{type(self).__name__} has not begun: use it with 'async with'")
        return self._connection

    def _opened(self, connection: AsyncConnection) -> None:
        """Make the repositories on ``connection``."""

    async def __aenter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError(f"{type(self).__name__} runs once")
        connection = await self._engine.connect()
        try:
            await connection.begin()
            if FastPath.applies(connection):  # asyncpg: the adapter has ``autocommit``
                self._begin = DeferredBegin(connection)
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        self._opened(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self.shared_connection()
        try:
            if connection.in_transaction():
                await connection.rollback()
        finally:
            if self._begin is not None:
                self._begin.close()
            await connection.close()

    @asynccontextmanager
    async def together(self) -> AsyncIterator[None]:
        """Writes made inside the block may reach the database together when
        it ends (PostgreSQL: see ``Together``): their errors and failed
        checks are raised then, from the block. An exception inside the
        block drops what was not sent yet, and this transaction can then
        only be rolled back. Elsewhere (SQLite, in-process) writes run at
        once."""
        connection = self.shared_connection()
        if not FastPath.applies(connection) or Together.KEY in connection.info:
            yield  # nothing to gain, or an outer block sends them
            return
        together = Together(connection)
        info = connection.info  # the dict itself: see ``DeferredBegin``
        info[Together.KEY] = together
        try:
            yield
        except BaseException:
            if together.pending or together.failed:
                self._lost_writes = True
            raise
        finally:
            info.pop(Together.KEY, None)
        try:
            await together.flush()
        except BaseException:
            self._lost_writes = True
            raise

    async def commit(self) -> None:
        if self._lost_writes:
            raise RuntimeError(
                "writes of a failed 'together' block were dropped or half made: roll back"
            )
        try:
            await self.shared_connection().commit()
        except DBAPIError as exc:
            if retryable(exc):
                raise ConcurrentChange(f"the database asked to retry: {exc.orig}") from exc
            raise
