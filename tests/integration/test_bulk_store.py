"""Bulk writes: ``add_many`` of customers, accounts, quota buckets and journal
rows, and ``ImportCustomers`` on top of them. A batch costs one INSERT per
table however many rows it has; duplicate identifiers are refused, within
the batch and against existing accounts, and then nothing is written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import (
    DATA,
    INTL,
    LOCAL,
    NOW,
    USSD,
    account,
    add_on,
    bucket,
    customer,
    identifiers,
    main_product,
    new_id,
    tariffs,
    usd,
)

from ratel.adapters.db import accounts as account_store
from ratel.adapters.db.accounts import SqlAccountRepository
from ratel.adapters.db.tables import (
    account_aliases,
    accounts,
    add_on_assignments,
    balance_transactions,
    customers,
    outbox,
    quota_buckets,
)
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.system import HmacHasher, TimeOrderedIds
from ratel.application.base import Dependencies
from ratel.application.bulk import ImportCustomers, ImportReport, NewAccount, NewCustomer
from ratel.domain.account import Account
from ratel.domain.customer import Contact, Customer
from ratel.domain.errors import DuplicateIdentifier
from ratel.domain.identifiers import Identifiers
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.ports.store import IdentifierKind

WRITTEN = (
    customers,
    accounts,
    account_aliases,
    add_on_assignments,
    quota_buckets,
    balance_transactions,
    outbox,
)

# How each identifier a batch may share is given to an account.
SHARED: dict[str, Callable[[Identifiers], Identifiers]] = {
    "msisdn": lambda ids: Identifiers(msisdn=ids.msisdn),
    "imsi": lambda ids: Identifiers(imsi=ids.imsi),
    "iccid": lambda ids: Identifiers(iccid=ids.iccid),
    "alias": lambda ids: Identifiers(aliases=frozenset(sorted(ids.aliases)[:1])),
}


class Clock:
    def now(self) -> datetime:
        return NOW


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[tuple[str, bool]]]:
    """The SQL statements ``engine`` runs inside the block, with whether each
    was an executemany."""
    seen: list[tuple[str, bool]] = []

    def record(*args: Any) -> None:
        seen.append((str(args[2]), bool(args[5])))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def inserts(seen: list[tuple[str, bool]]) -> list[str]:
    """The tables that the INSERTs of ``seen`` wrote, in order."""
    return [sql.split()[2] for sql, _ in seen if sql.lstrip().upper().startswith("INSERT")]


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            table.name: (
                await connection.execute(sa.select(sa.func.count()).select_from(table))
            ).scalar_one()
            for table in WRITTEN
        }


def nothing_written() -> dict[str, int]:
    return {table.name: 0 for table in WRITTEN}


async def define_catalogue(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as work:
        for group in (LOCAL, INTL, DATA, USSD):
            await work.catalogue.add_destination_group(group)
        for tariff in tariffs():
            await work.catalogue.add_tariff(tariff)
        await work.catalogue.add_product(main_product())
        await work.catalogue.add_product(add_on())
        await work.commit()


@pytest.fixture
async def deps(uow: SqlUnitOfWorkFactory) -> Dependencies:
    await define_catalogue(uow)
    return Dependencies(uow=uow, clock=Clock(), ids=TimeOrderedIds(), hasher=HmacHasher("test"))


def transaction(owner: Customer, amount: str, balance_after: str) -> BalanceTransaction:
    return BalanceTransaction(
        id=new_id("txn"),
        customer_id=owner.id,
        amount=usd(amount),
        balance_after=usd(balance_after),
        reason=TransactionReason.TOP_UP,
        created_at=NOW,
        reference="import",
        account_id=None,
    )


async def store_one(uow: SqlUnitOfWorkFactory, owner: Customer, *held: Account) -> None:
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add_many(held)
        await work.commit()


# -- add_many ----------------------------------------------------------------------


async def test_add_many_round_trips(uow: SqlUnitOfWorkFactory, engine: AsyncEngine) -> None:
    owners = [customer(balance="12.34567891"), customer(credit_limit="50"), customer()]
    lines = [account(owner, ids=identifiers(800 + n)) for n, owner in enumerate(owners)]
    lines.append(account(owners[0], ids=Identifiers()))
    lines[0].add_add_on("as1", "DATA-24H", 300, NOW, duration=timedelta(hours=1))
    lines[0].add_add_on("as2", "ROAM", 100, NOW)
    lines[1].add_add_on("as3", "DATA-24H", 300, NOW, duration=timedelta(days=3))
    definitions = main_product().quotas
    buckets = [bucket(line, definition) for line in lines for definition in definitions]
    journal = [
        transaction(owners[0], "12.34567891", "12.34567891"),
        transaction(owners[2], "5", "5"),
    ]
    with statements(engine) as seen:
        async with uow() as work:
            await work.customers.add_many(owners)
            await work.accounts.add_many(lines)
            await work.quotas.add_many(buckets)
            await work.transactions.add_many(journal)
            await work.commit()
    # one statement per table, every one an executemany (on PostgreSQL the
    # journal is one INSERT over arrays, whatever the number of rows)
    assert inserts(seen) == [
        "customers",
        "accounts",
        "account_aliases",
        "add_on_assignments",
        "quota_buckets",
        "balance_transactions",
    ]
    postgresql = engine.dialect.name == "postgresql"
    for sql, many in seen:
        if sql.lstrip().startswith("INSERT"):
            over_arrays = postgresql and sql.split()[2] == "balance_transactions"
            assert many is not over_arrays, sql
    async with uow() as work:
        for owner in owners:
            assert await work.customers.get(owner.id) == owner
        for line in lines:
            assert await work.accounts.get(line.id) == line
            assert await work.quotas.for_account(line.id) == sorted(
                (b for b in buckets if b.account_id == line.id), key=lambda b: b.id
            )
        # the child tables are in step with the accounts
        by_alias = await work.accounts.by_identifier(IdentifierKind.ALIAS, "nms:801")
        assert by_alias is not None and by_alias.id == lines[1].id
        ending = await work.accounts.with_add_ons_ending(NOW + timedelta(days=4))
        assert ending == sorted([lines[0].id, lines[1].id])
        for owner in owners:
            assert await work.transactions.for_customer(owner.id) == [
                t for t in journal if t.customer_id == owner.id
            ]
        assert await work.customers.count() == 3
    counts = await row_counts(engine)
    assert counts["account_aliases"] == 2 * 3
    assert counts["add_on_assignments"] == 3


async def test_one_and_none(uow: SqlUnitOfWorkFactory, engine: AsyncEngine) -> None:
    """One row is a plain execute; an empty batch runs no statement at all."""
    owner = customer()
    with statements(engine) as seen:
        async with uow() as work:
            await work.customers.add_many([])
            await work.accounts.add_many([])
            await work.quotas.add_many([])
            await work.transactions.add_many([])
            await work.outbox.add([])
            await work.customers.add_many([owner])
            await work.commit()
    assert [(sql.split()[2], many) for sql, many in seen if sql.startswith("INSERT")] == [
        ("customers", False)
    ]
    assert (await row_counts(engine))["customers"] == 1


async def test_what_add_many_added_is_known_to_the_unit_of_work(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    owners = [customer(), customer()]
    line = account(owners[0], ids=identifiers(810))
    buckets = [bucket(line, definition) for definition in main_product().quotas]
    async with uow() as work:
        await work.customers.add_many(owners)
        await work.accounts.add_many([line])
        await work.quotas.add_many(buckets)
        with statements(engine) as seen:
            # unchanged since the insert: nothing to write
            await work.customers.save(owners[1])
            await work.accounts.save(line)
            await work.quotas.save(buckets)
        assert seen == []
        # the wallet is written as the change since the insert
        owners[0].top_up(usd("7.50"), NOW)
        await work.customers.save(owners[0])
        await work.commit()
    async with uow() as work:
        stored = await work.customers.get(owners[0].id)
    assert stored is not None and stored.wallet.balance == usd("7.50")


@pytest.mark.parametrize("kind", [*SHARED, "account id"])
async def test_a_duplicate_within_the_batch_is_refused(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine, kind: str
) -> None:
    owner = customer()
    first = account(owner, ids=identifiers(900))
    if kind == "account id":
        second = account(owner, id=first.id, ids=Identifiers())
    else:
        second = account(owner, ids=SHARED[kind](first.identifiers))
    fine = account(owner, ids=identifiers(901))
    with statements(engine) as seen:
        async with uow() as work:
            await work.customers.add(owner)
            with pytest.raises(DuplicateIdentifier, match="batch"):
                await work.accounts.add_many([fine, first, second])
    # refused before anything of the batch was written, and the unit of work
    # (its customer too) was never committed
    assert inserts(seen) == ["customers"]
    assert await row_counts(engine) == nothing_written()


async def test_the_same_account_twice_is_refused(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    owner = customer()
    line = account(owner, ids=identifiers(905))
    async with uow() as work:
        await work.customers.add(owner)
        with pytest.raises(DuplicateIdentifier):
            await work.accounts.add_many([line, line])
    assert await row_counts(engine) == nothing_written()


@pytest.mark.parametrize("kind", [*SHARED, "account id"])
async def test_an_identifier_held_by_an_existing_account_is_refused(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine, kind: str
) -> None:
    owner = customer()
    held = account(owner, ids=identifiers(900))
    await store_one(uow, owner, held)
    before = await row_counts(engine)
    newcomer = customer()
    if kind == "account id":
        clash = account(newcomer, id=held.id, ids=Identifiers())
    else:
        clash = account(newcomer, ids=SHARED[kind](held.identifiers))
    fine = account(newcomer, ids=identifiers(902))
    async with uow() as work:
        await work.customers.add(newcomer)
        with pytest.raises(DuplicateIdentifier, match=f"already used by {held.id}") as refused:
            await work.accounts.add_many([fine, clash])
    assert clash.id in str(refused.value)
    assert await row_counts(engine) == before


async def test_large_batches_are_checked_in_several_statements(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(account_store, "_PROBE_VALUES", 4)
    owner = customer()
    held = account(owner, ids=identifiers(920))
    await store_one(uow, owner, held)
    before = await row_counts(engine)
    batch = [account(owner, ids=identifiers(921 + n)) for n in range(9)]
    # the last ICCID of the batch is the held account's: found in a later statement
    batch.append(account(owner, ids=Identifiers(iccid=held.identifiers.iccid)))
    with statements(engine) as seen:
        async with uow() as work:
            with pytest.raises(DuplicateIdentifier, match="ICCID"):
                await work.accounts.add_many(batch)
    assert len(seen) > 2
    assert await row_counts(engine) == before
    async with uow() as work:
        await work.accounts.add_many(batch[:-1])
        await work.commit()
    assert (await row_counts(engine))["accounts"] == 10


async def test_the_database_refuses_what_the_check_missed(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An identifier another transaction took between the check and the
    insert is refused by the unique constraints, as ``DuplicateIdentifier``."""

    async def unchecked(self: SqlAccountRepository, new: object) -> None:
        return None

    owner = customer()
    held = account(owner, ids=identifiers(930))
    await store_one(uow, owner, held)
    before = await row_counts(engine)
    monkeypatch.setattr(SqlAccountRepository, "_refuse_identifiers_held", unchecked)
    for shared in SHARED.values():
        batch = [
            account(owner, ids=identifiers(931)),
            account(owner, ids=shared(held.identifiers)),
        ]
        async with uow() as work:
            with pytest.raises(DuplicateIdentifier):
                await work.accounts.add_many(batch)
        assert await row_counts(engine) == before


