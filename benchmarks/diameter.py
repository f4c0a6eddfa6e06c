"""Diameter credit control: charged CCR-UPDATE answers per second, p50/p95.

Run with ``uv run python -m benchmarks.diameter [--updates N] [--sessions 1,50]
[--backends sqlite,postgresql] [--workers W] [--profile FILE]``. On PostgreSQL a last line
says whether one of the concurrencies reached the issue's target (1,100
charged CCR-U/s with p95 at most 3.6 ms).

The load generator is freeDiameter with our extension in load mode
(tests/protocol/diameter/freediameter/ratel_gw.c, built here with gcc): C threads, one
request in flight per session, so it costs little of the two cores the
server also runs on. Each measurement is S concurrent data sessions
(``--sessions``: 1, 3 and 50 by default; 3 is where the target's p95 leaves
the most room on two cores) of one CCR-I, N CCR-U (each reporting
2 kB used) and a CCR-T, against:

- baseline: a bare python-diameter node that answers every CCR with a
  constant CCA on its reader thread (the library's own ceiling);
- ratel node: ratel's asyncio node (node.py) answering a constant CCA on
  the loop, no charging: our transport's own ceiling;
- charged: ``ratel``'s Diameter server on SQLite and on PostgreSQL, every
  CCR-U charged through the CreditControl use case (quota buckets, session,
  journal, outbox in one transaction).

Rates count CCR-U answered per second over the run (CCR-I/T included in the
time); latencies are of CCR-U only, measured by the generator. Each line
also gives the CPU time per CCR-U (CCR-I and CCR-T included) of this
process (the server), of PostgreSQL's processes and of the generator: the
two cores are shared. Each figure is printed with its ratio to the baseline
of the same concurrency.

``--profile FILE`` writes a cProfile of the server side (this process: the
node, the charging, the database driver) of the charged runs, and prints
its top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from diameter.message import Message
from diameter.node import Node
from diameter.node.application import Application
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ratel.adapters.db.migrations import upgrade
from ratel.adapters.diameter import codec
from ratel.adapters.diameter.node import DiameterNode
from ratel.app import tune_collector
from ratel.config import Settings
from ratel.container import build_container, dispose
from ratel.demo import bulk_identifiers, load_demo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "protocol" / "diameter"))
from fdgateway import FreeDiameterGateway, free_port

from benchmarks.cpu import memory_probe, postgres_cpu, process_cpu

PG_URL = os.environ.get("RATEL_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
OCS, REALM = "ocs.ratel.local", "ratel.local"
SUBSCRIBERS = 50


@dataclass(frozen=True, slots=True)
class Figures:
    count: int
    seconds: float
    p50_ms: float
    p95_ms: float
    errors: int
    cpu_ms: float = 0.0  # this process's CPU per CCR-U (the server's)
    postgres_ms: float = 0.0  # the PostgreSQL server's
    generator_ms: float = 0.0  # the load generator's (freeDiameter)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def constant_answer(request: Message) -> Message:
    """What the baselines answer: 2001 and 10 MB for every MSCC asked."""
    msccs = [
        codec.new(
            codec.MULTIPLE_SERVICES_CREDIT_CONTROL,
            [
                codec.new(codec.GRANTED_SERVICE_UNIT, [codec.new(codec.CC_TOTAL_OCTETS, 10 << 20)]),
                codec.new(codec.RATING_GROUP, 10),
                codec.new(codec.RESULT_CODE, 2001),
            ],
        )
    ]
    return codec.answer_to(
        request,
        OCS,
        REALM,
        [
            codec.new(codec.AUTH_APPLICATION_ID, 4),
            codec.new(codec.RESULT_CODE, 2001),
            codec.new(codec.CC_REQUEST_TYPE, codec.integer(request.avps, codec.CC_REQUEST_TYPE)),
            codec.new(
                codec.CC_REQUEST_NUMBER, codec.integer(request.avps, codec.CC_REQUEST_NUMBER)
            ),
            *msccs,
        ],
    )


class ConstantApplication(Application):
    """The baseline: answer on the library's reader thread."""

    def __init__(self) -> None:
        super().__init__(4, is_auth_application=True)

    def handle_request(self, message: Message) -> None:
        self.send_answer(constant_answer(message))


