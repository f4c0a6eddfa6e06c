"""ratel's RADIUS server driven by FreeRADIUS's radclient as the gateway."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from pyrad import packet as rp
from radius_support import (
    MIB,
    PASSWORD,
    SECRET,
    Subscriber,
    radclient,
    register_nas,
    subscriber,
)

from ratel.adapters.radius.attributes import dictionary
from ratel.adapters.radius.server import RadiusServer
from ratel.container import Container
from ratel.domain.money import Money
from ratel.domain.nas import NasVendor
from ratel.ports.store import IdentifierKind

pytestmark = pytest.mark.asyncio


def ports(server: RadiusServer) -> tuple[int, int]:
    return server.addresses["auth"][1], server.addresses["acct"][1]


async def balance(container: Container, sub: Subscriber) -> Decimal:
    view = await container.balance_enquiry()(IdentifierKind.ACCOUNT_ID, sub.account_id)
    return view.balance.amount


def dropped(container: Container, code: str) -> float:
    value = container.telemetry().registry.get_sample_value(
        "ratel_errors_total",
        {"protocol": "radius", "operation": "request", "outcome": "dropped", "code": code},
    )
    return value or 0.0


def acct(status: str, session: str, login: str = "alice@isp", **counters: int) -> str:
    parts = [
        f'User-Name = "{login}"',
        f"Acct-Status-Type = {status}",
        f'Acct-Session-Id = "{session}"',
    ]
    parts += [f"{name.replace('_', '-')} = {value}" for name, value in counters.items()]
    return ", ".join(parts)


def pap(login: str, password: str = PASSWORD) -> str:
    return f'User-Name = "{login}", User-Password = "{password}"'


# -- Access-Request ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        (
            NasVendor.HUAWEI,
            {
                "Huawei-Output-Average-Rate": ["20000000"],
                "Huawei-Input-Average-Rate": ["5000000"],
                "Huawei-Qos-Profile-Name": ["FIBRE-20M"],
            },
        ),
        (NasVendor.JUNIPER, {"ERX-Service-Activate:1": ["rate-limit(20000000,5000000)"]}),
        (
            NasVendor.ALCATEL,
            {"Alc-Subscriber-QoS-Override": ["e:r:20000", "i:p:1:pir=5000"]},
        ),
        (
            NasVendor.CISCO,
            {
                "Cisco-AVPair": [
                    "ip:qos-policy-out=add-class(sub,(class-default),shape(20000000))",
                    "ip:qos-policy-in=add-class(sub,(class-default),police(5000000))",
                    "subscriber:service-name=FIBRE-20M",
                ]
            },
        ),
        (NasVendor.CISCO_ASR5700, {"Filter-Id": ["FIBRE-20M"]}),
    ],
)
async def test_accept_carries_the_policy_in_the_vendor_attributes(
    container: Container,
    server: RadiusServer,
    vendor: NasVendor,
    expected: dict[str, list[str]],
) -> None:
    steerable = vendor is not NasVendor.CISCO_ASR5700  # which takes no CoA or Disconnect
    await register_nas(container, vendor, accepts_coa=steerable, accepts_disconnect=steerable)
    await subscriber(container, "alice@isp", static_ip="203.0.113.10/29")
    reply = await radclient(ports(server)[0], "auth", pap("alice@isp"))
    assert reply.code == "Access-Accept", reply.output
    for name, values in expected.items():
        assert reply.attributes.get(name) == values, reply.output
    # the ASR 5700's session lasts what 1.00 pays (100 MiB) at 20 + 5 Mbit/s
    timeout = 3600 if steerable else 100 * MIB * 8 // 25_000_000
    assert reply.attributes["Session-Timeout"] == [str(timeout)]
    assert reply.attributes["Acct-Interim-Interval"] == ["60"]
    assert reply.attributes["Framed-IP-Address"] == ["203.0.113.10"]
    assert "Message-Authenticator" in reply.attributes


@pytest.mark.parametrize("vendor", [NasVendor.CISCO_ASR5700, NasVendor.GENERIC])
async def test_a_nas_without_dynamic_authorization_gets_a_session_timeout_the_funds_bound(
    container: Container, server: RadiusServer, vendor: NasVendor
) -> None:
    """Issue 5: a NAS that accepts neither CoA nor Disconnect cannot be told
    when the money runs out, so its sessions get a Session-Timeout bounded by
    the funds (how long they last at the policy's 20 + 5 Mbit/s) and are
    refused at re-authorization once the money is spent. It used to be the
    grant validity (3600 s) whatever the balance."""
    await register_nas(container, vendor)
    auth, acct_port = ports(server)
    rate = 25_000_000 // 8  # octets per second at the line rate
    sub = await subscriber(container, "alice@isp", balance="0.50")
    reply = await radclient(auth, "auth", pap("alice@isp"))
    assert reply.attributes["Session-Timeout"] == [str(50 * MIB // rate)], reply.output
    await container.top_up()(sub.customer_id, Money.of("1.50", "USD"))
    reply = await radclient(auth, "auth", pap("alice@isp"))
    assert reply.attributes["Session-Timeout"] == [str(200 * MIB // rate)], reply.output
    await container.top_up()(sub.customer_id, Money.of("1000", "USD"))
    reply = await radclient(auth, "auth", pap("alice@isp"))
    assert reply.attributes["Session-Timeout"] == ["3600"]  # at most a grant's validity
    # the session spends what it may; at the next login it is refused
    await subscriber(container, "bob@isp", balance="0.20")
    assert (await radclient(acct_port, "acct", acct("Start", "b-1", "bob@isp"))).code == (
        "Accounting-Response"
    )
    stop = acct("Stop", "b-1", "bob@isp", Acct_Output_Octets=20 * MIB)
    assert (await radclient(acct_port, "acct", stop)).code == "Accounting-Response"
    reply = await radclient(auth, "auth", pap("bob@isp"))
    assert reply.code == "Access-Reject"
    assert reply.attributes["Reply-Message"] == ["No funds or quota left: please top up"]


async def test_chap_is_checked_against_the_chap_secret(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    sub = await subscriber(container, "carol@isp")
    await container.set_chap_secret()(sub.account_id, "chap-pass")
    auth = ports(server)[0]
    # radclient computes CHAP-Password itself from a cleartext "CHAP-Password"
    good = await radclient(auth, "auth", 'User-Name = "carol@isp", CHAP-Password = "chap-pass"')
    bad = await radclient(auth, "auth", 'User-Name = "carol@isp", CHAP-Password = "nope"')
    assert good.code == "Access-Accept", good.output
    assert bad.code == "Access-Reject", bad.output


async def test_every_reject_reason_has_its_reply_message(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    auth = ports(server)[0]
    await subscriber(container, "ok@isp")
    blocked = await subscriber(container, "blocked@isp")
    await container.block_account()(blocked.account_id)
    terminated = await subscriber(container, "gone@isp")
    await container.terminate_account()(terminated.account_id)
    suspended = await subscriber(container, "late@isp")
    await container.suspend_customer()(suspended.customer_id)
    await subscriber(container, "broke@isp", balance="0")

    cases = {
        pap("nobody@isp"): "Unknown user",
        pap("ok@isp", "wrong-password"): "Wrong user name or password",
        pap("blocked@isp"): "Your account is blocked",
        pap("gone@isp"): "Your account is terminated",
        pap("late@isp"): "Your service is suspended",
        pap("broke@isp"): "No funds or quota left: please top up",
    }
    for attributes, message in cases.items():
        reply = await radclient(auth, "auth", attributes)
        assert reply.code == "Access-Reject", reply.output
        assert reply.attributes["Reply-Message"] == [message]
        assert "Message-Authenticator" in reply.attributes


# -- accounting ---------------------------------------------------------------------


async def test_interims_are_charged_and_the_stop_makes_one_xdr(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    acct_port = ports(server)[1]
    assert (await radclient(acct_port, "acct", acct("Start", "s-1"))).code == "Accounting-Response"
    interim = acct("Interim-Update", "s-1", Acct_Input_Octets=MIB, Acct_Output_Octets=9 * MIB)
    assert (await radclient(acct_port, "acct", interim)).code == "Accounting-Response"
    assert await balance(container, sub) == Decimal("4.90")  # 10 MiB at 0.01

    # the same report again (a NAS that resent it as a new packet): not charged twice
    assert (await radclient(acct_port, "acct", interim)).code == "Accounting-Response"
    assert await balance(container, sub) == Decimal("4.90")

    stop = acct("Stop", "s-1", Acct_Input_Octets=2 * MIB, Acct_Output_Octets=18 * MIB)
    assert (await radclient(acct_port, "acct", stop)).code == "Accounting-Response"
    assert await balance(container, sub) == Decimal("4.80")
    xdrs = await container.account_xdrs()(sub.account_id)
    assert len(xdrs) == 1
    assert xdrs[0].charge.amount == Decimal("0.20")
    assert xdrs[0].lines[0].units == 20 * MIB
    # a Stop resent after the xDR: acknowledged, nothing more
    assert (await radclient(acct_port, "acct", stop)).code == "Accounting-Response"
    assert len(await container.account_xdrs()(sub.account_id)) == 1
    assert await balance(container, sub) == Decimal("4.80")


async def test_gigawords_count_the_octets_past_4_gib(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    sub = await subscriber(container, "big@isp", balance="100.00")
    acct_port = ports(server)[1]
    await radclient(acct_port, "acct", acct("Start", "g-1", "big@isp"))
    # 4 GiB - 1 MiB, then the counter wraps: gigawords 1 and 1 MiB = 4 GiB + 1 MiB
    before = acct("Interim-Update", "g-1", "big@isp", Acct_Output_Octets=2**32 - MIB)
    wrapped = acct(
        "Interim-Update", "g-1", "big@isp", Acct_Output_Octets=MIB, Acct_Output_Gigawords=1
    )
    await radclient(acct_port, "acct", before)
    await radclient(acct_port, "acct", wrapped)
    charged = Decimal("100.00") - await balance(container, sub)
    assert charged == Decimal("40.97")  # 4097 MiB at 0.01: 2 MiB after the wrap, not -4 GiB


async def test_a_retransmitted_packet_gets_the_same_reply_and_is_charged_once(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    acct_port = ports(server)[1]
    await radclient(acct_port, "acct", acct("Start", "r-1"))
    request = rp.AcctPacket(secret=SECRET.encode(), dict=dictionary(), id=77)
    request["User-Name"] = "alice@isp"
    request["Acct-Status-Type"] = "Interim-Update"
    request["Acct-Session-Id"] = "r-1"
    request["Acct-Output-Octets"] = 50 * MIB
    raw = request.RequestPacket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gateway:
        gateway.settimeout(5)
        gateway.bind(("127.0.0.1", 0))
        replies = []
        # a copy while the first is being charged is dropped (its reply is coming) ...
        gateway.sendto(raw, ("127.0.0.1", acct_port))
        gateway.sendto(raw, ("127.0.0.1", acct_port))
        replies.append(await asyncio.to_thread(gateway.recv, 4096))
        for _ in range(2):  # ... and a copy after it gets the same reply again
            gateway.sendto(raw, ("127.0.0.1", acct_port))
            replies.append(await asyncio.to_thread(gateway.recv, 4096))
    assert len(set(replies)) == 1
    assert replies[0][0] == rp.AccountingResponse
    assert await balance(container, sub) == Decimal("4.50")


async def test_accounting_on_closes_the_open_sessions_of_the_nas(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    acct_port = ports(server)[1]
    await radclient(acct_port, "acct", acct("Start", "on-1"))
    await radclient(acct_port, "acct", acct("Interim-Update", "on-1", Acct_Output_Octets=3 * MIB))
    await radclient(acct_port, "acct", acct("Start", "on-2"))
    reply = await radclient(acct_port, "acct", "Acct-Status-Type = Accounting-On")
    assert reply.code == "Accounting-Response"
    xdrs = await container.account_xdrs()(sub.account_id)
    assert len(xdrs) == 2
    assert {x.cause for x in xdrs} == {"nas_reboot"}
    assert await balance(container, sub) == Decimal("4.97")
    assert await container.radius_sessions().open_for_account(sub.account_id) == []


async def test_accounting_on_closes_many_sessions_in_few_charging_batches(
    container: Container, server: RadiusServer
) -> None:
    """A BRAS has thousands of sessions: they are closed many at once, so the
    charging batches take them together and the NAS is answered soon."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    acct_port = ports(server)[1]
    count = 24
    for n in range(count):
        await radclient(acct_port, "acct", acct("Start", f"many-{n}"))
    workers = container.charging_workers()
    await workers.start()  # as `ratel serve` runs them
    try:
        batches, calls = workers.batches, workers.calls
        reply = await radclient(acct_port, "acct", "Acct-Status-Type = Accounting-On")
    finally:
        await workers.stop()
    assert reply.code == "Accounting-Response"
    assert workers.calls - calls == count
    assert workers.batches - batches <= count // 4  # one by one, it took 24
    xdrs = await container.account_xdrs()(sub.account_id, limit=100)
    assert len(xdrs) == count and {x.cause for x in xdrs} == {"nas_reboot"}
    assert await container.radius_sessions().open_for_account(sub.account_id) == []


async def test_mobile_sub_sessions_of_one_correlation_id_make_one_xdr(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container, NasVendor.CISCO_PDSN)
    sub = await subscriber(container, "phone@isp", balance="5.00")
    acct_port = ports(server)[1]
    multi = 'Acct-Multi-Session-Id = "corr-9"'
    await radclient(acct_port, "acct", acct("Start", "bs-1", "phone@isp") + ", " + multi)
    await radclient(acct_port, "acct", acct("Start", "bs-2", "phone@isp") + ", " + multi)
    stop_1 = acct("Stop", "bs-1", "phone@isp", Acct_Output_Octets=MIB) + ", " + multi
    await radclient(acct_port, "acct", stop_1)
    assert await container.account_xdrs()(sub.account_id) == []
    stop_2 = acct("Stop", "bs-2", "phone@isp", Acct_Output_Octets=2 * MIB) + ", " + multi
    await radclient(acct_port, "acct", stop_2)
    xdrs = await container.account_xdrs()(sub.account_id)
    assert len(xdrs) == 1
    assert xdrs[0].charge.amount == Decimal("0.03")
    assert set(xdrs[0].sub_sessions) == {"bs-1", "bs-2"}


# -- what is dropped ------------------------------------------------------------------


async def test_a_wrong_secret_and_an_unknown_nas_are_never_answered(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    auth, acct_port = ports(server)
    reply = await radclient(acct_port, "acct", acct("Start", "w-1"), secret="wrong", timeout=0.5)
    assert reply.code == "timeout"
    assert dropped(container, "bad_authenticator") == 1
    # an Access-Request with a Message-Authenticator made with the wrong secret
    signed = pap("alice@isp") + ", Message-Authenticator = 0x00"
    reply = await radclient(auth, "auth", signed, secret="wrong", timeout=0.5)
    assert reply.code == "timeout"
    assert dropped(container, "bad_message_authenticator") == 1
    await container.manage_nas().remove((await container.manage_nas().list())[0].id)
    await server.nas.load()
    reply = await radclient(auth, "auth", pap("alice@isp"), timeout=0.5)
    assert reply.code == "timeout"
    assert dropped(container, "unknown_nas") >= 1
    assert await balance(container, sub) == Decimal("5.00")


async def test_a_nas_that_requires_message_authenticator_gets_nothing_without_it(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container, require_message_authenticator=True)
    await subscriber(container, "alice@isp")
    auth = ports(server)[0]
    plain = rp.AuthPacket(secret=SECRET.encode(), dict=dictionary())
    plain["User-Name"] = "alice@isp"
    plain["User-Password"] = plain.PwCrypt(PASSWORD)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gateway:
        gateway.settimeout(0.5)
        gateway.sendto(plain.RequestPacket(), ("127.0.0.1", auth))
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(gateway.recv, 4096)
    assert dropped(container, "missing_message_authenticator") == 1
    signed = await radclient(auth, "auth", pap("alice@isp") + ", Message-Authenticator = 0x00")
    assert signed.code == "Access-Accept", signed.output


async def test_malformed_packets_are_survived(container: Container, server: RadiusServer) -> None:
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth, acct_port = ports(server)
    header_only = bytes([rp.AccessRequest, 1, 0, 20]) + b"\x00" * 16
    bad_attribute = bytes([rp.AccessRequest, 2, 0, 23]) + b"\x00" * 16 + bytes([1, 1, 0])
    lying_length = bytes([rp.AccountingRequest, 3, 0x10, 0]) + b"\x00" * 16
    accounting_body = bytes([4, 26, 0, 0]) + bytes([2, 11, 0, 0, 0, 0, 0, 0, 0, 0])
    digest = hashlib.md5(
        bytes([rp.AccountingRequest, 4, 0, 34]) + b"\x00" * 16 + accounting_body + SECRET.encode()
    ).digest()
    truncated_vsa = bytes([rp.AccountingRequest, 4, 0, 34]) + digest + accounting_body
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gateway:
        for port, junk in (
            (auth, b"\x01"),
            (auth, b"\xff" * 40),
            (auth, header_only),
            (auth, bad_attribute),
            (acct_port, lying_length),
            (acct_port, truncated_vsa),
            (acct_port, b"\x00" * 4096),
        ):
            gateway.sendto(junk, ("127.0.0.1", port))
    await asyncio.sleep(0.2)
    assert dropped(container, "malformed") + dropped(container, "unexpected_code") >= 5
    reply = await radclient(auth, "auth", pap("alice@isp"))
    assert reply.code == "Access-Accept", reply.output


async def test_a_late_older_interim_is_not_charged_again(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    acct_port = ports(server)[1]
    await radclient(acct_port, "acct", acct("Start", "late-1"))
    newer = acct("Interim-Update", "late-1", Acct_Output_Octets=20 * MIB, Acct_Session_Time=120)
    older = acct("Interim-Update", "late-1", Acct_Output_Octets=10 * MIB, Acct_Session_Time=60)
    await radclient(acct_port, "acct", newer)
    assert (await radclient(acct_port, "acct", older)).code == "Accounting-Response"
    assert await balance(container, sub) == Decimal("4.80")
    stop = acct("Stop", "late-1", Acct_Output_Octets=25 * MIB, Acct_Session_Time=150)
    await radclient(acct_port, "acct", stop)
    assert await balance(container, sub) == Decimal("4.75")


async def test_an_interim_without_a_start_opens_the_session_and_is_charged(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    acct_port = ports(server)[1]
    interim = acct("Interim-Update", "lost-start", Acct_Output_Octets=30 * MIB)
    assert (await radclient(acct_port, "acct", interim)).code == "Accounting-Response"
    assert await balance(container, sub) == Decimal("4.70")
    stop = acct("Stop", "lost-start", Acct_Output_Octets=31 * MIB)
    await radclient(acct_port, "acct", stop)
    [xdr] = await container.account_xdrs()(sub.account_id)
    assert xdr.lines[0].units == 31 * MIB


async def test_a_reused_acct_session_id_is_a_new_session(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    acct_port = ports(server)[1]
    for round_ in range(2):  # the NAS rebooted and counts its session ids from 1 again
        await radclient(acct_port, "acct", acct("Start", "1"))
        interim = acct("Interim-Update", "1", Acct_Output_Octets=10 * MIB)
        await radclient(acct_port, "acct", interim)
        assert await balance(container, sub) == Decimal("4.90") - Decimal("0.10") * round_
        stop = acct("Stop", "1", Acct_Output_Octets=10 * MIB)
        await radclient(acct_port, "acct", stop)
    assert len(await container.account_xdrs()(sub.account_id)) == 2


async def test_status_server_is_answered_on_both_ports(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    auth, acct_port = ports(server)
    alive = await radclient(auth, "status", "Message-Authenticator = 0x00")
    assert alive.code == "Access-Accept", alive.output
    assert "Message-Authenticator" in alive.attributes
    alive = await radclient(acct_port, "status", "Message-Authenticator = 0x00")
    assert alive.code == "Accounting-Response", alive.output


def receive_buffers(server: RadiusServer) -> dict[str, int]:
    """What the kernel gave each of the server's sockets."""
    buffers = {}
    for kind, endpoint in server._endpoints.items():
        assert endpoint.transport is not None
        sock = endpoint.transport.get_extra_info("socket")
        buffers[kind] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return buffers


def rmem_max() -> int:
    with open("/proc/sys/net/core/rmem_max") as limit:
        return int(limit.read())


async def test_the_sockets_hold_a_burst_of_requests(server: RadiusServer) -> None:
    # the default asks for 4 MiB: the kernel's 208 kB default drops a burst
    # of a few hundred requests arriving while a charging batch runs
    wanted = 4 * 1024 * 1024
    for given in receive_buffers(server).values():
        assert given >= min(wanted, rmem_max())


async def test_a_receive_buffer_the_kernel_caps_is_logged(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    too_big = rmem_max() * 4
    container.settings.override(replace(container.settings(), radius_receive_buffer=too_big))
    server: RadiusServer = container.radius_server()
    await server.start()
    try:
        assert all(given < too_big for given in receive_buffers(server).values())
    finally:
        await server.stop()
    warned = [r for r in caplog.records if "raise net.core.rmem_max" in r.getMessage()]
    assert {getattr(r, "port", None) for r in warned} == {"auth", "acct"}


async def test_beyond_the_requests_in_flight_new_ones_are_dropped_until_room_is_made(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ratel.radius")
    container.settings.override(replace(container.settings(), radius_max_in_flight=2))
    server: RadiusServer = container.radius_server()
    await server.start()
    try:
        await register_nas(container)
        sub = await subscriber(container, "alice@isp", balance="5.00")
        acct_port = ports(server)[1]
        for name in ("busy-1", "busy-2", "busy-3"):
            assert (await radclient(acct_port, "acct", acct("Start", name))).code == (
                "Accounting-Response"
            )
        # the database is slow: two interims are being charged and wait
        accounting = container.charge_accounting()
        release = asyncio.Event()
        charge = accounting.interim

        async def slow_interim(report: Any) -> Any:
            await release.wait()
            return await charge(report)

        accounting.interim = slow_interim  # type: ignore[method-assign]
        reports = [
            acct("Interim-Update", name, Acct_Output_Octets=MIB, Acct_Session_Time=60)
            for name in ("busy-1", "busy-2", "busy-3")
        ]
        waiting = [
            asyncio.create_task(radclient(acct_port, "acct", report, timeout=5, retries=1))
            for report in reports[:2]
        ]
        while len(server._tasks) < 2:
            await asyncio.sleep(0.01)
        refused = await radclient(acct_port, "acct", reports[2], timeout=0.5, retries=1)
        assert refused.code == "timeout"  # dropped: no answer, nothing charged
        assert dropped(container, "overload") >= 1
        release.set()
        assert [(await w).code for w in waiting] == ["Accounting-Response"] * 2
        # room again: the retransmission is answered and charged once
        again = await radclient(acct_port, "acct", reports[2])
        assert again.code == "Accounting-Response", again.output
        assert await balance(container, sub) == Decimal("4.97")  # 3 MiB at 0.01
    finally:
        await server.stop()
    said = [r.getMessage() for r in caplog.records]
    assert said.count("RADIUS overloaded: dropping new requests") == 1
    assert said.count("RADIUS overload over") == 1


def nas_tasks() -> list[asyncio.Task[Any]]:
    tasks = asyncio.all_tasks()
    return [t for t in tasks if t.get_name().startswith("radius-nas") and not t.done()]


async def test_a_stopped_server_leaves_no_nas_refresh_behind(container: Container) -> None:
    """The NAS table's refresh and reloads end with the server. The DAE
    looks NASes up after the listener has stopped (events still relayed
    while ``ratel serve`` stops); a lookup of an unknown NAS started a
    reload then, which outlived the server and its database and logged an
    ERROR into whatever ran next."""
    server: RadiusServer = container.radius_server()
    await server.start()
    assert server.nas.get("192.0.2.99") is None
    assert nas_tasks()  # the refresh, and the reload that lookup asked for
    await server.stop()
    assert nas_tasks() == []
    server.nas._last_load = 0.0  # long ago: a lookup of an unknown NAS would reload
    assert server.nas.get("192.0.2.99") is None
    assert nas_tasks() == []
