"""RADIUS conformance over raw datagrams: reply signing and attribute order
(BlastRADIUS), Proxy-State, Status-Server, duplicates, PAP and CHAP forms,
lengths and odd attributes."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest
from pyrad import packet as rp
from radius_support import PASSWORD, register_nas, subscriber
from raw_radius import (
    KEY,
    access_request,
    accounting_request,
    attr,
    attributes,
    dropped,
    exchange,
    message_authenticator_ok,
    one,
    ports,
    response_authenticator_ok,
    user,
)

from ratel.adapters.radius.server import RadiusServer
from ratel.container import Container

pytestmark = pytest.mark.asyncio

PROXY_STATES = [attr(33, b"first-proxy"), attr(33, b"\x00\x01second"), attr(33, b"third")]


def acct_body(status: int, session: bytes = b"sess-1") -> bytes:
    return attr(1, b"alice@isp") + attr(40, struct.pack("!I", status)) + attr(44, session)


async def test_access_accept_and_reject_sign_first_and_copy_proxy_state(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2865 5.33, RFC 3579 3.2, BlastRADIUS: Message-Authenticator first,
    Proxy-State copied in order, Response Authenticator right."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth = ports(server)[0]
    for password, code in ((PASSWORD, rp.AccessAccept), ("wrong", rp.AccessReject)):
        body, authenticator = user(password=password)
        request = access_request(
            body + b"".join(PROXY_STATES), authenticator=authenticator, with_ma=True
        )
        reply = await one(auth, request)
        assert reply is not None and reply[0] == code
        found = attributes(reply)
        assert found[0][0] == 80
        assert [v for c, v in found if c == 33] == [p[2:] for p in PROXY_STATES]
        assert response_authenticator_ok(reply, authenticator)
        assert message_authenticator_ok(reply, authenticator)


async def test_accounting_response_has_only_proxy_state(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2866 4.2: only Proxy-State / VSAs in an Accounting-Response."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    acct = ports(server)[1]
    request = accounting_request(acct_body(1) + b"".join(PROXY_STATES))
    reply = await one(acct, request)
    assert reply is not None and reply[0] == rp.AccountingResponse
    assert [(c, v) for c, v in attributes(reply)] == [(33, p[2:]) for p in PROXY_STATES]
    assert response_authenticator_ok(reply, request[4:20])


async def test_status_server_answers_signed_on_both_ports(
    container: Container, server: RadiusServer
) -> None:
    """RFC 5997 3: Access-Accept / Accounting-Response with a valid Message-Authenticator."""
    await register_nas(container)
    auth, acct = ports(server)
    for port, code in ((auth, rp.AccessAccept), (acct, rp.AccountingResponse)):
        authenticator = os.urandom(16)
        raw = bytearray(access_request(b"", authenticator=authenticator, with_ma=True))
        # re-sign as Status-Server
        raw[0] = rp.StatusServer
        raw[22:38] = b"\x00" * 16
        raw[22:38] = hmac.new(KEY, bytes(raw), "md5").digest()
        reply = await one(port, bytes(raw))
        assert reply is not None and reply[0] == code
        assert message_authenticator_ok(reply, authenticator)
        assert response_authenticator_ok(reply, authenticator)


async def test_duplicate_gets_same_bytes_and_new_authenticator_is_new_request(
    container: Container, server: RadiusServer
) -> None:
    """RFC 5080 2.2.2."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth = ports(server)[0]
    body, authenticator = user()
    request = access_request(body, identifier=9, authenticator=authenticator)
    first = await exchange(auth, [request])
    again = await exchange(auth, [request])
    assert first and first == again
    other_body, other_auth = user(password="wrong")
    fresh = await one(auth, access_request(other_body, identifier=9, authenticator=other_auth))
    assert fresh is not None and fresh[0] == rp.AccessReject


