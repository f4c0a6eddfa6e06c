"""The asyncio node on real sockets, with an application the test holds:
overload refused with 3004 per peer, DWR after Tw of silence and the close
when no DWA comes, a RAR to the right one of two peers with its answer
matched back, a peer leaving in the middle of a request, and stop."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator

import pytest
from diameter.message import Message
from diameter.message.avp import Avp
from gateway import avp, result_code
from test_diameter_node import cer

from ratel.adapters.diameter import codec
from ratel.adapters.diameter.node import DiameterNode

OCS, REALM = "ocs.ratel.local", "ratel.local"
PEERS = {"gw1.test": (), "gw2.test": ("127.0.0.1",)}
_ids = itertools.count(100)


class Held:
    """An application that answers 2001 once the test releases it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.received: list[Message] = []

    async def answer(self, request: Message) -> Message:
        self.received.append(request)
        await self.release.wait()
        return codec.answer_to(request, OCS, REALM, [codec.new(codec.RESULT_CODE, 2001)])


class Peer:
    """A gateway speaking raw Diameter over an asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, origin_host: str) -> Peer:
        peer = cls(*await asyncio.open_connection("127.0.0.1", port))
        peer.writer.write(cer(origin_host))
        cea = await peer.read()
        assert cea is not None and result_code(cea) == 2001
        return peer

    def send(self, message: Message) -> None:
        self.writer.write(message.as_bytes())

    async def read(self, timeout: float = 5) -> Message | None:
        """The next message, or None when the node closed the connection."""
        try:
            header = await asyncio.wait_for(self.reader.readexactly(20), timeout)
            length = int.from_bytes(header[1:4], "big")
            body = await asyncio.wait_for(self.reader.readexactly(length - 20), timeout)
        except asyncio.IncompleteReadError:
            return None
        return Message.from_bytes(header + body, plain_msg=True)

    def close(self) -> None:
        self.writer.close()


def ccr(origin_host: str = "gw1.test") -> Message:
    message = codec.request_message(
        codec.CREDIT_CONTROL,
        codec.CREDIT_CONTROL_APPLICATION,
        [
            avp(codec.SESSION_ID, f"{origin_host};{next(_ids)}"),
            avp(codec.ORIGIN_HOST, origin_host.encode()),
            avp(codec.ORIGIN_REALM, b"gw.test"),
            avp(codec.DESTINATION_REALM, REALM.encode()),
            avp(codec.AUTH_APPLICATION_ID, codec.CREDIT_CONTROL_APPLICATION),
            avp(codec.CC_REQUEST_TYPE, codec.UPDATE),
            avp(codec.CC_REQUEST_NUMBER, 1),
        ],
    )
    message.header.hop_by_hop_identifier = next(_ids)
    message.header.end_to_end_identifier = next(_ids)
    return message


def re_auth(session_id: str, *more: Avp) -> Message:
    """A RAR of the session, to be sent by the node."""
    return codec.request_message(
        codec.RE_AUTH,
        codec.CREDIT_CONTROL_APPLICATION,
        [codec.new(codec.SESSION_ID, session_id), *more],
    )


async def started(application: Held, **options: float) -> DiameterNode:
    node = DiameterNode(OCS, REALM, "127.0.0.1", 0, PEERS, application, **options)  # type: ignore[arg-type]
    await node.start()
    return node


@pytest.fixture
async def held() -> AsyncIterator[Held]:
    application = Held()
    yield application
    application.release.set()


async def test_beyond_max_in_flight_a_peer_gets_3004_at_once_and_the_others_are_answered(
    held: Held,
) -> None:
    busy: list[int] = []
    node = DiameterNode(
        OCS, REALM, "127.0.0.1", 0, PEERS, held, max_in_flight=2, on_busy=lambda: busy.append(1)
    )
    await node.start()
    try:
        gw1 = await Peer.connect(node.address[1], "gw1.test")
        gw2 = await Peer.connect(node.address[1], "gw2.test")
        first, second, third = ccr(), ccr(), ccr()
        for request in (first, second, third):
            gw1.send(request)
        refused = await gw1.read()
        assert refused is not None and result_code(refused) == 3004 and refused.header.is_error
        assert refused.header.hop_by_hop_identifier == third.header.hop_by_hop_identifier
        assert busy == [1] and len(held.received) == 2
        # the limit is per peer: gw2's request is taken while gw1 is full
        gw2.send(ccr("gw2.test"))
        for _ in range(100):
            if len(held.received) == 3:
                break
            await asyncio.sleep(0.01)
        assert len(held.received) == 3
        held.release.set()
        answered = [await gw1.read(), await gw1.read()]
        assert {a.header.hop_by_hop_identifier for a in answered if a is not None} == {
            first.header.hop_by_hop_identifier,
            second.header.hop_by_hop_identifier,
        }
        assert all(a is not None and result_code(a) == 2001 for a in answered)
        again = await gw2.read()
        assert again is not None and result_code(again) == 2001
        # room again: the next request of gw1 is served
        gw1.send(ccr())
        served = await gw1.read()
        assert served is not None and result_code(served) == 2001
        gw1.close()
        gw2.close()
    finally:
        await node.stop(1.0)


async def test_a_silent_peer_gets_a_dwr_after_tw_and_is_closed_when_no_dwa_comes(
    held: Held,
) -> None:
    node = await started(held, watchdog=0.3, answer_timeout=0.5)
    try:
        gw1 = await Peer.connect(node.address[1], "gw1.test")
        dwr = await gw1.read(timeout=3)
        assert dwr is not None and dwr.header.command_code == 280 and dwr.header.is_request
        assert codec.text(dwr.avps, codec.ORIGIN_HOST) == OCS
        gw1.send(
            codec.answer_to(dwr, "gw1.test", "gw.test", [avp(codec.RESULT_CODE, codec.SUCCESS)])
        )
        # answered: silence again brings the next DWR on the same connection
        again = await gw1.read(timeout=3)
        assert again is not None and again.header.command_code == 280
        assert again.header.hop_by_hop_identifier != dwr.header.hop_by_hop_identifier
        # not answered: the node closes the connection
        assert await gw1.read(timeout=3) is None
        assert node.ready_connection("gw1.test") is None
    finally:
        await node.stop(1.0)


async def test_a_rar_goes_to_the_named_one_of_two_peers_and_its_answer_is_matched(
    held: Held,
) -> None:
    node = await started(held)
    try:
        gw1 = await Peer.connect(node.address[1], "gw1.test")
        gw2 = await Peer.connect(node.address[1], "gw2.test")
        rars = []
        for session in ("gw2.test;1", "gw2.test;2"):
            rar = re_auth(
                session,
                codec.new(codec.ORIGIN_HOST, OCS.encode()),
                codec.new(codec.ORIGIN_REALM, REALM.encode()),
                codec.new(codec.DESTINATION_HOST, b"gw2.test"),
            )
            rars.append(node.send_request("GW2.test", rar))  # Origin-Host is case-blind
        received = [await gw2.read(), await gw2.read()]
        assert all(r is not None and r.header.command_code == codec.RE_AUTH for r in received)
        hops = {r.header.hop_by_hop_identifier for r in received if r is not None}
        assert len(hops) == 2
        # answered in the other order, each with its own Result-Code; a stray
        # answer nobody waits for is dropped
        stray = codec.answer_to(received[0], "gw2.test", "gw.test", [avp(codec.RESULT_CODE, 2001)])
        stray.header.hop_by_hop_identifier = 1
        gw2.send(stray)
        for request, code in ((received[1], 5002), (received[0], 2001)):
            assert request is not None
            gw2.send(
                codec.answer_to(request, "gw2.test", "gw.test", [avp(codec.RESULT_CODE, code)])
            )
        answers = await asyncio.wait_for(asyncio.gather(*rars), 5)
        assert [codec.text(a.avps, codec.SESSION_ID) for a in answers] == [
            "gw2.test;1",
            "gw2.test;2",
        ]
        assert [result_code(a) for a in answers] == [2001, 5002]
        # gw1 got nothing
        with pytest.raises(TimeoutError):
            await gw1.read(timeout=0.3)
        with pytest.raises(ConnectionError):
            node.send_request("gw-unknown.test", rar)
        gw1.close()
        gw2.close()
    finally:
        await node.stop(1.0)


async def test_a_request_sent_again_keeps_its_end_to_end_id_and_has_the_t_flag(
    held: Held,
) -> None:
    node = await started(held)
    try:
        gw1 = await Peer.connect(node.address[1], "gw1.test")
        rar = re_auth("gw1.test;7")
        first = node.send_request("gw1.test", rar)
        sent = await gw1.read()
        assert sent is not None and not sent.header.is_retransmit
        first.cancel()  # no answer in time: the caller sends it again
        again_waiting = node.send_request("gw1.test", rar)
        again = await gw1.read()
        assert again is not None and again.header.is_retransmit
        assert again.header.end_to_end_identifier == sent.header.end_to_end_identifier
        assert again.header.hop_by_hop_identifier != sent.header.hop_by_hop_identifier
        gw1.send(codec.answer_to(again, "gw1.test", "gw.test", [avp(codec.RESULT_CODE, 2001)]))
        assert result_code(await asyncio.wait_for(again_waiting, 5)) == 2001
        # a new request gets a new end-to-end id and no T-flag
        other = re_auth("gw1.test;8")
        node.send_request("gw1.test", other).cancel()
        fresh = await gw1.read()
        assert fresh is not None and not fresh.header.is_retransmit
        assert fresh.header.end_to_end_identifier != sent.header.end_to_end_identifier
        gw1.close()
    finally:
        await node.stop(1.0)


async def test_a_peer_leaving_mid_request_harms_nothing(held: Held) -> None:
    node = await started(held)
    try:
        gw1 = await Peer.connect(node.address[1], "gw1.test")
        gw1.send(ccr())
        rar = re_auth("gw1.test;9")
        waiting = node.send_request("gw1.test", rar)
        for _ in range(100):
            if held.received:
                break
            await asyncio.sleep(0.01)
        gw1.close()
        # the RAR's waiter learns at once that the peer left
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(waiting, 2)
        held.release.set()  # the CCA is ready for a peer that has gone
        await asyncio.sleep(0.1)
        assert node.ready_connection("gw1.test") is None
        # the node goes on: the peer connects again and is served
        back = await Peer.connect(node.address[1], "gw1.test")
        back.send(ccr())
        answer = await back.read()
        assert answer is not None and result_code(answer) == 2001
        back.close()
    finally:
        await node.stop(1.0)


async def test_stop_refuses_new_requests_answers_those_in_flight_and_says_dpr(held: Held) -> None:
    node = await started(held)
    gw1 = await Peer.connect(node.address[1], "gw1.test")
    in_flight = ccr()
    gw1.send(in_flight)
    for _ in range(100):
        if held.received:
            break
        await asyncio.sleep(0.01)
    # goodbye_timeout far beyond the wait below: only the DPA can end stop in time
    stopping = asyncio.create_task(node.stop(5.0, goodbye_timeout=60.0))
    await asyncio.sleep(0.05)
    gw1.send(ccr())
    refused = await gw1.read()
    assert refused is not None and result_code(refused) == 3004
    held.release.set()
    answered = await gw1.read()
    assert answered is not None and result_code(answered) == 2001
    assert answered.header.hop_by_hop_identifier == in_flight.header.hop_by_hop_identifier
    dpr = await gw1.read()
    assert dpr is not None and dpr.header.command_code == 282 and dpr.header.is_request
    assert node.ready_connection("gw1.test") is None  # no RAR after our goodbye
    gw1.send(codec.answer_to(dpr, "gw1.test", "gw.test", [avp(codec.RESULT_CODE, 2001)]))
    await asyncio.wait_for(stopping, 5)
    assert await gw1.read() is None


class AnswersThenHolds(Held):
    """Answers at once until ``answered`` requests were answered, then holds."""

    def __init__(self, answered: int) -> None:
        super().__init__()
        self.left = answered

    async def answer(self, request: Message) -> Message:
        if self.left:
            self.left -= 1
            return codec.answer_to(request, OCS, REALM, [codec.new(codec.RESULT_CODE, 2001)])
        return await super().answer(request)


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux's")
async def test_a_request_is_acknowledged_at_once_while_its_answer_is_pending() -> None:
    # After a run of request/answer exchanges Linux delays the ACK of a
    # request until the answer carries it. A peer with Nagle's algorithm on
    # (freeDiameter) then holds back its next request, of any session, until
    # that answer: its sessions would be charged one after the other. The
    # node asks for quick ACKs at every read; the kernel's own flag says so.
    application = AnswersThenHolds(answered=10)
    node = await started(application)
    try:
        gw = await Peer.connect(node.address[1], "gw1.test")
        gw.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        for _ in range(10):
            gw.send(ccr())
            answer = await gw.read()
            assert answer is not None and result_code(answer) == 2001
        gw.send(ccr())
        while not application.received:
            await asyncio.sleep(0.01)
        (connection,) = node._connections
        server_socket = connection._transport.get_extra_info("socket")  # type: ignore[union-attr]
        assert server_socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1
        application.release.set()
        answer = await gw.read()
        assert answer is not None and result_code(answer) == 2001
        gw.close()
    finally:
        application.release.set()
        await node.stop(1.0)
