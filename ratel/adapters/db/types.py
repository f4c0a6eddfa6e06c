"""Column types that behave the same on SQLite and PostgreSQL.

* ``Amount``: money and quota quantities as exact decimals, 8 places
  (``Numeric(24, 8)``). On PostgreSQL it is ``NUMERIC(24, 8)``. On SQLite a
  NUMERIC column has numeric affinity, which turns ``'12345678901234.12345678'``
  into a float and loses digits, so there the column is ``VARCHAR(40)`` holding
  the canonical decimal text, and arithmetic in SQL goes through the
  ``ratel_decimal_*`` functions that ``register_sqlite_functions`` installs on
  every connection (Python ``Decimal``, never float). ``AmountSql`` builds
  those expressions for either backend.
* ``UtcDateTime``: stores UTC and always returns timezone-aware UTC datetimes;
  a naive datetime is refused rather than guessed.
* ``JSON_DOCUMENT``: JSONB on PostgreSQL, JSON text on SQLite.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

AMOUNT_PRECISION: Final = 24
AMOUNT_SCALE: Final = 8
_QUANTUM: Final = Decimal(1).scaleb(-AMOUNT_SCALE)
_LIMIT: Final = Decimal(10) ** (AMOUNT_PRECISION - AMOUNT_SCALE)
# SQLite text wide enough for sign, 16 integer digits, point and 8 places.
_SQLITE_AMOUNT_WIDTH: Final = 40


def to_storage(value: Decimal | int | str) -> Decimal:
    """``value`` rounded to the stored 8 places (banker's rounding, as
    ``Money.stored``), refusing floats and amounts that do not fit
    ``NUMERIC(24, 8)``, so both backends store exactly the same number."""
    if (
        type(value) is Decimal
        and value.as_tuple().exponent == -AMOUNT_SCALE
        and abs(value) < _LIMIT
    ):
        # Already in stored form (rounded once for the row, now bound): rounding
        # again would give the same number, and bulk writes bind millions.
        return value
    if isinstance(value, float | bool):
        raise TypeError(f"amounts are stored from Decimal, never {type(value).__name__}")
    with localcontext() as ctx:
        ctx.prec = 60  # wide enough that quantize never runs out of digits
        try:
            amount = Decimal(value).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
        except InvalidOperation as exc:
            raise ValueError(f"not a storable amount: {value!r}") from exc
    if not amount.is_finite() or abs(amount) >= _LIMIT:
        raise ValueError(f"amount out of the stored range (|x| < 1e16): {value!r}")
    return amount


def _text(amount: Decimal) -> str:
    return format(amount, "f")


class Amount(TypeDecorator[Decimal]):
    """An exact decimal with 8 places: ``NUMERIC(24, 8)`` on PostgreSQL,
    canonical decimal text on SQLite (see the module docstring)."""

    impl = sa.Numeric(AMOUNT_PRECISION, AMOUNT_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(_SQLITE_AMOUNT_WIDTH))
        return dialect.type_descriptor(sa.Numeric(AMOUNT_PRECISION, AMOUNT_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = to_storage(value)
        return _text(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return value
        if isinstance(value, float):
            # Only a row written behind our back could hold a float here.
            raise TypeError("an amount column returned a float: the row was not written by ratel")
        return Decimal(str(value))


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time: ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, UTC text on
    SQLite; always read back as an aware UTC datetime."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetimes are not stored (their zone is a guess): {value!r}")
        utc = value.astimezone(UTC)
        # SQLite keeps the wall-clock text only: store it as UTC without offset
        # so that text order is time order.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


JSON_DOCUMENT: Final = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
"""A JSON value: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONB does not keep object key order, so anything ordered is stored as a list."""

# BIGINT on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the rowid and
# autoincrements, so the variant is needed for integer keys.
BIG_ID: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# -- exact arithmetic on SQLite ---------------------------------------------------


def _decimal(value: object) -> Decimal:
    if isinstance(value, float):
        raise sqlite3.DataError("an amount reached SQL arithmetic as a float")
    return Decimal(str(value))


def _sqlite_sum(*values: object) -> str | None:
    if any(v is None for v in values):
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        total = sum((_decimal(v) for v in values), Decimal(0))
    return _text(to_storage(total))


def _sqlite_negate(value: object) -> str | None:
    return None if value is None else _text(to_storage(-_decimal(value)))


def _sqlite_compare(left: object, right: object) -> int | None:
    if left is None or right is None:
        return None
    a, b = _decimal(left), _decimal(right)
    return (a > b) - (a < b)


def register_sqlite_functions(connection: Any) -> None:
    """Install the exact decimal functions on a (pysqlite or aiosqlite
    adapted) DBAPI connection; called from the engine's connect hook."""
    connection.create_function("ratel_decimal_sum", -1, _sqlite_sum, deterministic=True)
    connection.create_function("ratel_decimal_neg", 1, _sqlite_negate, deterministic=True)
    connection.create_function("ratel_decimal_cmp", 2, _sqlite_compare, deterministic=True)


class AmountSql:
    """Exact amount arithmetic in SQL for one dialect: plain NUMERIC operators
    on PostgreSQL, the ``ratel_decimal_*`` functions on SQLite."""

    def __init__(self, dialect_name: str) -> None:
        self._sqlite = dialect_name == "sqlite"

    def sum(self, *terms: ColumnElement[Any]) -> ColumnElement[Decimal]:
        if self._sqlite:
            return sa.func.ratel_decimal_sum(*terms, type_=Amount())
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def negate(self, term: ColumnElement[Any]) -> ColumnElement[Decimal]:
        if self._sqlite:
            return sa.func.ratel_decimal_neg(term, type_=Amount())
        return -term

    def at_least(self, left: ColumnElement[Any], right: ColumnElement[Any]) -> ColumnElement[bool]:
        if self._sqlite:
            return sa.func.ratel_decimal_cmp(left, right, type_=sa.Integer()) >= 0
        return left >= right


def amount_param(name: str, value: Decimal | None = None) -> ColumnElement[Decimal]:
    """A bound amount parameter (goes through ``Amount``: rounded, exact);
    without a value it is given when the statement runs."""
    if value is None:
        return sa.bindparam(name, type_=Amount())
    return sa.bindparam(name, value, type_=Amount())
