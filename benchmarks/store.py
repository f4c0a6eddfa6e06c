"""Credit-control round trips per second through the use case, on SQLite and
PostgreSQL.

Run with ``uv run python -m benchmarks.store [--accounts N] [--sessions M]
[--concurrency C] [--backends sqlite,postgresql]``. For each backend it
makes a fresh database (a temporary SQLite file; a new PostgreSQL database
on ``RATEL_BENCH_PG_URL``, default the local test server, dropped at the
end), migrates it, creates N prepaid accounts and then runs M data sessions
(INITIAL, two UPDATEs, TERMINATE: four charged requests each) spread over
the accounts, C at a time. The baseline, on the same engine in the same run,
is a bare transaction of one single-row UPDATE (``balance = balance + 0``),
C at a time: the floor that any charged request pays for its commit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ratel.adapters.db.engine import create_engine
from ratel.adapters.db.migrations import upgrade
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.system import HmacHasher, SystemClock, TimeOrderedIds
from ratel.application.base import Dependencies
from ratel.application.bulk import ImportCustomers, NewAccount, NewCustomer
from ratel.application.catalogue import DefineDestinationGroups, DefineProduct, DefineTariff
from ratel.application.credit_control import CreditControl, Subscriber
from ratel.domain.catalogue import Product, ProductKind, QuotaDefinition, Service, Unit, UsageCharge
from ratel.domain.charging import UsageRequest
from ratel.domain.money import Money
from ratel.domain.rating import DestinationGroup, Rate, Tariff
from ratel.ports.store import IdentifierKind

MIB = 1024 * 1024
PG_URL = os.environ.get("RATEL_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@asynccontextmanager
async def fresh_database(backend: str) -> AsyncIterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        return
    name = f"ratel_bench_{secrets.token_hex(4)}"
    server = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with server.connect() as connection:
        await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with server.connect() as connection:
            await connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await server.dispose()


async def populate(deps: Dependencies, accounts: int) -> list[str]:
    group = DestinationGroup("DATA", "Data", "400000006")
    await DefineDestinationGroups(deps)([group])
    tariff = Tariff("DATA", "USD")
    tariff.add_custom("DATA", Rate.per_interval(Money.of("0.01", "USD"), MIB), group)
    await DefineTariff(deps)(tariff)
    quota = QuotaDefinition("DATA-100M", Service.DATA, Unit.BYTES, Decimal(100 * MIB))
    await DefineProduct(deps)(
        Product(
            "BENCH",
            "Bench",
            ProductKind.MAIN,
            frozenset({Service.DATA}),
            usage_charges=(UsageCharge("DATA", "DATA"),),
            quotas=(quota,),
        )
    )
    ids = [f"bench-{n:06d}" for n in range(accounts)]
    importer = ImportCustomers(deps)
    for start in range(0, accounts, 500):
        await importer(
            [
                NewCustomer(
                    f"Customer {n}",
                    "USD",
                    (NewAccount("BENCH", account_id=n),),
                    opening_balance=Money.of("1000", "USD"),
                )
                for n in ids[start : start + 500]
            ]
        )
    return ids


async def timed(
    concurrency: int, jobs: list[Callable[[], Awaitable[int]]]
) -> tuple[float, list[float]]:
    """Run the jobs ``concurrency`` at a time; requests per second and per-job latencies."""
    queue = list(reversed(jobs))
    latencies: list[float] = []
    requests = 0

    async def worker() -> None:
        nonlocal requests
        while queue:
            job = queue.pop()
            started = time.perf_counter()
            done = await job()  # awaited first: `requests += await ...` loses concurrent updates
            requests += done
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - started), latencies


def session_job(cc: CreditControl, account_id: str, n: int) -> Callable[[], Awaitable[int]]:
    async def run() -> int:
        sid = f"bench;{n}"
        who = Subscriber(IdentifierKind.ACCOUNT_ID, account_id)
        ask = UsageRequest(Service.DATA, Unit.BYTES, "DATA", rating_group=1, requested=MIB)
        used = UsageRequest(
            Service.DATA, Unit.BYTES, "DATA", rating_group=1, requested=MIB, used=MIB
        )
        await cc.start(sid, who, [ask])
        await cc.update(sid, 1, [used])
        await cc.update(sid, 2, [used])
        await cc.terminate(sid, 3, [used])
        return 4

    return run


def baseline_job(engine: AsyncEngine, account_id: str) -> Callable[[], Awaitable[int]]:
    statement = sa.text("UPDATE customers SET balance = balance + 0 WHERE id = :id")

    async def run() -> int:
        async with engine.begin() as connection:
            await connection.execute(statement, {"id": account_id})
        return 1

    return run


async def bench(backend: str, accounts: int, sessions: int, concurrency: int) -> None:
    async with fresh_database(backend) as url:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        deps = Dependencies(
            SqlUnitOfWorkFactory(engine), SystemClock(), TimeOrderedIds(), HmacHasher("bench")
        )
        ids = await populate(deps, accounts)
        async with engine.connect() as connection:
            customer_ids = list(
                (await connection.execute(sa.text("SELECT id FROM customers"))).scalars()
            )
        base_rate, _ = await timed(
            concurrency,
            [
                baseline_job(engine, customer_ids[n % len(customer_ids)])
                for n in range(sessions * 4)
            ],
        )
        cc = CreditControl(deps)
        rate, latencies = await timed(
            concurrency, [session_job(cc, ids[n % accounts], n) for n in range(sessions)]
        )
        per_request = sorted(x / 4 for x in latencies)
        p50 = statistics.median(per_request) * 1000
        p95 = per_request[int(len(per_request) * 0.95)] * 1000
        print(
            f"store.{backend}.baseline_update_txn: {base_rate:,.0f} txn/s "
            f"(concurrency {concurrency})"
        )
        print(
            f"store.{backend}.credit_control: {rate:,.0f} charged requests/s, "
            f"~p50 {p50:.1f} ms ~p95 {p95:.1f} ms per request "
            f"({rate / base_rate:.2f}x baseline {base_rate:,.0f} txn/s; {accounts} accounts, "
            f"{sessions} sessions, concurrency {concurrency})"
        )
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    for backend in args.backends.split(","):
        asyncio.run(bench(backend.strip(), args.accounts, args.sessions, args.concurrency))


if __name__ == "__main__":
    main()
