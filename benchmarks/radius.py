"""Charged RADIUS Interim-Updates per second, driven by FreeRADIUS's radclient.

Run with ``uv run python -m benchmarks.radius [--sessions N] [--interims K]
[--parallel P] [--clients C] [--workers W] [--postgres URL]
[--backends sqlite,postgresql]``. ``N`` broadband sessions are started, then
``N x K`` Interim-Updates (each one charging 1 MiB through the credit-control
core) are sent by ``C`` radclient processes (1 by default), each with its
share of the sessions in one file and ``P / C`` requests in flight,
interleaved so that two reports of one session are never in flight together
(as on a real NAS). radclient runs at the lowest priority (``nice -n 19``):
it polls while it waits for answers, and that polling must not take the
cores from the server it measures.
The figure is charged Interim-Updates answered per second by ratel's RADIUS
server on SQLite and on PostgreSQL (a fresh database on the server named by
``--postgres`` / ``RATEL_TEST_PG_URL``, dropped afterwards). The baseline, in
the same run, is a do-nothing pyrad responder (decode, check the
authenticator, answer) on the same loop, driven the same way: the ratio shows
what charging costs on top of the RADIUS round trip. A second reference line,
"ratel server, answered at once", runs ratel's own RADIUS server and
accounting use case with a credit-control core that answers every report at
once without a database: the cost of ratel's RADIUS layer alone. Each line
also prints this process's CPU time per Interim-Update (the server's share of
the two cores), radclient's (how much it polled) and, when
charged, the calls per group-commit batch, and how many Accounting Starts
per second opened the sessions before (a smaller sample: one Start per
session). On PostgreSQL the line also prints the database server's CPU per
Interim-Update (all ``postgres`` processes of this machine, read from
/proc): with the two cores shared, it counts as much as ours.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from pyrad import packet as rp
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.cpu import memory_probe, postgres_cpu
from ratel.adapters.db.migrations import upgrade
from ratel.adapters.radius.attributes import dictionary
from ratel.adapters.radius.server import RadiusServer
from ratel.app import tune_collector
from ratel.application.charging_batch import Companion
from ratel.application.radius import AccountingReport
from ratel.config import Settings
from ratel.container import Container, build_container, dispose
from ratel.domain.catalogue import Product, ProductKind, Service, ServicePolicy, UsageCharge
from ratel.domain.charging import Answer, RequestKind, UsageRequest
from ratel.domain.identifiers import Identifiers
from ratel.domain.money import Money
from ratel.domain.nas import NasVendor
from ratel.domain.rating import DestinationGroup, Rate, Tariff
from ratel.ports.store import IdentifierKind

MIB = 1024 * 1024
SECRET = "bench-secret"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class NullResponder(asyncio.DatagramProtocol):
    """The baseline: answers every Accounting-Request, charging nothing."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = rp.AcctPacket(secret=SECRET.encode(), dict=dictionary(), packet=data)
        if request.VerifyAcctRequest():
            self.transport.sendto(request.CreateReply().ReplyPacket(), addr)


class AnsweredAtOnce:
    """A credit-control core for the reference line: Start goes to the real
    one (the session must exist), every report is answered at once."""

    def __init__(self, real: object) -> None:
        self.real = real

    async def start(self, *args: object, **kwargs: object) -> Answer:
        return await self.real.start(*args, **kwargs)  # type: ignore[attr-defined, no-any-return]

    async def update(
        self,
        session_id: str,
        number: int,
        requests: list[UsageRequest],
        *,
        sub_session: str = "",
        companion: Companion | None = None,
        cause: str = "normal",
    ) -> Answer:
        return Answer(number, RequestKind.UPDATE, ())

    terminate = update


@dataclass(frozen=True)
class Measured:
    rate: float  # Interim-Updates answered per second
    cpu_ms: float  # this process's CPU per Interim-Update
    per_batch: float = 0.0  # charging calls per group-commit batch
    starts: float = 0.0  # Accounting Starts (untimed phase before) answered per second
    server_cpu_ms: float = 0.0  # the PostgreSQL server's CPU per Interim-Update
    client_cpu_ms: float = 0.0  # radclient's CPU per Interim-Update

    def line(self, label: str, baseline: float | None = None) -> str:
        text = f"  {label:40} {self.rate:8.0f} /s  cpu {self.cpu_ms:.3f} ms/request"
        if self.server_cpu_ms:
            text += f" + postgres {self.server_cpu_ms:.3f}"
        if self.client_cpu_ms:
            text += f" + radclient {self.client_cpu_ms:.3f}"
        if self.per_batch:
            text += f"  {self.per_batch:5.1f} calls/batch"
        if baseline:
            text += f"  ratio {self.rate / baseline:.3f}"
        if self.starts:
            text += f"  (Starts: {self.starts:.0f} /s)"
        return text


def login(n: int) -> str:
    return f"bench{n}@isp"


