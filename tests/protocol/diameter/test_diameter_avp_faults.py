"""RFC 6733 / RFC 4006 AVP-level conformance of the Credit-Control answers,
against the real ratel node (database, demo data) over TCP: each test
failed before its fix."""

from __future__ import annotations

import struct

from diameter.message import Message
from raw_peer import Peer, avp, base_ccr, proxy_info, raw_avp, result, with_raw_avps

from ratel.adapters.diameter import codec

ALICE = "12055550100"


def subscription(msisdn: str = ALICE) -> Message:
    return avp(
        codec.SUBSCRIPTION_ID,
        [
            avp(codec.SUBSCRIPTION_ID_TYPE, codec.END_USER_E164),
            avp(codec.SUBSCRIPTION_ID_DATA, msisdn),
        ],
    )


def data_mscc(rating_group: int = 10) -> Message:
    return avp(
        codec.MULTIPLE_SERVICES_CREDIT_CONTROL,
        [avp(codec.RATING_GROUP, rating_group), avp(codec.REQUESTED_SERVICE_UNIT, [])],
    )


def initial(session: str | None = None, *, more: tuple = (), skip: tuple[int, ...] = ()) -> Message:
    return base_ccr(
        "gw2.test",
        session=session,
        request_type=codec.INITIAL,
        number=0,
        more=(subscription(), data_mscc(), *more),
        skip=skip,
    )


async def ask(port: int, data: bytes | Message) -> Message:
    gw = await Peer.connect(port, "gw2.test")
    try:
        gw.write(data if isinstance(data, bytes) else data.as_bytes())
        answer = await gw.read(timeout=5)
        assert answer is not None
        return answer
    finally:
        gw.close()


def failed_codes(answer: Message) -> list[int]:
    failed = codec.find(answer.avps, codec.FAILED_AVP)
    return [] if failed is None else [a.code for a in codec.group(failed)]


async def test_an_unknown_avp_with_the_m_bit_gets_5001_with_failed_avp(port: int) -> None:
    """RFC 6733 4.1: an AVP with the M-bit set whose code is not recognized
    MUST cause the message to be rejected; 7.1.5: 5001 DIAMETER_AVP_UNSUPPORTED,
    with the offending AVP in Failed-AVP. ratel ignores it and charges (2001)."""
    answer = await ask(port, with_raw_avps(initial(), raw_avp(65000, b"\0\0\0\1", 0x40)))
    assert result(answer) == 5001
    assert failed_codes(answer) == [65000]


async def test_a_vendors_avp_unknown_to_the_dictionary_is_let_through(port: int) -> None:
    """A gateway's own vendor AVP (Huawei's enterprise number here) with the
    M-bit, which python-diameter's dictionary does not know, is not refused:
    refusing it would refuse every call of that gateway."""
    session = f"gw2.test;vendor-avp;{id(port)}"
    vendor_avp = raw_avp(65002, b"\0\0\0\1", 0x40, vendor=2011)
    answer = await ask(port, with_raw_avps(initial(session), vendor_avp))
    try:
        assert result(answer) == codec.SUCCESS
    finally:
        await ask(
            port,
            base_ccr("gw2.test", session=session, request_type=codec.TERMINATE, number=1),
        )


async def test_a_single_occurrence_avp_twice_gets_5009(port: int) -> None:
    """RFC 4006 3.1 CCR grammar: { CC-Request-Number } occurs exactly once;
    RFC 6733 7.1.5: 5009 DIAMETER_AVP_OCCURS_TOO_MANY_TIMES, with the first
    AVP past the limit in Failed-AVP. ratel reads the first and charges."""
    answer = await ask(port, initial(more=(avp(codec.CC_REQUEST_NUMBER, 7),)))
    assert result(answer) == 5009
    assert failed_codes(answer) == [codec.CC_REQUEST_NUMBER]


async def test_a_ccr_without_auth_application_id_gets_5005(port: int) -> None:
    """RFC 4006 3.1 CCR grammar: { Auth-Application-Id } is required; RFC 6733
    7.1.5: 5005 DIAMETER_MISSING_AVP with an example in Failed-AVP. ratel
    charges it (2001)."""
    answer = await ask(port, initial(skip=(codec.AUTH_APPLICATION_ID,)))
    assert result(answer) == codec.MISSING_AVP
    assert failed_codes(answer) == [codec.AUTH_APPLICATION_ID]


async def test_a_ccr_with_auth_application_id_not_4_gets_5004(port: int) -> None:
    """RFC 4006 3.1: Auth-Application-Id MUST be 4 in a CCR; RFC 6733 7.1.5:
    5004 DIAMETER_INVALID_AVP_VALUE with the AVP in Failed-AVP. ratel ignores
    the value and charges (2001)."""
    request = initial(skip=(codec.AUTH_APPLICATION_ID,))
    request.avps.insert(4, avp(codec.AUTH_APPLICATION_ID, 16777238))
    answer = await ask(port, request)
    assert result(answer) == codec.INVALID_AVP_VALUE
    assert failed_codes(answer) == [codec.AUTH_APPLICATION_ID]


