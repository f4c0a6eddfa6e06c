"""The Diameter node: ratel's peer state machine on the asyncio loop.

Every peer connection is an ``asyncio.Protocol`` on ratel's own event loop:
no threads, no hand-over between them. python-diameter is the codec only
(``Message``, its AVP classes and dictionary, through ``codec.decode`` and
``codec.encode``). The node does what an OCS needs of RFC 6733:

- capabilities exchange with registered peers only: an Origin-Host not in
  the registry, or one connecting from an address the registry does not
  name, gets 3010 and the connection closes; the CEA advertises the
  Credit-Control application (4) and 3GPP (10415) as a supported vendor; a
  CER offering neither application 4 (as Auth-Application-Id or inside a
  Vendor-Specific-Application-Id) nor the relay gets 5010; a second
  connection of a connected peer is settled by the RFC 6733 election;
- DWR/DWA both ways: a peer silent for ``watchdog`` seconds gets a DWR, and
  the connection closes when its DWA does not come within ``answer_timeout``;
  a connection that sends no CER within ``answer_timeout`` closes too;
- DPR/DPA both ways: ``stop`` sends DPR to every peer after the requests in
  flight are answered, and closes what has not left within its timeout;
- bytes that cannot be framed (version, length) close the connection; a
  request whose AVP framing is broken gets 5014; an unknown application 3007,
  an unknown command 3001 (protocol errors with the E-bit, RFC 6733 7.1.3),
  another Destination-Realm 3003; the node goes on whatever arrives;
- Origin-Host and Origin-Realm go out with the M-bit (the dictionary's);
- a retransmission (T-flag) reaches the application, which answers it from
  the store;
- each peer has at most ``max_in_flight`` requests being answered; beyond
  that, and while stopping, a request gets 3004 DIAMETER_TOO_BUSY at once,
  so overload is refused (the gateway fails over) rather than queued;
- requests we send (RAR, ASR) go to a peer by its Origin-Host on its own
  connection, with our hop-by-hop and end-to-end ids (a request sent again
  keeps its end-to-end id and has the T-flag); the answer resolves
  the future ``send_request`` returned, matched by hop-by-hop id; a peer
  that leaves fails its waiting futures with ``ConnectionError``.

The application's requests (Credit-Control) are answered by an
``Application``: a coroutine per request, run as a task on the loop, whose
answer goes back on the connection the request came on (and nowhere when
that peer has gone).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, cast

from diameter.message import Message
from diameter.message.avp import Avp

from ratel.adapters.diameter import codec

log = logging.getLogger("ratel.diameter")

CAPABILITIES_EXCHANGE = 257
DEVICE_WATCHDOG = 280
DISCONNECT_PEER = 282

_SUCCESS = 2001
_REALM_NOT_SERVED = 3003
_TOO_BUSY = 3004
_UNKNOWN_PEER = 3010
_ELECTION_LOST = 4003
_NO_COMMON_APPLICATION = 5010
_HOST_IP_ADDRESS = 257
_VENDOR_ID = 266
_PRODUCT_NAME = 269
_SUPPORTED_VENDOR_ID = 265
_VENDOR_SPECIFIC_APPLICATION_ID = 260
_DISCONNECT_CAUSE = 273
_REBOOTING = 0
_RELAY = 0xFFFFFFFF

_REQUEST = 0x80
_ERROR = 0x20
_BASE = 0  # the base protocol's application
_HEADER = struct.Struct(">IIIII")
_MAX_MESSAGE = 1 << 20  # a CCR is a few hundred bytes; more is an attack or a bug

_WAIT_CER, _READY, _CLOSING, _CLOSED = "wait-cer", "ready", "closing", "closed"


class Application(Protocol):
    """Answers the application's requests (Credit-Control, application 4)."""

    async def answer(self, request: Message) -> Message: ...


def _sequence() -> int:
    """A first identifier as RFC 6733 3 suggests: the low 12 bits of the time
    high, random low."""
    return ((int(time.time()) & 0xFFF) << 20) | random.randint(1, 0xFFFFF)


