"""A raw Diameter peer for conformance tests: raw AVPs and messages a
python-diameter gateway would not send, a recording application for a bare
node, and a peer over an asyncio stream."""

from __future__ import annotations

import asyncio
import itertools
import struct

from diameter.message import Message
from diameter.message.avp import Avp

from ratel.adapters.diameter import codec
from ratel.adapters.diameter.node import DiameterNode

OCS, REALM = "ocs.ratel.local", "ratel.local"
PEERS = {"gw1.test": (), "gw2.test": ("127.0.0.1",)}
_ids = itertools.count(5000)


def avp(code: int, value: object, vendor: int = 0) -> Avp:
    return Avp.new(code, vendor, value=value)


def raw_avp(code: int, payload: bytes, flags: int = 0x40, vendor: int = 0) -> bytes:
    """An encoded AVP with exactly these flags and payload (padded)."""
    if vendor:
        head = struct.pack(">III", code, ((flags | 0x80) << 24) | (12 + len(payload)), vendor)
    else:
        head = struct.pack(">II", code, (flags << 24) | (8 + len(payload)))
    return head + payload + b"\0" * (-len(payload) & 3)


def with_raw_avps(message: Message, *extra: bytes) -> bytes:
    """``message`` encoded, with ``extra`` encoded AVPs appended (length fixed)."""
    data = bytearray(message.as_bytes() + b"".join(extra))
    struct.pack_into(">I", data, 0, (1 << 24) | len(data))
    return bytes(data)


def identified(message: Message) -> Message:
    message.header.hop_by_hop_identifier = next(_ids)
    message.header.end_to_end_identifier = next(_ids)
    return message


def cer(origin_host: str, application: int = codec.CREDIT_CONTROL_APPLICATION) -> bytes:
    """A CER offering ``application`` (credit control unless told)."""
    return identified(
        codec.request_message(
            257,
            0,
            [
                avp(codec.ORIGIN_HOST, origin_host.encode()),
                avp(codec.ORIGIN_REALM, b"gw.test"),
                avp(257, "127.0.0.1"),
                avp(266, 99999),
                avp(269, "test gateway"),
                avp(codec.AUTH_APPLICATION_ID, application),
            ],
        )
    ).as_bytes()


def base_ccr(
    origin_host: str = "gw1.test",
    *,
    session: str | None = None,
    request_type: int = codec.UPDATE,
    number: int = 1,
    application: int = codec.CREDIT_CONTROL_APPLICATION,
    command: int = codec.CREDIT_CONTROL,
    more: tuple[Avp, ...] = (),
    skip: tuple[int, ...] = (),
) -> Message:
    avps = [
        avp(codec.SESSION_ID, session or f"{origin_host};{next(_ids)}"),
        avp(codec.ORIGIN_HOST, origin_host.encode()),
        avp(codec.ORIGIN_REALM, b"gw.test"),
        avp(codec.DESTINATION_REALM, REALM.encode()),
        avp(codec.AUTH_APPLICATION_ID, codec.CREDIT_CONTROL_APPLICATION),
        avp(codec.SERVICE_CONTEXT_ID, "32251@3gpp.org"),
        avp(codec.CC_REQUEST_TYPE, request_type),
        avp(codec.CC_REQUEST_NUMBER, number),
        *more,
    ]
    avps = [a for a in avps if a.code not in skip]
    return identified(codec.request_message(command, application, avps))


def proxy_info(host: bytes, state: bytes) -> Avp:
    return avp(284, [avp(280, host), avp(33, state)])


class Recorder:
    """An application that answers 2001 (after ``release`` when held)."""

    def __init__(self, hold: bool = False) -> None:
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.received: list[Message] = []

    async def answer(self, request: Message) -> Message:
        self.received.append(request)
        await self.release.wait()
        return codec.answer_to(request, OCS, REALM, [codec.new(codec.RESULT_CODE, 2001)])


async def started(application: Recorder, **options: float) -> DiameterNode:
    node = DiameterNode(OCS, REALM, "127.0.0.1", 0, PEERS, application, **options)  # type: ignore[arg-type]
    await node.start()
    return node


class Peer:
    """A gateway speaking raw Diameter over an asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Peer:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    @classmethod
    async def connect(cls, port: int, origin_host: str = "gw1.test") -> Peer:
        peer = await cls.open(port)
        peer.write(cer(origin_host))
        cea = await peer.read()
        assert cea is not None and codec.integer(cea.avps, codec.RESULT_CODE) == 2001
        return peer

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, message: Message) -> None:
        self.writer.write(message.as_bytes())

    async def read_raw(self, timeout: float = 3) -> bytes | None:
        """The next message's bytes; None when the node closed the
        connection; TimeoutError when nothing comes."""
        try:
            header = await asyncio.wait_for(self.reader.readexactly(20), timeout)
            length = int.from_bytes(header[1:4], "big")
            body = await asyncio.wait_for(self.reader.readexactly(length - 20), timeout)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return None
        return header + body

    async def read(self, timeout: float = 3) -> Message | None:
        data = await self.read_raw(timeout)
        return None if data is None else codec.decode(data)

    async def read_or_none(self, timeout: float = 3) -> Message | None | str:
        """The next message, None when closed, "silence" when nothing came."""
        try:
            return await self.read(timeout)
        except TimeoutError:
            return "silence"

    def close(self) -> None:
        self.writer.close()


def result(message: Message | None | str) -> int | str | None:
    if not isinstance(message, Message):
        return message  # None (closed) or "silence"
    return codec.integer(message.avps, codec.RESULT_CODE)
