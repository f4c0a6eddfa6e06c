"""CoA and Disconnect to a real listener on 127.0.0.1 (a pyrad-decoding NAS
stand-in that records what it receives and answers ACK or NAK)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from pyrad import packet as rp
from radius_support import (
    MIB,
    SECRET,
    Subscriber,
    radclient,
    register_nas,
    server_settings,
    subscriber,
)

from ratel.adapters.radius.attributes import dictionary
from ratel.adapters.radius.dae import DynamicAuthorization
from ratel.adapters.radius.server import RadiusServer
from ratel.application.radius import RadiusSessions
from ratel.container import Container, build_container, dispose
from ratel.domain.catalogue import ExhaustionAction, ServicePolicy
from ratel.domain.money import Money
from ratel.domain.nas import NasVendor, RadiusSession, Restriction
from ratel.ports.store import IdentifierKind

pytestmark = pytest.mark.asyncio


@dataclass
class Received:
    code: int
    attributes: dict[str, list[object]]


@dataclass
class DaeListener(asyncio.DatagramProtocol):
    """Answers CoA with ACK and Disconnect with the NAK ``disconnect_nak`` names."""

    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    disconnect_nak: int | None = None
    silent: bool = False
    held: asyncio.Event | None = None  # answers wait until it is set
    answering: set[asyncio.Task[None]] = field(default_factory=set)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = rp.CoAPacket(secret=SECRET.encode(), dict=dictionary(), packet=data)
        assert request.VerifyCoARequest()
        assert request.verify_message_authenticator()
        names = request.keys()  # attribute names; iterating the packet gives codes
        seen = Received(request.code, {k: list(request[k]) for k in names})
        self.received.append(seen)
        self.arrived.put_nowait(seen)
        if self.silent:
            return
        reply = request.CreateReply()
        if request.code == rp.DisconnectRequest and self.disconnect_nak is not None:
            reply.code = rp.DisconnectNAK
            reply.AddAttribute("Error-Cause", self.disconnect_nak)
        assert self.transport is not None
        if self.held is None:
            self.transport.sendto(reply.ReplyPacket(), addr)
        else:
            answer = self._answer_later(self.held, reply.ReplyPacket(), addr)
            self.answering.add(asyncio.create_task(answer))

    async def _answer_later(self, held: asyncio.Event, reply: bytes, addr: tuple[str, int]) -> None:
        await held.wait()
        assert self.transport is not None
        self.transport.sendto(reply, addr)


@pytest.fixture
async def listener() -> AsyncIterator[tuple[DaeListener, int]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        DaeListener, local_addr=("127.0.0.1", 0)
    )
    yield protocol, transport.get_extra_info("sockname")[1]
    transport.close()


async def running_dae(container: Container) -> AsyncIterator[DynamicAuthorization]:
    """The container's DAE component, started, with the relay at the newest event."""
    component: DynamicAuthorization = container.radius_dae()
    await component.start()
    await container.event_relay().start_at_newest()
    yield component
    await component.stop()


@pytest.fixture
async def dae(container: Container, server: RadiusServer) -> AsyncIterator[DynamicAuthorization]:
    async for component in running_dae(container):
        yield component


@pytest.fixture
async def patient_dae(
    container: Container, server: RadiusServer
) -> AsyncIterator[DynamicAuthorization]:
    """``dae`` whose requests wait 5 s for an answer: for a NAS that holds its
    ACK while the test goes on, however slow the machine."""
    container.radius_dae.add_kwargs(timeout=5.0)
    async for component in running_dae(container):
        yield component


async def session_of(container: Container, sub: Subscriber) -> RadiusSession:
    sessions = await container.radius_sessions().open_for_account(sub.account_id)
    assert len(sessions) == 1
    return sessions[0]


async def relay(container: Container, dae: DynamicAuthorization) -> None:
    """One relay pass, then wait for the network work it started."""
    await container.event_relay()()
    await dae.stop()


