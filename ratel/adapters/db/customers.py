"""Customers and their wallets.

The wallet is never written back as the values the caller holds: ``save``
sends the change since the customer was loaded (``balance = balance + :d``),
and a change that lowers what the customer may still spend carries a
condition that the database checks against the row as it is now. So two
transactions that each loaded the same balance without a lock cannot
together reserve more than the credit limit allows, and neither overwrites
the other's change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ratel.adapters.db import tables
from ratel.adapters.db.fast import fast
from ratel.adapters.db.quotas import OF_ACCOUNTS
from ratel.adapters.db.statements import (
    Interned,
    Prebuilt,
    PrebuiltMany,
    Prefixed,
    Repository,
    locking,
)
from ratel.adapters.db.tables import accounts, customers, quota_buckets
from ratel.adapters.db.types import AmountSql, amount_param, to_storage
from ratel.domain.customer import (
    BillingPeriod,
    Contact,
    Customer,
    CustomerStatus,
    PeriodUnit,
)
from ratel.domain.errors import CreditLimitExceeded, NotFound
from ratel.domain.money import Money
from ratel.domain.wallet import Wallet

_WALLET = ("balance", "reserved", "credit_limit")
_BY_ID = Prebuilt(sa.select(customers).where(customers.c.id == sa.bindparam("customer_id")))
_BY_IDS = PrebuiltMany(customers, customers.c.id, customers.c.id, "customer_ids")
_CHUNK = 1000  # ids per SELECT ... IN


@dataclass(frozen=True, slots=True)
class _Ahead:
    """Customers and quota buckets locked with the sessions, not yet handed out."""

    customers: frozenset[str]
    rows: list[Mapping[Any, Any]]
    accounts: frozenset[str]
    bucket_rows: list[Mapping[Any, Any]]


_CUSTOMER = Prefixed(customers, "c__")
_BUCKET = Prefixed(quota_buckets, "b__")


def locked_with_buckets(first: sa.Select[Any] | None = None) -> sa.Select[Any]:
    """PostgreSQL: customers and the quota buckets of some accounts, both
    locked, in one statement: a charging batch's second and third locking
    reads in one round trip. The customers CTE is read to its end (locking
    in id order) before the buckets CTE, as two statements would, so the
    lock order of every transaction stays sessions, customers, buckets. A
    row holds a customer (``c__`` columns) or a bucket (``b__``), the other
    half NULL.

    ``first``: a locking read to run before both, in the same statement (the
    batch's sessions, so the order still holds): its rows come first, with
    its own columns and both halves NULL; a customer's or bucket's row has
    NULL in its columns. Parameters ``:customer_ids``, ``:account_ids`` and
    those of ``first``."""

    # the locking reads the two would otherwise be, each a CTE
    owners = _BY_IDS("postgresql", lock=True).cte("locked_customers")
    held = OF_ACCOUNTS("postgresql", lock=True).cte("locked_buckets")
    head: list[Any] = []
    no_head: list[Any] = []
    parts = []
    if first is not None:
        before = first.cte("locked_first")
        head = list(before.c)
        no_head = [sa.cast(sa.null(), column.type).label(column.name) for column in head]
        parts.append(sa.select(*head, *_CUSTOMER.nulls(), *_BUCKET.nulls()))
    parts += [
        sa.select(*no_head, *_CUSTOMER.columns(owners), *_BUCKET.nulls()),
        sa.select(*no_head, *_CUSTOMER.nulls(), *_BUCKET.columns(held)),
    ]
    every = sa.union_all(*parts).subquery("locked")
    return locking(fast(sa.select(*every.c)))


_LOCKED_WITH_BUCKETS = locked_with_buckets()


def owners_of(
    rows: Sequence[Mapping[Any, Any]],
) -> tuple[list[Mapping[Any, Any]], list[Mapping[Any, Any]]]:
    """The customers' rows and the buckets' rows of ``locked_with_buckets``."""
    customer_rows: list[Mapping[Any, Any]] = []
    bucket_rows: list[Mapping[Any, Any]] = []
    for wide in rows:
        row = _CUSTOMER.row(wide)
        if row is not None:
            customer_rows.append(row)
            continue
        bucket = _BUCKET.row(wide)
        if bucket is not None:
            bucket_rows.append(bucket)
    return customer_rows, bucket_rows


# PostgreSQL: the wallet changes of a batch in one statement; RETURNING names
# the rows written (asyncpg gives no row count for an executemany). A NULL
# floor is a change that does not lower what the customer may spend.
_PG_WALLETS = fast(
    sa.text(
        """
        UPDATE customers AS c
        SET balance = c.balance + v.d_balance, reserved = c.reserved + v.d_reserved
        FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:d_balance AS NUMERIC[]),
                    CAST(:d_reserved AS NUMERIC[]), CAST(:floor AS NUMERIC[]))
             AS v(id, d_balance, d_reserved, floor)
        WHERE c.id = v.id
          AND (v.floor IS NULL
               OR c.balance + v.d_balance + c.credit_limit - c.reserved - v.d_reserved >= v.floor)
        RETURNING c.id
        """
    )
)
_INSERT = sa.insert(customers)


def customer_row(customer: Customer) -> dict[str, Any]:
    """The ``customers`` row of ``customer`` (amounts rounded as stored)."""
    return _row_of(_state(customer))


#: A customer as a row holds it, cheaply taken: everything but the wallet
#: (values that never change in place, custom fields copied), then the
#: wallet's balance, credit limit and reserved amounts as the wallet holds them.
_State = tuple[tuple[Any, ...], tuple[Decimal, Decimal, Decimal]]


def _state(customer: Customer) -> _State:
    wallet = customer.wallet
    return (
        (
            customer.id,
            customer.name,
            customer.currency,
            customer.status,
            customer.billing_period,
            customer.contact,
            customer.country,
            customer.customer_class,
            dict(customer.custom_fields),
            customer.created_at,
        ),
        (wallet.balance.amount, wallet.credit_limit.amount, wallet.reserved.amount),
    )


def _row_of(state: _State) -> dict[str, Any]:
    (
        (id_, name, currency, status, period, contact, country, class_, fields, created_at),
        (balance, credit_limit, reserved),
    ) = state
    return {
        "id": id_,
        "name": name,
        "currency": currency,
        "balance": to_storage(balance),
        "credit_limit": to_storage(credit_limit),
        "reserved": to_storage(reserved),
        "status": status.value,
        "billing_unit": period.unit.value,
        "billing_anchor_day": period.anchor_day,
        "email": contact.email,
        "phone": contact.phone,
        "address_lines": list(contact.address_lines),
        "country": country,
        "customer_class": class_,
        "custom_fields": dict(fields),
        "created_at": created_at,
    }


_period = Interned(lambda unit, day: BillingPeriod(PeriodUnit(unit), day))
_contact = Interned(Contact)


def customer_from_row(row: Mapping[Any, Any]) -> Customer:
    currency = row["currency"]
    return Customer(
        id=row["id"],
        name=row["name"],
        currency=currency,
        wallet=Wallet(
            balance=Money(row["balance"], currency),
            credit_limit=Money(row["credit_limit"], currency),
            reserved=Money(row["reserved"], currency),
        ),
        created_at=row["created_at"],
        status=CustomerStatus(row["status"]),
        billing_period=_period(row["billing_unit"], row["billing_anchor_day"]),
        contact=_contact(row["email"], row["phone"], tuple(row["address_lines"])),
        country=row["country"],
        customer_class=row["customer_class"],
        custom_fields=dict(row["custom_fields"]),
    )


@functools.lru_cache(maxsize=512)
def _update_statement(
    dialect: str,
    columns: tuple[str, ...],
    *,
    balance: bool,
    reserved: bool,
    limit: bool,
    guarded: bool,
) -> sa.Update:
    """The UPDATE of one shape of change, built once per shape (a charging
    request is nearly always "balance and reserved moved")::

        UPDATE customers SET balance = balance + :d_balance,
                             reserved = reserved + :d_reserved, ...
        WHERE id = :c_id
          [AND balance + :d_balance + credit_limit - reserved - :d_reserved >= :floor]

    The guard is added when the change lowers ``available``
    (``balance + credit_limit - reserved``). It is checked against the row as
    it is now, so it holds whatever other transactions did since we read it:
    after the change ``available`` must stay at or above zero, or at or above
    what this transaction computed when the domain itself chose to go below
    zero (usage the network reported beyond its grant, a staff debit), so
    that only others' spending since we read the row can refuse it. A change
    that keeps or raises ``available`` (a top-up, a release) always passes.
    """
    amounts = AmountSql(dialect)
    c = customers.c
    values: dict[str, Any] = {
        name: sa.bindparam(f"v_{name}", type_=c[name].type) for name in columns
    }
    if balance:
        values["balance"] = amounts.sum(c.balance, amount_param("d_balance"))
    if reserved:
        values["reserved"] = amounts.sum(c.reserved, amount_param("d_reserved"))
    if limit:
        values["credit_limit"] = amount_param("new_limit")
    statement = sa.update(customers).where(c.id == sa.bindparam("c_id")).values(**values)
    if guarded:
        available_after = amounts.sum(
            c.balance,
            amount_param("d_balance"),
            # the limit as it will be: ours if we change it, else the row's
            amount_param("new_limit") if limit else c.credit_limit,
            amounts.negate(c.reserved),
            amounts.negate(amount_param("d_reserved")),
        )
        statement = statement.where(amounts.at_least(available_after, amount_param("floor")))
    return statement


class SqlCustomerRepository(Repository):
    """Customers in the ``customers`` table. Remembers the row of every
    customer it hands out (the identity map of this unit of work) to write
    the wallet as a change, and to skip writing a customer that did not
    change at all."""

    # Keyed by id() of the object handed out, so that two objects loaded for
    # the same customer each write their own change; the object is held too,
    # which keeps its id() from being reused. With it, its ``_state`` when
    # loaded or last written (its row is built from that only when needed).
    _seen: dict[int, tuple[Customer, _State]]

    def __init__(
        self,
        connection: AsyncConnection,
        buckets_read: Callable[[Sequence[str], list[Mapping[Any, Any]]], None] | None = None,
    ) -> None:
        super().__init__(connection)
        self._seen = {}
        # handed the rows of the buckets a ``get_many(buckets_of=...)`` locked
        self._buckets_read = buckets_read
        self._locked_ahead: _Ahead | None = None

    def forget(self) -> None:
        """Drop the identity map (after a rollback the rows it holds are stale)."""
        self._seen.clear()
        self._locked_ahead = None

    def read_with_sessions(
        self,
        customer_ids: Sequence[str],
        rows: list[Mapping[Any, Any]],
        account_ids: Sequence[str],
        bucket_rows: list[Mapping[Any, Any]],
    ) -> None:
        """The customers ``customer_ids`` and the quota buckets of
        ``account_ids``, locked in this unit of work by the statement that
        locked their sessions: the next ``get_many`` with ``lock`` of those
        customers (or fewer) and ``buckets_of`` those accounts (or fewer)
        hands them out instead of reading them again, once."""
        self._locked_ahead = _Ahead(
            frozenset(customer_ids), rows, frozenset(account_ids), bucket_rows
        )

    async def add(self, customer: Customer) -> None:
        await self.add_many((customer,))

    async def add_many(self, customers: Sequence[Customer]) -> None:
        if not customers:
            return
        states = [_state(customer) for customer in customers]
        # One executemany (a plain execute for one row): the statement is the
        # same whatever the values, so it is compiled once per process.
        await self._execute(_INSERT, [_row_of(state) for state in states])
        for customer, state in zip(customers, states, strict=True):
            self._seen[id(customer)] = (customer, state)

    async def get(self, customer_id: str, *, lock: bool = False) -> Customer | None:
        result = await self._execute(_BY_ID(lock), {"customer_id": customer_id})
        row = result.mappings().first()
        if row is None:
            return None
        customer = customer_from_row(row)
        self._seen[id(customer)] = (customer, _state(customer))
        return customer

    async def get_many(
        self,
        customer_ids: Sequence[str],
        *,
        lock: bool = False,
        buckets_of: Sequence[str] = (),
    ) -> dict[str, Customer]:
        wanted = sorted(set(customer_ids))
        found: dict[str, Customer] = {}
        accounts_wanted = sorted(set(buckets_of))
        ahead, self._locked_ahead = self._locked_ahead, None
        if (
            lock
            and ahead is not None
            and ahead.customers.issuperset(wanted)
            and ahead.accounts.issuperset(accounts_wanted)
        ):
            chosen = set(wanted)
            for row in ahead.rows:
                if row["id"] in chosen:
                    customer = customer_from_row(row)
                    self._seen[id(customer)] = (customer, _state(customer))
                    found[customer.id] = customer
            if accounts_wanted and self._buckets_read is not None:
                held = set(accounts_wanted)
                mine = [row for row in ahead.bucket_rows if row["account_id"] in held]
                self._buckets_read(accounts_wanted, mine)
            return found
        if (
            lock
            and accounts_wanted
            and self._buckets_read is not None
            and self._fast is not None
            and len(wanted) <= _CHUNK
            and len(accounts_wanted) <= _CHUNK
        ):
            result = await self._execute(
                _LOCKED_WITH_BUCKETS,
                {"customer_ids": wanted, "account_ids": accounts_wanted},
            )
            rows, buckets = owners_of(result.mappings().all())
            for row in rows:
                customer = customer_from_row(row)
                self._seen[id(customer)] = (customer, _state(customer))
                found[customer.id] = customer
            self._buckets_read(accounts_wanted, buckets)
            return found
        for start in range(0, len(wanted), _CHUNK):
            result = await self._execute(
                _BY_IDS(self._dialect, lock), {"customer_ids": wanted[start : start + _CHUNK]}
            )
            for row in result.mappings():
                customer = customer_from_row(row)
                self._seen[id(customer)] = (customer, _state(customer))
                found[customer.id] = customer
        return found

    async def save_many(self, customers: Sequence[Customer]) -> None:
        wallets: list[tuple[Customer, _State, Decimal, Decimal, Decimal | None]] = []
        for customer in {id(c): c for c in customers}.values():
            seen = self._seen.get(id(customer))
            if seen is None:
                raise LookupError(
                    f"customer {customer.id} was not loaded or added in this unit of work: "
                    "its wallet change cannot be known"
                )
            (fields, (balance, limit, reserved)) = seen[1]
            now = _state(customer)
            if now == seen[1]:
                continue  # nothing moved (the usual case for a call paid by quota)
            n_balance, n_limit, n_reserved = (to_storage(amount) for amount in now[1])
            if now[0] != fields or n_limit != to_storage(limit):
                await self.save(customer)  # more than the wallet moved: rare, on its own
                continue
            d_balance = n_balance - to_storage(balance)
            d_reserved = n_reserved - to_storage(reserved)
            if not d_balance and not d_reserved:
                continue
            floor: Decimal | None = None
            if d_balance - d_reserved < 0:
                available_here = n_balance + n_limit - n_reserved
                floor = min(Decimal(0), available_here)
            wallets.append((customer, now, d_balance, d_reserved, floor))
        if not wallets:
            return

        async def after(written: set[str]) -> None:
            refused = [c.id for c, *_ in wallets if c.id not in written]
            if refused:
                c = tables.customers.c  # (``customers`` is the argument here)
                exists = await self._execute(sa.select(c.id).where(c.id.in_(refused)))
                missing = set(refused) - set(exists.scalars().all())
                if missing:
                    raise NotFound(f"customers {sorted(missing)} do not exist")
                raise CreditLimitExceeded(
                    f"customers {refused}: the change would pass the credit limit "
                    "(another transaction spent the money first)"
                )
            for customer, now, *_ in wallets:
                self._seen[id(customer)] = (customer, now)

        if self._postgresql:

            async def returned(ids: list[Any]) -> None:
                await after(set(ids))

            await self._write(
                _PG_WALLETS,
                {
                    "ids": [c.id for c, *_ in wallets],
                    "d_balance": [to_storage(w[2]) for w in wallets],
                    "d_reserved": [to_storage(w[3]) for w in wallets],
                    "floor": [None if w[4] is None else to_storage(w[4]) for w in wallets],
                },
                returned,
            )
            return
        # SQLite runs in-process: one executemany per shape, whose summed
        # row count says whether a guard refused one of them.
        written = {c.id for c, *_ in wallets}
        for guarded in (False, True):
            shape = [w for w in wallets if (w[4] is not None) is guarded]
            if not shape:
                continue
            statement = _update_statement(
                self._dialect, (), balance=True, reserved=True, limit=False, guarded=guarded
            )
            rows = [
                {"c_id": c.id, "d_balance": d_b, "d_reserved": d_r, "floor": floor}
                for c, _after, d_b, d_r, floor in shape
            ]
            if (await self._execute(statement, rows)).rowcount != len(rows):
                written -= {c.id for c, *_ in shape}
        await after(written)

    async def save(self, customer: Customer) -> None:
        seen = self._seen.get(id(customer))
        if seen is None:
            raise LookupError(
                f"customer {customer.id} was not loaded or added in this unit of work: "
                "its wallet change cannot be known"
            )
        before = _row_of(seen[1])
        state = _state(customer)
        after = _row_of(state)
        changed = {k: v for k, v in after.items() if k not in _WALLET and v != before[k]}
        d_balance = after["balance"] - before["balance"]
        d_reserved = after["reserved"] - before["reserved"]
        limit_changed = after["credit_limit"] != before["credit_limit"]
        if not changed and not d_balance and not d_reserved and not limit_changed:
            return  # nothing to write: no statement, no row lock
        d_available = d_balance - d_reserved + (after["credit_limit"] - before["credit_limit"])
        guarded = d_available < 0
        statement = _update_statement(
            self._dialect,
            tuple(sorted(changed)),
            balance=bool(d_balance),
            reserved=bool(d_reserved),
            limit=limit_changed,
            guarded=guarded,
        )
        parameters: dict[str, Any] = {f"v_{name}": value for name, value in changed.items()}
        parameters.update(
            c_id=customer.id,
            d_balance=d_balance,
            d_reserved=d_reserved,
            new_limit=after["credit_limit"],
        )
        if guarded:
            available_here = after["balance"] + after["credit_limit"] - after["reserved"]
            parameters["floor"] = min(Decimal(0), available_here)
        result = await self._execute(statement, parameters)
        if result.rowcount == 0:
            c = customers.c
            exists = await self._execute(sa.select(c.id).where(c.id == customer.id))
            if exists.first() is None:
                raise NotFound(f"customer {customer.id} does not exist")
            raise CreditLimitExceeded(
                f"customer {customer.id}: the change would pass the credit limit "
                "(another transaction spent the money first)"
            )
        self._seen[id(customer)] = (customer, state)

    async def find(
        self,
        *,
        name: str | None = None,
        country: str | None = None,
        status: CustomerStatus | None = None,
        product_code: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Customer]:
        c = customers.c
        statement = sa.select(customers).order_by(c.id).limit(limit)
        if name:
            statement = statement.where(
                sa.func.lower(c.name).contains(name.lower(), autoescape=True)
            )
        if country:
            statement = statement.where(c.country == country.strip().upper())
        if status is not None:
            statement = statement.where(c.status == CustomerStatus(status).value)
        if product_code:
            statement = statement.where(
                sa.exists().where(
                    accounts.c.customer_id == c.id, accounts.c.product_code == product_code
                )
            )
        if after is not None:
            statement = statement.where(c.id > after)
        rows = (await self._execute(statement)).mappings().all()
        found = [customer_from_row(row) for row in rows]
        for customer in found:
            self._seen[id(customer)] = (customer, _state(customer))
        return found

    async def count(self) -> int:
        result = await self._execute(sa.select(sa.func.count()).select_from(customers))
        return int(result.scalar_one())
