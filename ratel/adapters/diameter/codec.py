"""The wire side of Diameter: reading messages and writing them.

python-diameter is the codec: its AVP classes and dictionary. We read the
received AVP tree ourselves (``message.avps`` keeps every AVP as received)
rather than its typed attributes, because its typed Granted/Requested/
Used-Service-Unit drop CC-Output-Octets and Tariff-Change-Usage. Every
message we send (CCA, CEA, DWA, DPA, RAR, ASR) is a plain ``Message`` with
AVPs built here by ``new``, which takes the M-bit from the dictionary (so
Origin-Host and Origin-Realm carry it, as RFC 6733 wants): the library's
typed CreditControlAnswer encodes Credit-Control-Failure-Handling twice and
never Direct-Debiting-Failure-Handling, its typed RAR never encodes
Service-Type, and its typed base answers clear the M-bit of Origin-Host.

``decode``, ``encode`` and ``new`` are the node's hot path: the library's own
``Message.from_bytes``, ``as_bytes`` and ``Avp.new`` go through an XDR packer
one field at a time; these read the header and split the AVPs with
``struct`` straight into the library's AVP classes (values decoded when
read), and join encoded AVPs once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from diameter.message import Message, MessageHeader
from diameter.message.avp import (
    Avp,
    AvpAddress,
    AvpEnumerated,
    AvpFloat32,
    AvpFloat64,
    AvpGrouped,
    AvpInteger32,
    AvpInteger64,
    AvpTime,
    AvpUnsigned32,
    AvpUnsigned64,
)
from diameter.message.avp.avp import get_avp_dictionary_entry
from diameter.message.avp.errors import AvpDecodeError

TGPP = 10415

# -- commands and applications
CREDIT_CONTROL = 272
RE_AUTH = 258
ABORT_SESSION = 274
CREDIT_CONTROL_APPLICATION = 4

# -- base AVPs (RFC 6733, RFC 4006)
SESSION_ID = 263
ORIGIN_HOST = 264
ORIGIN_REALM = 296
DESTINATION_HOST = 293
DESTINATION_REALM = 283
AUTH_APPLICATION_ID = 258
RESULT_CODE = 268
ERROR_MESSAGE = 281
FAILED_AVP = 279
PROXY_INFO = 284
ORIGIN_STATE_ID = 278
TERMINATION_CAUSE = 295
RE_AUTH_REQUEST_TYPE = 285
SERVICE_CONTEXT_ID = 461
CC_REQUEST_TYPE = 416
CC_REQUEST_NUMBER = 415
SUBSCRIPTION_ID = 443
SUBSCRIPTION_ID_TYPE = 450
SUBSCRIPTION_ID_DATA = 444
REQUESTED_ACTION = 436
MULTIPLE_SERVICES_CREDIT_CONTROL = 456
REQUESTED_SERVICE_UNIT = 437
USED_SERVICE_UNIT = 446
GRANTED_SERVICE_UNIT = 431
SERVICE_IDENTIFIER = 439
RATING_GROUP = 432
VALIDITY_TIME = 448
FINAL_UNIT_INDICATION = 430
FINAL_UNIT_ACTION = 449
REDIRECT_SERVER = 434
FILTER_ID = 11  # NASREQ; in a Final-Unit-Indication, the filter of RESTRICT_ACCESS
REDIRECT_ADDRESS_TYPE = 433
REDIRECT_SERVER_ADDRESS = 435
CC_TIME = 420
CC_TOTAL_OCTETS = 421
CC_INPUT_OCTETS = 412
CC_OUTPUT_OCTETS = 414
CC_SERVICE_SPECIFIC_UNITS = 417
TARIFF_CHANGE_USAGE = 452
TARIFF_TIME_CHANGE = 451
COST_INFORMATION = 423
UNIT_VALUE = 445
VALUE_DIGITS = 447
EXPONENT = 429
CURRENCY_CODE = 425
CHECK_BALANCE_RESULT = 422
MULTIPLE_SERVICES_INDICATOR = 455
# -- 3GPP TS 32.299 AVPs (vendor 10415)
VOLUME_QUOTA_THRESHOLD = 869
TIME_QUOTA_THRESHOLD = 868
SERVICE_INFORMATION = 873
IMS_INFORMATION = 876
SMS_INFORMATION = 2000
CALLING_PARTY_ADDRESS = 831
CALLED_PARTY_ADDRESS = 832
RECIPIENT_INFO = 2026
RECIPIENT_ADDRESS = 1201
ADDRESS_DATA = 897

# -- enumerated values
INITIAL, UPDATE, TERMINATE, EVENT = 1, 2, 3, 4
END_USER_E164, END_USER_IMSI = 0, 1
DIRECT_DEBITING, REFUND_ACCOUNT, CHECK_BALANCE, PRICE_ENQUIRY = 0, 1, 2, 3
FUA_TERMINATE, FUA_REDIRECT, FUA_RESTRICT_ACCESS = 0, 1, 2
REDIRECT_URL = 2
ENOUGH_CREDIT, NO_CREDIT = 0, 1
AUTHORIZE_ONLY = 0
ADMINISTRATIVE = 4  # Session-Termination / ASR cause
UNIT_BEFORE_TARIFF_CHANGE, UNIT_AFTER_TARIFF_CHANGE, UNIT_INDETERMINATE = 0, 1, 2

# -- result codes
SUCCESS = 2001
COMMAND_UNSUPPORTED = 3001
APPLICATION_UNSUPPORTED = 3007
INVALID_HDR_BITS = 3008
INVALID_AVP_BITS = 3009
AVP_UNSUPPORTED = 5001
INVALID_AVP_VALUE = 5004
MISSING_AVP = 5005
AVP_OCCURS_TOO_MANY_TIMES = 5009
UNSUPPORTED_VERSION = 5011
INVALID_MESSAGE_LENGTH = 5015
UNKNOWN_SESSION_ID = 5002
UNABLE_TO_COMPLY = 5012
INVALID_AVP_LENGTH = 5014
END_USER_SERVICE_DENIED = 4010
CREDIT_CONTROL_NOT_APPLICABLE = 4011
CREDIT_LIMIT_REACHED = 4012
USER_UNKNOWN = 5030
RATING_FAILED = 5031

_HEADER = 20
_HEADER_FORMAT = struct.Struct(">IIIII")
_AVP_HEADER = struct.Struct(">II")
_AVP_VENDOR_HEADER = struct.Struct(">III")
_VENDOR_ID = struct.Struct(">I")
_FLAG_VENDOR = 0x80
_FLAG_MANDATORY = 0x40
_REQUEST = 0x80


class MalformedAvp(ValueError):
    """An AVP whose value cannot be read as its type says (Diameter 5004)."""

    def __init__(self, avp: Avp, why: str) -> None:
        super().__init__(why)
        self.avp = avp


class InvalidAvpLength(MalformedAvp):
    """An AVP whose payload is not the size of its type (Diameter 5014)."""


#: The payload size of the fixed-size types; the smallest for an address
#: (an IPv4 one). A missing AVP's example in a Failed-AVP has that many zeroes.
_FIXED_SIZE: dict[type[Avp], int] = {
    AvpInteger32: 4,
    AvpUnsigned32: 4,
    AvpEnumerated: 4,
    AvpFloat32: 4,
    AvpTime: 4,
    AvpInteger64: 8,
    AvpUnsigned64: 8,
    AvpFloat64: 8,
}
_SMALLEST_SIZE: dict[type[Avp], int] = {**_FIXED_SIZE, AvpAddress: 6}


class MissingAvp(ValueError):
    """A mandatory AVP is absent (Diameter 5005); ``code`` names it."""

    def __init__(self, code: int, vendor: int = 0) -> None:
        super().__init__(f"AVP {code} is missing")
        self.code = code
        self.vendor = vendor


#: (code, vendor) -> the library's AVP class, name and flags; filled as AVPs are built
_NEW_SPECS: dict[tuple[int, int], tuple[type[Avp], str, int]] = {}


def new(code: int, value: Any, vendor: int = 0) -> Avp:
    """An AVP with the dictionary's M-bit (and V-bit for vendor AVPs), as
    ``Avp.new`` builds it; a grouped one's members encoded once, here."""
    spec = _NEW_SPECS.get((code, vendor))
    if spec is None:
        entry = get_avp_dictionary_entry(code, vendor)
        if entry is None:
            raise ValueError(f"AVP code {code} with vendor {vendor} is unknown")
        flags = (_FLAG_VENDOR if vendor else 0) | (_FLAG_MANDATORY if entry.get("mandatory") else 0)
        spec = _NEW_SPECS[(code, vendor)] = (entry["type"], entry["name"], flags)
    cls, name, flags = spec
    avp = cls.__new__(cls)
    avp.code, avp.flags, avp._vendor_id, avp.name = code, flags, vendor, name
    if cls is AvpGrouped:
        members = value if isinstance(value, list) else [value]
        avp._avps = members  # type: ignore[attr-defined]
        avp.payload = _joined(members)
    else:
        avp.payload = b""
        avp.value = value
    return avp


