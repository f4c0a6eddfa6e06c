"""The node: capabilities exchange with registered peers only, watchdog,
disconnect, several peers at once, and bad input that never stops it."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import replace

from diameter.message import Message
from gateway import VENDOR_ID, Gateway, avp, raw_exchange, result_code, top_flags

from ratel.adapters.diameter import codec
from ratel.adapters.diameter.server import DiameterServer
from ratel.adapters.health import ListenerRegistry
from ratel.application.relay import EventRelay
from ratel.container import Container


def cer(origin_host: str) -> bytes:
    message = codec.request_message(
        257,
        0,
        [
            avp(codec.ORIGIN_HOST, origin_host.encode()),
            avp(codec.ORIGIN_REALM, b"gw.test"),
            avp(257, "127.0.0.1"),  # Host-IP-Address
            avp(266, 99999),  # Vendor-Id
            avp(269, "test gateway"),  # Product-Name
            avp(codec.AUTH_APPLICATION_ID, codec.CREDIT_CONTROL_APPLICATION),
        ],
    )
    message.header.hop_by_hop_identifier = 1
    message.header.end_to_end_identifier = 1
    return message.as_bytes()


async def exchange(port: int, payloads: list[bytes]) -> list[bytes]:
    """``raw_exchange`` from a thread: the node answers on this test's loop."""
    return await asyncio.to_thread(raw_exchange, port, payloads)


async def test_a_registered_peer_gets_cea_2001_with_credit_control_and_m_bit_origin(
    port: int,
) -> None:
    answers = await exchange(port, [cer("gw2.test")])
    cea = Message.from_bytes(answers[0])
    assert cea.header.command_code == 257 and not cea.header.is_request
    assert result_code(cea) == codec.SUCCESS
    assert codec.integer(cea.avps, codec.AUTH_APPLICATION_ID) == 4
    assert codec.text(cea.avps, codec.ORIGIN_HOST) == "ocs.ratel.local"
    assert codec.text(cea.avps, codec.ORIGIN_REALM) == "ratel.local"
    assert codec.integer(cea.avps, 266) == VENDOR_ID  # Vendor-Id, as configured
    flags = top_flags(answers[0])
    assert flags[codec.ORIGIN_HOST] & 0x40 and flags[codec.ORIGIN_REALM] & 0x40


async def test_an_unknown_peer_is_refused_with_3010(port: int) -> None:
    answers = await exchange(port, [cer("intruder.test")])
    assert result_code(Message.from_bytes(answers[0])) == 3010


async def test_a_registered_peer_from_another_address_is_refused(port: int) -> None:
    answers = await exchange(port, [cer("gw-elsewhere.test")])
    cea = Message.from_bytes(answers[0])
    assert result_code(cea) == 3010
    assert cea.header.is_error


async def test_watchdog_and_disconnect(port: int) -> None:
    dwr = codec.request_message(
        280,
        0,
        [
            avp(codec.ORIGIN_HOST, b"gw2.test"),
            avp(codec.ORIGIN_REALM, b"gw.test"),
        ],
    )
    dwr.header.hop_by_hop_identifier, dwr.header.end_to_end_identifier = 2, 2
    dpr = codec.request_message(
        282,
        0,
        [
            avp(codec.ORIGIN_HOST, b"gw2.test"),
            avp(codec.ORIGIN_REALM, b"gw.test"),
            avp(273, 0),  # Disconnect-Cause REBOOTING
        ],
    )
    dpr.header.hop_by_hop_identifier, dpr.header.end_to_end_identifier = 3, 3
    answers = await exchange(port, [cer("gw2.test"), dwr.as_bytes(), dpr.as_bytes()])
    dwa, dpa = (Message.from_bytes(a) for a in answers[1:])
    assert (dwa.header.command_code, result_code(dwa)) == (280, codec.SUCCESS)
    assert (dpa.header.command_code, result_code(dpa)) == (282, codec.SUCCESS)
    assert top_flags(answers[1])[codec.ORIGIN_HOST] & 0x40