class Constant:
    """ratel's node with a constant answer instead of charging."""

    async def answer(self, request: Message) -> Message:
        return constant_answer(request)


async def drive(
    folder: Path, port: int, sessions: int, updates: int, first: str, *, postgresql: bool = False
) -> Figures:
    """Run the load generator against ``port``; its figures, and the CPU
    per CCR-U (CCR-I and CCR-T included) of this process, of PostgreSQL
    (when ``postgresql``) and of the generator."""
    gateway = FreeDiameterGateway(
        folder,
        port,
        f"mode=load ocs={OCS} realm={REALM} msisdn={first} subscribers={SUBSCRIBERS} "
        f"sessions={sessions} updates={updates}",
    )
    cpu, server = time.process_time(), postgres_cpu()
    try:
        for _ in range(6000):
            if any(line == "DONE" for line in gateway.lines()):
                break
            await asyncio.sleep(0.05)
        cpu, server = time.process_time() - cpu, postgres_cpu() - server
        generator = process_cpu(gateway.process.pid)
    finally:
        gateway.stop()
    load = next((line for line in gateway.lines() if line.startswith("LOAD")), None)
    if load is None:
        raise RuntimeError(f"the load generator said: {gateway.lines()} {gateway.output()[-2000:]}")
    values = dict(item.split("=") for item in load.split()[1:])
    count = max(1, int(values["count"]))
    return Figures(
        int(values["count"]),
        float(values["seconds"]),
        float(values["p50_us"]) / 1000,
        float(values["p95_us"]) / 1000,
        int(values["errors"]),
        cpu / count * 1000,
        server / count * 1000 if postgresql else 0.0,
        generator / count * 1000,
    )


async def baseline(folder: Path, sessions: int, updates: int) -> Figures:
    port = free_port()
    node = Node(OCS, REALM, ip_addresses=["127.0.0.1"], tcp_port=port)
    node.wakeup_interval = 1
    peer = node.add_peer("aaa://fdgw.test", REALM)
    node.add_application(ConstantApplication(), [peer])
    node.start()
    try:
        return await drive(folder, port, sessions, updates, "12055550100")
    finally:
        await asyncio.to_thread(node.stop, 2, True)


async def ratel_node(folder: Path, sessions: int, updates: int) -> Figures:
    node = DiameterNode(OCS, REALM, "127.0.0.1", 0, {"fdgw.test": ()}, Constant())
    await node.start()
    try:
        return await drive(folder, node.address[1], sessions, updates, "12055550100")
    finally:
        await node.stop(1.0)


@asynccontextmanager
async def database(backend: str, folder: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / f'bench_{secrets.token_hex(4)}.db'}"
        return
    name = f"ratel_bench_{secrets.token_hex(4)}"
    server = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            async with server.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await server.dispose()


async def charged(
    folder: Path,
    backend: str,
    runs: list[tuple[int, int]],
    profile: cProfile.Profile | None,
    workers: int = 0,
) -> list[tuple[int, Figures]]:
    async with database(backend, folder) as url:
        upgrade(url)
        container = build_container(
            Settings(
                database_url=url,
                diameter_port=0,
                diameter_peers=(("fdgw.test", ("127.0.0.1",)),),
                log_level="WARNING",
                charging_workers=workers,
            )
        )
        report = await load_demo(container, customers=SUBSCRIBERS)
        first = str(bulk_identifiers(report.total_customers - SUBSCRIBERS).msisdn)
        server = container.diameter()
        relay = container.event_relay_loop()
        # group commit: the CCRs queued while a transaction runs share the next one
        pool = container.charging_workers()
        await relay.start()
        await pool.start()
        await server.start()
        try:
            results = []
            for sessions, updates in runs:
                if profile is not None:
                    profile.enable()  # the measured load only, not the set-up
                try:
                    figures = await drive(
                        folder,
                        server.address[1],
                        sessions,
                        updates,
                        first,
                        postgresql=backend == "postgresql",
                    )
                finally:
                    if profile is not None:
                        profile.disable()
                results.append((sessions, figures))
            return results
        finally:
            await server.stop()
            await pool.stop()
            await relay.stop()
            await dispose(container)


