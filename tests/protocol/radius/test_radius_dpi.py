"""DPI provisioning: a session's Framed-IP-Address forwarded to a Sandvine
policy broker (a RADIUS accounting listener on 127.0.0.1 that records what
it gets) on Start, and cleared on Stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pyrad import packet as rp
from radius_support import define_catalogue, radclient, register_nas, subscriber

from ratel.adapters.radius.attributes import dictionary
from ratel.adapters.radius.dpi import DpiForwarder
from ratel.adapters.radius.server import RadiusServer
from ratel.config import Settings
from ratel.container import Container, build_container, dispose

BROKER_SECRET = "spb-secret"


class Broker(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.arrived: asyncio.Queue[dict[str, list[object]]] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = rp.AcctPacket(secret=BROKER_SECRET.encode(), dict=dictionary(), packet=data)
        assert request.VerifyAcctRequest()
        names = request.keys()
        self.arrived.put_nowait({k: list(request[k]) for k in names})
        self.transport.sendto(request.CreateReply().ReplyPacket(), addr)


@pytest.fixture
async def broker() -> AsyncIterator[tuple[Broker, int]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Broker, local_addr=("127.0.0.1", 0))
    yield protocol, transport.get_extra_info("sockname")[1]
    transport.close()


@pytest.fixture
async def dpi_container(database_url: str, broker: tuple[Broker, int]) -> AsyncIterator[Container]:
    container = build_container(
        Settings(
            database_url=database_url,
            radius_auth_port=0,
            radius_acct_port=0,
            radius_dpi_host="127.0.0.1",
            radius_dpi_port=broker[1],
            radius_dpi_secret=BROKER_SECRET,
        )
    )
    await define_catalogue(container)
    yield container
    await dispose(container)


async def test_framed_ip_is_forwarded_on_start_and_cleared_on_stop(
    dpi_container: Container, broker: tuple[Broker, int]
) -> None:
    container = dpi_container
    spb, _ = broker
    server: RadiusServer = container.radius_server()
    dpi: DpiForwarder = container.radius_dpi()
    assert dpi.enabled
    await server.start()
    await dpi.start()
    try:
        await register_nas(container)
        await subscriber(container, "alice@isp", balance="5.00")
        acct_port = server.addresses["acct"][1]
        base = 'User-Name = "alice@isp", Acct-Session-Id = "dpi-1", Framed-IP-Address = 100.64.1.9'
        await radclient(acct_port, "acct", base + ", Acct-Status-Type = Start")
        start = await asyncio.wait_for(spb.arrived.get(), 5)
        assert start["Acct-Status-Type"] == ["Start"]
        assert start["Framed-IP-Address"] == ["100.64.1.9"]
        assert start["User-Name"] == ["alice@isp"]
        assert start["Filter-Id"] == ["residential-20M"]
        # a retransmitted Start is not forwarded twice
        await radclient(acct_port, "acct", base + ", Acct-Status-Type = Start")
        await radclient(acct_port, "acct", base + ", Acct-Status-Type = Stop")
        stop = await asyncio.wait_for(spb.arrived.get(), 5)
        assert stop["Acct-Status-Type"] == ["Stop"]
        assert stop["Framed-IP-Address"] == ["100.64.1.9"]
    finally:
        await dpi.stop()
        await server.stop()
    assert spb.arrived.empty()