async def test_malformed_and_unsupported_requests_get_errors_and_the_node_goes_on(
    port: int,
) -> None:
    ccr = codec.request_message(
        codec.CREDIT_CONTROL,
        4,
        [
            avp(codec.SESSION_ID, "gw2.test;bad;1"),
            avp(codec.ORIGIN_HOST, b"gw2.test"),
            avp(codec.ORIGIN_REALM, b"gw.test"),
            avp(codec.DESTINATION_REALM, b"ratel.local"),
            avp(codec.AUTH_APPLICATION_ID, 4),
            avp(codec.SERVICE_CONTEXT_ID, "32251@3gpp.org"),
            avp(codec.CC_REQUEST_TYPE, 1),
            avp(codec.CC_REQUEST_NUMBER, 0),
        ],
    )
    ccr.header.hop_by_hop_identifier, ccr.header.end_to_end_identifier = 10, 10
    good = ccr.as_bytes()
    # an AVP whose length runs past the message: the framing is broken
    broken = bytearray(good)
    struct.pack_into(">I", broken, len(good) - 8, (0x40 << 24) | 4000)
    # a Subscription-Id missing: 5005 with Failed-AVP
    unknown_app = codec.request_message(codec.CREDIT_CONTROL, 16777238, ccr.avps)
    unknown_app.header.hop_by_hop_identifier, unknown_app.header.end_to_end_identifier = 11, 11
    unknown_command = codec.request_message(8388620, 4, ccr.avps)
    unknown_command.header.hop_by_hop_identifier = 12
    unknown_command.header.end_to_end_identifier = 12
    answers = await exchange(
        port,
        [
            cer("gw2.test"),
            bytes(broken),
            good,
            unknown_app.as_bytes(),
            unknown_command.as_bytes(),
        ],
    )
    malformed, missing, app, command = (Message.from_bytes(a) for a in answers[1:])
    assert result_code(malformed) == codec.INVALID_AVP_LENGTH
    assert result_code(missing) == codec.MISSING_AVP
    failed = codec.group(codec.find(missing.avps, codec.FAILED_AVP))
    assert [a.code for a in failed] == [codec.SUBSCRIPTION_ID]
    assert result_code(app) == codec.APPLICATION_UNSUPPORTED and app.header.is_error
    assert result_code(command) == codec.COMMAND_UNSUPPORTED and command.header.is_error
    # the node still answers a new peer
    again = await exchange(port, [cer("gw2.test")])
    assert result_code(Message.from_bytes(again[0])) == 2001


async def test_two_peers_at_once_each_get_their_answers(ocs: Container, port: int) -> None:
    gateways = [Gateway("gw1.test", port), Gateway("gw2.test", port)]
    for gateway in gateways:
        await asyncio.to_thread(gateway.start)
    try:
        from gateway import mscc, subscription

        sessions = [g.new_session() for g in gateways]
        answers = await asyncio.gather(
            *(
                g.send(g.ccr(s, codec.INITIAL, 0, *subscription("12055550100"), mscc(10)))
                for g, s in zip(gateways, sessions, strict=True)
            )
        )
        for answer, session in zip(answers, sessions, strict=True):
            assert result_code(answer) == codec.SUCCESS
            assert codec.text(answer.avps, codec.SESSION_ID) == session
        for g, s in zip(gateways, sessions, strict=True):
            end = await g.send(g.ccr(s, codec.TERMINATE, 1, mscc(10, requested=None)))
            assert result_code(end) == codec.SUCCESS
    finally:
        for gateway in gateways:
            await asyncio.to_thread(gateway.stop)


async def test_overload_is_answered_3004_at_once(ocs: Container) -> None:
    """Past its limit of requests in flight the node answers DIAMETER_TOO_BUSY
    (the gateway tries another OCS) instead of queueing without end."""
    busy = DiameterServer(
        replace(ocs.diameter().settings, port=0, max_in_flight=0),
        ocs.credit_control(),
        ocs.open_sessions(),
        EventRelay(ocs.deps()),
        ocs.diameter_session_peers(),
        ocs.clock(),
        ocs.telemetry(),
        ListenerRegistry(),
    )
    await busy.start()
    try:
        gateway = Gateway("gw2.test", busy.address[1])
        await asyncio.to_thread(gateway.start)
        try:
            from gateway import mscc, subscription

            answer = await gateway.send(
                gateway.ccr(
                    gateway.new_session(), codec.INITIAL, 0, *subscription("12055550100"), mscc(10)
                )
            )
            assert result_code(answer) == 3004 and answer.header.is_error
        finally:
            await asyncio.to_thread(gateway.stop)
    finally:
        await busy.stop()
