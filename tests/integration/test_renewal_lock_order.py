"""housekeeping's quota renewal and charging lock buckets (PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from use_case_support import START, Clock

from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.system import HmacHasher, TimeOrderedIds
from ratel.application.accounts import CreateAccount
from ratel.application.base import Dependencies
from ratel.application.catalogue import DefineProduct
from ratel.application.customers import OpenCustomer
from ratel.application.housekeeping import Housekeeping
from ratel.domain.catalogue import Product, ProductKind, QuotaDefinition, Service, Unit
from ratel.domain.quota import QuotaBucket

LOCK = "SELECT id FROM quota_buckets WHERE id = :id FOR NO KEY UPDATE"


async def test_quota_renewal_locks_buckets_in_id_order_so_it_cannot_deadlock_with_charging(
    engine: AsyncEngine,
) -> None:
    """Charging locks an account's buckets ordered by id (quotas._OF_ACCOUNT,
    "concurrent batches lock buckets in one global order"), but
    due_for_renewal locks them ordered by (period_end, id). An account whose
    bucket qb-b ends its period before qb-a: a charging transaction holding
    qb-a and about to lock qb-b, and a renewal pass holding qb-b and waiting
    for qb-a, deadlock; PostgreSQL aborts one of them (a failed CCR, or a
    housekeeping pass that stops before Tcc supervision and token purge).
    Both must complete."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: no row locks")
    clock = Clock()
    deps = Dependencies(
        uow=SqlUnitOfWorkFactory(engine), clock=clock, ids=TimeOrderedIds(), hasher=HmacHasher("t")
    )
    await DefineProduct(deps)(Product("PLAIN", "Plain", ProductKind.MAIN, frozenset({Service.SMS})))
    customer = await OpenCustomer(deps)("Ada", "USD")
    account = await CreateAccount(deps)(customer.id, "PLAIN")
    definition = QuotaDefinition("SMS-M", Service.SMS, Unit.MESSAGES, Decimal(10))
    async with deps.uow() as uow:
        await uow.quotas.add_many(
            [
                QuotaBucket.grant(
                    id=bucket_id,
                    account_id=account.id,
                    product_code="PLAIN",
                    definition=definition,
                    precedence=0,
                    now=granted,
                )
                for bucket_id, granted in (
                    ("qb-a", START),
                    ("qb-b", START - timedelta(days=1)),  # its period ends first
                )
            ]
        )
        await uow.commit()
    clock.at = START.replace(month=6) + timedelta(minutes=1)  # both periods over

    charging_failed: BaseException | None = None
    async with engine.connect() as charging:
        await charging.begin()
        # a charging transaction locking the account's buckets in id order: qb-a first
        await charging.execute(sa.text(LOCK), {"id": "qb-a"})
        renewal = asyncio.create_task(Housekeeping(deps).renew_quotas())
        await asyncio.sleep(0.5)  # the renewal holds qb-b and waits for qb-a
        try:
            await charging.execute(sa.text(LOCK), {"id": "qb-b"})  # ...then qb-b
            await charging.commit()
        except Exception as error:
            charging_failed = error
            await charging.rollback()
        renewal_result = await asyncio.gather(renewal, return_exceptions=True)
    failures = [f for f in (charging_failed, renewal_result[0]) if isinstance(f, BaseException)]
    assert failures == [], f"deadlock between renewal and charging: {failures!r}"
    assert renewal_result == [2]
