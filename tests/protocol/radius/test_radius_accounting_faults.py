"""RADIUS accounting where money leaks easily: a charging session ended under
an open accounting session (Tcc supervision, a long outage), mobile
sub-sessions and correlation ids, a NAS restarting while its users come back,
and reports of one session racing each other. Each of the first five tests
failed before its fix (usage acknowledged and never charged, or charged to
another user)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pyrad import packet as rp
from radius_support import MIB, SECRET, Subscriber, radclient, register_nas, subscriber

from ratel.adapters.radius.attributes import dictionary
from ratel.adapters.radius.server import RadiusServer
from ratel.application.housekeeping import Housekeeping
from ratel.application.radius import AccountingReport
from ratel.container import Container
from ratel.domain.nas import NasVendor
from ratel.ports.store import IdentifierKind

pytestmark = pytest.mark.asyncio


def acct_port(server: RadiusServer) -> int:
    return server.addresses["acct"][1]


async def balance(container: Container, sub: Subscriber) -> Decimal:
    view = await container.balance_enquiry()(IdentifierKind.ACCOUNT_ID, sub.account_id)
    return view.balance.amount


def acct(status: str, session: str, login: str = "alice@isp", **counters: int) -> str:
    parts = [
        f'User-Name = "{login}"',
        f"Acct-Status-Type = {status}",
        f'Acct-Session-Id = "{session}"',
    ]
    parts += [f"{name.replace('_', '-')} = {value}" for name, value in counters.items()]
    return ", ".join(parts)


class Later:
    """The system clock, moved on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.seconds)


# -- 1. Tcc supervision closes the charging session of a quiet RADIUS session -------


async def test_usage_reported_after_tcc_release_is_still_charged(
    container: Container, server: RadiusServer
) -> None:
    """A NAS silent for more than validity + Tcc grace (no interims configured,
    or ratel or the link down for an hour): housekeeping releases the charging
    session while the NAS still serves the user. Its Stop is charged, in a
    new charging session from the counters last charged."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    port = acct_port(server)
    assert (await radclient(port, "acct", acct("Start", "tcc-1"))).code == "Accounting-Response"
    validity = container.deps().charging.validity_seconds
    later = Housekeeping(replace(container.deps(), clock=Later(validity + 61)))
    assert await later.release_idle_sessions() == 1
    stop = acct("Stop", "tcc-1", Acct_Output_Octets=10 * MIB, Acct_Session_Time=validity + 61)
    assert (await radclient(port, "acct", stop)).code == "Accounting-Response"
    # 10 MiB at 0.01 were used and acknowledged: they must be charged
    assert await balance(container, sub) == Decimal("4.90")


async def test_interims_after_tcc_release_are_charged(
    container: Container, server: RadiusServer
) -> None:
    """Same, with Interim-Updates: every later interim is charged."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    port = acct_port(server)
    await radclient(port, "acct", acct("Start", "tcc-2"))
    validity = container.deps().charging.validity_seconds
    later = Housekeeping(replace(container.deps(), clock=Later(validity + 61)))
    assert await later.release_idle_sessions() == 1
    for n in (1, 2, 3):
        interim = acct(
            "Interim-Update",
            "tcc-2",
            Acct_Output_Octets=n * 100 * MIB,
            Acct_Session_Time=validity + 61 + n * 60,
        )
        assert (await radclient(port, "acct", interim)).code == "Accounting-Response"
    assert await balance(container, sub) == Decimal("2.00")  # 300 MiB at 0.01


# -- 2. Cisco PDSN hand-off: the new sub-session's Start after the old one's Stop ---


async def test_pdsn_handoff_start_after_the_last_stop_is_charged(
    container: Container, server: RadiusServer
) -> None:
    """A hand-off where the Stop of sub-session bs-1 arrives before the Start
    of bs-2 (same correlation id): the Stop ended the correlation's charging
    session, and bs-2 goes on in its next generation, charged."""
    await register_nas(container, NasVendor.CISCO_PDSN)
    sub = await subscriber(container, "phone@isp", balance="5.00")
    port = acct_port(server)
    multi = ', Acct-Multi-Session-Id = "corr-7"'
    await radclient(port, "acct", acct("Start", "bs-1", "phone@isp") + multi)
    stop_1 = acct("Stop", "bs-1", "phone@isp", Acct_Output_Octets=MIB) + multi
    await radclient(port, "acct", stop_1)
    assert await balance(container, sub) == Decimal("4.99")
    start_2 = acct("Start", "bs-2", "phone@isp") + multi
    assert (await radclient(port, "acct", start_2)).code == "Accounting-Response"
    interim_2 = acct("Interim-Update", "bs-2", "phone@isp", Acct_Output_Octets=20 * MIB) + multi
    assert (await radclient(port, "acct", interim_2)).code == "Accounting-Response"
    stop_2 = acct("Stop", "bs-2", "phone@isp", Acct_Output_Octets=30 * MIB) + multi
    assert (await radclient(port, "acct", stop_2)).code == "Accounting-Response"
    assert await balance(container, sub) == Decimal("4.69")  # 1 + 30 MiB
    xdrs = await container.account_xdrs()(sub.account_id)
    assert sum(line.units for x in xdrs for line in x.lines) == 31 * MIB


