"""What the CRM apps and the back office read and write, on SQLite and
PostgreSQL: CRM links, voucher pages, payments, named service policies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from store_builders import NOW, customer, new_id, usd

from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.domain.catalogue import ServicePolicy
from ratel.domain.crm import CrmRecordTaken
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.voucher import Voucher, VoucherStatus


async def two_customers(uow: SqlUnitOfWorkFactory) -> tuple[str, str]:
    first, second = customer(), customer(name="Grace Hopper")
    async with uow() as work:
        await work.customers.add(first)
        await work.customers.add(second)
        await work.commit()
    return first.id, second.id


async def test_crm_links(uow: SqlUnitOfWorkFactory) -> None:
    ada, grace = await two_customers(uow)
    org = new_id("org")
    async with uow() as work:
        await work.crm_links.link(ada, "zendesk", org, NOW)
        await work.crm_links.link(ada, "zendesk", org, NOW)  # again: nothing changes
        await work.commit()
    async with uow() as work:
        assert await work.crm_links.customer_for("zendesk", org) == ada
        assert await work.crm_links.for_customers([ada, grace, ada], "zendesk") == {ada: org}
        assert await work.crm_links.for_customers([ada], "salesforce") == {}
        assert await work.crm_links.for_customers([], "zendesk") == {}

    async with uow() as work:
        with pytest.raises(CrmRecordTaken):
            await work.crm_links.link(grace, "zendesk", org, NOW)

    other = new_id("org")
    async with uow() as work:
        await work.crm_links.link(ada, "zendesk", other, NOW + timedelta(minutes=1))
        await work.commit()
    async with uow() as work:
        assert await work.crm_links.customer_for("zendesk", org) is None
        assert await work.crm_links.customer_for("zendesk", other) == ada
        # the old record is free for another customer now
        await work.crm_links.link(grace, "zendesk", org, NOW)
        assert await work.crm_links.unlink(ada, "zendesk") is True
        assert await work.crm_links.unlink(ada, "zendesk") is False
        await work.commit()
    async with uow() as work:
        assert await work.crm_links.for_customers([ada, grace], "zendesk") == {grace: org}


async def test_a_page_of_vouchers(uow: SqlUnitOfWorkFactory) -> None:
    batch = new_id("batch")
    made = [
        Voucher(
            id=f"{batch}-{n}",
            code_hash=f"{batch}-hash-{n}",
            value=usd("5"),
            created_at=NOW,
            batch=batch,
        )
        for n in range(5)
    ]
    made[1].redeem("cus_x", "USD", NOW)
    async with uow() as work:
        for voucher in made:
            await work.vouchers.add(voucher)
        await work.commit()
    async with uow() as work:
        first = await work.vouchers.page(batch=batch, limit=3)
        rest = await work.vouchers.page(batch=batch, after_id=first[-1].id, limit=3)
        redeemed = await work.vouchers.page(batch=batch, status=VoucherStatus.REDEEMED)
        none = await work.vouchers.page(batch=new_id("batch"))
    assert [v.id for v in first + rest] == [v.id for v in made]
    assert [v.id for v in redeemed] == [made[1].id]
    assert redeemed[0].redeemed_by == "cus_x"
    assert none == []


async def test_payments_are_transactions_of_some_reasons(uow: SqlUnitOfWorkFactory) -> None:
    ada, _ = await two_customers(uow)
    reasons = [TransactionReason.TOP_UP, TransactionReason.USAGE, TransactionReason.PAYMENT]
    async with uow() as work:
        await work.transactions.add_many(
            [
                BalanceTransaction(
                    id=new_id("txn"),
                    customer_id=ada,
                    amount=usd("1"),
                    balance_after=usd(str(n + 1)),
                    reason=reason,
                    created_at=NOW + timedelta(seconds=n),
                )
                for n, reason in enumerate(reasons)
            ]
        )
        await work.commit()
    async with uow() as work:
        paid = await work.transactions.for_customer(
            ada, reasons=[TransactionReason.PAYMENT, TransactionReason.TOP_UP]
        )
        every = await work.transactions.for_customer(ada)
    assert [t.reason for t in paid] == [TransactionReason.PAYMENT, TransactionReason.TOP_UP]
    assert len(every) == 3


async def test_named_service_policies(uow: SqlUnitOfWorkFactory) -> None:
    code = new_id("POL")
    policy = ServicePolicy(name="gold", download_kbps=50_000, apn_ids=("internet",))
    async with uow() as work:
        await work.catalogue.save_service_policy(code, policy)
        await work.commit()
    async with uow() as work:
        assert (await work.catalogue.service_policies())[code] == policy
