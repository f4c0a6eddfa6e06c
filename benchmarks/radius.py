"""Charged RADIUS Interim-Updates per second, driven by FreeRADIUS's radclient.

Run with ``uv run python -m benchmarks.radius [--sessions N] [--interims K]
[--parallel P] [--postgres URL]``. ``N`` broadband sessions are started, then
``N x K`` Interim-Updates (each one charging 1 MiB through the credit-control
core) are sent by ``radclient -p P`` from one file, interleaved so that two
reports of one session are never in flight together (as on a real NAS).
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
the two cores; PostgreSQL's and radclient's are not counted) and, when
charged, the calls per group-commit batch, and how many Accounting Starts
per second opened the sessions before (a smaller sample: one Start per
session).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
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

from ratel.adapters.db.migrations import upgrade
from ratel.adapters.radius.attributes import dictionary
from ratel.adapters.radius.server import RadiusServer
from ratel.app import tune_collector
from ratel.application.charging_batch import Companion
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

    def line(self, label: str, baseline: float | None = None) -> str:
        text = f"  {label:40} {self.rate:8.0f} /s  cpu {self.cpu_ms:.3f} ms/request"
        if self.per_batch:
            text += f"  {self.per_batch:5.1f} calls/batch"
        if baseline:
            text += f"  ratio {self.rate / baseline:.3f}"
        if self.starts:
            text += f"  (Starts: {self.starts:.0f} /s)"
        return text


def login(n: int) -> str:
    return f"bench{n}@isp"


def packets(sessions: int, status: str, interim: int = 0) -> str:
    """One radclient file block per session."""
    blocks = []
    for n in range(sessions):
        lines = [
            f'User-Name = "{login(n)}"',
            f"Acct-Status-Type = {status}",
            f'Acct-Session-Id = "bench-{n}"',
            f"Acct-Output-Octets = {interim * MIB}",
            f"Acct-Session-Time = {interim * 60}",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


async def radclient(port: int, requests: str, parallel: int) -> tuple[float, str]:
    """Seconds radclient took to get every request answered, and its summary."""
    binary = shutil.which("radclient")
    if binary is None:
        raise SystemExit("radclient is missing: run `bash scripts/services` (freeradius-utils)")
    with tempfile.NamedTemporaryFile("w", suffix=".radclient", delete=False) as file:
        file.write(requests)
    try:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            binary, "-s", "-q", "-p", str(parallel), "-r", "5", "-t", "5",
            "-f", file.name, f"127.0.0.1:{port}", "acct", SECRET,
            stdout=asyncio.subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await process.communicate()
        elapsed = time.perf_counter() - started
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
    url: str, sessions: int, interims: int, parallel: int, *, charging: bool = True
) -> Measured:
    """Interim-Updates per second on the database at ``url``, charged (or,
    with ``charging=False``, answered at once by a core without a database)."""
    await asyncio.to_thread(upgrade, url)
    container = build_container(Settings(database_url=url, radius_auth_port=0, radius_acct_port=0))
    try:
        await seed(container, sessions)
        # group commit: the interims queued while a transaction runs share the next one
        workers = container.charging_workers()
        await workers.start()
        server: RadiusServer = container.radius_server()
        await server.start()
        accounting = container.charge_accounting()
        try:
            port = server.addresses["acct"][1]
            started_in, _ = await radclient(port, packets(sessions, "Start"), parallel)
            if not charging:
                accounting.credit_control = AnsweredAtOnce(accounting.credit_control)
            requests = "\n".join(
                packets(sessions, "Interim-Update", k) for k in range(1, interims + 1)
            )
            batches, calls = workers.batches, workers.calls
            cpu = time.process_time()
            elapsed, _ = await radclient(port, requests, parallel)
            cpu = time.process_time() - cpu
            batches, calls = workers.batches - batches, workers.calls - calls
        finally:
            await server.stop()
            await workers.stop()
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
        )
    finally:
        await dispose(container)


async def baseline_rate(sessions: int, interims: int, parallel: int) -> float:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(NullResponder, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        requests = "\n".join(packets(sessions, "Interim-Update", k) for k in range(1, interims + 1))
        elapsed, _ = await radclient(port, requests, parallel)
        return sessions * interims / elapsed
    finally:
        transport.close()


async def run(args: argparse.Namespace) -> None:
    print(
        f"{args.sessions} sessions x {args.interims} Interim-Updates, radclient -p {args.parallel}"
    )
    baseline = await baseline_rate(args.sessions, args.interims, args.parallel)
    print(f"  {'baseline (do-nothing pyrad responder)':40} {baseline:8.0f} /s")
    shape = (args.sessions, args.interims, args.parallel)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'answered.db'}"
        answered = await charged_rate(url, *shape, charging=False)
    print(answered.line("ratel server, answered at once", baseline))
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        sqlite = await charged_rate(url, *shape)
    print(sqlite.line("charged on SQLite", baseline))
    if args.postgres:
        async with postgres_database(args.postgres) as url:
            pg = await charged_rate(url, *shape)
        print(pg.line("charged on PostgreSQL", baseline))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--interims", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("RATEL_TEST_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL server URL ('' to skip)",
    )
    tune_collector()  # as `ratel serve` runs (every line of the run alike)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
