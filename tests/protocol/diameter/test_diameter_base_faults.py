"""RFC 6733 conformance of the peer state machine and of protocol errors, on
a DiameterNode with an application the test holds (no database): each test
failed before its fix."""

from __future__ import annotations

import asyncio
import struct

from raw_peer import (
    Peer,
    Recorder,
    avp,
    base_ccr,
    cer,
    proxy_info,
    raw_avp,
    result,
    started,
    with_raw_avps,
)

from ratel.adapters.diameter import codec


async def test_a_second_cer_on_an_open_connection_gets_a_cea() -> None:
    """RFC 6733 5.6, state R-Open: event R-Rcv-CER -> action R-Snd-CEA, stay
    R-Open. A CER on an open connection must be answered with a CEA, not
    dropped (the peer would wait for a CEA that never comes)."""
    node = await started(Recorder())
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        gw.write(cer("gw1.test"))
        answer = await gw.read_or_none()
        assert answer not in (None, "silence"), f"no CEA to a second CER: {answer!r}"
        assert answer.header.command_code == 257 and not answer.header.is_request  # type: ignore[union-attr]
        gw.close()
    finally:
        await node.stop(1.0)


async def test_a_request_in_flight_when_the_peer_sends_dpr_is_still_answered() -> None:
    """RFC 6733 5.4: the DPA SHOULD carry an error when messages are in
    flight, and the receiver of the DPA (the peer) is the one that closes
    the transport; RFC 6733 5.6 R-Open/R-Rcv-DPR -> R-Snd-DPA, Closing (not
    Closed). ratel answers DPA 2001 and closes at once, so the answer to a CCR
    still being charged is lost although it was charged."""
    app = Recorder(hold=True)
    node = await started(app)
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        request = base_ccr()
        gw.send(request)
        for _ in range(100):
            if app.received:
                break
            await asyncio.sleep(0.01)
        assert app.received
        dpr = codec.request_message(
            282,
            0,
            [avp(codec.ORIGIN_HOST, b"gw1.test"), avp(codec.ORIGIN_REALM, b"gw.test"), avp(273, 0)],
        )
        dpr.header.hop_by_hop_identifier = dpr.header.end_to_end_identifier = 77
        gw.send(dpr)
        await asyncio.sleep(0.05)
        app.release.set()
        seen = []
        for _ in range(2):
            message = await gw.read_or_none()
            if not hasattr(message, "header"):
                break
            seen.append((message.header.command_code, result(message)))  # type: ignore[union-attr]
        dpa = [s for s in seen if s[0] == 282]
        cca = [s for s in seen if s[0] == codec.CREDIT_CONTROL]
        assert cca or (dpa and dpa[0][1] != 2001), (
            f"the CCA in flight was lost and the DPA said 2001: {seen}"
        )
        gw.close()
    finally:
        app.release.set()
        await node.stop(1.0)


async def test_a_request_behind_a_dpr_is_not_charged_without_an_answer() -> None:
    """RFC 6733 5.4/5.6: after DPR/DPA the connection is closing and no
    further request is accepted. A CCR arriving right behind the DPR (same
    TCP segment) is handed to the application (charged) while its answer can
    never be sent: either it must not reach the application, or it must be
    answered."""
    app = Recorder()
    node = await started(app)
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        dpr = codec.request_message(
            282,
            0,
            [avp(codec.ORIGIN_HOST, b"gw1.test"), avp(codec.ORIGIN_REALM, b"gw.test"), avp(273, 0)],
        )
        dpr.header.hop_by_hop_identifier = dpr.header.end_to_end_identifier = 78
        gw.write(dpr.as_bytes() + base_ccr().as_bytes())
        answers = []
        while True:
            message = await gw.read_or_none()
            if not hasattr(message, "header"):
                break
            answers.append(message.header.command_code)  # type: ignore[union-attr]
        await asyncio.sleep(0.1)
        charged_unanswered = bool(app.received) and codec.CREDIT_CONTROL not in answers
        assert not charged_unanswered, f"CCR after DPR reached the application, answers {answers}"
    finally:
        await node.stop(1.0)


async def test_an_unknown_command_of_the_base_application_gets_3001_not_3007() -> None:
    """RFC 6733 7.1.3: 3001 DIAMETER_COMMAND_UNSUPPORTED for a Command-Code
    the receiver does not support; 3007 DIAMETER_APPLICATION_UNSUPPORTED is
    for an application it does not support. The base protocol (application
    0) is always supported, so e.g. an unknown command 9999 with
    Application-Id 0 must get 3001 (E-bit)."""
    node = await started(Recorder())
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        gw.send(base_ccr(application=0, command=9999))
        answer = await gw.read()
        assert answer is not None and answer.header.is_error
        assert result(answer) == codec.COMMAND_UNSUPPORTED
        gw.close()
    finally:
        await node.stop(1.0)


async def test_protocol_error_answers_copy_proxy_info_in_order() -> None:
    """RFC 6733 6.2 (and 7.2 answer-message grammar *[ Proxy-Info ]): if
    Proxy-Info AVPs are present in the request they MUST be added to the
    answer, in the same order. A 3001 answer drops them."""
    node = await started(Recorder())
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        infos = (proxy_info(b"dra1.test", b"s1"), proxy_info(b"dra2.test", b"s2"))
        gw.send(base_ccr(command=9999, more=infos))
        answer = await gw.read()
        assert answer is not None and result(answer) == codec.COMMAND_UNSUPPORTED
        got = [bytes(a.payload) for a in codec.find_all(answer.avps, 284)]
        assert got == [bytes(a.payload) for a in infos]
        gw.close()
    finally:
        await node.stop(1.0)