async def test_exhausted_funds_hotline_top_up_reconnects_and_block_disconnects_with_a_nak(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """A Huawei hotline is a portal URL, which a CoA with the policy's rates
    would leave on (a CoA keeps what it does not name): the top-up
    disconnects the session, and the user's next session has the policy."""
    nas_listener, port = listener
    await register_nas(
        container, NasVendor.HUAWEI, accepts_coa=True, accepts_disconnect=True, dae_port=port
    )
    sub = await subscriber(container, "alice@isp", balance="0.05")
    acct_port = server.addresses["acct"][1]
    start = 'User-Name = "alice@isp", Acct-Status-Type = Start, Acct-Session-Id = "d-1", '
    start += "Framed-IP-Address = 100.64.0.7"
    await radclient(acct_port, "acct", start)
    interim = (
        'User-Name = "alice@isp", Acct-Status-Type = Interim-Update, Acct-Session-Id = "d-1", '
        f"Acct-Output-Octets = {5 * MIB}"
    )
    assert (await radclient(acct_port, "acct", interim)).code == "Accounting-Response"

    hotline = await asyncio.wait_for(nas_listener.arrived.get(), 5)
    assert hotline.code == rp.CoARequest
    assert hotline.attributes["Huawei-PortalURL"] == ["https://topup.example/"]
    assert hotline.attributes["NAS-IP-Address"] == ["127.0.0.1"]  # RFC 5176 3
    assert hotline.attributes["Acct-Session-Id"] == ["d-1"]
    assert hotline.attributes["Framed-IP-Address"] == ["100.64.0.7"]
    await dae.stop()  # waits for the outcome to be stored
    session = await session_of(container, sub)
    assert session.restriction is Restriction.HOTLINE
    assert session.last_dae == "coa hotline: ACK"

    # traffic to the portal while hotlined is not charged
    more = interim.replace(f"{5 * MIB}", f"{6 * MIB}")
    await radclient(acct_port, "acct", more)
    assert nas_listener.arrived.empty(), "one hotline CoA, not one per interim"

    await container.top_up()(sub.customer_id, Money.of("2.00", "USD"), "card")
    await relay(container, dae)
    restore = await asyncio.wait_for(nas_listener.arrived.get(), 5)
    assert (restore.code, restore.attributes["Acct-Session-Id"]) == (rp.DisconnectRequest, ["d-1"])
    assert nas_listener.arrived.empty(), "a Disconnect, and no CoA that leaves the portal on"
    session = await session_of(container, sub)
    assert session.last_dae == "disconnect BalanceChanged: restored by reconnecting: ACK"
    # the NAS ends the session; the user's next one is granted with the policy
    await radclient(acct_port, "acct", more.replace("Interim-Update", "Stop"))
    again = 'User-Name = "alice@isp", User-Password = "alice-secret-1"'
    accepted = await radclient(server.addresses["auth"][1], "auth", again)
    assert accepted.code == "Access-Accept", accepted.output
    assert "Huawei-PortalURL" not in accepted.output
    await radclient(acct_port, "acct", start.replace('"d-1"', '"d-2"'))
    view = await container.balance_enquiry()(IdentifierKind.ACCOUNT_ID, sub.account_id)
    assert view.balance.amount == Decimal("2.00")  # 0.05 spent on the first 5 MiB only

    nas_listener.disconnect_nak = 503  # Session-Context-Not-Found
    await container.block_account()(sub.account_id)
    await relay(container, dae)
    disconnect = await asyncio.wait_for(nas_listener.arrived.get(), 5)
    assert disconnect.code == rp.DisconnectRequest
    assert disconnect.attributes["User-Name"] == ["alice@isp"]
    assert disconnect.attributes["Acct-Session-Id"] == ["d-2"]
    session = await session_of(container, sub)
    assert session.last_dae == (
        "disconnect AccountBlocked: NAK Error-Cause=Session-Context-Not-Found"
    )
    errors = container.telemetry().registry.get_sample_value(
        "ratel_errors_total",
        {
            "protocol": "radius_dae",
            "operation": "disconnect",
            "outcome": "rejected",
            "code": "Session-Context-Not-Found",
        },
    )
    assert errors == 1


async def hotlined(
    container: Container,
    server: RadiusServer,
    listener: DaeListener,
    port: int,
    *,
    accepts_disconnect: bool = False,
) -> tuple[Subscriber, str]:
    """alice's session d-1, whose first 5 MiB spent her 0.05: the hotline CoA
    has reached the NAS. Her interim report, to be completed with counters."""
    await register_nas(
        container,
        NasVendor.HUAWEI,
        accepts_coa=True,
        accepts_disconnect=accepts_disconnect,
        dae_port=port,
    )
    sub = await subscriber(container, "alice@isp", balance="0.05")
    acct_port = server.addresses["acct"][1]
    session = 'User-Name = "alice@isp", Acct-Session-Id = "d-1", '
    await radclient(acct_port, "acct", session + "Acct-Status-Type = Start")
    interim = session + "Acct-Status-Type = Interim-Update, Acct-Output-Octets = "
    await radclient(acct_port, "acct", interim + str(5 * MIB))
    hotline = await asyncio.wait_for(listener.arrived.get(), 5)
    assert hotline.attributes["Huawei-PortalURL"] == ["https://topup.example/"]
    return sub, interim


async def test_a_top_up_while_the_hotline_is_on_its_way_restores_once_the_nas_applied_it(
    container: Container,
    server: RadiusServer,
    patient_dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    dae = patient_dae
    nas_listener, port = listener
    nas_listener.held = asyncio.Event()  # the NAS applies the hotline, then answers
    sub, interim = await hotlined(container, server, nas_listener, port)
    assert not (await session_of(container, sub)).restricted  # no ACK yet

    again = interim + str(6 * MIB)  # refused too, while the hotline awaits its ACK
    assert (await radclient(server.addresses["acct"][1], "acct", again)).code == (
        "Accounting-Response"
    )
    await container.top_up()(sub.customer_id, Money.of("2.00", "USD"), "card")
    await container.event_relay()()  # the restore is decided now, while the hotline waits
    await asyncio.sleep(0.05)
    assert all(r.attributes.get("Huawei-PortalURL") for r in nas_listener.received)
    nas_listener.held.set()
    await dae.stop()
    restore = nas_listener.received[-1]
    hotlines = [r for r in nas_listener.received if "Huawei-PortalURL" in r.attributes]
    assert len(hotlines) == 1  # not one per refused report, nor retransmitted
    assert restore.code == rp.CoARequest
    assert restore.attributes["Huawei-Output-Average-Rate"] == [20_000_000]
    session = await session_of(container, sub)
    assert not session.restricted
    assert session.last_dae == "coa BalanceChanged: ACK"


async def test_with_two_nodes_a_top_up_and_a_block_reach_the_nas_once_each(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
    database_url: str,
) -> None:
    """Two ratel nodes on one database: both relays see the top-up and the
    block, one node claims each and the NAS gets one CoA and one Disconnect."""
    nas_listener, port = listener
    sub, _ = await hotlined(container, server, nas_listener, port, accepts_disconnect=True)
    await dae.stop()  # the hotline's ACK is stored: the session is restricted
    other = build_container(server_settings(database_url))
    other_server: RadiusServer = other.radius_server()
    await other_server.start()  # reads the NAS registry
    try:
        async for other_dae in running_dae(other):
            for change in (
                container.top_up()(sub.customer_id, Money.of("2.00", "USD"), "card"),
                container.block_account()(sub.account_id),
            ):
                await change
                await asyncio.gather(container.event_relay()(), other.event_relay()())
                await asyncio.gather(dae.stop(), other_dae.stop())
    finally:
        await other_server.stop()
        await dispose(other)
    # the hotline, the restore (a Disconnect: a Huawei portal URL stays after
    # a CoA) and the block's Disconnect
    assert [r.code for r in nas_listener.received] == [
        rp.CoARequest,
        rp.DisconnectRequest,
        rp.DisconnectRequest,
    ]


async def test_a_restore_the_nas_never_answered_is_sent_again_at_the_next_interim(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    nas_listener, port = listener
    sub, interim = await hotlined(container, server, nas_listener, port)
    await dae.stop()
    nas_listener.silent = True
    await container.top_up()(sub.customer_id, Money.of("2.00", "USD"), "card")
    await relay(container, dae)
    _hotline, *restores = nas_listener.received
    # the restore sent twice for each event of the top-up
    assert restores and len(restores) % 2 == 0
    assert all("Huawei-Output-Average-Rate" in r.attributes for r in restores)
    session = await session_of(container, sub)
    assert session.restricted
    assert session.last_dae == "coa BalanceChanged: no answer"

    nas_listener.silent = False
    acct_port = server.addresses["acct"][1]
    await radclient(acct_port, "acct", interim + str(6 * MIB))  # portal traffic: free
    await dae.stop()
    [restore] = nas_listener.received[1 + len(restores) :]
    assert restore.code == rp.CoARequest
    assert restore.attributes["Huawei-Output-Average-Rate"] == [20_000_000]
    session = await session_of(container, sub)
    assert not session.restricted
    assert session.last_dae == "coa granted: ACK"
    await radclient(acct_port, "acct", interim + str(8 * MIB))  # charged again
    view = await container.balance_enquiry()(IdentifierKind.ACCOUNT_ID, sub.account_id)
    assert view.balance.amount == Decimal("1.98")
    assert len(nas_listener.received) == 2 + len(restores)  # no CoA once restored


#: BROADBAND's speeds, throttled (not hotlined) when its funds run out.
THROTTLED = ServicePolicy(
    download_kbps=20_000,
    upload_kbps=5_000,
    throttle_download_kbps=128,
    throttle_upload_kbps=64,
    on_exhaustion=ExhaustionAction.THROTTLE,
)


async def change_broadband(container: Container, **changes: Any) -> None:
    """Define the demo BROADBAND product again with ``changes`` (its policy,
    its quotas)."""
    products = await container.list_products()()
    broadband = next(p for p in products if p.code == "BROADBAND")
    await container.define_product()(replace(broadband, **changes), replace=True)


async def test_throttle_products_get_the_lower_rates_and_silence_is_retried(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    await change_broadband(container, policy=THROTTLED)
    nas_listener, port = listener
    nas_listener.silent = True
    await register_nas(container, NasVendor.JUNIPER, accepts_coa=True, dae_port=port)
    sub = await subscriber(container, "bob@isp", balance="0.01")
    acct_port = server.addresses["acct"][1]
    await radclient(
        acct_port, "acct", 'User-Name = "bob@isp", Acct-Status-Type = Start, Acct-Session-Id = "t"'
    )
    await radclient(
        acct_port,
        "acct",
        'User-Name = "bob@isp", Acct-Status-Type = Interim-Update, Acct-Session-Id = "t", '
        f"Acct-Input-Octets = {2 * MIB}",
    )
    first = await asyncio.wait_for(nas_listener.arrived.get(), 5)
    assert first.attributes["ERX-Service-Activate"] == ["rate-limit(128000,64000)"]
    await dae.stop()
    assert len(nas_listener.received) == 2  # radius_dae_retries=2: sent twice, then given up
    session = await session_of(container, sub)
    assert session.last_dae == "coa throttle: no answer"
    assert not session.restricted


async def test_a_nas_without_dynamic_authorization_is_never_sent_one(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    nas_listener, port = listener
    await register_nas(container, NasVendor.CISCO_ASR5700, dae_port=port)
    sub = await subscriber(container, "m2m@isp", balance="0.01")
    acct_port = server.addresses["acct"][1]
    await radclient(
        acct_port, "acct", 'User-Name = "m2m@isp", Acct-Status-Type = Start, Acct-Session-Id = "m"'
    )
    await radclient(
        acct_port,
        "acct",
        'User-Name = "m2m@isp", Acct-Status-Type = Interim-Update, Acct-Session-Id = "m", '
        f"Acct-Input-Octets = {3 * MIB}",
    )
    await container.block_account()(sub.account_id)
    await relay(container, dae)
    assert nas_listener.received == []
    # and it is refused at its next authorization
    auth = server.addresses["auth"][1]
    reply = await radclient(auth, "auth", 'User-Name = "m2m@isp", User-Password = "alice-secret-1"')
    assert reply.code == "Access-Reject"


async def test_claims_are_forgotten_after_a_day_at_most_once_an_hour(
    container: Container,
) -> None:
    now = [datetime(2026, 11, 26, 12, 0, tzinfo=UTC)]
    clock = SimpleNamespace(now=lambda: now[0])
    sessions = RadiusSessions(
        replace(container.deps(), clock=clock), container.radius_store(), container.credit_control()
    )
    claimed = RadiusSession("192.0.2.1", "d-1", "c", "", "acc", "cus", "u", now[0], now[0])
    assert await sessions.claim("event:1", claimed)
    assert not await sessions.claim("event:1", claimed)
    now[0] += timedelta(hours=25)
    assert await sessions.claim("event:2", claimed)  # the first purge of this process ran
    now[0] += timedelta(minutes=30)
    # event:1 was a day old at the purge above: forgotten, claimable again
    assert await sessions.claim("event:1", claimed)
    # a claim two days old, made meanwhile: the next purge is an hour after the last
    async with container.radius_store()() as store:
        assert await store.dae_claims.claim(
            "event:9", "192.0.2.1", "d-1", now[0] - timedelta(days=2)
        )
        await store.commit()
    now[0] += timedelta(minutes=29)
    assert not await sessions.claim("event:9", claimed)  # no purge within the hour
    now[0] += timedelta(minutes=2)
    assert await sessions.claim("event:3", claimed)  # purged now
    assert await sessions.claim("event:9", claimed)
