"""Diameter behaviour checked against RFC 6733 / RFC 4006: unknown peer,
no common application, DWR, bad AVP values, unknown sessions, EVENT without
Requested-Action, garbage bytes, a retransmission on a new connection."""

from __future__ import annotations

import asyncio
import itertools

from gateway import sms_recipient
from raw_peer import Peer, avp, base_ccr, cer, identified, result
from test_diameter_avp_faults import initial, subscription

from ratel.adapters.diameter import codec

_n = itertools.count(1)


async def test_unknown_peer_gets_3010_with_e_bit_and_the_connection_closes(port: int) -> None:
    """RFC 6733 5.3 / 7.1.3: 3010 DIAMETER_UNKNOWN_PEER, then disconnect."""
    gw = await Peer.open(port)
    gw.write(cer("intruder.test"))
    cea = await gw.read()
    assert cea is not None and result(cea) == 3010 and cea.header.is_error
    assert await gw.read_or_none() is None


async def test_cer_without_credit_control_gets_5010_and_the_connection_closes(port: int) -> None:
    """RFC 6733 5.3: no common application: CEA 5010 DIAMETER_NO_COMMON_APPLICATION."""
    gw = await Peer.open(port)
    gw.write(cer("gw2.test", application=16777238))  # Gx only
    cea = await gw.read()
    assert cea is not None and result(cea) == 5010 and not cea.header.is_error
    assert await gw.read_or_none() is None


async def test_dwr_gets_dwa_2001_with_origin_state_id_and_ids_copied(port: int) -> None:
    """RFC 6733 5.5.2 / 6.2: DWA with Result-Code, Origin-Host/Realm,
    Origin-State-Id, the request's hop-by-hop and end-to-end ids."""
    gw = await Peer.connect(port, "gw2.test")
    dwr = identified(
        codec.request_message(
            280, 0, [avp(codec.ORIGIN_HOST, b"gw2.test"), avp(codec.ORIGIN_REALM, b"gw.test")]
        )
    )
    gw.send(dwr)
    dwa = await gw.read()
    assert dwa is not None and dwa.header.command_code == 280 and result(dwa) == 2001
    assert codec.integer(dwa.avps, codec.ORIGIN_STATE_ID)
    assert codec.text(dwa.avps, codec.ORIGIN_HOST) == "ocs.ratel.local"
    assert dwa.header.hop_by_hop_identifier == dwr.header.hop_by_hop_identifier
    assert dwa.header.end_to_end_identifier == dwr.header.end_to_end_identifier
    gw.close()


async def test_ccr_type_9_gets_5004_with_failed_avp_and_missing_session_id_5005(
    port: int,
) -> None:
    """RFC 6733 7.1.5: 5004 with Failed-AVP for an out-of-range enumeration;
    5005 with an example of the missing AVP."""
    gw = await Peer.connect(port, "gw2.test")
    bad_type = base_ccr("gw2.test", request_type=9)
    gw.send(bad_type)
    answer = await gw.read()
    assert answer is not None and result(answer) == 5004
    failed = codec.group(codec.find(answer.avps, codec.FAILED_AVP))  # type: ignore[arg-type]
    assert [(a.code, a.value) for a in failed] == [(codec.CC_REQUEST_TYPE, 9)]
    gw.send(base_ccr("gw2.test", skip=(codec.SESSION_ID,)))
    answer = await gw.read()
    assert answer is not None and result(answer) == 5005
    failed = codec.group(codec.find(answer.avps, codec.FAILED_AVP))  # type: ignore[arg-type]
    assert [a.code for a in failed] == [codec.SESSION_ID]
    gw.close()


async def test_update_and_terminate_of_an_unknown_session_get_5002(port: int) -> None:
    """RFC 4006 / RFC 6733 7.1.5: 5002 DIAMETER_UNKNOWN_SESSION_ID."""
    gw = await Peer.connect(port, "gw2.test")
    for kind in (codec.UPDATE, codec.TERMINATE):
        gw.send(base_ccr("gw2.test", session=f"gw2.test;never;{next(_n)}", request_type=kind))
        answer = await gw.read()
        assert answer is not None and result(answer) == 5002
        assert codec.integer(answer.avps, codec.CC_REQUEST_TYPE) == kind
    gw.close()


async def test_event_without_requested_action_is_a_direct_debit(port: int) -> None:
    """RFC 4006 8.41: Requested-Action absent means DIRECT_DEBITING."""
    gw = await Peer.connect(port, "gw2.test")
    event = base_ccr(
        "gw2.test",
        request_type=codec.EVENT,
        number=0,
        more=(
            subscription(),
            sms_recipient(),
            avp(codec.REQUESTED_SERVICE_UNIT, [avp(codec.CC_SERVICE_SPECIFIC_UNITS, 1)]),
        ),
    )
    event.avps[5] = avp(codec.SERVICE_CONTEXT_ID, "32274@3gpp.org")
    gw.send(event)
    answer = await gw.read()
    assert answer is not None and result(answer) == 2001
    assert codec.integer(answer.avps, codec.REQUESTED_ACTION) == codec.DIRECT_DEBITING
    gw.close()


async def test_garbage_a_huge_length_and_a_silent_connection_leave_the_node_serving(
    port: int,
) -> None:
    """RFC 6733 3: an unframeable header closes the connection; the node goes on."""
    for payload in (b"\xff" * 40, bytes([1, 0x40, 0, 0]) + b"\0" * 16 + b"x" * 100):
        gw = await Peer.open(port)
        gw.write(payload)
        assert await gw.read_or_none() is None
    half = await Peer.open(port)
    half.write(bytes([1, 0, 1, 0]) + b"\0" * 30)
    half.close()
    await asyncio.sleep(0.1)
    gw = await Peer.connect(port, "gw2.test")
    gw.close()


async def test_a_retransmitted_initial_gets_the_stored_answer(port: int) -> None:
    """RFC 6733 3 T-flag / RFC 4006 5.1: a CCR-I sent again (T-flag, same
    ids) on a new connection is answered without a second reservation."""
    session = f"gw2.test;review-t;{next(_n)}"
    first_request = initial(session)
    gw = await Peer.connect(port, "gw2.test")
    gw.send(first_request)
    first = await gw.read()
    gw.close()
    again_request = first_request
    again_request.header.is_retransmit = True
    gw = await Peer.connect(port, "gw2.test")
    gw.send(again_request)
    second = await gw.read()
    assert first is not None and second is not None
    assert result(first) == result(second) == 2001
    end = base_ccr("gw2.test", session=session, request_type=codec.TERMINATE, number=1)
    gw.send(end)
    assert result(await gw.read()) == 2001
    gw.close()
