"""A packet gateway / CAMEL gateway played by a python-diameter client node:
it connects to ratel over TCP (CER/CEA), sends CCRs built AVP by AVP and
answers the RARs and ASRs ratel sends it."""

from __future__ import annotations

import asyncio
import itertools
import queue
import socket
import struct
from collections.abc import Sequence
from typing import Any

from diameter.message import Message
from diameter.message.avp import Avp
from diameter.node import Node
from diameter.node.application import SimpleThreadingApplication

from ratel.adapters.diameter import codec

DATA = "32251@3gpp.org"
VOICE = "32260@3gpp.org"
SMS = "32274@3gpp.org"
#: the CAMEL gateway's USSD Service-Context-Id the test node is configured with
USSD_CONTEXT = "ussd@camel.test"
#: the Vendor-Id the test node is configured with: RFC 5612's enterprise number
#: for documentation
VENDOR_ID = 32473

_ids = itertools.count(1)


def avp(code: int, value: Any, vendor: int = 0) -> Avp:
    return Avp.new(code, vendor, value=value)


def units(
    code: int,
    *,
    total: int | None = None,
    time: int | None = None,
    input: int | None = None,
    output: int | None = None,
    specific: int | None = None,
) -> Avp:
    inner = []
    if total is not None:
        inner.append(avp(codec.CC_TOTAL_OCTETS, total))
    if input is not None:
        inner.append(avp(codec.CC_INPUT_OCTETS, input))
    if output is not None:
        inner.append(avp(codec.CC_OUTPUT_OCTETS, output))
    if time is not None:
        inner.append(avp(codec.CC_TIME, time))
    if specific is not None:
        inner.append(avp(codec.CC_SERVICE_SPECIFIC_UNITS, specific))
    return avp(code, inner)


def mscc(
    rating_group: int | None = None,
    *,
    requested: Avp | None | bool = True,
    used: Avp | None = None,
    service_identifier: int | None = None,
    final: bool = False,
) -> Avp:
    inner: list[Avp] = []
    if service_identifier is not None:
        inner.append(avp(codec.SERVICE_IDENTIFIER, service_identifier))
    if rating_group is not None:
        inner.append(avp(codec.RATING_GROUP, rating_group))
    if requested is True:
        inner.append(avp(codec.REQUESTED_SERVICE_UNIT, []))
    elif isinstance(requested, Avp):
        inner.append(requested)
    if used is not None:
        inner.append(used)
    if final:
        inner.append(avp(872, 2, codec.TGPP))
    return avp(codec.MULTIPLE_SERVICES_CREDIT_CONTROL, inner)


def subscription(msisdn: str | None = None, imsi: str | None = None) -> list[Avp]:
    found = []
    if msisdn is not None:
        found.append(
            avp(
                codec.SUBSCRIPTION_ID,
                [
                    avp(codec.SUBSCRIPTION_ID_TYPE, codec.END_USER_E164),
                    avp(codec.SUBSCRIPTION_ID_DATA, msisdn),
                ],
            )
        )
    if imsi is not None:
        found.append(
            avp(
                codec.SUBSCRIPTION_ID,
                [
                    avp(codec.SUBSCRIPTION_ID_TYPE, codec.END_USER_IMSI),
                    avp(codec.SUBSCRIPTION_ID_DATA, imsi),
                ],
            )
        )
    return found


def ims(calling: str, called: str) -> Avp:
    return avp(
        codec.SERVICE_INFORMATION,
        [
            avp(
                codec.IMS_INFORMATION,
                [
                    avp(codec.CALLING_PARTY_ADDRESS, f"tel:+{calling}", codec.TGPP),
                    avp(codec.CALLED_PARTY_ADDRESS, f"tel:+{called}", codec.TGPP),
                ],
                codec.TGPP,
            )
        ],
        codec.TGPP,
    )


def sms_recipient(number: str = "12055550199") -> Avp:
    """Service-Information naming an SMS's recipient (3GPP SMS-Information)."""
    address = avp(
        codec.RECIPIENT_ADDRESS, [avp(codec.ADDRESS_DATA, number, codec.TGPP)], codec.TGPP
    )
    info = avp(codec.RECIPIENT_INFO, [address], codec.TGPP)
    sms = avp(codec.SMS_INFORMATION, [info], codec.TGPP)
    return avp(codec.SERVICE_INFORMATION, [sms], codec.TGPP)


def find(avps: Sequence[Avp], code: int, vendor: int = 0) -> Avp | None:
    return codec.find(avps, code, vendor)


def result_code(message: Message) -> int | None:
    return codec.integer(message.avps, codec.RESULT_CODE)