async def reserved(container: Container, sub: Subscriber) -> Decimal:
    view = await container.balance_enquiry()(IdentifierKind.ACCOUNT_ID, sub.account_id)
    return view.reserved.amount


async def test_pdsn_sub_sessions_live_at_once_each_hold_their_grant(
    container: Container, server: RadiusServer
) -> None:
    """A hand-off where bs-2 starts while bs-1 still runs (same correlation
    id, one stream): both have a grant out. The stream had one hold, so
    bs-2's Start released bs-1's and held again: the funds held once while
    both sub-sessions spent them."""
    await register_nas(container, NasVendor.CISCO_PDSN)
    sub = await subscriber(container, "phone@isp", balance="50.00")
    port = acct_port(server)
    multi = ', Acct-Multi-Session-Id = "corr-8"'
    await radclient(port, "acct", acct("Start", "bs-1", "phone@isp") + multi)
    one = await reserved(container, sub)
    assert one > 0
    await radclient(port, "acct", acct("Start", "bs-2", "phone@isp") + multi)
    assert await reserved(container, sub) == 2 * one
    interim_1 = acct("Interim-Update", "bs-1", "phone@isp", Acct_Output_Octets=10 * MIB) + multi
    assert (await radclient(port, "acct", interim_1)).code == "Accounting-Response"
    assert await reserved(container, sub) == 2 * one  # bs-1 held again, bs-2's still held
    stop_1 = acct("Stop", "bs-1", "phone@isp", Acct_Output_Octets=20 * MIB) + multi
    await radclient(port, "acct", stop_1)
    assert await reserved(container, sub) == one  # only bs-2's grant is out
    stop_2 = acct("Stop", "bs-2", "phone@isp", Acct_Output_Octets=5 * MIB) + multi
    await radclient(port, "acct", stop_2)
    assert await reserved(container, sub) == 0
    assert await balance(container, sub) == Decimal("49.75")  # 25 MiB
    (xdr,) = await container.account_xdrs()(sub.account_id)
    assert set(xdr.sub_sessions) == {"bs-1", "bs-2"}


# -- 3. Accounting-On and a Start of the rebooted NAS reusing a session id ----------


def _raw_acct(identifier: int, **attributes: object) -> bytes:
    request = rp.AcctPacket(secret=SECRET.encode(), dict=dictionary(), id=identifier)
    for name, value in attributes.items():
        request[name.replace("_", "-")] = value
    return request.RequestPacket()


