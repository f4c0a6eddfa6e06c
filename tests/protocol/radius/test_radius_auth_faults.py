"""RADIUS requests the RFCs call malformed or forbid, sent as raw datagrams:
each test failed before its fix (ratel accepted, acknowledged or crashed
on them)."""

from __future__ import annotations

import hashlib
import logging
import os
import struct

import pytest
from pyrad import packet as rp
from radius_support import register_nas, subscriber
from raw_radius import (
    access_request,
    accounting_request,
    attr,
    dropped,
    one,
    ports,
    user,
)

from ratel.adapters.radius.server import RadiusServer
from ratel.config import SettingsError, load_settings
from ratel.container import Container

pytestmark = pytest.mark.asyncio

#: An EAP-Response/Identity (RFC 3748) for alice@isp.
EAP_IDENTITY = b"\x02\x01\x00\x0e\x01alice@isp"


def _integer(value: int) -> bytes:
    return struct.pack("!I", value)


async def test_access_request_whose_last_attribute_overruns_the_packet_is_not_accepted(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2865 section 5 (Length): "If an Attribute is received in an
    Access-Request but with an invalid Length, an Access-Reject SHOULD be
    transmitted" (RFC 2865 section 3 / RFC 6929 2.8: such a packet is
    malformed; silently discarding it is the other safe choice).

    Here the last attribute (NAS-Identifier) claims 30 octets while only 3
    follow in the packet, whose header Length matches the datagram. An
    attribute of Length 1 is already dropped as malformed; an overrunning one
    is decoded truncated by pyrad and the login is accepted."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth = ports(server)[0]
    body, authenticator = user()
    overrun = bytes([32, 30]) + b"abc"
    reply = await one(auth, access_request(body + overrun, authenticator=authenticator), 1.0)
    assert reply is None or reply[0] == rp.AccessReject, "Access-Accept for a malformed packet"