def find(avps: Iterable[Avp], code: int, vendor: int = 0) -> Avp | None:
    for avp in avps:
        if avp.code == code and avp.vendor_id == vendor:
            return avp
    return None


def find_all(avps: Iterable[Avp], code: int, vendor: int = 0) -> list[Avp]:
    return [a for a in avps if a.code == code and a.vendor_id == vendor]


def value(avp: Avp) -> Any:
    """The AVP's value, or ``MalformedAvp`` when its payload does not decode
    (``InvalidAvpLength`` when it is not the size its type has)."""
    size = _FIXED_SIZE.get(type(avp))
    if size is not None and len(avp.payload) != size:
        raise InvalidAvpLength(avp, f"{avp.name}: {len(avp.payload)} octets, not {size}")
    try:
        return avp.value
    except Exception as exc:  # python-diameter raises several kinds here
        raise MalformedAvp(avp, f"{getattr(avp, 'name', avp.code)}: {exc}") from None


def integer(avps: Iterable[Avp], code: int, vendor: int = 0) -> int | None:
    avp = find(avps, code, vendor)
    if avp is None:
        return None
    got = value(avp)
    if not isinstance(got, int):
        raise MalformedAvp(avp, f"AVP {code} is not a number")
    return got


def text(avps: Iterable[Avp], code: int, vendor: int = 0) -> str | None:
    avp = find(avps, code, vendor)
    if avp is None:
        return None
    got = value(avp)
    if isinstance(got, bytes):
        try:
            return got.decode()
        except UnicodeDecodeError:
            raise MalformedAvp(avp, f"AVP {code} is not UTF-8") from None
    if not isinstance(got, str):
        raise MalformedAvp(avp, f"AVP {code} is not text")
    return got