def msccs(message: Message) -> list[list[Avp]]:
    found = codec.find_all(message.avps, codec.MULTIPLE_SERVICES_CREDIT_CONTROL)
    return [codec.group(m) for m in found]


def by_rating_group(message: Message) -> dict[int | None, list[Avp]]:
    return {codec.integer(m, codec.RATING_GROUP): m for m in msccs(message)}


def granted(holder: Sequence[Avp]) -> dict[str, int]:
    gsu = codec.find(holder, codec.GRANTED_SERVICE_UNIT)
    if gsu is None:
        return {}
    names = {
        codec.CC_TOTAL_OCTETS: "total",
        codec.CC_TIME: "time",
        codec.CC_SERVICE_SPECIFIC_UNITS: "specific",
    }
    return {names.get(a.code, str(a.code)): a.value for a in codec.group(gsu)}


def top_flags(encoded: bytes) -> dict[int, int]:
    """Flags of each top-level AVP of an encoded message, by code."""
    flags, offset = {}, 20
    while offset + 8 <= len(encoded):
        code, flags_length = struct.unpack_from(">II", encoded, offset)
        flags[code] = flags_length >> 24
        offset += ((flags_length & 0xFFFFFF) + 3) & ~3
    return flags


class Gateway:
    """One gateway connected to ratel."""

    def __init__(
        self,
        origin_host: str,
        port: int,
        realm: str = "gw.test",
        ocs_host: str = "ocs.ratel.local",
        ocs_realm: str = "ratel.local",
    ) -> None:
        self.origin_host = origin_host
        self.realm = realm
        self.ocs_realm = ocs_realm
        self.requests: queue.Queue[Message] = queue.Queue()
        self.answer_code = codec.SUCCESS
        self.node = Node(origin_host, realm)
        self.node.wakeup_interval = 1
        self.node.idle_timeout = 2  # DWR soon: the watchdog is exercised
        self.peer = self.node.add_peer(
            f"aaa://{ocs_host}:{port};transport=tcp",
            ocs_realm,
            ["127.0.0.1"],
            is_persistent=True,
            is_default=True,
        )
        self.app = SimpleThreadingApplication(
            codec.CREDIT_CONTROL_APPLICATION,
            is_auth_application=True,
            request_handler=self._server_request,
        )
        # plain Messages have no destination_realm attribute: the library then
        # routes by our own realm, so the OCS peer serves that one too
        self.node.add_application(self.app, [self.peer], realms=[realm])

    def _server_request(self, app: SimpleThreadingApplication, request: Message) -> Message:
        self.requests.put(request)
        answer = app.generate_answer(request)
        answer.result_code = self.answer_code
        return answer

    def start(self, timeout: float = 10) -> None:
        self.node.start()
        self.app.wait_for_ready(timeout)

    def stop(self) -> None:
        self.node.stop(wait_timeout=2)

    def new_session(self) -> str:
        return f"{self.origin_host};{next(_ids)};{socket.gethostname()}"

    def ccr(
        self, session_id: str, request_type: int, number: int, *avps: Avp, context: str = DATA
    ) -> Message:
        body = [
            avp(codec.SESSION_ID, session_id),
            avp(codec.ORIGIN_HOST, self.origin_host.encode()),
            avp(codec.ORIGIN_REALM, self.realm.encode()),
            avp(codec.DESTINATION_REALM, self.ocs_realm.encode()),
            avp(codec.AUTH_APPLICATION_ID, codec.CREDIT_CONTROL_APPLICATION),
            avp(codec.SERVICE_CONTEXT_ID, context),
            avp(codec.CC_REQUEST_TYPE, request_type),
            avp(codec.CC_REQUEST_NUMBER, number),
            *avps,
        ]
        return codec.request_message(codec.CREDIT_CONTROL, codec.CREDIT_CONTROL_APPLICATION, body)

    def send_now(self, request: Message, timeout: float = 10) -> Message:
        return self.app.send_request(request, timeout)

    async def send(self, request: Message, timeout: float = 10) -> Message:
        """Send from a thread: the server answers on this test's loop."""
        return await asyncio.to_thread(self.send_now, request, timeout)

    async def server_request(self, timeout: float = 10) -> Message:
        return await asyncio.to_thread(self.requests.get, True, timeout)


def raw_exchange(port: int, payloads: Sequence[bytes], timeout: float = 5) -> list[bytes]:
    """Send raw bytes on a fresh TCP connection; the messages that come back
    (one per payload at most), read until the connection is quiet."""
    answers: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for payload in payloads:
            sock.sendall(payload)
            header = _read(sock, 20)
            if not header:
                break
            length = struct.unpack(">I", b"\0" + header[1:4])[0]
            answers.append(header + _read(sock, length - 20))
    return answers


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return data
        data += chunk
    return data
