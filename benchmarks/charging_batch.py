"""Charged interim updates per second: one transaction per request
(``CreditControl``) against group commit (``ChargingBatcher``), on SQLite and
PostgreSQL, at several concurrencies.

Run with ``uv run python -m benchmarks.charging_batch [--accounts N]
[--requests R] [--concurrency 1,16,50] [--workers W] [--batch B]
[--backends sqlite,postgresql] [--profile]``. For each backend it makes a
fresh database (see ``benchmarks.store``), creates N prepaid accounts and,
for each concurrency C, opens C data sessions on distinct accounts (not
timed) and then times R UPDATE requests (1 MiB used, 1 MiB asked: charged
from the quota, then from the balance), C in flight at a time, each client
updating its own session as a gateway sends Interim-Updates. Printed per
line: requests/s, p50 and p95 latency per request, and the ratio to the
baseline of the same run: a bare transaction of one single-row UPDATE at the
same concurrency. "cpu" is this process's CPU time per request (the
database server's is not counted): the figure that decides throughput once
the machine is not shared. ``--profile`` runs the batched path at the highest
concurrency once more under cProfile and prints the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import sqlalchemy as sa

from benchmarks.store import MIB, baseline_job, fresh_database, populate
from ratel.adapters.charging import ChargingBatcher, ChargingWorkers, worker_count
from ratel.adapters.db.engine import charging_engine, create_engine
from ratel.adapters.db.migrations import upgrade
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.system import HmacHasher, SystemClock, TimeOrderedIds
from ratel.app import tune_collector
from ratel.application.base import Dependencies
from ratel.application.charging_batch import Charging, ChargingBatch
from ratel.application.credit_control import CreditControl, Subscriber
from ratel.domain.catalogue import Service, Unit
from ratel.domain.charging import UsageRequest
from ratel.ports.store import IdentifierKind

ASK = UsageRequest(Service.DATA, Unit.BYTES, "DATA", rating_group=1, requested=MIB)
USED = UsageRequest(Service.DATA, Unit.BYTES, "DATA", rating_group=1, requested=MIB, used=MIB)


@dataclass
class Figures:
    rate: float
    p50_ms: float
    p95_ms: float
    cpu_ms: float  # this process's CPU time per request (not the database server's)


async def clients(
    concurrency: int, requests: int, send: Callable[[int, int], Awaitable[object]]
) -> Figures:
    """``concurrency`` clients share ``requests``; client k sends its nth
    request with ``send(k, n)``."""
    latencies: list[float] = []
    share = [requests // concurrency + (k < requests % concurrency) for k in range(concurrency)]

    async def client(k: int) -> None:
        for n in range(share[k]):
            started = time.perf_counter()
            await send(k, n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    latencies.sort()
    return Figures(
        len(latencies) / elapsed,
        statistics.median(latencies) * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000,
        cpu * 1000 / len(latencies),
    )


async def interim_updates(
    charging: Charging, ids: list[str], tag: str, concurrency: int, requests: int
) -> Figures:
    """Open one session per client (not timed), then time the updates."""
    sessions = [f"{tag};{k}" for k in range(concurrency)]
    await asyncio.gather(
        *(
            charging.start(sid, Subscriber(IdentifierKind.ACCOUNT_ID, ids[k % len(ids)]), [ASK])
            for k, sid in enumerate(sessions)
        )
    )

    async def send(k: int, n: int) -> None:
        answer = await charging.update(sessions[k], n + 1, [USED])
        if not answer.granted:
            raise RuntimeError(f"the benchmark ran out of money: {answer}")

    return await clients(concurrency, requests, send)


def line(backend: str, what: str, c: int, figures: Figures, base: Figures | None) -> str:
    ratio = f" ({figures.rate / base.rate:.2f}x baseline)" if base is not None else ""
    return (
        f"charging_batch.{backend}.{what}.c{c}: {figures.rate:,.0f} req/s, "
        f"p50 {figures.p50_ms:.2f} ms, p95 {figures.p95_ms:.2f} ms, "
        f"cpu {figures.cpu_ms:.2f} ms/req{ratio}"
    )


async def bench(
    backend: str,
    accounts: int,
    requests: int,
    concurrencies: list[int],
    workers: int,
    batch_size: int,
    profile: bool,
) -> None:
    async with fresh_database(backend) as url:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        factory = SqlUnitOfWorkFactory(engine)
        deps = Dependencies(factory, SystemClock(), TimeOrderedIds(), HmacHasher("bench"))
        ids = await populate(deps, accounts)
        async with engine.connect() as connection:
            customer_ids = list(
                (await connection.execute(sa.text("SELECT id FROM customers"))).scalars()
            )
        one_by_one = CreditControl(deps)
        running = worker_count(workers, url)
        # batches run on their own pool, as in `ratel serve` (charging_engine)
        charging = charging_engine(engine, url, running)
        batch_deps = replace(deps, uow=SqlUnitOfWorkFactory(charging, like=factory))
        pool = ChargingWorkers(ChargingBatch(batch_deps, one_by_one), running, batch_size)
        batched = ChargingBatcher(pool, one_by_one)
        await pool.start()
        print(
            f"charging_batch.{backend}: {accounts} accounts, {running} workers, batch {batch_size}"
        )
        try:
            for c in concurrencies:
                jobs = [baseline_job(engine, customer_ids[n % len(customer_ids)]) for n in range(c)]

                async def bare(k: int, n: int, jobs: list = jobs) -> None:  # type: ignore[type-arg]
                    await jobs[k]()

                base = await clients(c, requests, bare)
                print(line(backend, "baseline_update_txn", c, base, None))
                alone = await interim_updates(one_by_one, ids, f"alone{c}", c, requests)
                print(line(backend, "one_by_one", c, alone, base))
                before = (pool.batches, pool.calls)
                grouped = await interim_updates(batched, ids[c:], f"grouped{c}", c, requests)
                size = (pool.calls - before[1]) / max(1, pool.batches - before[0])
                print(line(backend, "batched", c, grouped, base) + f", {size:.1f} calls/batch")
            if profile:
                c = concurrencies[-1]
                profiler = cProfile.Profile()
                profiler.enable()
                await interim_updates(batched, ids[2 * c :], "profiled", c, requests)
                profiler.disable()
                stats = pstats.Stats(profiler).sort_stats("tottime")
                stats.print_stats(25)
        finally:
            await pool.stop()
            if charging is not engine:
                await charging.dispose()
            await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,16,50")
    parser.add_argument("--workers", type=int, default=0, help="0: by backend")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    tune_collector()  # as `ratel serve` runs (every line of the run alike)
    for backend in args.backends.split(","):
        asyncio.run(
            bench(
                backend.strip(),
                args.accounts,
                args.requests,
                concurrencies,
                args.workers,
                args.batch,
                args.profile,
            )
        )


if __name__ == "__main__":
    main()