async def test_a_request_with_the_e_bit_set_gets_3008() -> None:
    """RFC 6733 3: the E-bit MUST NOT be set in request messages; 7.1.3:
    3008 DIAMETER_INVALID_HDR_BITS for a request whose header bits are an
    invalid combination. ratel charges it as a normal request."""
    app = Recorder()
    node = await started(app)
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        request = base_ccr()
        request.header.command_flags |= 0x20  # E
        gw.send(request)
        answer = await gw.read()
        assert answer is not None and result(answer) == 3008 and answer.header.is_error
        assert not app.received
        gw.close()
    finally:
        await node.stop(1.0)


async def test_a_request_with_version_2_gets_5011_unsupported_version() -> None:
    """RFC 6733 7.1.5: 5011 DIAMETER_UNSUPPORTED_VERSION is returned when a
    request was received whose version number is unsupported. ratel aborts
    the connection without an answer (the length field is still readable)."""
    node = await started(Recorder())
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        data = bytearray(base_ccr().as_bytes())
        data[0] = 2
        gw.write(bytes(data))
        answer = await gw.read_or_none()
        assert result(answer) == 5011, f"got {answer!r}"
        gw.close()
    finally:
        await node.stop(1.0)


async def test_a_message_length_not_a_multiple_of_4_gets_5015() -> None:
    """RFC 6733 3: the Message Length is always a multiple of 4; 7.1.5: 5015
    DIAMETER_INVALID_MESSAGE_LENGTH is returned when a request is received
    with an invalid message length."""
    node = await started(Recorder())
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        data = bytearray(base_ccr().as_bytes() + b"\0\0")  # 2 stray bytes
        struct.pack_into(">I", data, 0, (1 << 24) | len(data))
        gw.write(bytes(data))
        answer = await gw.read_or_none()
        assert result(answer) == 5015, f"got {answer!r}"
        gw.close()
    finally:
        await node.stop(1.0)


async def test_an_avp_length_error_gets_5014_with_failed_avp() -> None:
    """RFC 6733 7.1.5: 5014 DIAMETER_INVALID_AVP_LENGTH - a Diameter message
    indicating this error MUST include the offending AVPs within a
    Failed-AVP AVP (for a length beyond the message, the AVP header and a
    zero-filled payload of the minimum length suffice)."""
    node = await started(Recorder())
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        data = bytearray(base_ccr().as_bytes())
        # the last AVP (CC-Request-Number) says 4000 bytes
        struct.pack_into(">I", data, len(data) - 8, (0x40 << 24) | 4000)
        gw.write(bytes(data))
        answer = await gw.read()
        assert answer is not None and result(answer) == codec.INVALID_AVP_LENGTH
        failed = codec.find(answer.avps, codec.FAILED_AVP)
        assert failed is not None, "5014 without Failed-AVP"
        assert [a.code for a in codec.group(failed)] == [codec.CC_REQUEST_NUMBER]
        gw.close()
    finally:
        await node.stop(1.0)


async def test_a_request_with_a_non_utf8_session_id_is_answered() -> None:
    """RFC 6733 7 / 7.1.5: every request gets an answer; a Session-Id
    (UTF8String) that is not UTF-8 is an invalid AVP value (5004, Failed-AVP).
    ratel's answer_to decodes the Session-Id to copy it, raises, and sends no
    answer at all (here for a 3001; the same for a CCR)."""
    node = await started(Recorder())
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        request = base_ccr(command=9999, skip=(codec.SESSION_ID,))
        data = with_raw_avps(request)
        # put a bad Session-Id first
        bad = raw_avp(codec.SESSION_ID, b"gw1.test;\xff\xfe;1")
        data = bytearray(data[:20] + bad + data[20:])
        struct.pack_into(">I", data, 0, (1 << 24) | len(data))
        gw.write(bytes(data))
        answer = await gw.read_or_none()
        assert result(answer) in (codec.COMMAND_UNSUPPORTED, codec.INVALID_AVP_VALUE), (
            f"got {answer!r}"
        )
        gw.close()
    finally:
        await node.stop(1.0)


async def test_a_watchdog_behind_a_dpr_is_still_answered() -> None:
    """RFC 6733 5.5: a DWR is answered while the connection is up; after the
    peer's DPR only new application requests are turned away (3004)."""
    node = await started(Recorder())
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        origin = [avp(codec.ORIGIN_HOST, b"gw1.test"), avp(codec.ORIGIN_REALM, b"gw.test")]
        dpr = codec.request_message(282, 0, [*origin, avp(273, 0)])
        dwr = codec.request_message(280, 0, list(origin))
        dpr.header.hop_by_hop_identifier = dpr.header.end_to_end_identifier = 81
        dwr.header.hop_by_hop_identifier = dwr.header.end_to_end_identifier = 82
        gw.write(dpr.as_bytes() + dwr.as_bytes() + base_ccr().as_bytes())
        answers = []
        for _ in range(3):
            message = await gw.read_or_none()
            if not hasattr(message, "header"):
                break
            answers.append((message.header.command_code, result(message)))  # type: ignore[union-attr]
        assert answers == [(282, 2001), (280, 2001), (codec.CREDIT_CONTROL, 3004)]
        gw.close()
    finally:
        await node.stop(1.0)
