"""Server-initiated requests: a RAR to the peer that opened the session when
the account's situation changes (top-up, new add-on, block), an ASR when the
account is terminated."""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from diameter.message import Message
from gateway import Gateway, mscc, result_code, subscription, units
from test_diameter_credit_control import new_subscriber

from ratel.adapters.db.records import StoredEvent
from ratel.adapters.diameter import codec
from ratel.application.housekeeping import Housekeeping
from ratel.container import Container
from ratel.domain.charging import IDLE_TIMEOUT
from ratel.domain.money import Money
from ratel.ports.store import IdentifierKind


@pytest.fixture(scope="module")
async def gw2(port: int) -> AsyncIterator[Gateway]:
    gateway = Gateway("gw2.test", port)
    await asyncio.to_thread(gateway.start)
    yield gateway
    await asyncio.to_thread(gateway.stop)


async def open_session(ocs: Container, gateway: Gateway) -> tuple[str, str, str]:
    """A fresh subscriber with a data session on ``gateway``: msisdn, customer, session."""
    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "1")
    session = gateway.new_session()
    answer = await gateway.send(
        gateway.ccr(session, codec.INITIAL, 0, *subscription(msisdn), mscc(10))
    )
    assert result_code(answer) == codec.SUCCESS
    view = await ocs.balance_enquiry()(IdentifierKind.MSISDN, msisdn)
    # the relay hands on the opening top-up's event too: let it pass first
    await asyncio.sleep(0.5)
    drain(gateway)
    return view.account_id, view.customer_id, session


async def next_request(gateway: Gateway, timeout: float = 10) -> Message:
    return await gateway.server_request(timeout)


def drain(gateway: Gateway) -> None:
    while True:
        try:
            gateway.requests.get_nowait()
        except queue.Empty:
            return


async def test_top_up_sends_a_rar_to_the_sessions_own_peer_only(
    ocs: Container, gw1: Gateway, gw2: Gateway
) -> None:
    _, customer, session = await open_session(ocs, gw1)
    await open_session(ocs, gw2)  # another subscriber's session on another peer
    await ocs.top_up()(customer, Money.of("10", "USD"), "voucher")
    rar = await next_request(gw1)
    assert rar.header.command_code == codec.RE_AUTH and rar.header.application_id == 4
    assert codec.text(rar.avps, codec.SESSION_ID) == session
    assert codec.text(rar.avps, codec.DESTINATION_HOST) == "gw1.test"
    assert codec.text(rar.avps, codec.DESTINATION_REALM) == "gw.test"
    assert codec.text(rar.avps, codec.ORIGIN_HOST) == "ocs.ratel.local"
    assert codec.integer(rar.avps, codec.RE_AUTH_REQUEST_TYPE) == codec.AUTHORIZE_ONLY
    assert codec.integer(rar.avps, codec.AUTH_APPLICATION_ID) == 4
    with pytest.raises(queue.Empty):
        await gw2.server_request(timeout=1)
    # the RAA was matched to the RAR
    for _ in range(50):
        metrics = ocs.telemetry().exposition().decode()
        if 'operation="rar",outcome="ok",protocol="diameter"' in metrics:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("no RAA was counted")


async def test_a_new_add_on_and_a_block_send_rars(ocs: Container, gw1: Gateway) -> None:
    account, _, session = await open_session(ocs, gw1)
    await ocs.add_add_on()(account, "TURBO")
    added = await next_request(gw1)
    assert (added.header.command_code, codec.text(added.avps, codec.SESSION_ID)) == (
        codec.RE_AUTH,
        session,
    )
    await ocs.block_account()(account, "fraud check")
    blocked = await next_request(gw1)
    assert (blocked.header.command_code, codec.text(blocked.avps, codec.SESSION_ID)) == (
        codec.RE_AUTH,
        session,
    )
    # the gateway asks again: the blocked account gets 4010
    update = await gw1.send(gw1.ccr(session, codec.UPDATE, 1, mscc(10)))
    assert result_code(update) == codec.END_USER_SERVICE_DENIED


