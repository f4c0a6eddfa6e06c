"""Quota buckets and service wallets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from ratel.adapters.db.statements import Prebuilt, PrebuiltMany, Repository, lockable
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


def bucket_from_row(row: RowMapping) -> QuotaBucket:
    return QuotaBucket(
        id=row["id"],
        account_id=row["account_id"],
        product_code=row["product_code"],
        scope=QuotaScope(Service(row["service"]), row["destination_group"], row["rating_group"]),
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
_OF_ACCOUNTS = PrebuiltMany(
    quota_buckets, quota_buckets.c.account_id, quota_buckets.c.id, "account_ids"
)
_SAVE = (
    sa.update(quota_buckets)
    .where(quota_buckets.c.id == sa.bindparam("b_id"))
    .values({k: sa.bindparam(f"v_{k}", type_=quota_buckets.c[k].type) for k in _MUTABLE})
)


class SqlQuotaRepository(Repository):
    """Buckets in ``quota_buckets``. ``save`` writes the values the caller
    holds (load them with ``lock=True`` to change them) and skips buckets
    that did not change since they were loaded."""

    _seen: dict[int, tuple[QuotaBucket, dict[str, Any]]]

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection)
        self._seen = {}

    def forget(self) -> None:
        """Drop the identity map (after a rollback the rows it holds are stale)."""
        self._seen.clear()

    def _loaded(self, rows: Sequence[RowMapping]) -> list[QuotaBucket]:
        buckets = [bucket_from_row(row) for row in rows]
        for bucket in buckets:
            self._seen[id(bucket)] = (bucket, bucket_row(bucket))
        return buckets

    async def add(self, bucket: QuotaBucket) -> None:
        await self.add_many((bucket,))

    async def add_many(self, buckets: Sequence[QuotaBucket]) -> None:
        if not buckets:
            return
        rows = [bucket_row(bucket) for bucket in buckets]
        # One executemany (a plain execute for one row).
        await self._execute(_INSERT, rows)
        for bucket, row in zip(buckets, rows, strict=True):
            self._seen[id(bucket)] = (bucket, row)

    async def for_account(self, account_id: str, *, lock: bool = False) -> list[QuotaBucket]:
        result = await self._execute(_OF_ACCOUNT(lock), {"account_id": account_id})
        return self._loaded(result.mappings().all())

    async def for_accounts(
        self, account_ids: Sequence[str], *, lock: bool = False
    ) -> dict[str, list[QuotaBucket]]:
        wanted = sorted(set(account_ids))
        found: dict[str, list[QuotaBucket]] = {account_id: [] for account_id in wanted}
        for start in range(0, len(wanted), 1000):
            result = await self._execute(
                _OF_ACCOUNTS(self._dialect, lock), {"account_ids": wanted[start : start + 1000]}
            )
            for bucket in self._loaded(result.mappings().all()):
                found[bucket.account_id].append(bucket)
        return found

    async def save(self, buckets: Sequence[QuotaBucket]) -> None:
        changes: list[dict[str, Any]] = []
        for bucket in buckets:
            row = bucket_row(bucket)
            seen = self._seen.get(id(bucket))
            if seen is not None and seen[1] == row:
                continue
            changes.append({"b_id": bucket.id, **{f"v_{k}": row[k] for k in _MUTABLE}})
            self._seen[id(bucket)] = (bucket, row)
        if not changes:
            return
        # One executemany round trip however many buckets changed.
        await self._execute(_SAVE, changes)

    async def remove_for_assignment(self, assignment_id: str) -> None:
        await self._execute(
            sa.delete(quota_buckets).where(quota_buckets.c.assignment_id == assignment_id)
        )

    async def due_for_renewal(self, now: datetime, limit: int = 500) -> list[QuotaBucket]:
        q = quota_buckets.c
        statement = lockable(
            sa.select(quota_buckets)
            .where(
                q.period_end <= now,
                # A bucket whose next period would start after it expires is
                # never renewed (QuotaBucket.renew); leaving it out keeps it
                # from filling every batch for ever.
                sa.or_(q.expires_at.is_(None), q.period_end < q.expires_at),
            )
            .order_by(q.period_end, q.id)
            .limit(limit),
            lock=True,
        )
        return self._loaded((await self._execute(statement)).mappings().all())
