# ruff: noqa: F811  (pytest fixtures imported from test_radius_dae)
"""RADIUS dynamic authorization (CoA / Disconnect) where a user stays
connected without funds, or hotlined after paying: each test failed before
its fix. Reuses the NAS stand-in and fixtures of test_radius_dae.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pyrad import packet as rp
from radius_support import MIB, radclient, register_nas, subscriber
from test_radius_dae import (  # noqa: F401  (fixtures)
    THROTTLED,
    DaeListener,
    change_broadband,
    dae,
    hotlined,
    listener,
    patient_dae,
    relay,
    session_of,
)

from ratel.adapters.radius.dae import DynamicAuthorization
from ratel.adapters.radius.server import RadiusServer
from ratel.container import Container
from ratel.domain.money import Money
from ratel.domain.nas import NasVendor, RadiusSession, Restriction
from ratel.ports.store import IdentifierKind

pytestmark = pytest.mark.asyncio


async def test_one_coa_at_a_time_per_session_holds_for_a_third_request(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
) -> None:
    """One CoA or Disconnect of a session at a time, also for a third request
    that comes while the first leaves and the second is about to start."""
    now = datetime.now(UTC)
    session = RadiusSession("127.0.0.1", "d-1", "c", "", "acc", "cus", "u", now, now)
    inside: set[str] = set()
    overlaps: list[set[str]] = []
    release = {name: asyncio.Event() for name in "abc"}
    entered = {name: asyncio.Event() for name in "abc"}

    async def work(name: str) -> None:
        async with dae._one_at_a_time(session):
            inside.add(name)
            if len(inside) > 1:
                overlaps.append(set(inside))
            entered[name].set()
            await release[name].wait()
            inside.discard(name)

    a = asyncio.create_task(work("a"))
    await entered["a"].wait()
    b = asyncio.create_task(work("b"))  # waits for a
    await asyncio.sleep(0.01)
    release["a"].set()  # a leaves; b is woken
    await entered["b"].wait()
    c = asyncio.create_task(work("c"))  # must wait for b
    await asyncio.sleep(0.05)
    c_ran_alongside_b = entered["c"].is_set()
    release["b"].set()
    release["c"].set()
    await asyncio.gather(a, b, c)
    assert not c_ran_alongside_b and not overlaps, f"ran together: {overlaps}"


async def test_a_higher_credit_limit_restores_a_hotlined_session(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """Raising the credit limit gives the customer money to spend (as a
    top-up does): the hotline must be lifted at once, not at the next interim."""
    nas_listener, port = listener
    sub, _interim = await hotlined(container, server, nas_listener, port)
    await relay(container, dae)  # the events of the set-up (the initial top-up) pass
    assert len(nas_listener.received) == 1  # the hotline only
    assert (await session_of(container, sub)).restricted
    # the session may use data again
    await container.set_credit_limit()(sub.customer_id, Money.of("10.00", "USD"))
    assert await container.radius_sessions().can_use(sub.account_id)
    await relay(container, dae)
    restores = [r for r in nas_listener.received[1:] if r.code == rp.CoARequest]
    assert restores, (
        "no restoring CoA after the credit limit was raised; "
        f"last_dae={(await session_of(container, sub)).last_dae!r}"
    )
    assert not (await session_of(container, sub)).restricted


async def test_closing_a_customer_sends_one_disconnect_per_session(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """CloseCustomer records AccountTerminated for each account and
    CustomerClosed: each session gets one Disconnect, not one per event."""
    nas_listener, port = listener
    await register_nas(
        container, NasVendor.HUAWEI, accepts_coa=True, accepts_disconnect=True, dae_port=port
    )
    sub = await subscriber(container, "carol@isp", balance="5.00")
    acct_port = server.addresses["acct"][1]
    await radclient(
        acct_port,
        "acct",
        'User-Name = "carol@isp", Acct-Status-Type = Start, Acct-Session-Id = "c-1"',
    )
    await container.close_customer()(sub.customer_id)
    await relay(container, dae)
    disconnects = [r for r in nas_listener.received if r.code == rp.DisconnectRequest]
    assert len(disconnects) == 1, f"{len(disconnects)} Disconnect-Requests for one session"


class NakCoa(DaeListener):
    """NAKs every CoA (e.g. Unsupported-Attribute), ACKs Disconnect."""

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        from ratel.adapters.radius.attributes import dictionary

        request = rp.CoAPacket(secret=b"testing123", dict=dictionary(), packet=data)
        seen_names = request.keys()
        from test_radius_dae import Received

        seen = Received(request.code, {k: list(request[k]) for k in seen_names})
        self.received.append(seen)
        self.arrived.put_nowait(seen)
        reply = request.CreateReply()
        if request.code == rp.CoARequest:
            reply.code = rp.CoANAK
            reply.AddAttribute("Error-Cause", 401)  # Unsupported-Attribute
        assert self.transport is not None
        self.transport.sendto(reply.ReplyPacket(), addr)


async def test_a_refused_hotline_leaves_the_user_connected_without_funds(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
) -> None:
    """The NAS NAKs the hotline CoA; it accepts Disconnect. The session has
    no funds: ratel falls back to a Disconnect rather than leave the user
    browsing unrestricted."""
    loop = asyncio.get_running_loop()
    transport, nak = await loop.create_datagram_endpoint(NakCoa, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        await register_nas(
            container, NasVendor.HUAWEI, accepts_coa=True, accepts_disconnect=True, dae_port=port
        )
        sub = await subscriber(container, "dave@isp", balance="0.05")
        acct_port = server.addresses["acct"][1]
        base = 'User-Name = "dave@isp", Acct-Session-Id = "n-1", '
        await radclient(acct_port, "acct", base + "Acct-Status-Type = Start")
        interim = base + "Acct-Status-Type = Interim-Update, Acct-Output-Octets = "
        await radclient(acct_port, "acct", interim + str(5 * MIB))
        await dae.stop()
        await radclient(acct_port, "acct", interim + str(50 * MIB))
        await radclient(acct_port, "acct", interim + str(500 * MIB))
        await dae.stop()
        session = await session_of(container, sub)
        codes = [r.code for r in nak.received]
        assert not session.restricted
        assert rp.DisconnectRequest in codes, (
            f"only {codes.count(rp.CoARequest)} NAKed CoAs, no Disconnect; "
            f"last_dae={session.last_dae!r}"
        )
    finally:
        transport.close()


class GatedNas(DaeListener):
    """Holds each CoA's answer until the test opens its gate; NAKs the first
    CoA (the NAS could not apply it), ACKs the others."""

    gates: list[asyncio.Event] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        from test_radius_dae import Received

        from ratel.adapters.radius.attributes import dictionary

        if self.gates is None:
            self.gates = []
        request = rp.CoAPacket(secret=b"testing123", dict=dictionary(), packet=data)
        seen = Received(request.code, {k: list(request[k]) for k in request.keys()})  # noqa: SIM118  (names)
        self.received.append(seen)
        self.arrived.put_nowait(seen)
        reply = request.CreateReply()
        if len(self.gates) == 0:
            reply.code = rp.CoANAK
            reply.AddAttribute("Error-Cause", 506)  # Resources-Unavailable
        gate = asyncio.Event()
        self.gates.append(gate)
        self.answering.add(asyncio.create_task(self._answer_later(gate, reply.ReplyPacket(), addr)))


async def test_a_top_up_while_a_second_hotline_is_on_its_way_is_not_lost(
    container: Container,
    server: RadiusServer,
    patient_dae: DynamicAuthorization,
) -> None:
    """The first hotline CoA is NAKed (busy NAS); the next refused report's
    hotline was waiting behind it and goes out. The customer tops up while
    that second hotline awaits its ACK: the restore must wait for it and
    lift it."""
    dae = patient_dae
    loop = asyncio.get_running_loop()
    transport, nas = await loop.create_datagram_endpoint(GatedNas, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        await register_nas(container, NasVendor.HUAWEI, accepts_coa=True, dae_port=port)
        sub = await subscriber(container, "erin@isp", balance="0.05")
        await container.event_relay()()  # the set-up's events pass
        acct_port = server.addresses["acct"][1]
        base = 'User-Name = "erin@isp", Acct-Session-Id = "g-1", '
        await radclient(acct_port, "acct", base + "Acct-Status-Type = Start")
        interim = base + "Acct-Status-Type = Interim-Update, Acct-Output-Octets = "
        await radclient(acct_port, "acct", interim + str(5 * MIB))  # refused: hotline 1
        await asyncio.wait_for(nas.arrived.get(), 5)
        await radclient(acct_port, "acct", interim + str(6 * MIB))  # refused: waits
        await asyncio.sleep(0.1)
        assert nas.gates is not None and len(nas.gates) == 1
        nas.gates[0].set()  # NAK: the first hotline was not applied
        second = await asyncio.wait_for(nas.arrived.get(), 5)
        assert "Huawei-PortalURL" in second.attributes  # hotline 2, awaiting its ACK
        await container.top_up()(sub.customer_id, Money.of("2.00", "USD"), "card")
        await container.event_relay()()
        await asyncio.sleep(0.3)
        nas.gates[1].set()  # the NAS applies hotline 2
        for _ in range(50):
            await asyncio.sleep(0.1)
            if len(nas.gates) > 2:
                nas.gates[2].set()
                break
        await dae.stop()
        session = await session_of(container, sub)
        assert await container.radius_sessions().can_use(sub.account_id)
        assert not session.restricted, (
            f"paid, yet hotlined: last_dae={session.last_dae!r}, {len(nas.received)} CoAs received"
        )
    finally:
        for gate in nas.gates or []:
            gate.set()
        transport.close()


async def test_a_session_started_after_the_block_is_disconnected(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """The Access-Accept came before the block, the Accounting-Start after
    the relay handed on AccountBlocked (no session to disconnect then): the
    session's reports are refused, and it must be disconnected."""
    nas_listener, port = listener
    await register_nas(
        container, NasVendor.HUAWEI, accepts_coa=True, accepts_disconnect=True, dae_port=port
    )
    sub = await subscriber(container, "frank@isp", balance="5.00")
    await container.block_account()(sub.account_id)
    await relay(container, dae)
    assert nas_listener.received == []
    acct_port = server.addresses["acct"][1]
    base = 'User-Name = "frank@isp", Acct-Session-Id = "b-1", '
    start = await radclient(acct_port, "acct", base + "Acct-Status-Type = Start")
    interim = base + "Acct-Status-Type = Interim-Update, Acct-Output-Octets = "
    await radclient(acct_port, "acct", interim + str(5 * MIB))
    await radclient(acct_port, "acct", interim + str(9 * MIB))
    await dae.stop()
    sessions = await container.radius_sessions().open_for_account(sub.account_id)
    codes = [r.code for r in nas_listener.received]
    assert rp.DisconnectRequest in codes, (
        f"blocked account's session left connected: start={start.code}, "
        f"open sessions={[(s.acct_session_id, s.last_dae) for s in sessions]}, sent={codes}"
    )