async def test_termination_sends_an_asr(ocs: Container, gw1: Gateway) -> None:
    account, _, session = await open_session(ocs, gw1)
    await ocs.terminate_account()(account)
    asr = await next_request(gw1)
    assert asr.header.command_code == codec.ABORT_SESSION
    assert codec.text(asr.avps, codec.SESSION_ID) == session
    assert codec.text(asr.avps, codec.DESTINATION_HOST) == "gw1.test"


async def test_a_rar_for_a_peer_not_connected_here_is_said_so_and_not_counted_an_error(
    ocs: Container, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """With several nodes every node sees every event, and the session's peer
    is connected to one of them: the others say so, and do not count it an
    error as they would a peer that does not answer."""
    gateway = Gateway("fdgw.test", port)
    await asyncio.to_thread(gateway.start)
    try:
        _, _, session = await open_session(ocs, gateway)
    finally:
        await asyncio.to_thread(gateway.stop)
    server = ocs.diameter()
    settings = server.settings
    server.settings = replace(settings, request_attempts=2)  # two tries: 1.5 s
    caplog.set_level(logging.INFO, logger="ratel.diameter")
    try:
        assert await server.re_auth(session) is None
    finally:
        server.settings = settings
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "ratel.diameter"]
    assert (
        logging.INFO,
        "diameter: rar not sent: peer fdgw.test is not connected to this node",
    ) in said
    assert not [message for level, message in said if level >= logging.WARNING]
    metrics = ocs.telemetry().exposition().decode()
    assert (
        'ratel_errors_total{code="not_connected",operation="rar",outcome="rejected",'
        'protocol="diameter"} 1.0'
    ) in metrics
    assert 'code="no_answer",operation="rar"' not in metrics


class Later:
    """The system clock, moved on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.seconds)


async def test_tcc_supervision_releases_a_silent_diameter_session(
    ocs: Container, gw1: Gateway
) -> None:
    account, _, session = await open_session(ocs, gw1)
    await gw1.send(
        gw1.ccr(session, codec.UPDATE, 1, mscc(10, used=units(codec.USED_SERVICE_UNIT, total=1024)))
    )
    # validity (600 s) plus the Tcc grace (60 s) later, the gateway said nothing
    later = Housekeeping(replace(ocs.deps(), clock=Later(600 + 61)))
    assert await later.release_idle_sessions() >= 1
    assert session not in await ocs.open_sessions().of_account(account)
    xdrs = await ocs.account_xdrs()(account)
    assert [x.cause for x in xdrs if x.session_id == session] == ["idle timeout"]
    # its peer is forgotten once the relay saw the xDR: no RAR for it any more
    for _ in range(50):
        if await ocs.diameter_session_peers().get(session) is None:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the released session's peer is still remembered")
    # and the gateway's late update finds no session
    late = await gw1.send(gw1.ccr(session, codec.UPDATE, 2, mscc(10)))
    assert result_code(late) == codec.UNKNOWN_SESSION_ID


async def test_the_relay_forgets_only_the_peers_of_sessions_released_by_supervision(
    ocs: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TERMINATE forgets its session's peer with its charge, and a RADIUS
    session or a direct debit has none: their xDRs cost no transaction. A
    session released by Tcc supervision is forgotten on its xDR, and so is
    one whose xDR event predates the cause."""
    server = ocs.diameter()
    forgotten: list[str] = []
    forget = server._peers.forget

    async def spied(session_id: str) -> None:
        if session_id.startswith("relay-"):
            forgotten.append(session_id)
        await forget(session_id)

    monkeypatch.setattr(server._peers, "forget", spied)
    for session_id, cause in [
        ("relay-ended", "normal"),
        ("relay-radius", "User-Request"),
        ("relay-idle", IDLE_TIMEOUT),
        ("relay-before", None),
    ]:
        payload: dict[str, object] = {"session_id": session_id, "xdr_id": f"x-{session_id}"}
        if cause is not None:
            payload["cause"] = cause
        await server._ended(
            StoredEvent(1, "XdrProduced", "session", session_id, payload, datetime.now(UTC))
        )
    assert forgotten == ["relay-idle", "relay-before"]