async def test_accounting_request_whose_last_attribute_overruns_the_packet_is_discarded(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2865 sections 3 and 5, RFC 2866 section 2: an Accounting-Request
    with an attribute whose Length runs past the end of the packet is
    malformed: silently discarded (and counted), not recorded and
    acknowledged. ratel decodes it truncated, opens the session and answers."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    acct = ports(server)[1]
    body = attr(1, b"alice@isp") + attr(40, _integer(1)) + attr(44, b"overrun-1")
    overrun = bytes([31, 40]) + b"0a"  # Calling-Station-Id: 40 claimed, 2 there
    reply = await one(acct, accounting_request(body + overrun), 1.0)
    assert reply is None, "Accounting-Response for a malformed packet"
    assert dropped(container, "malformed") == 1


async def test_access_request_with_both_user_password_and_chap_password_is_not_accepted(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2865 section 4.1: "An Access-Request MUST NOT contain both a
    User-Password and a CHAP-Password" (also 5.2, 5.3). Such a request must be
    rejected (or discarded), not authenticated by whichever ratel reads first:
    now the CHAP-Password is checked, the wrong User-Password ignored, and
    the login accepted."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp")
    await container.set_chap_secret()(sub.account_id, "chapper")
    auth = ports(server)[0]
    body, authenticator = user(password="not-the-password")
    chap = attr(3, b"\x07" + hashlib.md5(b"\x07chapper" + authenticator).digest())
    reply = await one(auth, access_request(body + chap, authenticator=authenticator), 1.0)
    assert reply is None or reply[0] == rp.AccessReject, "Access-Accept with PAP and CHAP"


async def test_eap_message_without_message_authenticator_is_silently_discarded(
    container: Container, server: RadiusServer
) -> None:
    """RFC 3579 section 3.2: "Access-Request packets including EAP-Message
    attribute(s) without a Message-Authenticator attribute SHOULD be silently
    discarded by the RADIUS server" (also the BlastRADIUS guidance). ratel
    answers with an (unsigned-request) Access-Reject."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth = ports(server)[0]
    request = access_request(attr(1, b"alice@isp") + attr(79, EAP_IDENTITY))
    assert await one(auth, request, 1.0) is None


async def test_a_user_password_of_invalid_length_is_rejected_not_taken_for_a_store_failure(
    container: Container, server: RadiusServer, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 2865 section 5.2: the User-Password is 16 to 128 octets, a multiple
    of 16; section 5: an Access-Request with an invalid attribute SHOULD get
    an Access-Reject. At the least it is a malformed packet, dropped and
    counted like the others (``code="malformed"``).

    ratel's PwDecrypt raises in the handler task, which takes it for a store
    failure: no reply, no drop counted, and an ERROR "RADIUS request failed"
    with a traceback for every retransmission."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth = ports(server)[0]
    request = access_request(attr(1, b"alice@isp") + attr(2, b"x" * 17))
    with caplog.at_level(logging.WARNING, logger="ratel.radius"):
        reply = await one(auth, request, 1.0)
    rejected = reply is not None and reply[0] == rp.AccessReject
    assert rejected or dropped(container, "malformed") == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_accounting_request_without_acct_status_type_is_not_acknowledged(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2866 section 5.1/5.13: Acct-Status-Type MUST be present (exactly
    once) in an Accounting-Request; section 2: the server answers only when it
    has recorded the packet and "MUST NOT transmit any reply if it fails to
    record" it. ratel records nothing for such a packet but acknowledges it
    with an Accounting-Response, so the NAS deletes a report nobody kept.
    Expected: silently discarded and counted, as a missing Acct-Session-Id is."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    acct = ports(server)[1]
    body = attr(1, b"alice@isp") + attr(44, b"no-status-1") + attr(43, _integer(10_000))
    assert await one(acct, accounting_request(body), 1.0) is None


async def test_chap_secret_with_surrounding_spaces_verifies_as_stored(
    container: Container, server: RadiusServer
) -> None:
    """RFC 2865 section 2.2 / RFC 1994 section 4.1: the CHAP response is
    MD5(CHAP ID + secret + challenge), the secret octets as they are.
    SetChapSecret stores " chap secret " as given and PAP accepts it, but
    pyrad's VerifyChapPasswd strips str secrets, so the NAS's correct CHAP
    response is rejected."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp")
    await container.set_chap_secret()(sub.account_id, " chap secret ")
    auth = ports(server)[0]
    authenticator = os.urandom(16)
    digest = hashlib.md5(b"\x07 chap secret " + authenticator).digest()
    body = attr(1, b"alice@isp") + attr(3, b"\x07" + digest)
    reply = await one(auth, access_request(body, authenticator=authenticator))
    assert reply is not None and reply[0] == rp.AccessAccept


async def test_an_acct_interim_interval_below_60_seconds_is_refused_by_the_settings() -> None:
    """RFC 2869 section 5.16 (Acct-Interim-Interval): "The value SHOULD NOT be
    smaller than 60" (section 2.1: interim updates add load, and here each is
    a charging round). ratel sent whatever ``RATEL_RADIUS_INTERIM_INTERVAL``
    said, 10 included."""
    with pytest.raises(SettingsError, match=r"radius_interim_interval|RADIUS_INTERIM"):
        load_settings(env={"RATEL_RADIUS_INTERIM_INTERVAL": "10"})
    assert load_settings(env={"RATEL_RADIUS_INTERIM_INTERVAL": "60"}).radius_interim_interval == 60


async def test_an_access_request_with_proxy_state_and_no_message_authenticator_is_discarded(
    container: Container, server: RadiusServer
) -> None:
    """BlastRADIUS (CVE-2024-3596): the reply copies the request's Proxy-State,
    so in an unsigned request it lets a forger choose part of what the
    Response Authenticator's MD5 covers. FreeRADIUS discards such requests
    (limit_proxy_state); signed, they are answered."""
    await register_nas(container)
    await subscriber(container, "alice@isp")
    auth = ports(server)[0]
    body, authenticator = user()
    state = attr(33, b"proxy-1")
    assert await one(auth, access_request(body + state, authenticator=authenticator), 1.0) is None
    assert dropped(container, "proxy_state_without_message_authenticator") == 1
    signed = access_request(body + state, authenticator=authenticator, with_ma=True)
    reply = await one(auth, signed)
    assert reply is not None and reply[0] == rp.AccessAccept