def line(name: str, figures: Figures, base: Figures | None = None) -> str:
    text = (
        f"{name}: {figures.rate:,.0f} CCR-U/s, p50 {figures.p50_ms:.2f} ms, "
        f"p95 {figures.p95_ms:.2f} ms, errors {figures.errors}, cpu {figures.cpu_ms:.2f}"
    )
    if figures.postgres_ms:
        text += f" + postgres {figures.postgres_ms:.2f}"
    text += f" + generator {figures.generator_ms:.2f} ms/CCR-U"
    if base is not None and base.rate:
        text += f" ({figures.rate / base.rate:.2f}x baseline {base.rate:,.0f}/s)"
    return text


#: The issue's target: charged CCR-U per second on PostgreSQL, and their p95.
TARGET_RATE, TARGET_P95_MS = 1100, 3.6


def updates_per_session(sessions: int, updates: int) -> int:
    """CCR-U per session: ``updates`` for one session, five times as many in
    all shared out when there are several (50 sessions: ``updates / 10`` each)."""
    return updates if sessions == 1 else max(1, updates * 5 // sessions)


def verdict(charged: list[tuple[int, Figures]]) -> str:
    """Whether one concurrency reached the target rate within the target p95."""
    met = [(s, f) for s, f in charged if f.rate >= TARGET_RATE and f.p95_ms <= TARGET_P95_MS]
    if met:
        sessions, figures = met[0]
        return (
            f"target {TARGET_RATE:,}/s with p95 <= {TARGET_P95_MS} ms: met at {sessions} "
            f"sessions ({figures.rate:,.0f}/s, p95 {figures.p95_ms:.2f} ms)"
        )
    within = [(s, f) for s, f in charged if f.p95_ms <= TARGET_P95_MS]
    best = max(within, key=lambda sf: sf[1].rate) if within else None
    fastest = max(charged, key=lambda sf: sf[1].rate)
    text = f"target {TARGET_RATE:,}/s with p95 <= {TARGET_P95_MS} ms: not met; "
    if best is not None:
        text += f"best within the p95: {best[1].rate:,.0f}/s at {best[0]} sessions; "
    else:
        text += "no concurrency kept the p95; "
    return text + (
        f"highest rate {fastest[1].rate:,.0f}/s at {fastest[0]} sessions "
        f"(p95 {fastest[1].p95_ms:.2f} ms)"
    )


async def run(args: argparse.Namespace) -> None:
    print(memory_probe())
    counts = [int(s) for s in args.sessions.split(",")]
    runs = [(s, updates_per_session(s, args.updates)) for s in counts]
    with tempfile.TemporaryDirectory(prefix="ratel-diameter-bench-") as tmp:
        folder = Path(tmp)
        bases: dict[int, Figures] = {}
        for sessions, updates in runs:
            bases[sessions] = await baseline(folder, sessions, updates)
            print(line(f"diameter.baseline_constant_cca[{sessions} sessions]", bases[sessions]))
        for sessions, updates in runs:
            figures = await ratel_node(folder, sessions, updates)
            print(
                line(
                    f"diameter.ratel_node_constant_cca[{sessions} sessions]",
                    figures,
                    bases[sessions],
                )
            )
        profile = cProfile.Profile() if args.profile else None
        for backend in args.backends.split(","):
            measured = await charged(folder, backend, runs, profile, args.workers)
            for sessions, figures in measured:
                print(
                    line(
                        f"diameter.charged[{backend}, {sessions} sessions]",
                        figures,
                        bases[sessions],
                    )
                )
            if backend == "postgresql":
                print(f"diameter.charged[{backend}]: {verdict(measured)}")
        if profile is not None:
            profile.dump_stats(args.profile)
            print(f"diameter: server-side profile of the charged runs in {args.profile}")
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    print(memory_probe())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, default=2000, help="CCR-U of the 1-session run")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--sessions", default="1,3,50", help="concurrent sessions of each run, e.g. 1,4,8,50"
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the charged runs into FILE")
    parser.add_argument("--workers", type=int, default=0, help="charging workers (0: by backend)")
    args = parser.parse_args(argv)
    # python-diameter logs every connection coming and going at WARNING
    logging.getLogger("diameter").setLevel(logging.ERROR)
    started = time.perf_counter()
    tune_collector()  # as `ratel serve` runs (every line of the run alike)
    asyncio.run(run(args))
    print(f"diameter: measured in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