async def test_the_outbox_takes_events_in_one_statement(
    uow: SqlUnitOfWorkFactory, engine: AsyncEngine
) -> None:
    owners = [Customer.open(new_id("cus"), f"Customer {n}", "USD", NOW) for n in range(5)]
    for owner in owners:
        owner.top_up(usd("1"), NOW)
    events = [event for owner in owners for event in owner.pull_events()]
    with statements(engine) as seen:
        async with uow() as work:
            await work.customers.add_many(owners)
            await work.outbox.add(events)
            await work.commit()
    assert inserts(seen) == ["customers", "outbox"]
    async with uow() as work:
        stored = list(reversed(await work.outbox.recent(limit=100)))
    assert [(e.event_type, e.aggregate_id) for e in stored] == [
        (e.event_type, e.aggregate_id) for e in events
    ]


# -- ImportCustomers ---------------------------------------------------------------


def new_customers(count: int, first: int = 0) -> list[NewCustomer]:
    """Customers with one account each, every third with a second account
    (with aliases) and every other one with an opening balance."""
    batch = []
    for n in range(first, first + count):
        lines = [NewAccount("BASIC", identifiers(2 * n), {"plan": "A"})]
        if n % 3 == 0:
            lines.append(NewAccount("BASIC", identifiers(2 * n + 1), account_id=f"acc-bulk-{n}"))
        batch.append(
            NewCustomer(
                name=f"Customer {n}",
                currency="USD",
                accounts=tuple(lines),
                opening_balance=usd("25.50") if n % 2 == 0 else None,
                credit_limit=usd("10"),
                country="US",
                contact=Contact(email=f"c{n}@example.com"),
                customer_class="bulk",
                custom_fields={"source": "legacy"},
                customer_id=f"cus-bulk-{n}",
            )
        )
    return batch