def packets(sessions: int, status: str, interim: int = 0, part: tuple[int, int] = (0, 1)) -> str:
    """One radclient file block per session (of the sessions ``n`` with
    ``n % part[1] == part[0]``)."""
    blocks = []
    for n in range(part[0], sessions, part[1]):
        lines = [
            f'User-Name = "{login(n)}"',
            f"Acct-Status-Type = {status}",
            f'Acct-Session-Id = "bench-{n}"',
            f"Acct-Output-Octets = {interim * MIB}",
            f"Acct-Session-Time = {interim * 60}",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


#: radclient's CPU seconds so far (one slot, added to by ``radclient``).
RADCLIENT_CPU = [0.0]


def files(sessions: int, status: str, interims: int, clients: int) -> list[str]:
    """The radclient file of each of ``clients`` clients: each drives its own
    share of the sessions, ``interims`` reports each (0: one, a Start or
    Stop), interleaved so that two reports of one session are never in
    flight together."""
    rounds = range(1, interims + 1) if interims else (0,)
    return [
        "\n".join(packets(sessions, status, k, (client, clients)) for k in rounds)
        for client in range(clients)
    ]


async def radclients(port: int, requests: list[str], parallel: int) -> float:
    """Seconds until every client's requests were answered: one radclient
    per file, run at once, sharing ``parallel`` requests in flight. radclient
    walks its whole request list at every turn, so its CPU per request grows
    with the file and with the time answers take: several shorter files
    keep the load generator from taking a core the server needs."""
    share = max(1, parallel // len(requests))
    started = time.perf_counter()
    await asyncio.gather(*(radclient(port, text, share) for text in requests))
    return time.perf_counter() - started


async def radclient(port: int, requests: str, parallel: int) -> tuple[float, str]:
    """Seconds radclient took to get every request answered, and its summary
    (its CPU seconds are added to ``RADCLIENT_CPU``)."""
    binary = shutil.which("radclient")
    if binary is None:
        raise SystemExit("radclient is missing: run `bash scripts/services` (freeradius-utils)")
    with tempfile.NamedTemporaryFile("w", suffix=".radclient", delete=False) as file:
        file.write(requests)
    try:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            "nice", "-n", "19", binary, "-s", "-q", "-p", str(parallel), "-r", "5", "-t", "5",
            "-f", file.name, f"127.0.0.1:{port}", "acct", SECRET,
            stdout=asyncio.subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out, _ = await process.communicate()
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        RADCLIENT_CPU[0] += (after.ru_utime - children.ru_utime) + (
            after.ru_stime - children.ru_stime
        )
    finally:
        os.unlink(file.name)
    summary = out.decode(errors="replace")
    lost = re.search(r"Lost\s*:\s*(\d+)", summary)
    if process.returncode != 0 or (lost is not None and int(lost.group(1)) > 0):
        print(summary)
    return elapsed, summary


async def seed(container: Container, sessions: int) -> list[str]:
    group = DestinationGroup("DATA", "Data", "400000006")
    await container.define_destination_groups()([group])
    tariff = Tariff("DATA", "USD", "Data per MiB")
    tariff.add_custom("DATA", Rate.per_interval(Money.of("0.01", "USD"), MIB), group)
    await container.define_tariff()(tariff)
    await container.define_product()(
        Product(
            "BROADBAND",
            "Broadband",
            ProductKind.MAIN,
            frozenset({Service.DATA}),
            usage_charges=(UsageCharge("DATA", "DATA", Service.DATA),),
            policy=ServicePolicy(download_kbps=20_000, upload_kbps=5_000),
        )
    )
    customers = []
    for n in range(sessions):
        customer = await container.open_customer()(f"Bench {n}", "USD")
        await container.create_account()(
            customer.id, "BROADBAND", identifiers=Identifiers(aliases=frozenset({login(n)}))
        )
        await container.top_up()(customer.id, Money.of("1000", "USD"), "bench")
        customers.append(customer.id)
    await container.manage_nas().register("bench", "127.0.0.1", SECRET, vendor=NasVendor.HUAWEI)
    return customers


@asynccontextmanager
async def postgres_database(server_url: str) -> AsyncIterator[str]:
    name = f"ratel_bench_{secrets.token_hex(4)}"
    server = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as connection:
            await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with server.connect() as connection:
                await connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await server.dispose()


async def charged_rate(
    url: str,
    sessions: int,
    interims: int,
    parallel: int,
    clients: int,
    *,
    workers: int = 0,
    charging: bool = True,
) -> Measured:
    """Interim-Updates per second on the database at ``url``, charged (or,
    with ``charging=False``, answered at once by a core without a database)."""
    await asyncio.to_thread(upgrade, url)
    container = build_container(
        Settings(database_url=url, radius_auth_port=0, radius_acct_port=0, charging_workers=workers)
    )
    try:
        await seed(container, sessions)
        # group commit: the interims queued while a transaction runs share the next one
        pool = container.charging_workers()
        await pool.start()
        server: RadiusServer = container.radius_server()
        await server.start()
        accounting = container.charge_accounting()
        try:
            port = server.addresses["acct"][1]
            started_in = await radclients(port, files(sessions, "Start", 0, clients), parallel)
            if not charging:
                accounting.credit_control = AnsweredAtOnce(accounting.credit_control)
            requests = files(sessions, "Interim-Update", interims, clients)
            batches, calls = pool.batches, pool.calls
            cpu, server_cpu, client_cpu = time.process_time(), postgres_cpu(), RADCLIENT_CPU[0]
            elapsed = await radclients(port, requests, parallel)
            cpu, server_cpu = time.process_time() - cpu, postgres_cpu() - server_cpu
            client_cpu = RADCLIENT_CPU[0] - client_cpu
            batches, calls = pool.batches - batches, pool.calls - calls
        finally:
            await server.stop()
            await pool.stop()
        count = sessions * interims
        if charging:
            # every interim charged exactly once: 1 MiB at 0.01 each
            view = await container.balance_enquiry()(IdentifierKind.ALIAS, login(0))
            expected = Decimal(1000) - Decimal("0.01") * interims
            if view.balance.amount != expected:
                raise SystemExit(f"charging is wrong: {view.balance} instead of {expected}")
        return Measured(
            count / elapsed,
            cpu / count * 1000,
            calls / batches if batches else 0.0,
            sessions / started_in,
            server_cpu / count * 1000 if url.startswith("postgresql") else 0.0,
            client_cpu / count * 1000,
        )
    finally:
        await dispose(container)


async def restart_seconds(url: str, sessions: int) -> tuple[float, float]:
    """A NAS's restart on the database at ``url``: seconds to close
    ``sessions`` open sessions one Stop after another (each its own charging
    batch, as a NAS's Stops sent one by one are), then seconds for an
    Accounting-On to close as many others."""
    await asyncio.to_thread(upgrade, url)
    container = build_container(Settings(database_url=url, radius_auth_port=0, radius_acct_port=0))
    try:
        await seed(container, 2 * sessions)
        pool = container.charging_workers()
        await pool.start()
        server: RadiusServer = container.radius_server()
        await server.start()
        try:
            port = server.addresses["acct"][1]
            await radclients(port, files(2 * sessions, "Start", 0, 1), 64)
            accounting = container.charge_accounting()
            started = time.perf_counter()
            for n in range(sessions):
                report = AccountingReport("127.0.0.1", f"bench-{n}", login(n), cause="nas_reboot")
                await accounting.stop(report)
            one_by_one = time.perf_counter() - started
            started = time.perf_counter()
            closed = await accounting.nas_restarted("127.0.0.1")
            restarted = time.perf_counter() - started
        finally:
            await server.stop()
            await pool.stop()
        if closed != sessions:
            raise SystemExit(f"Accounting-On closed {closed} sessions instead of {sessions}")
        return one_by_one, restarted
    finally:
        await dispose(container)


async def baseline_rate(sessions: int, interims: int, parallel: int, clients: int) -> float:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(NullResponder, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        requests = files(sessions, "Interim-Update", interims, clients)
        return sessions * interims / await radclients(port, requests, parallel)
    finally:
        transport.close()


async def run(args: argparse.Namespace) -> None:
    print(memory_probe())
    print(
        f"{args.sessions} sessions x {args.interims} Interim-Updates, {args.clients} radclient "
        f"processes, {args.parallel} requests in flight in all"
    )
    shape = (args.sessions, args.interims, args.parallel, args.clients)
    baseline = await baseline_rate(*shape)
    print(f"  {'baseline (do-nothing pyrad responder)':40} {baseline:8.0f} /s")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'answered.db'}"
        answered = await charged_rate(url, *shape, charging=False)
    print(answered.line("ratel server, answered at once", baseline))
    backends = set(args.backends.split(","))
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
            sqlite = await charged_rate(url, *shape, workers=args.workers)
        print(sqlite.line("charged on SQLite", baseline))
    if args.postgres and "postgresql" in backends:
        async with postgres_database(args.postgres) as url:
            pg = await charged_rate(url, *shape, workers=args.workers)
        print(pg.line("charged on PostgreSQL", baseline))
    if args.postgres and args.restart:
        async with postgres_database(args.postgres) as url:
            one_by_one, restarted = await restart_seconds(url, args.restart)
        print(
            f"  Accounting-On closing {args.restart} sessions on PostgreSQL: {restarted:.2f} s "
            f"(as many Stops one by one: {one_by_one:.2f} s; ratio {one_by_one / restarted:.1f})"
        )
    print(memory_probe())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--interims", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--clients", type=int, default=1, help="radclient processes")
    parser.add_argument("--workers", type=int, default=0, help="charging workers (0: by backend)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("RATEL_TEST_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL server URL ('' to skip)",
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--restart",
        type=int,
        default=500,
        help="sessions an Accounting-On closes, against as many Stops one by one (0 to skip)",
    )
    tune_collector()  # as `ratel serve` runs (every line of the run alike)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