def group(avp: Avp) -> list[Avp]:
    got = value(avp)
    if not isinstance(got, list):
        raise MalformedAvp(avp, f"AVP {avp.code} is not grouped")
    return got


def required_integer(avps: Sequence[Avp], code: int) -> int:
    got = integer(avps, code)
    if got is None:
        raise MissingAvp(code)
    return got


def required_text(avps: Sequence[Avp], code: int) -> str:
    got = text(avps, code)
    if got is None:
        raise MissingAvp(code)
    return got


@dataclass(frozen=True, slots=True)
class Units:
    """What a Requested- or Used-Service-Unit says; None: not present."""

    time: int | None = None
    total_octets: int | None = None
    input_octets: int | None = None
    output_octets: int | None = None
    service_specific: int | None = None
    tariff_change_usage: int | None = None

    @property
    def octets(self) -> int | None:
        if self.total_octets is not None:
            return self.total_octets
        if self.input_octets is None and self.output_octets is None:
            return None
        return (self.input_octets or 0) + (self.output_octets or 0)

    @property
    def empty(self) -> bool:
        return self.time is None and self.octets is None and self.service_specific is None


def units(avp: Avp) -> Units:
    inner = group(avp)
    return Units(
        time=integer(inner, CC_TIME),
        total_octets=integer(inner, CC_TOTAL_OCTETS),
        input_octets=integer(inner, CC_INPUT_OCTETS),
        output_octets=integer(inner, CC_OUTPUT_OCTETS),
        service_specific=integer(inner, CC_SERVICE_SPECIFIC_UNITS),
        tariff_change_usage=integer(inner, TARIFF_CHANGE_USAGE),
    )