async def test_import_customers_writes_every_row_and_event(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    batch = new_customers(30, first=1000)
    with statements(engine) as seen:
        report = await ImportCustomers(deps)(batch)
    accounts_made = sum(len(row.accounts) for row in batch)
    topped_up = sum(1 for row in batch if row.opening_balance is not None)
    assert report == ImportReport(customers=30, accounts=accounts_made)
    # one INSERT per table for the whole batch
    assert inserts(seen) == [
        "customers",
        "balance_transactions",
        "accounts",
        "account_aliases",
        "quota_buckets",
        "outbox",
    ]
    quotas_per_account = len(main_product().quotas)
    assert await row_counts(engine) == {
        "customers": 30,
        "accounts": accounts_made,
        "account_aliases": 2 * accounts_made,
        "add_on_assignments": 0,
        "quota_buckets": accounts_made * quotas_per_account,
        "balance_transactions": topped_up,
        "outbox": 30 + topped_up + accounts_made,
    }
    # every customer's events, customer by customer, in the order they happened
    expected = []
    for row in batch:
        expected.append(("CustomerCreated", row.customer_id))
        if row.opening_balance is not None:
            expected.append(("BalanceChanged", row.customer_id))
        expected += [("AccountCreated", row.customer_id)] * len(row.accounts)
    async with deps.uow() as uow:
        events = list(reversed(await uow.outbox.recent(limit=1000)))
        assert [(e.event_type, e.payload["customer_id"]) for e in events] == expected
        topped = await uow.customers.get("cus-bulk-1000")
        assert topped is not None and topped.wallet.balance == usd("25.50")
        assert topped.wallet.credit_limit == usd("10")
        assert [
            (t.amount, t.balance_after, t.reason, t.reference)
            for t in (await uow.transactions.for_customer("cus-bulk-1000"))
        ] == [(usd("25.50"), usd("25.50"), TransactionReason.TOP_UP, "import")]
        assert await uow.transactions.for_customer("cus-bulk-1001") == []
        line = await uow.accounts.by_identifier(IdentifierKind.ALIAS, "nms:2005")
        assert line is not None and line.id == "acc-bulk-1002"
        assert line.customer_id == "cus-bulk-1002"
        assert len(await uow.quotas.for_account(line.id)) == quotas_per_account
        lines = await uow.accounts.for_customer("cus-bulk-1001")
        assert [a.custom_fields for a in lines] == [{"plan": "A"}]


async def test_an_import_costs_the_same_statements_whatever_its_size(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    await ImportCustomers(deps)(new_customers(1, first=1900))  # loads the catalogue cache
    with statements(engine) as small:
        await ImportCustomers(deps)(new_customers(3, first=2000))
    with statements(engine) as large:
        await ImportCustomers(deps)(new_customers(60, first=3000))
    assert len(large) == len(small)
    assert inserts(large) == inserts(small)


@pytest.mark.parametrize("against", ["the batch", "an existing account"])
async def test_a_refused_import_writes_nothing(
    deps: Dependencies, engine: AsyncEngine, against: str
) -> None:
    if against == "an existing account":
        await ImportCustomers(deps)(new_customers(1, first=4000))
        batch = new_customers(5, first=4001)
        taken = identifiers(2 * 4000)
    else:
        batch = new_customers(5, first=4001)
        taken = batch[1].accounts[0].identifiers
    before = await row_counts(engine)
    clash = NewCustomer("Late Comer", "USD", (NewAccount("BASIC", Identifiers(imsi=taken.imsi)),))
    with pytest.raises(DuplicateIdentifier, match="IMSI"):
        await ImportCustomers(deps)([*batch, clash])
    assert await row_counts(engine) == before
