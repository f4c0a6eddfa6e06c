"""The PostgreSQL fast path: hot statements run straight on the asyncpg
connection underneath SQLAlchemy's ``AsyncConnection``.

SQLAlchemy's per-execute machinery (greenlet switch, execution context,
compiled-cache lookup, ``construct_params``, ``CursorResult`` metadata) costs
more CPU than asyncpg itself on the charging path, whose statements are few
and always the same objects. A statement registered with ``fast()`` is
compiled by SQLAlchemy once per dialect; its plan keeps the SQL text, the
order of its parameters with their bind processors and default values, and
the result keys with their result processors. Each execution then does what
``AsyncAdapt_asyncpg_cursor._prepare_and_execute`` does (the connection's
mutex, the lazily started transaction, SQLAlchemy's prepared-statement cache,
the row count from the status message) and hands back a SQLAlchemy result of
the same rows. Errors go through the connection's own handling, so they end
as the same ``DBAPIError`` subclasses with the same ``sqlstate``, and a
disconnect invalidates the connection as it would have.

Whenever the statement or the connection is in a state this module does not
reproduce (not registered, expanding parameters, a missing required value,
event listeners or echo on the engine, no transaction begun, a nested or
inactive transaction, an executemany), ``execute`` returns ``None`` and the
caller runs the statement through SQLAlchemy as usual. SQLite never comes
here.

SQLAlchemy internals used (check them when upgrading SQLAlchemy from 2.0.44):
``SQLCompiler.positiontup``, ``.bind_names``, ``._bind_processors``,
``._result_columns``, ``._ordered_columns``, ``._textual_ordered_columns``,
``._ad_hoc_textual``, ``._loose_column_name_matching``, ``.literal_execute_params``,
``.post_compile_params``, ``.insert_prefetch``, ``.update_prefetch``,
``.isplaintext``; ``TypeEngine._cached_result_processor``;
``Connection._dbapi_connection``, ``._transaction``, ``._nested_transaction``,
``._trans_context_manager``, ``._has_events``, ``._echo``,
``._execution_options``, ``._handle_dbapi_exception``; ``Engine._has_events``;
``PGDialect_asyncpg._invalidate_schema_cache_asof``,
``._invalidate_schema_cache()``; ``AsyncAdapt_asyncpg_connection._execute_mutex``,
``._started``, ``._start_transaction()``, ``._prepare()``,
``._handle_exception()``; ``_ConnectionFairy.dbapi_connection``, ``.is_valid``;
``SimpleResultMetaData(keys, _processors=...)``; ``IteratorResult``.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.cursor import _NO_RESULT_METADATA
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

E = TypeVar("E", bound=Executable)

# The statements that may take the fast path, by identity: built once, they
# live as long as the process (module-level statements).
_REGISTERED: dict[int, Executable] = {}


def fast(statement: E) -> E:
    """Mark ``statement`` (built once, at module level) for the fast path on
    PostgreSQL. A statement built per call must not be registered: plans are
    found by the statement's identity."""
    _REGISTERED[id(statement)] = statement
    return statement


# What the asyncpg cursor of SQLAlchemy reads the row count from.
_ROWCOUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


class FastResult(IteratorResult[Any]):
    """A result as SQLAlchemy's (``mappings()``, ``all()``, ``first()``,
    ``scalars()``, iteration, ``rowcount``) over the rows asyncpg returned."""

    rowcount: int

    @property
    def returns_rows(self) -> bool:
        return self._metadata is not _NO_RESULT_METADATA


class _Slot:
    """One positional parameter: where its value comes from and how it is
    bound (SQLAlchemy's ``construct_params`` and bind processor, planned)."""

    __slots__ = ("bindparam", "key", "name", "processor", "required", "value")

    def __init__(self, name: str, bindparam: Any, processor: Callable[[Any], Any] | None):
        self.name = name
        self.key = bindparam.key
        self.bindparam = bindparam
        self.required = bool(bindparam.required)
        self.value = None if bindparam.callable else bindparam.value
        self.processor = processor


class Plan:
    """A statement compiled once for a dialect, ready to run on asyncpg."""

    __slots__ = (
        "_attributes",
        "_metadata",
        "_oids",
        "_result_types",
        "_slots",
        "sql",
        "statement",
    )

    def __init__(self, statement: Executable, compiled: SQLCompiler) -> None:
        self.statement = statement
        self.sql: str = compiled.string
        names = compiled.bind_names  # bindparam -> name
        by_name = {name: bindparam for bindparam, name in names.items()}
        processors = compiled._bind_processors
        self._slots = tuple(
            _Slot(name, by_name[name], processors.get(name)) for name in compiled.positiontup or ()
        )
        # None: no compiled columns (text): keys are the columns' names, no processors
        self._result_types: list[tuple[str, Any]] | None = (
            [(entry[0], entry[3]) for entry in compiled._result_columns]
            if compiled._result_columns
            else None
        )
        self._attributes: Any = None
        self._oids: tuple[int, ...] = ()
        self._metadata: Any = None

    def arguments(self, parameters: Mapping[str, Any] | None) -> list[Any] | None:
        """The positional values, bound; ``None`` if a required value is
        missing (SQLAlchemy raises its own error for it)."""
        params = parameters or {}
        arguments = []
        for slot in self._slots:
            if slot.key in params:
                value = params[slot.key]
            elif slot.name in params:
                value = params[slot.name]
            elif slot.required:
                return None
            elif slot.bindparam.callable:
                value = slot.bindparam.effective_value
            else:
                value = slot.value
            processor = slot.processor
            arguments.append(value if processor is None else processor(value))
        return arguments

    def metadata(self, attributes: Any, dialect: Dialect) -> Any:
        """The result metadata for rows described by asyncpg's ``attributes``
        (made once per column types: each pooled connection has its own
        prepared statement, whose columns have the same types)."""
        if attributes is self._attributes:
            return self._metadata
        oids = tuple(attribute.type.oid for attribute in attributes or ())
        if self._metadata is not None and oids == self._oids:
            self._attributes = attributes
            return self._metadata
        if not attributes:
            metadata: Any = _NO_RESULT_METADATA
        elif self._result_types is None:
            metadata = SimpleResultMetaData([attribute.name for attribute in attributes])
        else:
            if len(self._result_types) != len(attributes):
                raise RuntimeError(f"columns of {self.sql!r} do not match its compiled form")
            metadata = SimpleResultMetaData(
                [key for key, _ in self._result_types],
                _processors=[
                    type_._cached_result_processor(dialect, oid)
                    for (_, type_), oid in zip(self._result_types, oids, strict=True)
                ],
            )
        self._attributes, self._oids, self._metadata = attributes, oids, metadata
        return metadata


