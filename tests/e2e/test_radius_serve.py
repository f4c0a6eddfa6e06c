"""`ratel serve` as a broadband operator runs it: a prepaid subscriber whose
interim reports exhaust a small balance gets the hotline CoA; a top-up
through GraphQL brings the restoring CoA."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyrad import packet as rp

from ratel.adapters.db.migrations import upgrade
from ratel.adapters.radius.attributes import dictionary
from ratel.config import Settings
from ratel.container import build_container, dispose
from tests.protocol.radius.radius_support import (
    MIB,
    SECRET,
    Subscriber,
    define_catalogue,
    radclient,
    subscriber,
)
from tests.serving import LogLines, ratel_env, serve

ADMIN_PASSWORD = "e2e-admin-password"


class DaeRecorder(asyncio.DatagramProtocol):
    """A NAS's dynamic authorization port: records and ACKs every request."""

    def __init__(self) -> None:
        self.arrived: asyncio.Queue[tuple[int, dict[str, list[object]]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = rp.CoAPacket(secret=SECRET.encode(), dict=dictionary(), packet=data)
        names = request.keys()
        self.arrived.put_nowait((request.code, {k: list(request[k]) for k in names}))
        assert self.transport is not None
        # A NAS answers after it has applied the change: the ACK comes later
        # than the request arrived, as it would from a busy gateway.
        reply = request.CreateReply().ReplyPacket()
        asyncio.get_running_loop().call_later(0.2, self._answer, reply, addr)

    def _answer(self, reply: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


async def prepare(url: str) -> tuple[Subscriber, str]:
    """The operator's data and an administrator's bearer token, before serving."""
    await asyncio.to_thread(upgrade, url)
    container = build_container(Settings(database_url=url))
    try:
        await define_catalogue(container)
        alice = await subscriber(container, "alice@isp", balance="0.05")
        await container.create_local_staff_user()("root", "Root", ADMIN_PASSWORD, ["administrator"])
        token = (await container.staff_login()("root", ADMIN_PASSWORD)).token
    finally:
        await dispose(container)
    return alice, token


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, object]
) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    assert "errors" not in body, response.text
    return body["data"]  # type: ignore[no-any-return]


async def restricted_becomes(client: httpx.AsyncClient, account_id: str, wanted: bool) -> None:
    """Wait until the account's session is recorded as (not) restricted."""
    query = (
        "query ($a: String!) { radiusSessions(accountId: $a) { edges { node { restricted } } } }"
    )
    for _ in range(200):
        data = await graphql(client, query, {"a": account_id})
        [edge] = data["radiusSessions"]["edges"]
        if edge["node"]["restricted"] is wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the session never became restricted={wanted}")


@pytest.fixture
async def dae() -> AsyncIterator[tuple[DaeRecorder, int]]:
    loop = asyncio.get_running_loop()
    transport, recorder = await loop.create_datagram_endpoint(
        DaeRecorder, local_addr=("127.0.0.1", 0)
    )
    yield recorder, transport.get_extra_info("sockname")[1]
    transport.close()


async def test_a_session_exhausts_its_funds_is_hotlined_and_restored_by_a_top_up(
    tmp_path: Path, dae: tuple[DaeRecorder, int]
) -> None:
    recorder, dae_port = dae
    url = f"sqlite+aiosqlite:///{tmp_path / 'ratel.db'}"
    alice, token = await prepare(url)
    env = ratel_env(
        tmp_path / "ratel.db",
        RATEL_EVENT_RELAY_INTERVAL="0.1",
        RATEL_RADIUS_INTERIM_INTERVAL="60",
    )
    process = serve(env, tmp_path)
    try:
        log = LogLines(process.stderr)
        radius = await asyncio.to_thread(log.wait_for, "radius listening")
        http = await asyncio.to_thread(log.wait_for, "listening")
        auth_port, acct_port = int(str(radius["auth_port"])), int(str(radius["acct_port"]))
        base = str(http["url"])
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            registered = await graphql(
                client,
                "mutation ($input: NasInput!) { registerNas(input: $input) { errors { code } } }",
                {
                    "input": {
                        "name": "bras-1",
                        "address": "127.0.0.1",
                        "secret": SECRET,
                        "vendor": "JUNIPER",
                        "acceptsCoa": True,
                        "acceptsDisconnect": True,
                        "daePort": dae_port,
                    }
                },
            )
            assert registered["registerNas"]["errors"] == []

            login = 'User-Name = "alice@isp", User-Password = "alice-secret-1"'
            # the first try may reach the server before it reloads its NAS table
            accepted = await radclient(auth_port, "auth", login, timeout=1, retries=5)
            assert accepted.code == "Access-Accept", accepted.output
            session = 'User-Name = "alice@isp", Acct-Session-Id = "e2e-1", '
            started = await radclient(acct_port, "acct", session + "Acct-Status-Type = Start")
            assert started.code == "Accounting-Response", started.output
            interim = f"{session}Acct-Status-Type = Interim-Update, Acct-Output-Octets = {5 * MIB}"
            assert (await radclient(acct_port, "acct", interim)).code == "Accounting-Response"

            code, hotline = await asyncio.wait_for(recorder.arrived.get(), 10)
            assert code == rp.CoARequest
            assert hotline["ERX-Service-Activate"] == ["hotline(https://topup.example/)"]
            assert hotline["Acct-Session-Id"] == ["e2e-1"]
            # The NAS's ACK reaches ratel just after the CoA reached the NAS:
            # only a session recorded as hotlined gets a restoring CoA.
            await restricted_becomes(client, alice.account_id, True)

            topped = await graphql(
                client,
                "mutation ($c: String!) { topUp(customerId: $c,"
                ' amount: {amount: "3.00", currency: "USD"}) { errors { code } } }',
                {"c": alice.customer_id},
            )
            assert topped["topUp"]["errors"] == []

            code, restore = await asyncio.wait_for(recorder.arrived.get(), 10)
            assert code == rp.CoARequest
            # the full rates, and the hotline service deactivated
            assert restore["ERX-Service-Activate"] == ["rate-limit(20000000,5000000)"]
            assert restore["ERX-Service-Deactivate"] == ["hotline"]
            # usage reported once the restore is recorded is charged again
            await restricted_becomes(client, alice.account_id, False)

            stop = session + f"Acct-Status-Type = Stop, Acct-Output-Octets = {7 * MIB}"
            assert (await radclient(acct_port, "acct", stop)).code == "Accounting-Response"
            xdrs = await graphql(
                client,
                "query ($a: String!) { xdrs(accountId: $a) { edges { node"
                " { charge { amount } } } } }",
                {"a": alice.account_id},
            )
            [edge] = xdrs["xdrs"]["edges"]
            # 5 MiB before the hotline, 2 MiB after the restore, at 0.01 per MiB
            assert Decimal(edge["node"]["charge"]["amount"]) == Decimal("0.07")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