def answer_to(
    request: Message,
    origin_host: str,
    origin_realm: str,
    avps: Sequence[Avp],
    *,
    error: bool = False,
) -> Message:
    """An answer to ``request`` (same command, application and identifiers):
    Session-Id first as RFC 6733 wants, then Origin-Host/Realm, then ``avps``."""
    header = MessageHeader(
        version=1,
        command_flags=request.header.command_flags & ~_REQUEST & ~0x10,  # no R, no T
        command_code=request.header.command_code,
        application_id=request.header.application_id,
        hop_by_hop_identifier=request.header.hop_by_hop_identifier,
        end_to_end_identifier=request.header.end_to_end_identifier,
    )
    header.is_error = error
    head: list[Avp] = []
    proxies: list[Avp] = []
    for avp in request.avps:
        # copied as received: a Session-Id that is not UTF-8 is still answered
        if avp.code == SESSION_ID and not head and not avp.vendor_id:
            head.append(copied(avp))
        elif avp.code == PROXY_INFO and not avp.vendor_id:
            proxies.append(copied(avp))  # RFC 6733 6.2: every one, in order
    head += [new(ORIGIN_HOST, origin_host.encode()), new(ORIGIN_REALM, origin_realm.encode())]
    return Message(header, [*head, *avps, *proxies])


def copied(avp: Avp) -> Avp:
    """``avp`` as received (its payload not decoded)."""
    return Avp(avp.code, avp.vendor_id, avp.payload, avp.flags)


def request_message(command_code: int, application_id: int, avps: Sequence[Avp]) -> Message:
    """A new request (R and P bits set); identifiers are set when it is sent."""
    header = MessageHeader(
        version=1,
        command_flags=_REQUEST | 0x40,
        command_code=command_code,
        application_id=application_id,
    )
    return Message(header, list(avps))


def failed_avp(avp: Avp | None = None, *, code: int | None = None, vendor: int = 0) -> Avp:
    """A Failed-AVP holding the offending AVP, or for a missing one an
    example of ``code``: zeroes of its type's smallest size, with its
    dictionary flags (RFC 6733 7.5)."""
    if avp is None:
        entry = get_avp_dictionary_entry(code or 0, vendor)
        flags = _FLAG_VENDOR if vendor else 0
        size = 0
        if entry is not None:
            flags |= _FLAG_MANDATORY if entry.get("mandatory") else 0
            size = _SMALLEST_SIZE.get(entry["type"], 0)
        inner = Avp(code or 0, vendor, b"\0" * size, flags)
    else:
        inner = copied(avp)
    return new(FAILED_AVP, [inner])


class Unreadable(ValueError):
    """Bytes that are no Diameter message: the AVP framing is broken (5014).
    ``code``/``vendor`` name the AVP whose length is wrong, ``before`` holds
    the AVPs read before it."""

    def __init__(
        self, why: str, code: int = 0, vendor: int = 0, before: Sequence[Avp] = ()
    ) -> None:
        super().__init__(why)
        self.code = code
        self.vendor = vendor
        self.before = list(before)


class ReceivedGroup(AvpGrouped):
    """A received grouped AVP: its members are split when first read, by
    ``_split`` (most of a gateway's groups, User-Equipment-Info or
    PS-Information, are never read)."""

    @property
    def value(self) -> list[Avp]:
        members: list[Avp] | None = self.__dict__.get("_avps")
        if members is None:
            try:
                members = _split(self.payload, 0, len(self.payload))
            except Unreadable as exc:
                raise AvpDecodeError(f"{self.name}: {exc}") from None
            self._avps = members
        return members

    @value.setter
    def value(self, new_value: list[Avp]) -> None:
        self._avps = new_value
        self.payload = _joined(new_value)


