"""An add-on purchase that a client retries after a timeout is paid once,
when the client names it with a reference (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import NOW, account, add_on, customer, main_product

from ratel.adapters.db.tables import balance_transactions
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.system import HmacHasher, TimeOrderedIds
from ratel.application.add_ons import AddAddOn
from ratel.application.base import Dependencies
from ratel.domain.errors import CustomerSuspended


class Clock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture
async def deps(uow: SqlUnitOfWorkFactory) -> Dependencies:
    async with uow() as work:
        await work.catalogue.add_product(main_product())
        await work.catalogue.add_product(add_on())
        await work.commit()
    return Dependencies(uow=uow, clock=Clock(), ids=TimeOrderedIds(), hasher=HmacHasher("test"))


async def test_a_retried_add_on_purchase_is_charged_once(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory, deps: Dependencies
) -> None:
    """The same reference twice, and twice at once: one add-on, one charge."""
    owner = customer(balance="10")
    acc = account(owner)
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add(acc)
        await work.commit()
    first = await AddAddOn(deps)(acc.id, "DATA-24H", charge=True, reference="app-1")
    again = await AddAddOn(deps)(acc.id, "DATA-24H", charge=True, reference="app-1")
    both = await asyncio.gather(
        *(AddAddOn(deps)(acc.id, "DATA-24H", charge=True, reference="app-2") for _ in range(4))
    )
    assert again.id == first.id and len({a.id for a in both}) == 1
    async with engine.connect() as c:
        charges = (
            await c.execute(
                sa.select(sa.func.count()).where(
                    balance_transactions.c.customer_id == owner.id,
                    balance_transactions.c.reason == "add_on",
                )
            )
        ).scalar_one()
    assert charges == 2, "a retried purchase was charged again"


async def test_a_suspended_customer_buys_no_add_on_but_staff_may_grant_one(
    uow: SqlUnitOfWorkFactory, deps: Dependencies
) -> None:
    """Suspended (for non-payment, fraud): a purchase would take the balance
    for a service the account may not use; a grant (no charge) is the staff's
    decision."""
    owner = customer(balance="10")
    owner.suspend("non-payment", NOW)
    acc = account(owner)
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add(acc)
        await work.commit()
    with pytest.raises(CustomerSuspended):
        await AddAddOn(deps)(acc.id, "DATA-24H", charge=True, reference="app-1")
    async with uow() as work:
        kept = await work.customers.get(owner.id)
        assert kept is not None and kept.wallet.balance == owner.wallet.balance
        held = await work.accounts.get(acc.id)
        assert held is not None and held.add_ons == []
    granted = await AddAddOn(deps)(acc.id, "DATA-24H")
    assert granted.product_code == "DATA-24H"
