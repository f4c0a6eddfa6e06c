"""Customers round-trip, and the wallet is written as guarded deltas."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import NOW, account, customer, usd

from ratel.adapters.db.tables import customers
from ratel.adapters.db.types import to_storage
from ratel.adapters.db.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from ratel.domain.customer import BillingPeriod, Contact, CustomerStatus
from ratel.domain.errors import CreditLimitExceeded


async def stored_wallet(uow: SqlUnitOfWorkFactory, customer_id: str) -> tuple[Decimal, ...]:
    async with uow() as work:
        row = (
            await work.connection.execute(
                sa.select(
                    customers.c.balance, customers.c.credit_limit, customers.c.reserved
                ).where(customers.c.id == customer_id)
            )
        ).one()
    return tuple(row)


async def spend_behind_the_back(work: SqlUnitOfWork, customer_id: str, amount: str) -> None:
    """What another transaction did after ours loaded the customer: it
    reserved ``amount`` (written in SQL, so our loaded copy does not know)."""
    row = (
        await work.connection.execute(
            sa.select(customers.c.reserved).where(customers.c.id == customer_id)
        )
    ).one()
    await work.connection.execute(
        sa.update(customers)
        .where(customers.c.id == customer_id)
        .values(reserved=row.reserved + Decimal(amount))
    )


async def test_customer_round_trip(uow: SqlUnitOfWorkFactory) -> None:
    original = customer(balance="12.34567891", credit_limit="50")
    original.status = CustomerStatus.SUSPENDED
    original.wallet.reserve(usd("0.00015"))
    async with uow() as work:
        await work.customers.add(original)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get(original.id)
        assert await work.customers.get("nobody") is None
    assert loaded == original
    assert loaded is not None
    assert loaded.wallet.reserved == usd("0.00015")
    assert loaded.billing_period == BillingPeriod.monthly(5)
    assert loaded.contact.address_lines == ("1 Analytical Row", "London")


async def test_descriptive_changes_are_saved(uow: SqlUnitOfWorkFactory) -> None:
    original = customer()
    async with uow() as work:
        await work.customers.add(original)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get(original.id, lock=True)
        assert loaded is not None
        loaded.update(
            NOW,
            name="Ada King",
            contact=Contact(email="ada@king.example"),
            country="FR",
            customer_class="business",
            billing_period=BillingPeriod.weekly(3),
            custom_fields={"vat": "FR123"},
        )
        loaded.set_credit_limit(usd("20"), NOW)
        loaded.suspend("unpaid", NOW)
        await work.customers.save(loaded)
        await work.commit()
    async with uow() as work:
        again = await work.customers.get(original.id)
    assert again == loaded


async def test_find_and_count(uow: SqlUnitOfWorkFactory) -> None:
    ada = customer(id="c1", name="Ada Lovelace", country="GB")
    grace = customer(id="c2", name="Grace Hopper", country="US")
    percent = customer(id="c3", name="100% Reliable Ltd", country="GB")
    percent.suspend("test", NOW)
    async with uow() as work:
        for c in (ada, grace, percent):
            await work.customers.add(c)
        await work.accounts.add(account(grace, product="PREMIUM"))
        await work.commit()
    async with uow() as work:
        assert await work.customers.count() == 3
        ids = lambda found: [c.id for c in found]  # noqa: E731
        assert ids(await work.customers.find()) == ["c1", "c2", "c3"]
        assert ids(await work.customers.find(name="LOVE")) == ["c1"]
        assert ids(await work.customers.find(name="%")) == ["c3"]  # a literal percent sign
        assert ids(await work.customers.find(country="gb")) == ["c1", "c3"]
        assert ids(await work.customers.find(status=CustomerStatus.SUSPENDED)) == ["c3"]
        assert ids(await work.customers.find(product_code="PREMIUM")) == ["c2"]
        assert ids(await work.customers.find(after="c1", limit=1)) == ["c2"]


async def test_wallet_is_written_as_a_change_not_as_values(uow: SqlUnitOfWorkFactory) -> None:
    """Two changes made from the same loaded balance both count: the second
    does not overwrite the first (which a plain UPDATE SET balance = x would)."""
    original = customer(balance="10")
    async with uow() as work:
        await work.customers.add(original)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get(original.id)
        assert loaded is not None
        await spend_behind_the_back(work, original.id, "3")
        loaded.top_up(usd("5"), NOW)
        await work.customers.save(loaded)
        await work.commit()
    assert await stored_wallet(uow, original.id) == (Decimal(15), Decimal(0), Decimal(3))


async def test_reservation_past_the_limit_is_refused_by_the_database(
    uow: SqlUnitOfWorkFactory,
) -> None:
    original = customer(balance="10", credit_limit="5")
    async with uow() as work:
        await work.customers.add(original)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get(original.id)
        assert loaded is not None
        loaded.wallet.reserve(usd("12"))  # fine for what we loaded: 15 available
        await spend_behind_the_back(work, original.id, "4")  # but now only 11 are
        with pytest.raises(CreditLimitExceeded):
            await work.customers.save(loaded)
    assert await stored_wallet(uow, original.id) == (Decimal(10), Decimal(5), Decimal(0))
    async with uow() as work:
        loaded = await work.customers.get(original.id)
        assert loaded is not None
        loaded.wallet.reserve(usd("11"))  # to the last cent, after the same spend
        await spend_behind_the_back(work, original.id, "4")
        await work.customers.save(loaded)
        await work.commit()
    assert await stored_wallet(uow, original.id) == (Decimal(10), Decimal(5), Decimal(15))


async def test_changes_that_raise_availability_always_pass(uow: SqlUnitOfWorkFactory) -> None:
    """A customer already past the limit (overuse happened) can still be
    topped up and have holds released: those never make things worse."""
    original = customer(balance="1", credit_limit="0")
    original.wallet.reserve(usd("1"))
    async with uow() as work:
        await work.customers.add(original)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get(original.id)
        assert loaded is not None
        await spend_behind_the_back(work, original.id, "7")  # available is now -7
        loaded.wallet.release(usd("1"))
        loaded.top_up(usd("2"), NOW)
        await work.customers.save(loaded)
        await work.commit()
    assert await stored_wallet(uow, original.id) == (Decimal(3), Decimal(0), Decimal(7))


async def test_overuse_and_staff_debits_the_domain_allowed_are_recorded(
    uow: SqlUnitOfWorkFactory,
) -> None:
    """The network used more than it was granted, or staff debited on purpose:
    the domain lets available go below zero and the store records it."""
    original = customer(balance="2", credit_limit="1")
    original.wallet.reserve(usd("3"))
    async with uow() as work:
        await work.customers.add(original)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get(original.id, lock=True)
        assert loaded is not None
        loaded.wallet.settle(usd("3"), usd("4.5"))  # 1.5 beyond the hold
        loaded.adjust(usd("-10"), NOW, "write-off reversal")
        await work.customers.save(loaded)
        await work.commit()
    assert await stored_wallet(uow, original.id) == (Decimal("-12.5"), Decimal(1), Decimal(0))


async def test_overuse_is_refused_only_if_others_spent_meanwhile(
    uow: SqlUnitOfWorkFactory,
) -> None:
    original = customer(balance="2", credit_limit="0")
    original.wallet.reserve(usd("2"))
    async with uow() as work:
        await work.customers.add(original)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get(original.id)
        assert loaded is not None
        loaded.wallet.settle(usd("2"), usd("2.5"))  # domain: available -0.5
        await spend_behind_the_back(work, original.id, "1")  # db: would be -1.5
        with pytest.raises(CreditLimitExceeded):
            await work.customers.save(loaded)


async def test_an_unchanged_customer_is_not_written(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    original = customer(balance="1")
    async with uow() as work:
        await work.customers.add(original)
        await work.commit()
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with uow() as work:
            loaded = await work.customers.get(original.id)
            assert loaded is not None
            await work.customers.save(loaded)
            await work.commit()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE")]


async def test_saving_a_customer_not_loaded_here_is_an_error(uow: SqlUnitOfWorkFactory) -> None:
    stranger = customer()
    async with uow() as work:
        with pytest.raises(LookupError, match="not loaded"):
            await work.customers.save(stranger)


def test_storage_rounding_is_bankers() -> None:
    assert to_storage(Decimal("0.000000005")) == Decimal(0)
    assert to_storage(Decimal("0.000000015")) == Decimal("0.00000002")


async def test_a_raised_credit_limit_counts_for_a_reservation_in_the_same_change(
    uow: SqlUnitOfWorkFactory,
) -> None:
    original = customer(balance="0", credit_limit="10")
    async with uow() as work:
        await work.customers.add(original)
        await work.commit()
    async with uow() as work:
        loaded = await work.customers.get(original.id, lock=True)
        assert loaded is not None
        loaded.set_credit_limit(usd("20"), NOW)
        loaded.wallet.reserve(usd("15"))
        await work.customers.save(loaded)
        await work.commit()
    assert await stored_wallet(uow, original.id) == (Decimal(0), Decimal(20), Decimal(15))


async def test_a_batch_of_customers_writes_what_moved_and_only_that(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    """Unchanged, moved below the stored precision, a wallet moved, a custom
    field changed in place: ``save_many`` tells each from what it loaded."""
    made = [customer(balance="5") for _ in range(4)]
    async with uow() as work:
        await work.customers.add_many(made)
        await work.commit()
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    async with uow() as work:
        loaded = await work.customers.get_many([c.id for c in made], lock=True)
        untouched, tiny, spent, renamed = (loaded[c.id] for c in made)
        tiny.wallet.reserve(usd("0.000000001"))
        spent.wallet.reserve(usd("1.5"))
        renamed.custom_fields["crm"] = "42"  # changed in place
        event.listen(engine.sync_engine, "before_cursor_execute", seen)
        try:
            await work.customers.save_many([untouched, tiny, spent, renamed])
            await work.customers.save_many([untouched, tiny, spent, renamed])  # saved already
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", seen)
        await work.commit()
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 2  # the wallets of the batch, the renamed one alone
    assert (await stored_wallet(uow, spent.id))[2] == Decimal("1.5")
    assert (await stored_wallet(uow, tiny.id))[2] == 0
    async with uow() as work:
        again = await work.customers.get(renamed.id)
    assert again is not None and again.custom_fields["crm"] == "42"