async def test_pap_128_octet_password_and_padding(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2865 5.2: 128 octets and a 16*n password."""
    await register_nas(container)
    auth = ports(server)[0]
    for i, password in enumerate(("p" * 128, "q" * 32)):
        await subscriber(container, f"u{i}@isp", password=password)
        body, authenticator = user(f"u{i}@isp", password)
        reply = await one(auth, access_request(body, authenticator=authenticator))
        assert reply is not None and reply[0] == rp.AccessAccept


async def test_chap_with_challenge_attribute_and_authenticator(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2865 5.3 / 5.40."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp")
    await container.set_chap_secret()(sub.account_id, "chap-secret")
    auth = ports(server)[0]
    authenticator, challenge = os.urandom(16), os.urandom(16)
    digest = hashlib.md5(b"\x07chap-secret" + challenge).digest()
    body = attr(1, b"alice@isp") + attr(3, b"\x07" + digest) + attr(60, challenge)
    reply = await one(auth, access_request(body, authenticator=authenticator))
    assert reply is not None and reply[0] == rp.AccessAccept
    digest = hashlib.md5(b"\x08chap-secret" + authenticator).digest()
    body = attr(1, b"alice@isp") + attr(3, b"\x08" + digest)
    reply = await one(auth, access_request(body, authenticator=authenticator))
    assert reply is not None and reply[0] == rp.AccessAccept
    body = attr(1, b"alice@isp") + attr(3, b"\x08" + digest[:10])  # wrong length
    reply = await one(auth, access_request(body, identifier=3))
    assert reply is not None and reply[0] == rp.AccessReject


async def test_length_padding_bigger_length_and_4096(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2865 3: octets past Length are padding; Length > datagram is dropped."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth = ports(server)[0]
    body, authenticator = user()
    padded = access_request(body, authenticator=authenticator) + b"\xff" * 30
    reply = await one(auth, padded)
    assert reply is not None and reply[0] == rp.AccessAccept
    body, authenticator = user()
    lying = access_request(body, authenticator=authenticator, length=20 + len(body) + 10)
    assert await one(auth, lying, timeout=0.5) is None
    body, authenticator = user()
    filler = b""
    room = 4096 - 20 - len(body)
    while room > 0:
        n = min(253, room - 2) if room - 2 >= 1 else 0
        if room <= 255 and room >= 3:
            n = room - 2
        filler += attr(32, b"x" * n)  # NAS-Identifier
        room -= n + 2
    big = access_request(body + filler, authenticator=authenticator)
    assert len(big) == 4096
    reply = await one(auth, big)
    assert reply is not None and reply[0] == rp.AccessAccept


async def test_wrong_message_authenticator_dropped_and_counted(
    container: Container, server: RadiusServer
) -> None:
    """RFC 3579 3.2."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth = ports(server)[0]
    body, authenticator = user()
    bad = bytearray(access_request(body, authenticator=authenticator, with_ma=True))
    bad[-1] ^= 0xFF
    assert await one(auth, bytes(bad), timeout=0.5) is None
    assert dropped(container, "bad_message_authenticator") == 1


async def test_unknown_vsa_broken_vsa_event_timestamp_survive(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2865 5.26, RFC 6929 2.8: unknown/odd attributes do not stop the accept."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth = ports(server)[0]
    extra = (
        attr(26, struct.pack("!I", 99999) + attr(1, b"hello"))
        + attr(26, struct.pack("!I", 2011) + bytes([1, 40, 0]))
        + attr(55, struct.pack("!I", 1_700_000_000))
        + attr(55, b"\x01\x02")
        + attr(250, b"")
    )
    body, authenticator = user()
    reply = await one(auth, access_request(body + extra, authenticator=authenticator))
    assert reply is not None and reply[0] == rp.AccessAccept


async def test_server_answers_after_a_flood_of_garbage(
    container: Container, server: RadiusServer
) -> None:
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth, acct = ports(server)
    junk = [os.urandom(n) for n in (1, 19, 20, 21, 100, 4096, 5000)] * 50
    junk += [bytes([1, i, 0, 22]) + os.urandom(16) + bytes([i % 256, 0]) for i in range(256)]
    await exchange(auth, junk, timeout=0.2, expect=0)
    await exchange(acct, junk, timeout=0.2, expect=0)
    body, authenticator = user()
    reply = await one(auth, access_request(body, authenticator=authenticator))
    assert reply is not None and reply[0] == rp.AccessAccept
