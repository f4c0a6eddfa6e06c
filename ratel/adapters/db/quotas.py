"""Quota buckets and service wallets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ratel.adapters.db.fast import fast
from ratel.adapters.db.statements import Interned, Prebuilt, PrebuiltMany, Repository, lockable
from ratel.adapters.db.tables import quota_buckets
from ratel.adapters.db.types import to_storage
from ratel.domain.catalogue import Renewal, Service, Unit
from ratel.domain.quota import QuotaBucket, QuotaScope

# What a save may change; the rest of a bucket is fixed when it is granted.
_MUTABLE = ("allowance", "used", "reserved", "expires_at", "period_end", "precedence")


def bucket_row(bucket: QuotaBucket) -> dict[str, Any]:
    """The ``quota_buckets`` row of ``bucket`` (quantities rounded as stored)."""
    return {
        "id": bucket.id,
        "account_id": bucket.account_id,
        "product_code": bucket.product_code,
        "quota_code": bucket.quota_code,
        "service": bucket.scope.service.value,
        "destination_group": bucket.scope.destination_group,
        "rating_group": bucket.scope.rating_group,
        "unit": bucket.unit.value,
        "allowance": to_storage(bucket.allowance),
        "used": to_storage(bucket.used),
        "reserved": to_storage(bucket.reserved),
        "renewal": bucket.renewal.value,
        "precedence": bucket.precedence,
        "valid_from": bucket.valid_from,
        "expires_at": bucket.expires_at,
        "period_end": bucket.period_end,
        "assignment_id": bucket.assignment_id,
        "currency": bucket.currency,
    }


_scope = Interned(
    lambda service, group, rating_group: QuotaScope(Service(service), group, rating_group)
)


def bucket_from_row(row: Mapping[Any, Any]) -> QuotaBucket:
    return QuotaBucket(
        id=row["id"],
        account_id=row["account_id"],
        product_code=row["product_code"],
        scope=_scope(row["service"], row["destination_group"], row["rating_group"]),
        unit=Unit(row["unit"]),
        allowance=row["allowance"],
        renewal=Renewal(row["renewal"]),
        precedence=row["precedence"],
        valid_from=row["valid_from"],
        expires_at=row["expires_at"],
        period_end=row["period_end"],
        used=row["used"],
        reserved=row["reserved"],
        assignment_id=row["assignment_id"],
        currency=row["currency"],
        quota_code=row["quota_code"],
    )


_INSERT = sa.insert(quota_buckets)
_OF_ACCOUNT = Prebuilt(
    sa.select(quota_buckets)
    .where(quota_buckets.c.account_id == sa.bindparam("account_id"))
    .order_by(quota_buckets.c.id)
)


# Sorted by bucket id: concurrent batches lock buckets in one global order.
# (also the buckets half of ``customers._LOCKED_WITH_BUCKETS``)
OF_ACCOUNTS = PrebuiltMany(
    quota_buckets, quota_buckets.c.account_id, quota_buckets.c.id, "account_ids"
)
_SAVE = (
    sa.update(quota_buckets)
    .where(quota_buckets.c.id == sa.bindparam("b_id"))
    .values({k: sa.bindparam(f"v_{k}", type_=quota_buckets.c[k].type) for k in _MUTABLE})
)
# PostgreSQL: the changed buckets of a batch in one statement (arrays
# unnested): one Bind message instead of one per row, and no per-row
# parameter processing.
_PG_SAVE_MANY = fast(
    sa.text(
        """
        UPDATE quota_buckets AS q
        SET allowance = v.allowance, used = v.used, reserved = v.reserved,
            expires_at = v.expires_at, period_end = v.period_end, precedence = v.precedence
        FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:allowance AS NUMERIC[]),
                    CAST(:used AS NUMERIC[]), CAST(:reserved AS NUMERIC[]),
                    CAST(:expires_at AS TIMESTAMPTZ[]), CAST(:period_end AS TIMESTAMPTZ[]),
                    CAST(:precedence AS INTEGER[]))
             AS v(id, allowance, used, reserved, expires_at, period_end, precedence)
        WHERE q.id = v.id
        RETURNING q.id
        """
    )
)


async def _written(ids: list[Any]) -> None:
    """Nothing to check after a bucket save: the buckets were read locked in
    this transaction."""


def _mutable(bucket: QuotaBucket) -> tuple[Any, ...]:
    """What a save may change, as the bucket holds it (``_MUTABLE`` order)."""
    return (
        bucket.allowance,
        bucket.used,
        bucket.reserved,
        bucket.expires_at,
        bucket.period_end,
        bucket.precedence,
    )


def _stored(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``_mutable`` values as a row stores them (quantities rounded)."""
    allowance, used, reserved, *rest = values
    return (to_storage(allowance), to_storage(used), to_storage(reserved), *rest)


