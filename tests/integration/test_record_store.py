"""xDRs, the balance journal, vouchers, quota buckets and the outbox."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError
from store_builders import NOW, account, bucket, customer, main_product, usd

from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.domain import events
from ratel.domain.catalogue import Service, Unit
from ratel.domain.charging import Xdr, XdrLine
from ratel.domain.errors import ConcurrentChange
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.quota import QuotaBucket
from ratel.domain.voucher import Voucher, VoucherStatus


async def subscriber(uow: SqlUnitOfWorkFactory) -> tuple[str, str]:
    owner = customer()
    line = account(owner)
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add(line)
        await work.commit()
    return owner.id, line.id


def xdr(session_id: str, account_id: str, customer_id: str, minutes: int) -> Xdr:
    return Xdr(
        id=f"xdr-{session_id}",
        session_id=session_id,
        account_id=account_id,
        customer_id=customer_id,
        started_at=NOW,
        ended_at=NOW + timedelta(minutes=minutes),
        lines=(
            XdrLine(
                service=Service.DATA,
                unit=Unit.BYTES,
                access_code="DATA",
                destination=None,
                rating_group=10,
                destination_group="DATA",
                ledger_code="400000006",
                units=123456789,
                money_units=1000,
                bucket_units=(("b1", Decimal("123455789")),),
                charge=usd("0.01"),
                paid_by_service_wallets=usd("0.00015"),
            ),
        ),
        charge=usd("0.01"),
        sub_sessions=("a", "b"),
        cause="idle_timeout",
    )


async def test_xdrs_round_trip_one_per_session(uow: SqlUnitOfWorkFactory) -> None:
    customer_id, account_id = await subscriber(uow)
    records = [xdr(f"s{m}", account_id, customer_id, m) for m in (1, 2, 3)]
    async with uow() as work:
        for record in records:
            await work.xdrs.add(record)
        await work.commit()
    async with uow() as work:
        with pytest.raises(ConcurrentChange):
            await work.xdrs.add(replace(records[0], id="another"))  # same session
    async with uow() as work:
        assert await work.xdrs.get("xdr-s1") == records[0]
        assert await work.xdrs.get("none") is None
        assert await work.xdrs.for_account(account_id) == records[::-1]
        newest_first = await work.xdrs.for_account(
            account_id, before=NOW + timedelta(minutes=3), limit=1
        )
        assert newest_first == [records[1]]
        assert await work.xdrs.for_customer(customer_id) == records
        window = await work.xdrs.for_customer(
            customer_id, since=NOW + timedelta(minutes=2), until=NOW + timedelta(minutes=3)
        )
        assert window == [records[1]]


async def test_balance_journal(uow: SqlUnitOfWorkFactory) -> None:
    customer_id, account_id = await subscriber(uow)
    entries = [
        BalanceTransaction(
            id=f"t{n}",
            customer_id=customer_id,
            amount=usd(f"-0.0000{n}1"),
            balance_after=usd(f"1{n}.5"),
            reason=reason,
            created_at=NOW + timedelta(seconds=n),
            reference=f"ref-{n}",
            ledger_code="400000001" if n else None,
            account_id=account_id if n else None,
        )
        for n, reason in enumerate(TransactionReason)
    ]
    async with uow() as work:
        for entry in entries:
            await work.transactions.add(entry)
        await work.commit()
    async with uow() as work:
        assert await work.transactions.for_customer(customer_id) == entries[::-1]
        assert await work.transactions.for_customer(customer_id, limit=2) == entries[:-3:-1]


async def test_vouchers(uow: SqlUnitOfWorkFactory) -> None:
    customer_id, _ = await subscriber(uow)
    voucher = Voucher(
        id="v1",
        code_hash="h" * 64,
        value=usd("10"),
        created_at=NOW,
        expires_at=NOW + timedelta(days=90),
        batch="2026-03",
    )
    async with uow() as work:
        await work.vouchers.add(voucher)
        await work.commit()
    async with uow() as work:
        loaded = await work.vouchers.by_code_hash("h" * 64, lock=True)
        assert loaded == voucher
        assert loaded is not None
        loaded.redeem(customer_id, "USD", NOW)
        await work.vouchers.save(loaded)
        await work.commit()
    async with uow() as work:
        again = await work.vouchers.by_code_hash("h" * 64)
        assert await work.vouchers.by_code_hash("other") is None
    assert again is not None and again.status is VoucherStatus.REDEEMED
    assert again.redeemed_by == customer_id and again.redeemed_at == NOW
    async with uow() as work:
        with pytest.raises(IntegrityError):
            await work.vouchers.add(
                Voucher(id="v2", code_hash="h" * 64, value=usd("1"), created_at=NOW)
            )


async def test_quota_buckets(uow: SqlUnitOfWorkFactory) -> None:
    owner = customer()
    line = account(owner)
    quotas = main_product().quotas
    monthly = bucket(line, quotas[0], used=Decimal(10))
    wallet = bucket(line, quotas[2], assignment_id="as1")
    ended = bucket(line, quotas[1], period_end=NOW, expires_at=NOW)
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add(line)
        for b in (monthly, wallet, ended):
            await work.quotas.add(b)
        await work.commit()
    async with uow() as work:
        loaded = await work.quotas.for_account(line.id, lock=True)
        assert sorted(loaded, key=QuotaBucket.order_key) == sorted(
            [monthly, wallet, ended], key=QuotaBucket.order_key
        )
        held = next(b for b in loaded if b.id == wallet.id)
        assert held.hold(Decimal("0.00015")) == Decimal("0.00015")
        await work.quotas.save(loaded)
        await work.commit()
    async with uow() as work:
        due = await work.quotas.due_for_renewal(NOW + timedelta(days=40))
        # the ended one never renews (its period starts after it expires)
        assert [b.id for b in due] == [monthly.id]
        await work.quotas.remove_for_assignment("as1")
        await work.commit()
    async with uow() as work:
        left = await work.quotas.for_account(line.id)
    assert {b.id for b in left} == {monthly.id, ended.id}
    async with uow() as work:
        held_again = [b for b in await work.quotas.for_account(line.id) if b.id == monthly.id]
    assert held_again[0].used == Decimal(10)


def event(n: int, aggregate_id: str = "cus-1") -> events.DomainEvent:
    return events.BalanceChanged(
        occurred_at=NOW + timedelta(seconds=n),
        customer_id=aggregate_id,
        delta=usd(f"0.0000{n}"),
        balance=usd(n),
        reason="top_up",
    )


async def test_outbox_pending_publish_recent(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as work:
        await work.outbox.add([event(n) for n in range(5)])
        await work.outbox.add([event(9, "cus-2")])
        await work.outbox.add([])
        await work.commit()
    async with uow() as work:
        pending = await work.outbox.pending(limit=4)
        assert [p.payload["balance"] for p in pending] == [
            {"amount": str(n), "currency": "USD"} for n in range(4)
        ]
        first = pending[0]
        assert (first.event_type, first.aggregate, first.aggregate_id) == (
            "BalanceChanged",
            "customer",
            "cus-1",
        )
        assert first.payload == event(0).payload()
        assert first.occurred_at == NOW
        await work.outbox.mark_published([p.id for p in pending], NOW)
        await work.commit()
    async with uow() as work:
        rest = await work.outbox.pending()
        assert [p.aggregate_id for p in rest] == ["cus-1", "cus-2"]
        recent = await work.outbox.recent(limit=3)
        assert [r.id for r in recent] == sorted((r.id for r in recent), reverse=True)
        assert [r.aggregate_id for r in await work.outbox.recent(aggregate_id="cus-2")] == ["cus-2"]
        published = [r for r in await work.outbox.recent() if r.published_at is not None]
        assert len(published) == 4 and all(r.published_at == NOW for r in published)


async def test_two_workers_get_disjoint_pending_events(
    backend: str, uow: SqlUnitOfWorkFactory
) -> None:
    """PostgreSQL: the second worker skips the rows the first holds and reads
    while the first still works (FOR UPDATE SKIP LOCKED). SQLite: the second
    waits for the first to commit (one writer) and finds only the rest."""
    async with uow() as work:
        await work.outbox.add([event(n % 10, f"cus-{n}") for n in range(20)])
        await work.commit()
    timeline: list[str] = []
    first_has_rows = asyncio.Event()
    second_done = asyncio.Event()

    async def first() -> list[int]:
        async with uow() as work:
            rows = await work.outbox.pending(limit=10)
            timeline.append("first read")
            first_has_rows.set()
            with contextlib.suppress(TimeoutError):
                # hold the row locks while the other worker reads (SQLite:
                # it cannot, so give up waiting)
                await asyncio.wait_for(second_done.wait(), timeout=1)
            await work.outbox.mark_published([r.id for r in rows], NOW)
            await work.commit()
            timeline.append("first committed")
            return [r.id for r in rows]

    async def second() -> list[int]:
        await first_has_rows.wait()
        async with uow() as work:
            rows = await work.outbox.pending(limit=10)
            timeline.append("second read")
            await work.outbox.mark_published([r.id for r in rows], NOW)
            await work.commit()
        second_done.set()
        return [r.id for r in rows]

    ids_first, ids_second = await asyncio.gather(first(), second())
    assert len(ids_first) == 10 and len(ids_second) == 10
    assert not set(ids_first) & set(ids_second)
    if backend == "postgresql":
        assert timeline == ["first read", "second read", "first committed"]
    else:
        assert timeline == ["first read", "first committed", "second read"]
    async with uow() as work:
        assert await work.outbox.pending() == []