async def test_a_throttled_session_whose_disconnect_went_unanswered_is_disconnected_later(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """A throttled session (free traffic at the throttle rates) of an account
    then terminated: the Disconnect goes unanswered (the NAS was busy). Its
    next refused report disconnects it, restricted as it is."""

    await change_broadband(container, policy=THROTTLED)
    nas_listener, port = listener
    await register_nas(
        container, NasVendor.JUNIPER, accepts_coa=True, accepts_disconnect=True, dae_port=port
    )
    sub = await subscriber(container, "gina@isp", balance="0.01")
    await relay(container, dae)  # the set-up's events pass
    acct_port = server.addresses["acct"][1]
    base = 'User-Name = "gina@isp", Acct-Session-Id = "t-1", '
    await radclient(acct_port, "acct", base + "Acct-Status-Type = Start")
    interim = base + "Acct-Status-Type = Interim-Update, Acct-Input-Octets = "
    await radclient(acct_port, "acct", interim + str(2 * MIB))
    await dae.stop()
    assert (await session_of(container, sub)).restricted  # throttled, ACKed
    nas_listener.silent = True
    await container.terminate_account()(sub.account_id)
    await relay(container, dae)
    assert (await session_of(container, sub)).last_dae == "disconnect AccountTerminated: no answer"
    nas_listener.silent = False
    sent_before = len(nas_listener.received)
    for octets in (3, 4, 5):  # the NAS goes on reporting the (free) throttled session
        await radclient(acct_port, "acct", interim + str(octets * MIB))
    await dae.stop()
    later = [r.code for r in nas_listener.received[sent_before:]]
    session = await session_of(container, sub)
    assert rp.DisconnectRequest in later, (
        f"terminated account's throttled session still open, never disconnected again: "
        f"last_dae={session.last_dae!r}, reports={session.reports}, sent after={later}"
    )


async def test_a_nas_taking_disconnect_but_not_coa_disconnects_a_user_out_of_funds(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """The NAS takes Disconnect-Request but not CoA (accepts_coa=False). The
    product says hotline, which this NAS cannot be told: it gets the
    Disconnect it can take."""
    nas_listener, port = listener
    await register_nas(
        container, NasVendor.HUAWEI, accepts_coa=False, accepts_disconnect=True, dae_port=port
    )
    sub = await subscriber(container, "hank@isp", balance="0.05")
    await relay(container, dae)
    acct_port = server.addresses["acct"][1]
    base = 'User-Name = "hank@isp", Acct-Session-Id = "h-1", '
    await radclient(acct_port, "acct", base + "Acct-Status-Type = Start")
    interim = base + "Acct-Status-Type = Interim-Update, Acct-Output-Octets = "
    for mib in (5, 500, 5000):
        await radclient(acct_port, "acct", interim + str(mib * MIB))
    await dae.stop()
    view = await container.balance_enquiry()(IdentifierKind.ACCOUNT_ID, sub.account_id)
    session = await session_of(container, sub)
    assert nas_listener.received, (
        f"no Disconnect: the session is open after {session.reports} refused reports "
        f"({session.octets} octets used, balance {view.balance})"
    )


class _Later:
    """The system clock, moved on."""

    def __init__(self, days: float) -> None:
        self.days = days

    def now(self) -> datetime:
        from datetime import timedelta

        return datetime.now(UTC) + timedelta(days=self.days)


async def test_a_quota_renewal_lifts_the_throttle_at_once(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """A fair-use product: 10 MiB a month, then throttled. The monthly
    renewal (housekeeping, QuotaRenewed) gives the user data again, as a
    top-up or add-on would: the throttle is lifted then, not only at the
    session's next interim report."""
    from dataclasses import replace as dc_replace
    from decimal import Decimal

    from ratel.application.housekeeping import Housekeeping
    from ratel.domain.catalogue import (
        QuotaDefinition,
        Renewal,
        Service,
        Unit,
    )

    await change_broadband(
        container,
        policy=THROTTLED,
        quotas=(
            QuotaDefinition("FUP", Service.DATA, Unit.BYTES, Decimal(10 * MIB), Renewal.MONTHLY),
        ),
    )
    nas_listener, port = listener
    await register_nas(container, NasVendor.JUNIPER, accepts_coa=True, dae_port=port)
    sub = await subscriber(container, "ivy@isp", balance="0")
    acct_port = server.addresses["acct"][1]
    base = 'User-Name = "ivy@isp", Acct-Session-Id = "q-1", '
    await radclient(acct_port, "acct", base + "Acct-Status-Type = Start")
    interim = base + "Acct-Status-Type = Interim-Update, Acct-Input-Octets = "
    await radclient(acct_port, "acct", interim + str(11 * MIB))
    await dae.stop()
    assert (await session_of(container, sub)).restricted, nas_listener.received
    await relay(container, dae)  # the events so far pass
    sent = len(nas_listener.received)
    renewed = await Housekeeping(dc_replace(container.deps(), clock=_Later(32))).renew_quotas()
    assert renewed >= 1
    assert await container.radius_sessions().can_use(sub.account_id)
    await relay(container, dae)
    restores = nas_listener.received[sent:]
    assert restores, (
        "quota renewed, the account may use data again, but the session stays throttled "
        f"until its next interim: last_dae={(await session_of(container, sub)).last_dae!r}"
    )


async def test_a_throttle_coa_to_a_generic_nas_carries_a_throttle(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """A GENERIC (RFC-only) NAS and a throttle-on-exhaustion product:
    the throttle CoA names the "throttle" filter (a CoA with the session's
    identity alone would be ACKed, change nothing, and the session's traffic,
    at full speed, would be charged nothing)."""
    from dataclasses import replace as dc_replace

    await change_broadband(container, policy=dc_replace(THROTTLED, name="FIBRE-20M"))
    nas_listener, port = listener
    await register_nas(container, NasVendor.GENERIC, accepts_coa=True, dae_port=port)
    sub = await subscriber(container, "jack@isp", balance="0.01")
    acct_port = server.addresses["acct"][1]
    base = 'User-Name = "jack@isp", Acct-Session-Id = "x-1", '
    await radclient(acct_port, "acct", base + "Acct-Status-Type = Start")
    interim = base + "Acct-Status-Type = Interim-Update, Acct-Input-Octets = "
    await radclient(acct_port, "acct", interim + str(2 * MIB))
    await dae.stop()
    session = await session_of(container, sub)
    [coa] = nas_listener.received
    identity = {"User-Name", "Acct-Session-Id", "Framed-IP-Address", "Message-Authenticator"}
    policy = sorted(set(coa.attributes) - identity)
    # the user goes on at full speed: free of charge now
    await radclient(acct_port, "acct", interim + str(2000 * MIB))
    view = await container.balance_enquiry()(IdentifierKind.ACCOUNT_ID, sub.account_id)
    assert policy, (
        f"throttle CoA with no policy attribute: {sorted(coa.attributes)}; "
        f"session restricted={session.restricted}; after 2 GB more the balance is {view.balance}"
    )


async def test_a_restore_to_a_generic_nas_lifts_the_hotline_filter(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """A GENERIC NAS is hotlined with Filter-Id "hotline". When the policy
    has no name, there is nothing to restore with (a CoA without attributes
    would be ACKed and leave the "hotline" filter): the session is
    disconnected, and its user reconnects with the full policy."""
    from dataclasses import replace as dc_replace

    from radius_support import POLICY

    await change_broadband(container, policy=dc_replace(POLICY, name=None))
    nas_listener, port = listener
    await register_nas(
        container, NasVendor.GENERIC, accepts_coa=True, accepts_disconnect=True, dae_port=port
    )
    sub = await subscriber(container, "kim@isp", balance="0.05")
    acct_port = server.addresses["acct"][1]
    base = 'User-Name = "kim@isp", Acct-Session-Id = "k-1", '
    await radclient(acct_port, "acct", base + "Acct-Status-Type = Start")
    interim = base + "Acct-Status-Type = Interim-Update, Acct-Output-Octets = "
    await radclient(acct_port, "acct", interim + str(5 * MIB))
    await relay(container, dae)
    [hotline] = nas_listener.received
    assert hotline.attributes["Filter-Id"] == ["hotline"]
    await container.top_up()(sub.customer_id, Money.of("2.00", "USD"), "card")
    await relay(container, dae)
    [_, restore] = nas_listener.received
    assert restore.code == rp.DisconnectRequest
    session = await session_of(container, sub)
    assert session.restricted  # nothing told the NAS to lift the hotline


async def test_a_dead_nas_does_not_hold_back_the_disconnects_of_the_others(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """An account blocked with sessions on two NASes: four on a NAS that
    does not answer, one on a healthy NAS: the healthy NAS's Disconnect does
    not wait for the dead NAS's timeouts."""
    import time

    from radius_support import SECRET

    nas_listener, port = listener
    await register_nas(
        container, NasVendor.HUAWEI, accepts_coa=True, accepts_disconnect=True, dae_port=port
    )
    await container.manage_nas().register(
        "bras-dead",
        "127.0.0.2",
        SECRET,
        vendor=NasVendor.HUAWEI,
        accepts_coa=True,
        accepts_disconnect=True,
        dae_port=9,
    )
    await server.nas.load()
    sub = await subscriber(container, "liz@isp", balance="5.00")
    now = datetime.now(UTC)
    async with container.radius_store()() as store:
        for n in range(4):
            await store.sessions.add(
                RadiusSession(
                    "127.0.0.2",
                    f"dead-{n}",
                    f"radius:127.0.0.2:dead-{n}",
                    "",
                    sub.account_id,
                    sub.customer_id,
                    "liz@isp",
                    now,
                    now,
                )
            )
        await store.commit()
    acct_port = server.addresses["acct"][1]
    await radclient(
        acct_port, "acct", 'User-Name = "liz@isp", Acct-Status-Type = Start, Acct-Session-Id = "ok"'
    )
    await relay(container, dae)
    await container.block_account()(sub.account_id)
    began = time.monotonic()
    await container.event_relay()()
    disconnect = await asyncio.wait_for(nas_listener.arrived.get(), 10)
    waited = time.monotonic() - began
    await dae.stop()
    assert disconnect.code == rp.DisconnectRequest
    assert waited < 1.0, f"the healthy NAS's Disconnect waited {waited:.1f} s for the dead NAS"


async def exhausted(
    container: Container,
    server: RadiusServer,
    listener: DaeListener,
    port: int,
    vendor: NasVendor,
    *,
    accepts_disconnect: bool = True,
) -> tuple[str, str]:
    """dora's session p-1 on a ``vendor`` NAS, whose first 5 MiB spent her
    0.05: its restriction (hotline or throttle, as BROADBAND says) has been
    acknowledged. Her customer id and her account id."""
    await register_nas(
        container, vendor, accepts_coa=True, accepts_disconnect=accepts_disconnect, dae_port=port
    )
    sub = await subscriber(container, "dora@isp", balance="0.05")
    acct_port = server.addresses["acct"][1]
    base = 'User-Name = "dora@isp", Acct-Session-Id = "p-1", '
    await radclient(acct_port, "acct", base + "Acct-Status-Type = Start")
    interim = base + f"Acct-Status-Type = Interim-Update, Acct-Output-Octets = {5 * MIB}"
    await radclient(acct_port, "acct", interim)
    restriction = await asyncio.wait_for(listener.arrived.get(), 5)
    assert restriction.code == rp.CoARequest
    return sub.customer_id, sub.account_id


@pytest.mark.parametrize(
    ("vendor", "portal"),
    [
        (NasVendor.HUAWEI, "Huawei-PortalURL"),
        (NasVendor.ALCATEL, "Alc-Portal-Url"),
        (NasVendor.CISCO, "Cisco-AVPair"),
    ],
)
async def test_a_paid_up_portal_hotline_is_lifted_by_reconnecting_not_by_a_coa_that_keeps_it(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
    vendor: NasVendor,
    portal: str,
) -> None:
    """These vendors' hotline is a portal URL attribute. A CoA changes the
    attributes it carries and keeps the others, so a restoring CoA with the
    policy's rates was ACKed, the session marked restored, and the user
    stayed redirected to the top-up page after paying."""
    nas_listener, port = listener
    customer, account = await exhausted(container, server, nas_listener, port, vendor)
    assert any("topup.example" in str(v) for v in nas_listener.received[0].attributes[portal])
    await relay(container, dae)
    await container.top_up()(customer, Money.of("2.00", "USD"), "card")
    await relay(container, dae)
    restores = nas_listener.received[1:]
    assert [r.code for r in restores] == [rp.DisconnectRequest], [r.attributes for r in restores]
    assert restores[0].attributes["Acct-Session-Id"] == ["p-1"]
    [session] = await container.radius_sessions().open_for_account(account)
    assert session.last_dae == "disconnect BalanceChanged: restored by reconnecting: ACK"


async def test_a_throttled_session_is_restored_by_coa_since_rates_replace_rates(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    await change_broadband(container, policy=THROTTLED)
    nas_listener, port = listener
    customer, account = await exhausted(container, server, nas_listener, port, NasVendor.HUAWEI)
    await relay(container, dae)
    [session] = await container.radius_sessions().open_for_account(account)
    assert session.restriction is Restriction.THROTTLE
    await container.top_up()(customer, Money.of("2.00", "USD"), "card")
    await relay(container, dae)
    [restore] = nas_listener.received[1:]
    assert restore.code == rp.CoARequest
    assert restore.attributes["Huawei-Output-Average-Rate"] == [20_000_000]
    [session] = await container.radius_sessions().open_for_account(account)
    assert session.restriction is None


async def test_a_portal_hotline_whose_nas_refuses_the_disconnect_gets_its_rates_by_coa(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """The Disconnect that would lift the portal is NAKed: the user keeps at
    least the rates that were paid for (and the warning says the portal may
    stay)."""
    nas_listener, port = listener
    customer, account = await exhausted(container, server, nas_listener, port, NasVendor.HUAWEI)
    await relay(container, dae)
    nas_listener.disconnect_nak = 501  # Administratively-Prohibited
    await container.top_up()(customer, Money.of("2.00", "USD"), "card")
    await relay(container, dae)
    assert [r.code for r in nas_listener.received[1:]] == [
        rp.DisconnectRequest,
        rp.CoARequest,
    ]
    assert nas_listener.received[-1].attributes["Huawei-Output-Average-Rate"] == [20_000_000]
    [session] = await container.radius_sessions().open_for_account(account)
    assert not session.restricted