async def test_a_start_during_accounting_on_is_not_closed_by_it(
    container: Container, server: RadiusServer
) -> None:
    """The NAS rebooted: it sends Accounting-On and, while ratel is still
    closing its many old sessions (a BRAS has tens of thousands), its users
    reconnect and it sends Starts, reusing Acct-Session-Ids from 1. A Start
    under the id of an old session not closed yet ends that one and opens a
    new session, which the Accounting-On leaves open."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="50.00")
    accounting = container.charge_accounting()
    count = 150
    for n in range(1, count + 1):
        await accounting.start(AccountingReport("127.0.0.1", str(n), "alice@isp"))
    port = acct_port(server)
    before = await balance(container, sub)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nas:
        nas.settimeout(30)
        nas.bind(("127.0.0.1", 0))
        on = _raw_acct(1, Acct_Status_Type="Accounting-On")
        start = _raw_acct(
            2, User_Name="alice@isp", Acct_Status_Type="Start", Acct_Session_Id=str(count)
        )
        nas.sendto(on, ("127.0.0.1", port))
        await asyncio.sleep(0.05)
        nas.sendto(start, ("127.0.0.1", port))
        replies = {(await asyncio.to_thread(nas.recv, 4096))[1] for _ in range(2)}
        assert replies == {1, 2}
    interim = acct("Interim-Update", str(count), Acct_Output_Octets=10 * MIB, Acct_Session_Time=60)
    assert (await radclient(port, "acct", interim)).code == "Accounting-Response"
    # the new session's 10 MiB are charged, and it is open
    assert before - await balance(container, sub) == Decimal("0.10")
    open_ = await container.radius_sessions().open_for_account(sub.account_id)
    assert [s.acct_session_id for s in open_] == [str(count)]


# -- 4. Acct-Multi-Session-Id is taken as global: two NASes, two users, one account --


async def _send(source: str, port: int, identifier: int, **attributes: object) -> int:
    """The code of the answer to an Accounting-Request sent from ``source``."""
    reply = await _send_raw(port, _raw_acct(identifier, **attributes), source, timeout=5)
    assert reply is not None, "no answer"
    return reply[0]


async def test_same_multi_session_id_on_two_nases_charges_each_user(
    container: Container, server: RadiusServer
) -> None:
    """Acct-Multi-Session-Id (RFC 2866 5.11) is only unique per NAS (Cisco
    counts it in hex from 1): bob's session on bras-2 must not join alice's
    charging session on bras-1 under the same id."""
    await register_nas(container, NasVendor.CISCO)
    await container.manage_nas().register("bras-2", "127.0.0.2", SECRET, vendor=NasVendor.CISCO)
    await server.nas.load()
    alice = await subscriber(container, "alice@isp", balance="5.00")
    bob = await subscriber(container, "bob@isp", balance="5.00")
    port = acct_port(server)
    multi = "0000000A"
    code = await _send(
        "127.0.0.1",
        port,
        1,
        User_Name="alice@isp",
        Acct_Status_Type="Start",
        Acct_Session_Id="a-1",
        Acct_Multi_Session_Id=multi,
    )
    assert code == rp.AccountingResponse
    code = await _send(
        "127.0.0.2",
        port,
        1,
        User_Name="bob@isp",
        Acct_Status_Type="Start",
        Acct_Session_Id="b-1",
        Acct_Multi_Session_Id=multi,
    )
    assert code == rp.AccountingResponse
    code = await _send(
        "127.0.0.2",
        port,
        2,
        User_Name="bob@isp",
        Acct_Status_Type="Stop",
        Acct_Session_Id="b-1",
        Acct_Multi_Session_Id=multi,
        Acct_Output_Octets=40 * MIB,
        Acct_Session_Time=100,
    )
    assert code == rp.AccountingResponse
    assert await balance(container, alice) == Decimal("5.00")
    assert await balance(container, bob) == Decimal("4.60")


# -- 1b. ... and a NAS that keeps sending interims still gets released --------------


class SetClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
async def clocked(database_url: str):  # type: ignore[no-untyped-def]
    """A container and RADIUS server on a clock the test moves."""
    from dependency_injector import providers
    from radius_support import define_catalogue, server_settings

    from ratel.container import build_container, dispose

    clock = SetClock(datetime.now(UTC))
    container = build_container(server_settings(database_url))
    container.clock.override(providers.Object(clock))
    await define_catalogue(container)
    server: RadiusServer = container.radius_server()
    await server.start()
    yield container, server, clock
    await server.stop()
    await dispose(container)


async def test_idle_interims_without_session_time_keep_the_session_alive(clocked) -> None:  # type: ignore[no-untyped-def]
    """RFC 2866 5.7: Acct-Session-Time is only required in Stop; many NASes
    leave it out of interims. An idle user's interims then repeat the same
    counters. Once the session has been quiet for half a grant's validity,
    such an interim is charged (nothing used), so Tcc supervision sees the
    NAS alive and does not release the session."""
    container, server, clock = clocked
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    port = acct_port(server)
    t0 = clock.at
    await radclient(port, "acct", acct("Start", "idle-1"))
    clock.at = t0 + timedelta(seconds=60)
    await radclient(port, "acct", acct("Interim-Update", "idle-1", Acct_Output_Octets=5 * MIB))
    for minutes in range(5, 63, 5):  # an interim every 5 minutes, no traffic
        clock.at = t0 + timedelta(minutes=minutes)
        idle = acct("Interim-Update", "idle-1", Acct_Output_Octets=5 * MIB)
        assert (await radclient(port, "acct", idle)).code == "Accounting-Response"
    clock.at = t0 + timedelta(minutes=63)
    released = await container.housekeeping().release_idle_sessions()
    busy = acct("Interim-Update", "idle-1", Acct_Output_Octets=55 * MIB)
    clock.at = t0 + timedelta(minutes=64)
    assert (await radclient(port, "acct", busy)).code == "Accounting-Response"
    stop = acct("Stop", "idle-1", Acct_Output_Octets=105 * MIB, Acct_Session_Time=3900)
    assert (await radclient(port, "acct", stop)).code == "Accounting-Response"
    assert (released, await balance(container, sub)) == (0, Decimal("3.95"))  # 105 MiB


# -- reports that race each other -------------------------------------------------


async def _burst(port: int, packets: list[bytes]) -> list[int]:
    """Send every packet at once from one socket; the identifiers answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nas:
        nas.settimeout(10)
        nas.bind(("127.0.0.1", 0))
        for raw in packets:
            nas.sendto(raw, ("127.0.0.1", port))
        return [(await asyncio.to_thread(nas.recv, 4096))[1] for _ in packets]