#: (code, vendor) -> the library's AVP class and name; filled as AVPs arrive
_AVP_TYPES: dict[tuple[int, int], tuple[type[Avp], str]] = {}


def _avp_type(code: int, vendor: int) -> tuple[type[Avp], str]:
    found = _AVP_TYPES.get((code, vendor))
    if found is None:
        entry = get_avp_dictionary_entry(code, vendor)
        if entry is None:
            found = (Avp, "Unknown")
        elif entry["type"] is AvpGrouped:
            found = (ReceivedGroup, entry["name"])
        else:
            found = (entry["type"], entry["name"])
        _AVP_TYPES[(code, vendor)] = found
    return found


def _split(data: bytes, offset: int, end: int) -> list[Avp]:
    """The AVPs in ``data[offset:end]`` (a group's members split when read)."""
    avps: list[Avp] = []
    while offset < end:
        if offset + 8 > end:
            raise Unreadable(f"{end - offset} bytes left where an AVP should be", before=avps)
        code, flags_length = _AVP_HEADER.unpack_from(data, offset)
        flags, length = flags_length >> 24, flags_length & 0xFFFFFF
        if flags & _FLAG_VENDOR:
            vendor = _VENDOR_ID.unpack_from(data, offset + 8)[0] if offset + 12 <= end else 0
            if length < 12 or offset + length > end:
                raise Unreadable(f"AVP {code}: length {length}", code, vendor, avps)
            start = offset + 12
        else:
            if length < 8 or offset + length > end:
                raise Unreadable(f"AVP {code}: length {length}", code, 0, avps)
            vendor, start = 0, offset + 8
        cls, name = _avp_type(code, vendor)
        avp = cls.__new__(cls)
        avp.code, avp.flags, avp._vendor_id, avp.name = code, flags, vendor, name
        stop = offset + length
        avp.payload = data[start:stop]
        avps.append(avp)
        offset = stop + (-length & 3)
    return avps


def decode(data: bytes) -> Message:
    """A received message (its length checked by the framer): the header and
    the top-level AVPs, as python-diameter's plain ``Message``; ``Unreadable``
    when their framing is broken. Values decode when read, a group's members
    are split when read (``MalformedAvp`` through ``value``/``group``: 5004)."""
    first, second, application, hop, end_to_end = _HEADER_FORMAT.unpack_from(data)
    header = MessageHeader(
        first >> 24,
        first & 0xFFFFFF,
        second >> 24,
        second & 0xFFFFFF,
        application,
        hop,
        end_to_end,
    )
    return Message(header, _split(data, _HEADER, len(data)))


def _encoded(avp: Avp) -> bytes:
    payload: bytes = avp.payload
    size = len(payload)
    vendor = avp.vendor_id
    if vendor:
        head = _AVP_VENDOR_HEADER.pack(
            avp.code, ((avp.flags | _FLAG_VENDOR) << 24) | (size + 12), vendor
        )
    else:
        head = _AVP_HEADER.pack(avp.code, (avp.flags << 24) | (size + 8))
    return head + payload + b"\0" * (-size & 3)


def _joined(avps: Sequence[Avp]) -> bytes:
    return b"".join([_encoded(avp) for avp in avps])


def encode(message: Message) -> bytes:
    """``message`` on the wire (its header's length set), as ``as_bytes`` would."""
    body = _joined(message.avps)
    header = message.header
    header.length = _HEADER + len(body)
    return (
        _HEADER_FORMAT.pack(
            (header.version << 24) | header.length,
            (header.command_flags << 24) | header.command_code,
            header.application_id,
            header.hop_by_hop_identifier,
            header.end_to_end_identifier,
        )
        + body
    )