#: Linux's TCP_QUICKACK (None elsewhere).
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class PeerConnection(asyncio.Protocol):
    """One TCP connection of a peer: framing, state, in-flight count, and the
    answers it owes us."""

    def __init__(self, node: DiameterNode) -> None:
        self._node = node
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self.state = _WAIT_CER
        self.address = ""
        self.origin_host: str | None = None
        self.opened = self.last_read = node.now()
        self.dwr_sent: float | None = None
        self.in_flight = 0
        # the peer's DPR (RFC 6733 5.4): its DPA goes once the answers in
        # flight are sent, and then the peer closes (or we do, after a while)
        self.dpa_owed: Message | None = None
        self.goodbye_at: float | None = None
        self._hop_by_hop = _sequence()
        self.waiting: dict[int, asyncio.Future[Message]] = {}
        self._outgoing: list[bytes] = []
        self._socket: Any = None

    def __repr__(self) -> str:
        return f"<peer {self.origin_host or '?'} {self.address} {self.state}>"

    # -- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's does not derive from asyncio.Transport)
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if peer else ""
        self._socket = transport.get_extra_info("socket") if _QUICKACK is not None else None
        self._node.connected(self)

    def data_received(self, data: bytes) -> None:
        if self._socket is not None:
            # Acknowledge at once, not with the answer (Linux delays ACKs and
            # drops quick-ACK mode by itself, so it is asked for at every
            # read): a peer whose socket runs Nagle's algorithm, as
            # freeDiameter's does, holds back its next request while one is
            # unacknowledged, so every CCR of a connection would otherwise wait
            # for the answer to the one before, across sessions.
            try:
                self._socket.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                self._socket = None
        self.last_read = self._node.now()
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 20 and self.state != _CLOSED:
            first = int.from_bytes(buffer[:4], "big")
            length = first & 0xFFFFFF
            odd = first >> 24 != 1 and (length % 4 or self.state != _READY)
            if odd or not 20 <= length <= _MAX_MESSAGE:
                # no way to find the next message boundary: RFC 6733 says close
                # (a peer's message of another version is framed and answered 5011)
                log.warning("diameter: unreadable message header, closing the connection")
                self._node.unreadable()
                self.abort()
                return
            if len(buffer) < length:
                return
            message = bytes(buffer[:length])
            del buffer[:length]
            try:
                self._node.received(self, message)
            except Exception:  # whatever it was, the next message is read
                log.exception("diameter: a message could not be handled")

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = _CLOSED
        self._transport = None
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError(f"peer {self.origin_host} left"))
        self.waiting.clear()
        self._node.disconnected(self)

    # -- sending ---------------------------------------------------------------------------

    @property
    def is_ready(self) -> bool:
        """Capabilities exchanged, and neither side said goodbye."""
        return self.state == _READY and self._transport is not None

    @property
    def local_address(self) -> str | None:
        local = self._transport.get_extra_info("sockname") if self._transport else None
        return str(local[0]) if local else None

    def send(self, message: Message) -> bool:
        """Queue ``message`` for this loop pass's write; False when the
        connection has gone."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        if not self._outgoing:
            # the answers of one group commit leave in one send, not one each
            self._node.loop.call_soon(self._flush)
        self._outgoing.append(codec.encode(message))
        return True

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(outgoing))

    def next_hop_by_hop(self) -> int:
        self._hop_by_hop = (self._hop_by_hop + 1) & 0xFFFFFFFF or 1
        return self._hop_by_hop

    def close(self) -> None:
        """Close once what is queued has gone out."""
        if self._transport is not None:
            self.state = _CLOSING
            self._flush()
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self.state = _CLOSING
            self._transport.abort()


class DiameterNode:
    """A Diameter server node for credit control on the running loop."""

    def __init__(
        self,
        origin_host: str,
        origin_realm: str,
        host: str,
        port: int,
        peers: Mapping[str, Sequence[str]],
        application: Application,
        *,
        max_in_flight: int = 1000,
        watchdog: float = 30.0,
        answer_timeout: float = 4.0,
        on_unreadable: Callable[[], None] = lambda: None,
        on_busy: Callable[[], None] = lambda: None,
        product_name: str = "ratel",
        vendor_id: int = 0,
    ) -> None:
        self.origin_host = origin_host
        self.origin_realm = origin_realm
        self._host = host
        self._port = port
        self._registry = {name.lower(): tuple(addresses) for name, addresses in peers.items()}
        self._application = application
        self.max_in_flight = max_in_flight
        self.watchdog = watchdog
        self.answer_timeout = answer_timeout
        self._on_unreadable = on_unreadable
        self._on_busy = on_busy
        self._product_name = product_name
        self._vendor_id = vendor_id
        self._state_id = int(time.time())
        self._end_to_end = _sequence()
        self._server: asyncio.Server | None = None
        self._connections: set[PeerConnection] = set()
        self._ready: dict[str, PeerConnection] = {}  # Origin-Host -> its connection
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._identity = (origin_host, origin_realm)

    # -- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._server = await self._loop.create_server(
            lambda: PeerConnection(self), self._host, self._port, reuse_address=True, backlog=128
        )
        self._timers = asyncio.create_task(self._watch(), name="diameter-watchdog")

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the Diameter node is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the Diameter node is not started")
        return self._loop

    def now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    async def stop(self, drain_timeout: float, goodbye_timeout: float = 2.0) -> None:
        """Refuse new requests (3004), answer those in flight (at most
        ``drain_timeout``), DPR to every peer, wait for them to leave (at most
        ``goodbye_timeout``), close the rest."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=drain_timeout)
            if pending:
                log.error("diameter: requests still in flight at shutdown")
                for task in pending:
                    task.cancel()
        for connection in list(self._connections):
            if connection.state == _READY:
                self._send_dpr(connection)
            else:
                connection.abort()
        deadline = self.now() + goodbye_timeout
        while self._connections and self.now() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self._connections):
            connection.abort()
        if self._timers is not None:
            self._timers.cancel()
            self._timers = None
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- connections -----------------------------------------------------------------------

    def connected(self, connection: PeerConnection) -> None:
        if self._stopping:
            connection.abort()
            return
        self._connections.add(connection)

    def disconnected(self, connection: PeerConnection) -> None:
        self._connections.discard(connection)
        host = connection.origin_host
        if host is not None and self._ready.get(host) is connection:
            del self._ready[host]
            log.info("diameter: peer left", extra={"peer": host})

    def unreadable(self) -> None:
        self._on_unreadable()

    def ready_connection(self, origin_host: str) -> PeerConnection | None:
        """The peer's open connection, or None (not connected now)."""
        connection = self._ready.get(origin_host.lower())
        return connection if connection is not None and connection.is_ready else None

    async def _watch(self) -> None:
        """The timers: CER wait, DWR after Tw of silence, DWA wait."""
        tick = max(0.05, min(1.0, self.watchdog / 4, self.answer_timeout / 4))
        while True:
            await asyncio.sleep(tick)
            now = self.now()
            for connection in list(self._connections):
                if connection.state == _WAIT_CER:
                    if now - connection.opened > self.answer_timeout:
                        log.warning("diameter: no CER in time, closing %r", connection)
                        connection.abort()
                elif connection.state == _CLOSING and connection.goodbye_at is not None:
                    if now - connection.goodbye_at > self.answer_timeout:
                        # our DPA went out and the peer did not close
                        connection.close()
                elif connection.state == _READY:
                    if connection.dwr_sent is not None:
                        if now - connection.dwr_sent > self.answer_timeout:
                            log.warning("diameter: no DWA, closing %r", connection)
                            connection.abort()
                    elif now - connection.last_read > self.watchdog and not self._stopping:
                        self._send_dwr(connection)

    # -- receiving -------------------------------------------------------------------------

    def received(self, connection: PeerConnection, data: bytes) -> None:
        """One framed message from ``connection``."""
        second = int.from_bytes(data[4:8], "big")
        flags, command = second >> 24, second & 0xFFFFFF
        if not flags & _REQUEST:
            self._received_answer(connection, command, data)
            return
        if connection.state == _CLOSED:
            return
        if command == CAPABILITIES_EXCHANGE:
            if connection.state not in (_WAIT_CER, _READY):
                return  # saying goodbye
        elif connection.origin_host is None:
            # not (or no longer) a peer: the CER-first rule
            log.warning("diameter: %s before a successful CER ignored", command)
            return
        if data[0] != 1:
            # another version of Diameter (RFC 6733 7.1.5: 5011)
            self._malformed_request(connection, data, codec.UNSUPPORTED_VERSION)
            return
        if len(data) % 4:
            # RFC 6733 3: a length is a multiple of 4 (7.1.5: 5015)
            self._malformed_request(connection, data, codec.INVALID_MESSAGE_LENGTH)
            return
        try:
            request = codec.decode(data)
        except codec.Unreadable as exc:
            self._unreadable_request(connection, data, exc)
            return
        if flags & _ERROR and connection.state == _READY:
            # RFC 6733 3: no request has the E-bit (7.1.3: 3008)
            self._protocol_error(connection, request, codec.INVALID_HDR_BITS)
        elif command == CAPABILITIES_EXCHANGE:
            if connection.state == _READY:
                self._received_cer_again(connection, request)
            else:
                self._received_cer(connection, request)
        elif command == DEVICE_WATCHDOG:
            self._answer_base(
                connection, request, [codec.new(codec.ORIGIN_STATE_ID, self._state_id)]
            )
        elif command == DISCONNECT_PEER:
            self._received_dpr(connection, request)
        elif connection.state == _CLOSING:
            # after the peer's DPR (or ours): served elsewhere, not charged here
            self._protocol_error(connection, request, _TOO_BUSY)
        else:
            self._received_request(connection, request)

    def _received_dpr(self, connection: PeerConnection, dpr: Message) -> None:
        """RFC 6733 5.4 and 5.6 (R-Rcv-DPR: R-Snd-DPA, Closing): no new
        request is taken; the DPA goes after the answers still being charged,
        and the peer, which reads it last, closes the connection."""
        connection.state = _CLOSING
        connection.dpa_owed = codec.answer_to(
            dpr, *self._identity, [codec.new(codec.RESULT_CODE, _SUCCESS)]
        )
        self._say_goodbye(connection)

    def _say_goodbye(self, connection: PeerConnection) -> None:
        """The DPA owed, once no answer is in flight."""
        if connection.dpa_owed is not None and not connection.in_flight:
            connection.send(connection.dpa_owed)
            connection.dpa_owed = None
            connection.goodbye_at = self.now()

    def _received_cer_again(self, connection: PeerConnection, cer: Message) -> None:
        """A CER on an open connection (RFC 6733 5.6, R-Open: R-Snd-CEA): the
        same peer is answered as before; another identity is refused."""
        try:
            host = (codec.text(cer.avps, codec.ORIGIN_HOST) or "").lower()
        except codec.MalformedAvp:
            host = ""
        if host == connection.origin_host:
            connection.send(self._cea(connection, cer, _SUCCESS))
            return
        log.warning("diameter: a CER as %r on %r's connection: closing it", host, connection)
        self._refuse_cer(connection, cer, _UNKNOWN_PEER)

    def _received_answer(self, connection: PeerConnection, command: int, data: bytes) -> None:
        if command == DEVICE_WATCHDOG:
            connection.dwr_sent = None
            return
        if command == DISCONNECT_PEER:
            connection.close()
            return
        hop = int.from_bytes(data[12:16], "big")
        future = connection.waiting.pop(hop, None)
        if future is None or future.done():
            log.warning("diameter: an answer nobody waits for", extra={"command": command})
            return
        try:
            future.set_result(codec.decode(data))
        except codec.Unreadable as exc:
            self._on_unreadable()
            future.set_exception(ConnectionError(f"unreadable answer: {exc}"))

    def _unreadable_request(
        self, connection: PeerConnection, data: bytes, exc: codec.Unreadable
    ) -> None:
        """5014 with the AVP whose length is wrong in a Failed-AVP (RFC 6733
        7.1.5), and the Session-Id if it came before it."""
        failed = codec.failed_avp(code=exc.code, vendor=exc.vendor)
        self._malformed_request(
            connection, data, codec.INVALID_AVP_LENGTH, exc.before, [failed], str(exc)
        )

    def _malformed_request(
        self,
        connection: PeerConnection,
        data: bytes,
        result: int,
        avps: Sequence[Avp] = (),
        more: Sequence[Avp] = (),
        why: str = "",
    ) -> None:
        self._on_unreadable()
        header = codec.decode(data[:20]).header
        log.warning(
            "diameter: malformed request answered with %s: %s",
            result,
            why or f"length {len(data)}",
            extra={"command": header.command_code},
        )
        answer = codec.answer_to(
            Message(header, list(avps)),
            *self._identity,
            [codec.new(codec.RESULT_CODE, result), *more],
        )
        connection.send(answer)

    def _answer_base(self, connection: PeerConnection, request: Message, avps: list[Avp]) -> None:
        answer = codec.answer_to(
            request, *self._identity, [codec.new(codec.RESULT_CODE, _SUCCESS), *avps]
        )
        connection.send(answer)

    def _received_cer(self, connection: PeerConnection, cer: Message) -> None:
        try:
            host = (codec.text(cer.avps, codec.ORIGIN_HOST) or "").lower()
            offered = self._offers_credit_control(cer)
        except codec.MalformedAvp as exc:
            log.warning("diameter: CER unreadable: %s", exc)
            self._refuse_cer(connection, cer, codec.INVALID_AVP_VALUE)
            return
        allowed = self._registry.get(host)
        if allowed is None:
            log.warning("diameter: CER refused: %s is not a registered peer", host)
            self._refuse_cer(connection, cer, _UNKNOWN_PEER)
            return
        if allowed and connection.address not in allowed:
            log.warning(
                "diameter: CER refused: %s connected from %s, not a registered address",
                host,
                connection.address,
            )
            self._refuse_cer(connection, cer, _UNKNOWN_PEER)
            return
        if not offered:
            log.warning("diameter: CER refused: %s offers no credit control", host)
            self._refuse_cer(connection, cer, _NO_COMMON_APPLICATION)
            return
        other = self._ready.get(host)
        if other is not None and other.is_ready:
            # RFC 6733 5.6.4: the higher Origin-Host keeps its connection
            if self.origin_host.lower() > host:
                log.warning("diameter: %s connected again: the election closes the old one", host)
                other.close()
            else:
                self._refuse_cer(connection, cer, _ELECTION_LOST)
                return
        connection.state = _READY
        connection.origin_host = host
        self._ready[host] = connection
        log.info("diameter: peer ready", extra={"peer": host, "address": connection.address})
        connection.send(self._cea(connection, cer, _SUCCESS))

    def _offers_credit_control(self, cer: Message) -> bool:
        offered = {codec.value(a) for a in codec.find_all(cer.avps, codec.AUTH_APPLICATION_ID)}
        for vendor_app in codec.find_all(cer.avps, _VENDOR_SPECIFIC_APPLICATION_ID):
            offered.update(
                codec.value(a)
                for a in codec.find_all(codec.group(vendor_app), codec.AUTH_APPLICATION_ID)
            )
        return codec.CREDIT_CONTROL_APPLICATION in offered or _RELAY in offered

    def _refuse_cer(self, connection: PeerConnection, cer: Message, result: int) -> None:
        connection.send(self._cea(connection, cer, result))
        connection.close()

    def _cea(self, connection: PeerConnection, cer: Message, result: int) -> Message:
        address = connection.local_address or self._host
        answer = codec.answer_to(cer, *self._identity, [], error=3000 <= result < 4000)
        # Result-Code first, as the CEA's grammar has it
        answer.avps = [
            codec.new(codec.RESULT_CODE, result),
            *answer.avps,
            codec.new(_HOST_IP_ADDRESS, address),
            codec.new(_VENDOR_ID, self._vendor_id),
            codec.new(_PRODUCT_NAME, self._product_name),
            codec.new(codec.ORIGIN_STATE_ID, self._state_id),
            codec.new(_SUPPORTED_VENDOR_ID, codec.TGPP),
            codec.new(codec.AUTH_APPLICATION_ID, codec.CREDIT_CONTROL_APPLICATION),
        ]
        return answer

    def _received_request(self, connection: PeerConnection, request: Message) -> None:
        header = request.header
        if header.application_id not in (_BASE, codec.CREDIT_CONTROL_APPLICATION):
            self._protocol_error(connection, request, codec.APPLICATION_UNSUPPORTED)
            return
        if header.application_id == _BASE or header.command_code != codec.CREDIT_CONTROL:
            # RFC 6733 7.1.3: the base protocol is supported, not this command
            self._protocol_error(connection, request, codec.COMMAND_UNSUPPORTED)
            return
        try:
            realm = codec.text(request.avps, codec.DESTINATION_REALM)
        except codec.MalformedAvp:
            realm = None  # the application answers 5004 for it
        if realm is not None and realm.lower() != self.origin_realm.lower():
            self._protocol_error(connection, request, _REALM_NOT_SERVED)
            return
        if self._stopping or connection.in_flight >= self.max_in_flight:
            # overload or going away: the gateway tries another OCS or again later
            self._on_busy()
            self._protocol_error(connection, request, _TOO_BUSY)
            return
        connection.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._serve(connection, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, connection: PeerConnection, request: Message) -> None:
        try:
            try:
                answer = await self._application.answer(request)
            except Exception:
                log.exception("diameter: a request could not be answered")
                answer = codec.answer_to(
                    request,
                    *self._identity,
                    [codec.new(codec.RESULT_CODE, codec.UNABLE_TO_COMPLY)],
                )
            finally:
                connection.in_flight -= 1
            if not connection.send(answer):
                log.warning("diameter: the peer left before its answer was sent")
        finally:
            # after the answer, and also when stopping cancelled the charge
            self._say_goodbye(connection)

    def _protocol_error(self, connection: PeerConnection, request: Message, result: int) -> None:
        log.warning(
            "diameter: request refused with %s",
            result,
            extra={"command": request.header.command_code, "app": request.header.application_id},
        )
        answer = codec.answer_to(
            request, *self._identity, [codec.new(codec.RESULT_CODE, result)], error=True
        )
        connection.send(answer)

    # -- sending ---------------------------------------------------------------------------

    def _identified(self, connection: PeerConnection, request: Message) -> int:
        """A new Hop-by-Hop Identifier for this connection. A request sent
        before (it has its End-to-End Identifier) goes again as a
        retransmission: the same End-to-End Identifier and the T-flag, so the
        peer can tell a duplicate (RFC 6733 3 and 6.1.1)."""
        hop = connection.next_hop_by_hop()
        request.header.hop_by_hop_identifier = hop
        if request.header.end_to_end_identifier:
            request.header.is_retransmit = True
        else:
            self._end_to_end = (self._end_to_end + 1) & 0xFFFFFFFF or 1
            request.header.end_to_end_identifier = self._end_to_end
        return hop

    def _send_dwr(self, connection: PeerConnection) -> None:
        request = codec.request_message(
            DEVICE_WATCHDOG,
            0,
            [
                codec.new(codec.ORIGIN_HOST, self.origin_host.encode()),
                codec.new(codec.ORIGIN_REALM, self.origin_realm.encode()),
                codec.new(codec.ORIGIN_STATE_ID, self._state_id),
            ],
        )
        request.header.is_proxyable = False
        self._identified(connection, request)
        connection.dwr_sent = self.now()
        connection.send(request)

    def _send_dpr(self, connection: PeerConnection) -> None:
        request = codec.request_message(
            DISCONNECT_PEER,
            0,
            [
                codec.new(codec.ORIGIN_HOST, self.origin_host.encode()),
                codec.new(codec.ORIGIN_REALM, self.origin_realm.encode()),
                codec.new(_DISCONNECT_CAUSE, _REBOOTING),
            ],
        )
        request.header.is_proxyable = False
        self._identified(connection, request)
        connection.state = _CLOSING
        connection.send(request)

    def send_request(self, origin_host: str, request: Message) -> asyncio.Future[Message]:
        """Send ``request`` to the peer ``origin_host`` on its own connection;
        the future of its answer. ``ConnectionError`` when the peer is not
        connected now."""
        connection = self.ready_connection(origin_host)
        if connection is None:
            raise ConnectionError(f"peer {origin_host} is not connected")
        hop = self._identified(connection, request)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        connection.waiting[hop] = future
        # a caller that stops waiting (timeout) takes its entry with it
        future.add_done_callback(lambda _: connection.waiting.pop(hop, None))
        connection.send(request)
        return future