async def test_a_ccr_without_destination_realm_gets_5005(port: int) -> None:
    """RFC 4006 3.1 CCR grammar: { Destination-Realm } is required (RFC 6733
    6.1: a proxiable request MUST carry it); 5005 DIAMETER_MISSING_AVP with
    Failed-AVP. ratel charges it (2001)."""
    answer = await ask(port, initial(skip=(codec.DESTINATION_REALM,)))
    assert result(answer) == codec.MISSING_AVP
    assert failed_codes(answer) == [codec.DESTINATION_REALM]


async def test_an_unsigned32_avp_of_the_wrong_length_gets_5014(port: int) -> None:
    """RFC 6733 7.1.5: 5014 DIAMETER_INVALID_AVP_LENGTH - the request
    contained an AVP with an invalid length (an Unsigned32 with a 2-byte
    payload), Failed-AVP holding it. ratel answers 5004."""
    request = initial(skip=(codec.CC_REQUEST_NUMBER,))
    answer = await ask(port, with_raw_avps(request, raw_avp(codec.CC_REQUEST_NUMBER, b"\0\0")))
    assert result(answer) == codec.INVALID_AVP_LENGTH
    assert failed_codes(answer) == [codec.CC_REQUEST_NUMBER]


async def test_failed_avp_of_a_missing_avp_has_a_zero_filled_payload_of_its_minimum_length(
    port: int,
) -> None:
    """RFC 6733 7.1.5 (5005): the Failed-AVP MUST contain an example of the
    missing AVP; its value field should be of correct minimum length and
    contain zeroes. For a missing CC-Request-Number (Unsigned32) ratel sends
    an AVP of length 8 (no payload), which the gateway cannot decode."""
    answer = await ask(port, initial(skip=(codec.CC_REQUEST_NUMBER,)))
    assert result(answer) == codec.MISSING_AVP
    failed = codec.find(answer.avps, codec.FAILED_AVP)
    assert failed is not None
    (example,) = codec.group(failed)
    assert example.code == codec.CC_REQUEST_NUMBER
    assert example.payload == b"\0\0\0\0"


async def test_a_cca_copies_the_proxy_info_of_its_ccr_in_order(port: int) -> None:
    """RFC 6733 6.2: Proxy-Info AVPs of a request MUST be added to its answer
    in the same order; RFC 4006 3.2 CCA grammar has *[ Proxy-Info ]. ratel's
    CCA drops them (a relaying DRA cannot find its state)."""
    infos = (proxy_info(b"dra1.test", b"s1"), proxy_info(b"dra2.test", b"s2"))
    session = f"gw2.test;review-proxy;{id(infos)}"
    answer = await ask(port, initial(session, more=infos))
    assert result(answer) == codec.SUCCESS
    got = [bytes(a.payload) for a in codec.find_all(answer.avps, 284)]
    try:
        assert got == [bytes(a.payload) for a in infos]
    finally:
        await ask(
            port,
            base_ccr("gw2.test", session=session, request_type=codec.TERMINATE, number=1),
        )


async def test_a_ccr_with_a_non_utf8_session_id_gets_an_answer(port: int) -> None:
    """RFC 6733 / RFC 4006: a CCR is answered; a Session-Id (UTF8String) that
    is not valid UTF-8 is 5004 DIAMETER_INVALID_AVP_VALUE with Failed-AVP.
    ratel raises while copying the Session-Id into the error answer (three
    times: CreditControlAnswers._error, DiameterServer.answer, node._serve)
    and sends nothing; the gateway times out."""
    request = initial(skip=(codec.SESSION_ID,))
    data = with_raw_avps(request)
    bad = raw_avp(codec.SESSION_ID, b"gw2.test;\xff\xfe;1")
    raw = bytearray(data[:20] + bad + data[20:])
    struct.pack_into(">I", raw, 0, (1 << 24) | len(raw))
    gw = await Peer.connect(port, "gw2.test")
    try:
        gw.write(bytes(raw))
        answer = await gw.read_or_none(timeout=4)
        assert result(answer) == codec.INVALID_AVP_VALUE, f"got {answer!r}"
    finally:
        gw.close()


async def test_an_avp_with_reserved_flag_bits_gets_3009(port: int) -> None:
    """RFC 6733 4.1: an unrecognized AVP flag bit SHOULD be considered an
    error; 7.1.3: 3009 DIAMETER_INVALID_AVP_BITS (E-bit) with the AVP in
    Failed-AVP. ratel charged the CCR."""
    flagged = raw_avp(codec.TERMINATION_CAUSE, b"\0\0\0\1", 0x40 | 0x01)
    answer = await ask(port, with_raw_avps(initial(), flagged))
    assert result(answer) == codec.INVALID_AVP_BITS and answer.header.is_error
    assert failed_codes(answer) == [codec.TERMINATION_CAUSE]
