"""Raw RADIUS datagrams over UDP: what radclient will not send (broken
lengths, both PAP and CHAP, EAP without a Message-Authenticator), and
checks of the replies' authenticators and attribute order."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import socket
import struct

from pyrad import packet as rp
from radius_support import PASSWORD, SECRET

from ratel.adapters.radius.attributes import dictionary
from ratel.adapters.radius.server import RadiusServer
from ratel.container import Container

KEY = SECRET.encode()


def ports(server: RadiusServer) -> tuple[int, int]:
    return server.addresses["auth"][1], server.addresses["acct"][1]


def dropped(container: Container, code: str) -> float:
    value = container.telemetry().registry.get_sample_value(
        "ratel_errors_total",
        {"protocol": "radius", "operation": "request", "outcome": "dropped", "code": code},
    )
    return value or 0.0


def attr(code: int, value: bytes) -> bytes:
    return bytes([code, len(value) + 2]) + value


def pap_crypt(password: bytes, authenticator: bytes, secret: bytes = KEY) -> bytes:
    buf = password + b"\x00" * ((16 - len(password) % 16) % 16 if password else 16)
    out, last = b"", authenticator
    while buf:
        digest = hashlib.md5(secret + last).digest()
        block = bytes(a ^ b for a, b in zip(digest, buf[:16], strict=True))
        out += block
        last, buf = block, buf[16:]
    return out


def access_request(
    body: bytes,
    *,
    identifier: int = 1,
    authenticator: bytes | None = None,
    with_ma: bool = False,
    length: int | None = None,
    secret: bytes = KEY,
) -> bytes:
    """An Access-Request from raw attributes; optionally a correct
    Message-Authenticator appended; ``length`` overrides the header."""
    authenticator = authenticator or os.urandom(16)
    if with_ma:
        body = body + attr(80, b"\x00" * 16)
    size = 20 + len(body)
    header = struct.pack("!BBH", rp.AccessRequest, identifier, size)
    if with_ma:
        mac = hmac.new(secret, header + authenticator + body, "md5").digest()
        body = body[:-16] + mac
    real = struct.pack("!BBH", rp.AccessRequest, identifier, length if length is not None else size)
    return real + authenticator + body


def accounting_request(body: bytes, *, identifier: int = 1, secret: bytes = KEY) -> bytes:
    size = 20 + len(body)
    header = struct.pack("!BBH", rp.AccountingRequest, identifier, size)
    digest = hashlib.md5(header + b"\x00" * 16 + body + secret).digest()
    return header + digest + body


def user(login: str = "alice@isp", password: str = PASSWORD) -> tuple[bytes, bytes]:
    """User-Name + User-Password attributes, and the authenticator they go with."""
    authenticator = os.urandom(16)
    body = attr(1, login.encode()) + attr(2, pap_crypt(password.encode(), authenticator))
    return body, authenticator


async def exchange(
    port: int, datagrams: list[bytes], *, timeout: float = 2.0, expect: int | None = None
) -> list[bytes]:
    """Send each datagram from one socket; collect replies until timeout
    (or until ``expect`` replies came)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        replies: list[bytes] = []
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))
        wanted = expect if expect is not None else len(datagrams)
        while len(replies) < wanted:
            try:
                replies.append(await asyncio.to_thread(sock.recv, 65535))
            except TimeoutError:
                break
        return replies


async def one(port: int, datagram: bytes, timeout: float = 2.0) -> bytes | None:
    replies = await exchange(port, [datagram], timeout=timeout, expect=1)
    return replies[0] if replies else None


def attributes(reply: bytes) -> list[tuple[int, bytes]]:
    """The reply's attributes as (type, value), in order."""
    out, body = [], reply[20 : struct.unpack("!H", reply[2:4])[0]]
    while body:
        code, length = body[0], body[1]
        out.append((code, body[2:length]))
        body = body[length:]
    return out


def response_authenticator_ok(reply: bytes, request_authenticator: bytes) -> bool:
    expected = hashlib.md5(reply[:4] + request_authenticator + reply[20:] + KEY).digest()
    return hmac.compare_digest(expected, reply[4:20])


def message_authenticator_ok(reply: bytes, request_authenticator: bytes) -> bool:
    body, zeroed, loc = reply[20:], b"", 0
    while loc < len(body):
        code, length = body[loc], body[loc + 1]
        chunk = body[loc : loc + length]
        zeroed += chunk[:2] + b"\x00" * 16 if code == 80 else chunk
        loc += length
    mac = dict(attributes(reply)).get(80)
    expected = hmac.new(KEY, reply[:4] + request_authenticator + zeroed, "md5").digest()
    return mac is not None and hmac.compare_digest(mac, expected)


def decoded(reply: bytes) -> rp.Packet:
    return rp.Packet(secret=KEY, dict=dictionary(), packet=reply)