def _plan(statement: Executable, dialect: Dialect) -> Plan | None:
    """The plan of a registered statement, or ``None`` when it must take
    SQLAlchemy's path."""
    if id(statement) not in _REGISTERED or _REGISTERED[id(statement)] is not statement:
        return None
    if not isinstance(statement, sa.Select | sa.TextClause):
        return None  # DML compiles differently with the parameters' keys
    compiled = statement.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler) or not compiled.positional:
        return None
    if (
        compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.insert_prefetch
        or compiled.update_prefetch
    ):
        return None
    if isinstance(statement, sa.TextClause):
        if compiled._result_columns:
            return None
    elif (
        not compiled._ordered_columns
        or compiled._textual_ordered_columns
        or compiled._ad_hoc_textual
        or compiled._loose_column_name_matching
    ):
        return None
    return Plan(statement, compiled)


_plans: weakref.WeakKeyDictionary[Dialect, dict[int, Plan | None]] = weakref.WeakKeyDictionary()


class FastPath:
    """The fast path of one ``AsyncConnection`` on asyncpg."""

    __slots__ = ("_connection", "_dialect", "_plans")

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        dialect = connection.dialect
        self._dialect = dialect
        plans = _plans.get(dialect)
        if plans is None:
            plans = _plans[dialect] = {}
        self._plans = plans

    @staticmethod
    def applies(connection: AsyncConnection) -> bool:
        dialect = connection.dialect
        return dialect.name == "postgresql" and dialect.driver == "asyncpg"

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None
    ) -> FastResult | None:
        """Run ``statement`` on asyncpg; ``None`` if it must take SQLAlchemy's path."""
        plans = self._plans
        key = id(statement)
        if key in plans:
            plan = plans[key]
        else:
            plan = plans[key] = _plan(statement, self._dialect)
        if plan is None or plan.statement is not statement:
            return None
        sync = self._connection.sync_connection
        if sync is None:
            return None
        fairy = sync._dbapi_connection
        transaction = sync._transaction
        if (
            fairy is None
            or not fairy.is_valid
            or transaction is None
            or not transaction.is_active
            or sync._nested_transaction is not None
            or sync._trans_context_manager is not None
            or sync._has_events
            or sync.engine._has_events
            or sync._echo
            or sync._execution_options
        ):
            return None
        try:
            arguments = plan.arguments(parameters)
        except Exception:
            return None  # SQLAlchemy's path raises its own error for it
        if arguments is None:
            return None
        adapted: Any = fairy.dbapi_connection
        dialect: Any = self._dialect
        try:
            async with adapted._execute_mutex:
                if not adapted._started:
                    await adapted._start_transaction()
                try:
                    prepared, attributes = await adapted._prepare(
                        plan.sql, dialect._invalidate_schema_cache_asof
                    )
                    records = await prepared.fetch(*arguments)
                    status = prepared.get_statusmsg()
                except Exception as error:
                    adapted._handle_exception(error)  # raises the DBAPI error
        except BaseException as error:
            await self._failed(error, plan.sql, tuple(arguments))
            raise  # not reached: _failed raises
        result = FastResult(plan.metadata(attributes, dialect), iter(records))
        counted = _ROWCOUNT.match(status or "")
        result.rowcount = int(counted.group(1)) if counted else -1
        return result

    async def _failed(self, error: BaseException, sql: str, arguments: tuple[Any, ...]) -> None:
        """Raise ``error`` as SQLAlchemy would have (a ``DBAPIError``
        subclass; the connection invalidated after a disconnect)."""
        dialect: Any = self._dialect
        dbapi = dialect.loaded_dbapi
        if isinstance(error, dbapi.InvalidCachedStatementError | dbapi.InternalServerError):
            # what PGExecutionContext_asyncpg.handle_dbapi_exception does
            dialect._invalidate_schema_cache()
        # SQLAlchemy wraps DBAPI errors (naming the statement) and re-raises
        # any other exception as it is.
        statement = sql if isinstance(error, dbapi.Error) else None

        def handle(sync: Any) -> None:
            try:
                raise error  # what _handle_dbapi_exception reads from sys.exc_info()
            except BaseException as raised:
                sync._handle_dbapi_exception(raised, statement, arguments, None, None)

        await self._connection.run_sync(handle)