class SqlQuotaRepository(Repository):
    """Buckets in ``quota_buckets``. ``save`` writes the values the caller
    holds (load them with ``lock=True`` to change them) and skips buckets
    that did not change since they were loaded."""

    # the changeable values of each bucket handed out, as loaded or last saved
    _seen: dict[int, tuple[QuotaBucket, tuple[Any, ...]]]

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection)
        self._seen = {}
        # buckets locked moments ago with their customers: the accounts asked
        # for, and the rows
        self._locked_ahead: tuple[frozenset[str], list[Mapping[Any, Any]]] | None = None

    def forget(self) -> None:
        """Drop the identity map (after a rollback the rows it holds are stale)."""
        self._seen.clear()
        self._locked_ahead = None

    def read_with_customers(
        self, account_ids: Sequence[str], rows: list[Mapping[Any, Any]]
    ) -> None:
        """The buckets of ``account_ids``, locked in this unit of work by the
        statement that locked their customers: the next ``for_accounts`` of
        those accounts (or fewer) with ``lock`` hands them out instead of
        reading them again, once."""
        self._locked_ahead = (frozenset(account_ids), rows)

    def _loaded(self, rows: Sequence[Mapping[Any, Any]]) -> list[QuotaBucket]:
        buckets = [bucket_from_row(row) for row in rows]
        for bucket in buckets:
            self._seen[id(bucket)] = (bucket, _mutable(bucket))
        return buckets

    async def add(self, bucket: QuotaBucket) -> None:
        await self.add_many((bucket,))

    async def add_many(self, buckets: Sequence[QuotaBucket]) -> None:
        if not buckets:
            return
        rows = [bucket_row(bucket) for bucket in buckets]
        # One executemany (a plain execute for one row).
        await self._execute(_INSERT, rows)
        for bucket in buckets:
            self._seen[id(bucket)] = (bucket, _mutable(bucket))

    async def for_account(self, account_id: str, *, lock: bool = False) -> list[QuotaBucket]:
        result = await self._execute(_OF_ACCOUNT(lock), {"account_id": account_id})
        return self._loaded(result.mappings().all())

    async def for_accounts(
        self, account_ids: Sequence[str], *, lock: bool = False
    ) -> dict[str, list[QuotaBucket]]:
        wanted = sorted(set(account_ids))
        found: dict[str, list[QuotaBucket]] = {account_id: [] for account_id in wanted}
        ahead, self._locked_ahead = self._locked_ahead, None
        if lock and ahead is not None and ahead[0].issuperset(wanted):
            rows = [row for row in ahead[1] if row["account_id"] in found]
            for bucket in self._loaded(sorted(rows, key=lambda row: row["id"])):
                found[bucket.account_id].append(bucket)
            return found
        for start in range(0, len(wanted), 1000):
            result = await self._execute(
                OF_ACCOUNTS(self._dialect, lock), {"account_ids": wanted[start : start + 1000]}
            )
            for bucket in self._loaded(result.mappings().all()):
                found[bucket.account_id].append(bucket)
        return found

    async def save(self, buckets: Sequence[QuotaBucket]) -> None:
        changed: list[tuple[str, tuple[Any, ...]]] = []
        for bucket in buckets:
            values = _mutable(bucket)
            seen = self._seen.get(id(bucket))
            if seen is not None and seen[1] == values:
                continue  # untouched since loaded or saved
            stored = _stored(values)
            if seen is not None and _stored(seen[1]) == stored:
                continue  # moved by less than the stored precision
            self._seen[id(bucket)] = (bucket, values)
            changed.append((bucket.id, stored))
        if not changed:
            return
        if self._postgresql:
            columns = list(zip(*(stored for _, stored in changed), strict=True))
            await self._write(
                _PG_SAVE_MANY,
                {
                    "ids": [bucket_id for bucket_id, _ in changed],
                    "allowance": list(columns[0]),
                    "used": list(columns[1]),
                    "reserved": list(columns[2]),
                    "expires_at": self._times(quota_buckets.c.expires_at, columns[3]),
                    "period_end": self._times(quota_buckets.c.period_end, columns[4]),
                    "precedence": list(columns[5]),
                },
                _written,
            )
            return
        # SQLite: one executemany however many buckets changed.
        await self._execute(
            _SAVE,
            [
                {"b_id": bucket_id, **{f"v_{k}": v for k, v in zip(_MUTABLE, stored, strict=True)}}
                for bucket_id, stored in changed
            ],
        )

    async def remove_for_assignment(self, assignment_id: str) -> None:
        await self._execute(
            sa.delete(quota_buckets).where(quota_buckets.c.assignment_id == assignment_id)
        )

    async def due_for_renewal(self, now: datetime, limit: int = 500) -> list[QuotaBucket]:
        q = quota_buckets.c
        due = (
            q.period_end <= now,
            # A bucket whose next period would start after it expires is
            # never renewed (QuotaBucket.renew); leaving it out keeps it
            # from filling every batch for ever.
            sa.or_(q.expires_at.is_(None), q.period_end < q.expires_at),
        )
        chosen = sa.select(q.id).where(*due).order_by(q.period_end, q.id).limit(limit)
        ids = list((await self._execute(chosen)).scalars().all())
        if not ids:
            return []
        # Locked in id order, as charging locks an account's buckets: locking
        # in period order could deadlock with a charge holding one of them.
        # Charged meanwhile (and so renewed by it): no longer due, left out.
        statement = lockable(
            sa.select(quota_buckets).where(q.id.in_(ids), *due).order_by(q.id), lock=True
        )
        return self._loaded((await self._execute(statement)).mappings().all())
