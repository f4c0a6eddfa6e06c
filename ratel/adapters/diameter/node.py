"""The Diameter node: python-diameter's peer state machine, with ratel's fixes.

python-diameter runs threads: one select loop for the sockets, and a reader
and a writer thread per peer connection. ``RatelNode`` keeps that machinery
(CER/CEA, DWR/DWA, DPR/DPA, several peers at once) and changes what it gets
wrong for an OCS:

- a peer is accepted only when its Origin-Host is in the registry and, when
  the registry names addresses, it connects from one of them (3010 otherwise);
- a request the codec cannot read is answered (5014 when the AVP framing is
  broken, 5004 when a value does not decode) instead of being dropped;
- an unknown application gets 3007 and an unknown command 3001, with the
  E-bit (protocol errors, RFC 6733 7.1.3), and the node goes on;
- Origin-Host and Origin-Realm go out with the M-bit set in every message;
- a retransmitted request (T-flag) reaches the application, which answers it
  from the store (the library would answer 5012);
- listening on port 0 works and ``shutdown`` takes milliseconds, not ~6 s.

The application requests go to a ``RequestSink`` (the credit-control server),
called on the peer's reader thread; it must return at once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from diameter.message import Message, MessageHeader
from diameter.message.avp import Avp
from diameter.node import Node
from diameter.node._helpers import StoppableThread
from diameter.node.application import Application
from diameter.node.peer import (
    PEER_CLOSING,
    PEER_READY_STATES,
    PEER_RECV,
    PeerConnection,
)

from ratel.adapters.diameter import codec

log = logging.getLogger("ratel.diameter")

_UNKNOWN_PEER = 3010
_REALM_NOT_SERVED = 3003
_MAX_MESSAGE = 1 << 20  # a CCR is a few hundred bytes; more is an attack or a bug


class RequestSink(Protocol):
    """Where the node hands application requests (on a reader thread)."""

    def receive(self, connection: PeerConnection, request: Message) -> None: ...


class AnswerSink(Protocol):
    """Where the node hands answers to requests we sent (on a reader thread)."""

    def answered(self, answer: Message) -> None: ...


class RatelPeerConnection(PeerConnection):
    """A peer connection that answers what it cannot parse and writes
    Origin-Host/Realm with the M-bit."""

    def __init__(
        self,
        peer_ip: Any,
        peer_port: int,
        direction: int,
        interrupt_fileno: int,
        identity: tuple[str, str],
        on_unreadable: Callable[[], None],
    ) -> None:
        self._identity = identity
        self._on_unreadable = on_unreadable
        super().__init__(peer_ip, peer_port, direction, interrupt_fileno)

    def _dispatch(self, message: Message) -> None:
        # the parent's dispatcher is name-mangled private; it applies the
        # CER-first rule of the state machine
        self._PeerConnection__dispatch_message(message)  # type: ignore[attr-defined]

    def work_read_queue(self, _thread: StoppableThread) -> None:
        while not _thread.is_stopped:
            try:
                chunk: bytes = self._read_buffer_queue.get(True, 1)
            except Exception:  # queue.Empty: look at the stop flag again
                continue
            self._read_buffer += chunk
            self.reset_last_read()
            while len(self._read_buffer) >= 20:
                try:
                    header = MessageHeader.from_bytes(self._read_buffer)
                except Exception:
                    header = None
                if header is None or header.version != 1 or not 20 <= header.length <= _MAX_MESSAGE:
                    # no way to find the next message boundary: RFC 6733 says close
                    log.warning("diameter: unreadable message header, closing the connection")
                    self._on_unreadable()
                    self.close()
                    return
                if len(self._read_buffer) < header.length:
                    break
                data = self._read_buffer[: header.length]
                self._read_buffer = self._read_buffer[header.length :]
                self.reset_last_message()
                message = self._parse(header, data)
                if message is not None:
                    try:
                        self._dispatch(message)
                    except Exception:
                        log.exception("diameter: a message could not be handled")

    def _parse(self, header: MessageHeader, data: bytes) -> Message | None:
        try:
            return Message.from_bytes(data)
        except Exception as exc:
            self._on_unreadable()
            if not header.is_request:
                log.warning("diameter: unreadable answer dropped: %s", exc)
                return None
        # the typed decoding failed: answer with what we can still read
        try:
            plain = Message.from_bytes(data, plain_msg=True)
            result, offender = codec.INVALID_AVP_VALUE, _first_undecodable(plain.avps)
        except Exception:
            plain, result, offender = Message(header, []), codec.INVALID_AVP_LENGTH, None
        log.warning(
            "diameter: malformed request answered with %s",
            result,
            extra={"command": header.command_code},
        )
        extra: list[Avp] = [codec.new(codec.RESULT_CODE, result)]
        if offender is not None:
            extra.append(codec.failed_avp(offender))
        try:
            answer = codec.answer_to(plain, *self._identity, extra)
        except Exception:  # even the Session-Id is unreadable
            answer = codec.answer_to(Message(header, []), *self._identity, extra)
        self.add_out_msg(answer)
        return None

    def work_write_queue(self, _thread: StoppableThread) -> None:
        while not _thread.is_stopped:
            try:
                message: Message = self._write_msg_queue.get(True, 1)
            except Exception:
                continue
            try:
                encoded = codec.with_mandatory_origin(message.as_bytes())
            except Exception:
                log.exception("diameter: a message could not be encoded and was not sent")
                continue
            with self.write_lock:
                self._write_buffer += encoded
            self.demand_attention()


def _first_undecodable(avps: Sequence[Avp]) -> Avp | None:
    for avp in avps:
        try:
            inner = avp.value
        except Exception:
            return avp
        if isinstance(inner, list):
            found = _first_undecodable(inner)
            if found is not None:
                return found
    return None


class CreditControlApplication(Application):
    """Advertises the Credit-Control application (4) in CER/CEA and receives
    the answers to our RAR and ASR."""

    def __init__(self, answers: AnswerSink) -> None:
        super().__init__(codec.CREDIT_CONTROL_APPLICATION, is_auth_application=True)
        self._answers = answers

    def receive_answer(self, message: Message) -> None:
        self._answers.answered(message)

    def handle_request(self, message: Message) -> None:
        # requests never reach here: RatelNode hands them to the RequestSink
        raise RuntimeError("credit-control requests go to the RequestSink")


class RatelNode(Node):
    """python-diameter's Node with ratel's peer registry and fixes."""

    def __init__(
        self,
        origin_host: str,
        origin_realm: str,
        host: str,
        port: int,
        peers: Mapping[str, Sequence[str]],
        requests: RequestSink,
        answers: AnswerSink,
        on_unreadable: Callable[[], None] = lambda: None,
    ) -> None:
        # tcp_port None: we bind ourselves (the library cannot listen on port 0)
        super().__init__(origin_host, origin_realm, ip_addresses=[host], tcp_port=None)
        self.product_name = "ratel"
        self.vendor_ids = {codec.TGPP}
        self.idle_timeout = 30
        # wake up every second: timers are checked then, and stop is quick
        self.wakeup_interval = 1
        # retransmissions are answered from the store, not refused
        self.retransmit_queue_size = 0
        # the library's minute statistics are not used; a thread less
        self._stat_collect_thread = StoppableThread(target=lambda _thread: None)
        self._host = host
        self._port = port
        self._requests = requests
        self._on_unreadable = on_unreadable
        self._addresses = {name.lower(): tuple(addresses) for name, addresses in peers.items()}
        self.application = CreditControlApplication(answers)
        registered = [self.add_peer(f"aaa://{name}", origin_realm) for name in self._addresses]
        self.add_application(self.application, registered)

    # -- life ------------------------------------------------------------------------

    def start(self) -> None:
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listening.bind((self._host, self._port))
            listening.listen(128)
        except OSError:
            listening.close()
            raise
        listening.setblocking(False)
        self.tcp_sockets.append(listening)
        super().start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.tcp_sockets[0].getsockname()[:2]
        return host, port

    def shutdown(self, timeout: float) -> None:
        """DPR to every ready peer, wait for their DPA (at most ``timeout``),
        then close everything."""
        self._stopping = True
        for connection in list(self.connections.values()):
            if connection.state in PEER_READY_STATES:
                self.send_dpr(connection)
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        self._connection_thread.stop()
        os.write(self.interrupt_write, b"\0" * 6)  # wake the select loop now
        self._connection_thread.join(timeout + 2)
        for listening in self.tcp_sockets:
            listening.close()
        for app in self.applications:
            Application.stop(app)

    # -- connections -----------------------------------------------------------------

    def _add_peer_connection(self, conn: PeerConnection, peer_socket: Any, proto: int) -> Any:
        if conn._direction == PEER_RECV and not isinstance(conn, RatelPeerConnection):
            state = conn.state
            conn.close(signal_node=False)
            # wake its reader and writer now, or they sleep 5 s on their queues
            # and hold up the process's exit
            conn._read_buffer_queue.put(b"")
            conn._write_msg_queue.put(Message(MessageHeader()))
            ours = RatelPeerConnection(
                conn.ip,
                conn.port,
                PEER_RECV,
                self.interrupt_write,
                (self.origin_host, self.realm_name),
                self._on_unreadable,
            )
            ours.state = state
            conn = ours
        return super()._add_peer_connection(conn, peer_socket, proto)

    def receive_cer(self, conn: PeerConnection, message: Any) -> None:
        host = message.origin_host.decode().lower()
        allowed = self._addresses.get(host)
        if allowed and conn.ip not in allowed:
            log.warning(
                "diameter: CER refused: %s connected from %s, not a registered address",
                host,
                conn.ip,
            )
            answer = self._generate_answer(conn, message)
            answer.result_code = _UNKNOWN_PEER
            answer.header.is_error = True
            conn.state = PEER_CLOSING  # close once the CEA is written
            self.send_message(conn, answer)
            return
        if host not in self._addresses:
            log.warning("diameter: CER refused: %s is not a registered peer", host)
        super().receive_cer(conn, message)

    def _receive_app_request(self, conn: PeerConnection, message: Message) -> None:
        header = message.header
        if header.application_id != codec.CREDIT_CONTROL_APPLICATION:
            self._protocol_error(conn, message, codec.APPLICATION_UNSUPPORTED)
            return
        if header.command_code not in (codec.CREDIT_CONTROL,):
            self._protocol_error(conn, message, codec.COMMAND_UNSUPPORTED)
            return
        realm = codec.text(message.avps, codec.DESTINATION_REALM)
        if realm is not None and realm.lower() != self.realm_name.lower():
            self._protocol_error(conn, message, _REALM_NOT_SERVED)
            return
        self._requests.receive(conn, message)

    def _protocol_error(self, conn: PeerConnection, message: Message, result: int) -> None:
        log.warning(
            "diameter: request refused with %s",
            result,
            extra={"command": message.header.command_code, "app": message.header.application_id},
        )
        answer = codec.answer_to(
            message,
            self.origin_host,
            self.realm_name,
            [codec.new(codec.RESULT_CODE, result)],
            error=True,
        )
        self.send_message(conn, answer)

    # -- sending -----------------------------------------------------------------------

    def ready_connection(self, origin_host: str) -> PeerConnection | None:
        """The peer's ready connection, or None (not connected now)."""
        peer = self.peers.get(origin_host.lower())
        if peer is None or peer.connection is None:
            return None
        connection: PeerConnection = peer.connection
        return connection if connection.state in PEER_READY_STATES else None

    def send_request_to(self, origin_host: str, request: Message) -> int:
        """Send ``request`` to the peer ``origin_host`` (by Destination-Host,
        not by realm as the library routes); the hop-by-hop id to await."""
        connection = self.ready_connection(origin_host)
        if connection is None:
            raise ConnectionError(f"peer {origin_host} is not connected")
        request.header.hop_by_hop_identifier = connection.hop_by_hop_seq.next_sequence()
        request.header.end_to_end_identifier = self.end_to_end_seq.next_sequence()
        message_id = (
            f"{request.header.hop_by_hop_identifier}:{request.header.end_to_end_identifier}"
        )
        self._app_waiting_answer[message_id] = self.application
        self.send_message(connection, request)
        return int(request.header.hop_by_hop_identifier)

    def send_answer(self, connection: PeerConnection, answer: Message) -> bool:
        """Queue ``answer`` on the connection its request came on; False when
        that connection has gone (the peer will retransmit elsewhere)."""
        if connection.state not in PEER_READY_STATES:
            return False
        self.send_message(connection, answer)
        return True