async def test_interim_after_stop_and_accounting_on_late_interim_not_charged(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    port = acct_port(server)
    await radclient(port, "acct", acct("Start", "x-1"))
    await radclient(port, "acct", acct("Stop", "x-1", Acct_Output_Octets=10 * MIB))
    late = acct("Interim-Update", "x-1", Acct_Output_Octets=8 * MIB, Acct_Session_Time=30)
    assert (await radclient(port, "acct", late)).code == "Accounting-Response"
    await radclient(port, "acct", acct("Start", "x-2"))
    await radclient(port, "acct", acct("Interim-Update", "x-2", Acct_Output_Octets=5 * MIB))
    await radclient(port, "acct", "Acct-Status-Type = Accounting-On")
    late = acct("Interim-Update", "x-2", Acct_Output_Octets=7 * MIB, Acct_Session_Time=99)
    assert (await radclient(port, "acct", late)).code == "Accounting-Response"
    assert await balance(container, sub) == Decimal("4.85")
    assert len(await container.account_xdrs()(sub.account_id)) == 2


async def test_concurrent_reports_of_one_session_in_batches_are_charged_once(
    container: Container, server: RadiusServer
) -> None:
    """Start, two interims (one resent under a new identifier) and the Stop
    (twice) all at once, charging workers running: 30 MiB, one xDR."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    workers = container.charging_workers()
    await workers.start()
    try:
        common = {"User_Name": "alice@isp", "Acct_Session_Id": "c-1"}
        packets = [
            _raw_acct(1, Acct_Status_Type="Start", **common),
            _raw_acct(
                2,
                Acct_Status_Type="Interim-Update",
                Acct_Output_Octets=10 * MIB,
                Acct_Session_Time=60,
                **common,
            ),
            _raw_acct(
                3,
                Acct_Status_Type="Interim-Update",
                Acct_Output_Octets=10 * MIB,
                Acct_Session_Time=60,
                **common,
            ),
            _raw_acct(
                4,
                Acct_Status_Type="Interim-Update",
                Acct_Output_Octets=20 * MIB,
                Acct_Session_Time=120,
                **common,
            ),
            _raw_acct(
                5,
                Acct_Status_Type="Stop",
                Acct_Output_Octets=30 * MIB,
                Acct_Session_Time=150,
                **common,
            ),
            _raw_acct(
                6,
                Acct_Status_Type="Stop",
                Acct_Output_Octets=30 * MIB,
                Acct_Session_Time=150,
                **common,
            ),
        ]
        answered = await _burst(acct_port(server), packets)
    finally:
        await workers.stop()
    assert sorted(answered) == [1, 2, 3, 4, 5, 6]
    assert await balance(container, sub) == Decimal("4.70")
    [xdr] = await container.account_xdrs()(sub.account_id)
    assert xdr.lines[0].units == 30 * MIB


async def test_concurrent_sub_session_starts_and_stops_make_one_xdr(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container, NasVendor.CISCO_PDSN)
    sub = await subscriber(container, "phone@isp", balance="5.00")
    workers = container.charging_workers()
    await workers.start()
    try:
        port = acct_port(server)
        starts = [
            _raw_acct(
                n,
                User_Name="phone@isp",
                Acct_Status_Type="Start",
                Acct_Session_Id=f"bs-{n}",
                Acct_Multi_Session_Id="corr-c",
            )
            for n in (1, 2, 3)
        ]
        await _burst(port, starts)
        stops = [
            _raw_acct(
                10 + n,
                User_Name="phone@isp",
                Acct_Status_Type="Stop",
                Acct_Session_Id=f"bs-{n}",
                Acct_Multi_Session_Id="corr-c",
                Acct_Output_Octets=n * MIB,
            )
            for n in (1, 2, 3)
        ]
        await _burst(port, stops)
    finally:
        await workers.stop()
    [xdr] = await container.account_xdrs()(sub.account_id)
    assert xdr.lines[0].units == 6 * MIB
    assert await balance(container, sub) == Decimal("4.94")


# -- an attribute pyrad cannot decode ------------------------------------------------


def _with_raw_attribute(packet: bytes, attribute: bytes) -> bytes:
    """``packet`` (an Accounting-Request) with ``attribute`` appended as is,
    its Length and Request Authenticator made again (RFC 2866 section 3)."""
    body = packet[20:] + attribute
    header = packet[:2] + (20 + len(body)).to_bytes(2, "big")
    authenticator = hashlib.md5(header + bytes(16) + body + SECRET.encode()).digest()
    return header + authenticator + body


async def _send_raw(
    port: int, packet: bytes, source: str = "127.0.0.1", timeout: float = 1.0
) -> bytes | None:
    """The answer to ``packet`` sent from ``source``; None when none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nas:
        nas.settimeout(timeout)
        nas.bind((source, 0))
        nas.sendto(packet, ("127.0.0.1", port))
        try:
            return await asyncio.to_thread(nas.recv, 4096)
        except TimeoutError:
            return None


def _dropped(container: Container, code: str) -> float:
    value = container.telemetry().registry.get_sample_value(
        "ratel_errors_total",
        {"protocol": "radius", "operation": "request", "outcome": "dropped", "code": code},
    )
    return value or 0.0


async def test_an_invalid_attribute_ratel_does_not_use_is_skipped_and_the_report_charged(
    container: Container, server: RadiusServer
) -> None:
    """RFC 6929 section 2.8: an attribute whose value cannot be decoded (here
    NAS-Port, an integer, three octets long) is an "invalid attribute", taken
    as unknown; the packet is not discarded for it. An invalid attribute the
    report needs (the octets) makes the packet malformed: dropped, counted,
    never answered, nothing charged."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    port = acct_port(server)
    await radclient(port, "acct", acct("Start", "inv-1"))
    bad_port = bytes([5, 5, 0, 0, 1])  # NAS-Port, Length 5: an integer needs 4 octets
    interim = _raw_acct(
        7,
        User_Name="alice@isp",
        Acct_Status_Type="Interim-Update",
        Acct_Session_Id="inv-1",
        Acct_Output_Octets=10 * MIB,
        Acct_Session_Time=60,
    )
    reply = await _send_raw(port, _with_raw_attribute(interim, bad_port))
    assert reply is not None and reply[0] == rp.AccountingResponse and reply[1] == 7
    assert await balance(container, sub) == Decimal("4.90")
    bad_octets = bytes([43, 5, 0, 0, 1])  # Acct-Output-Octets, three octets
    interim = _raw_acct(
        8,
        User_Name="alice@isp",
        Acct_Status_Type="Interim-Update",
        Acct_Session_Id="inv-1",
        Acct_Session_Time=120,
    )
    assert await _send_raw(port, _with_raw_attribute(interim, bad_octets)) is None
    assert _dropped(container, "malformed") == 1
    assert await balance(container, sub) == Decimal("4.90")


async def test_a_nas_without_gigawords_is_charged_across_its_counter_wrap(
    container: Container, server: RadiusServer
) -> None:
    """The 32-bit Acct-Output-Octets wraps at 4 GiB on a NAS that sends no
    Gigawords: the report after the wrap is charged, not taken for a late one."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="500.00")
    port = acct_port(server)
    await radclient(port, "acct", acct("Start", "wrap-1"))
    before_wrap = acct("Interim-Update", "wrap-1", Acct_Output_Octets=2**32 - MIB)
    assert (await radclient(port, "acct", before_wrap)).code == "Accounting-Response"
    charged = await balance(container, sub)
    after_wrap = acct("Interim-Update", "wrap-1", Acct_Output_Octets=MIB)
    assert (await radclient(port, "acct", after_wrap)).code == "Accounting-Response"
    assert charged - await balance(container, sub) == Decimal("0.02")  # 2 MiB at 0.01
