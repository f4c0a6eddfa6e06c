"""ratel's fast codec against python-diameter's own: ``new`` builds what
``Avp.new`` builds, ``encode`` writes what ``as_bytes`` writes, ``decode``
reads what ``from_bytes`` reads, and broken framing is refused."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from diameter.message import Message
from diameter.message.avp import Avp
from gateway import ims, mscc, subscription, units

from ratel.adapters.diameter import codec

CASES = [
    (codec.SESSION_ID, "gw1.test;1;2", 0),  # UTF8String
    (codec.ORIGIN_HOST, b"gw1.test", 0),  # DiameterIdentity (OctetString), M-bit
    (codec.RESULT_CODE, 2001, 0),  # Unsigned32
    (codec.EXPONENT, -3, 0),  # Integer32
    (codec.CC_TOTAL_OCTETS, 1 << 40, 0),  # Unsigned64
    (257, "127.0.0.1", 0),  # Host-IP-Address (Address)
    (codec.TARIFF_TIME_CHANGE, datetime(2026, 3, 2, 19, tzinfo=UTC), 0),  # Time
    (codec.VOLUME_QUOTA_THRESHOLD, 1000, codec.TGPP),  # vendor AVP
    (codec.CALLED_PARTY_ADDRESS, "tel:+1", codec.TGPP),  # vendor UTF8String
]


@pytest.mark.parametrize(("code", "value", "vendor"), CASES)
def test_new_builds_what_the_library_builds(code: int, value: object, vendor: int) -> None:
    ours, theirs = codec.new(code, value, vendor), Avp.new(code, vendor, value=value)
    assert type(ours) is type(theirs) and ours.name == theirs.name
    assert (ours.flags, ours.vendor_id, ours.payload) == (
        theirs.flags,
        theirs.vendor_id,
        theirs.payload,
    )
    assert ours.as_bytes() == theirs.as_bytes()
    assert ours.value == theirs.value


def test_a_grouped_avp_and_a_whole_message_encode_and_decode_as_the_library_does() -> None:
    group = [codec.new(codec.CC_TIME, 9), codec.new(codec.CC_TOTAL_OCTETS, 5)]
    assert (
        codec.new(codec.USED_SERVICE_UNIT, group).as_bytes()
        == Avp.new(codec.USED_SERVICE_UNIT, value=group).as_bytes()
    )
    message = codec.request_message(
        codec.CREDIT_CONTROL,
        codec.CREDIT_CONTROL_APPLICATION,
        [
            codec.new(codec.SESSION_ID, "gw1.test;odd-length"),
            codec.new(codec.ORIGIN_HOST, b"gw1.test"),
            *subscription("12055550100", imsi="310150123456700"),
            mscc(10, used=units(codec.USED_SERVICE_UNIT, total=5, input=3), final=True),
            ims("12055550100", "33612345678"),
        ],
    )
    message.header.hop_by_hop_identifier, message.header.end_to_end_identifier = 7, 9
    wire = message.as_bytes()
    assert codec.encode(message) == wire
    decoded = codec.decode(wire)
    library = Message.from_bytes(wire, plain_msg=True)
    assert codec.encode(decoded) == wire
    fields = (
        "version",
        "length",
        "command_flags",
        "command_code",
        "application_id",
        "hop_by_hop_identifier",
        "end_to_end_identifier",
    )
    assert [getattr(decoded.header, f) for f in fields] == [
        getattr(library.header, f) for f in fields
    ]

    def tree(avps: list[Avp]) -> list[object]:
        return [
            (a.code, a.vendor_id, a.flags, tree(a.value) if isinstance(a.value, list) else a.value)
            for a in avps
        ]

    assert tree(decoded.avps) == tree(library.avps)


def test_broken_framing_is_unreadable_and_a_broken_group_fails_when_read() -> None:
    message = codec.request_message(
        codec.CREDIT_CONTROL, 4, [codec.new(codec.SESSION_ID, "s"), mscc(10)]
    )
    wire = bytearray(message.as_bytes())
    past_end = bytearray(wire)
    struct.pack_into(">I", past_end, 24, (0x40 << 24) | 4000)  # Session-Id runs past the end
    with pytest.raises(codec.Unreadable):
        codec.decode(bytes(past_end))
    too_short = bytearray(wire)
    struct.pack_into(">I", too_short, 24, (0x40 << 24) | 4)
    with pytest.raises(codec.Unreadable):
        codec.decode(bytes(too_short))
    # the MSCC's member (Rating-Group) claims more than the group holds: the
    # message reads, the group's value does not (the application answers 5004)
    group_at = 20 + 12  # after Session-Id "s" (9 bytes, padded to 12)
    inner = bytearray(wire)
    struct.pack_into(">I", inner, group_at + 8 + 4, (0x40 << 24) | 200)
    decoded = codec.decode(bytes(inner))
    with pytest.raises(codec.MalformedAvp):
        codec.group(decoded.avps[1])
