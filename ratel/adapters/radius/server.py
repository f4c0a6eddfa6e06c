"""The RADIUS server: Access-Request on the authentication port, Accounting
on the accounting port, both on the running asyncio loop.

pyrad only encodes and decodes here. Its ``ServerAsync`` calls synchronous
handlers (an ``async def`` handler is silently never awaited), so the
datagram callback does what needs no I/O (NAS lookup, length checks,
authenticator checks, the duplicate cache) and hands each packet to a task
that charges and only then replies.

Duplicate detection (RFC 5080 section 2.2.2): a request is known by its NAS,
source port, code, identifier and Request Authenticator. While it is being
handled a copy is dropped; once answered, a copy gets the same reply bytes
again, so a retransmission never charges twice.

Unknown NAS, a wrong Request Authenticator or Message-Authenticator, and
malformed packets are dropped (never answered), logged and counted
(``ratel_errors_total{protocol="radius",outcome="dropped",code=...}``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pyrad import packet as rp

from ratel.adapters.health import ListenerRegistry
from ratel.adapters.radius.attributes import Attributes, dictionary, policy_attributes
from ratel.adapters.telemetry import Telemetry
from ratel.application.credit_control import UnknownSubscriber
from ratel.application.radius import (
    AccountingOutcome,
    AccountingReport,
    AuthorizeLogin,
    ChargeAccounting,
    Credentials,
    ManageNas,
)
from ratel.domain.errors import ConcurrentChange, DomainError
from ratel.domain.nas import Nas

log = logging.getLogger("ratel.radius")

PROTOCOL: Final = "radius"
DROPPED: Final = "dropped"
_HEADER = struct.Struct("!BBH16s")
_MIN_LENGTH, _MAX_LENGTH = 20, 4096  # RFC 2865 section 3
_GIGAWORD = 2**32


class DuplicateCache:
    """Replies to recent requests (RFC 5080), for ``ttl`` seconds."""

    def __init__(self, ttl: float = 30.0, size: int = 100_000) -> None:
        self._ttl = ttl
        self._size = size
        # key -> (time seen, reply bytes or None while in flight)
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, bytes | None]] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._entries:
            _, (seen, _reply) = next(iter(self._entries.items()))
            if now - seen < self._ttl and len(self._entries) <= self._size:
                break
            self._entries.popitem(last=False)

    def seen(self, key: tuple[Any, ...]) -> tuple[bool, bytes | None]:
        """Whether ``key`` was seen, and its reply if there is one yet."""
        now = time.monotonic()
        self._expire(now)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = (now, None)
            return False, None
        return True, entry[1]

    def answered(self, key: tuple[Any, ...], reply: bytes) -> None:
        seen = self._entries.get(key, (time.monotonic(), None))[0]
        self._entries[key] = (seen, reply)

    def forget(self, key: tuple[Any, ...]) -> None:
        """A request we could not answer: a retransmission gets another try."""
        self._entries.pop(key, None)


class NasTable:
    """The NAS registry as the datagram callback needs it: a dict by address,
    refreshed from the store in the background."""

    def __init__(self, registry: ManageNas, refresh_seconds: float = 2.0) -> None:
        self._registry = registry
        self._refresh = refresh_seconds
        self._by_address: dict[str, Nas] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_load = 0.0
        self._loading: asyncio.Task[None] | None = None
        self._running = False

    def get(self, address: str) -> Nas | None:
        nas = self._by_address.get(address)
        if nas is None and self._running and time.monotonic() - self._last_load > 0.5:
            self.reload_soon()  # a NAS registered a moment ago
        return nas

    def all(self) -> list[Nas]:
        return list(self._by_address.values())

    async def load(self) -> None:
        self._last_load = time.monotonic()
        self._by_address = {nas.address: nas for nas in await self._registry.list()}

    def reload_soon(self) -> None:
        if self._loading is None or self._loading.done():
            self._loading = asyncio.create_task(self._load_quietly(), name="radius-nas-reload")

    async def _load_quietly(self) -> None:
        try:
            await self.load()
        except Exception:
            log.exception("could not load the NAS registry")

    async def _run(self) -> None:
        while self._running:
            await asyncio.sleep(self._refresh)
            await self._load_quietly()

    async def start(self) -> None:
        await self.load()
        self._running = True
        self._task = asyncio.create_task(self._run(), name="radius-nas-refresh")

    async def stop(self) -> None:
        """End the refresh and any reload, and wait for them: none may
        outlive the server (and its database)."""
        self._running = False  # and no reload starts from now on (the DAE looks NASes up)
        tasks = [t for t in (self._task, self._loading) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._loading = None


@dataclass(frozen=True, slots=True)
class Received:
    """A request that passed the checks, with what a handler needs."""

    nas: Nas
    packet: rp.Packet
    address: tuple[str, int]
    key: tuple[Any, ...]


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, server: RadiusServer, port_kind: str) -> None:
        self._server = server
        self._kind = port_kind
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._server.received(self, self._kind, data, addr)
        except Exception:  # never let one packet kill the endpoint
            log.exception("RADIUS packet handling failed", extra={"peer": addr[0]})

    def error_received(self, exc: Exception) -> None:
        log.warning("RADIUS socket error", extra={"error": str(exc)})


# A handler's reply bytes (None: no answer) and what to do once it is sent.
Handled = tuple[bytes | None, Callable[[], Awaitable[None]] | None]

# Called with what accounting did, after the reply was sent (CoA, DPI ...).
AfterAccounting = Callable[[Nas, str, AccountingOutcome], Awaitable[None]]


class RadiusServer:
    """The ``radius`` component of ``ratel serve``: binds the authentication
    and accounting ports and answers on them."""

    name = "radius"

    def __init__(
        self,
        *,
        host: str,
        auth_port: int,
        acct_port: int,
        authorize: AuthorizeLogin,
        accounting: ChargeAccounting,
        nas_registry: ManageNas,
        telemetry: Telemetry,
        listeners: ListenerRegistry,
        interim_interval: int = 300,
        nas_refresh_seconds: float = 2.0,
        receive_buffer: int = 0,
        max_in_flight: int = 4096,
    ) -> None:
        self._host = host
        self._receive_buffer = receive_buffer
        self._max_in_flight = max_in_flight
        self._overload_drops = 0  # dropped since the overload began
        self._ports = {"auth": auth_port, "acct": acct_port}
        self._authorize = authorize
        self._accounting = accounting
        self._telemetry = telemetry
        self._listener = listeners.register(self.name)
        self._interim_interval = interim_interval
        self.nas = NasTable(nas_registry, nas_refresh_seconds)
        self._duplicates = DuplicateCache()
        self._endpoints: dict[str, _Endpoint] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting = False
        self.after_accounting: list[AfterAccounting] = []
        self.addresses: dict[str, tuple[str, int]] = {}

    # -- the component ------------------------------------------------------------

    async def start(self) -> None:
        await self.nas.start()
        loop = asyncio.get_running_loop()
        try:
            for kind, port in self._ports.items():
                transport, endpoint = await loop.create_datagram_endpoint(
                    lambda kind=kind: _Endpoint(self, kind),  # type: ignore[misc]
                    local_addr=(self._host, port),
                )
                self._endpoints[kind] = endpoint
                self.addresses[kind] = transport.get_extra_info("sockname")[:2]
                if self._receive_buffer:
                    _enlarge_receive_buffer(transport, kind, self._receive_buffer)
        except OSError as exc:
            self._listener.down(f"cannot listen on {self._host}: {exc}")
            await self._close()
            raise
        self._accepting = True
        shown = ", ".join(f"{k} {h}:{p}" for k, (h, p) in self.addresses.items())
        self._listener.up(shown)
        log.info(
            "radius listening",
            extra={
                "listener": self.name,
                "addresses": shown,
                "auth_port": self.addresses["auth"][1],
                "acct_port": self.addresses["acct"][1],
            },
        )

    async def stop(self) -> None:
        self._accepting = False
        self._listener.down("stopped")
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        await self._close()

    async def _close(self) -> None:
        for endpoint in self._endpoints.values():
            if endpoint.transport is not None:
                endpoint.transport.close()
        self._endpoints.clear()
        await self.nas.stop()

    # -- the datagram callback (synchronous, no I/O) ------------------------------

    def _drop(self, why: str, addr: tuple[str, int], level: int = logging.WARNING) -> None:
        self._telemetry.record(PROTOCOL, "request", DROPPED, 0.0, why)
        peer = f"{addr[0]}:{addr[1]}"
        log.log(level, "RADIUS packet dropped", extra={"reason": why, "peer": peer})

    def received(self, endpoint: _Endpoint, kind: str, data: bytes, addr: tuple[str, int]) -> None:
        if not self._accepting:
            return
        nas = self.nas.get(addr[0])
        if nas is None:
            self._drop("unknown_nas", addr)
            return
        if len(data) < _MIN_LENGTH:
            self._drop("malformed", addr)
            return
        code, identifier, length, authenticator = _HEADER.unpack_from(data)
        if length < _MIN_LENGTH or length > min(len(data), _MAX_LENGTH):
            self._drop("malformed", addr)
            return
        data = data[:length]  # octets past Length are padding (RFC 2865 section 3)
        if not _attributes_fit(data):
            self._drop("malformed", addr)
            return
        wanted = rp.AccessRequest if kind == "auth" else rp.AccountingRequest
        if code not in (wanted, rp.StatusServer):
            self._drop("unexpected_code", addr)
            return
        key = (addr[0], addr[1], code, identifier, authenticator)
        known, reply = self._duplicates.seen(key)
        if known:
            self._telemetry.record(PROTOCOL, "request", DROPPED, 0.0, "duplicate")
            if reply is not None and endpoint.transport is not None:
                endpoint.transport.sendto(reply, addr)
            return
        if len(self._tasks) >= self._max_in_flight:
            # Overload: refuse rather than queue without end. Unanswered, the
            # NAS retransmits later or fails over to another server; the
            # retransmission gets a fresh try. Logged once per episode (a
            # line per dropped packet would add load when there is too much).
            self._duplicates.forget(key)
            if not self._overload_drops:
                log.warning(
                    "RADIUS overloaded: dropping new requests",
                    extra={"in_flight": len(self._tasks)},
                )
            self._overload_drops += 1
            self._telemetry.record(PROTOCOL, "request", DROPPED, 0.0, "overload")
            return
        if self._overload_drops:
            log.info("RADIUS overload over", extra={"dropped": self._overload_drops})
            self._overload_drops = 0
        try:
            decoded = self._decode(kind, nas, data)
        except Exception:  # whatever pyrad trips on, the packet is malformed
            self._duplicates.forget(key)
            self._drop("malformed", addr)
            return
        problem = self._check(kind, nas, decoded)
        if problem:
            self._duplicates.forget(key)
            self._drop(problem, addr)
            return
        received = Received(nas, decoded, addr, key)
        if decoded.code == rp.StatusServer:
            handler = self._status
        elif kind == "auth":
            handler = self._access
        else:
            handler = self._accounting_request
        task = asyncio.create_task(self._answer(endpoint, received, handler))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _decode(self, kind: str, nas: Nas, data: bytes) -> rp.Packet:
        secret = nas.secret.encode()
        if kind == "auth":
            return rp.AuthPacket(secret=secret, dict=dictionary(), packet=data)
        return rp.AcctPacket(secret=secret, dict=dictionary(), packet=data)

    def _check(self, kind: str, nas: Nas, decoded: rp.Packet) -> str:
        if decoded.code == rp.StatusServer and not decoded.message_authenticator:
            return "missing_message_authenticator"  # RFC 5997 section 3
        if kind == "acct" and not decoded.VerifyAcctRequest():
            return "bad_authenticator"
        if decoded.message_authenticator:
            if not decoded.verify_message_authenticator():
                return "bad_message_authenticator"
        elif kind == "auth" and (nas.require_message_authenticator or "EAP-Message" in decoded):
            # RFC 3579 3.2: EAP without a Message-Authenticator is discarded
            return "missing_message_authenticator"
        elif kind == "auth" and "Proxy-State" in decoded:
            # BlastRADIUS: an unsigned request whose Proxy-State the reply
            # echoes lets a forger choose a prefix of the signed reply
            # (FreeRADIUS's limit_proxy_state)
            return "proxy_state_without_message_authenticator"
        return ""

    # -- the handlers (tasks) -----------------------------------------------------

    async def _answer(
        self,
        endpoint: _Endpoint,
        received: Received,
        handler: Callable[[Received], Awaitable[Handled]],
    ) -> None:
        try:
            reply, then = await handler(received)
        except Exception:
            # The store failed: no answer, the NAS retransmits and nothing is lost.
            self._duplicates.forget(received.key)
            log.exception("RADIUS request failed", extra={"nas_address": received.nas.address})
            return
        if reply is None:
            self._duplicates.forget(received.key)
            return
        self._duplicates.answered(received.key, reply)
        if endpoint.transport is not None:
            endpoint.transport.sendto(reply, received.address)
        if then is not None:
            try:
                await then()
            except Exception:
                log.exception("after-accounting action failed")

    async def _status(self, received: Received) -> Handled:
        """Status-Server (RFC 5997): the NAS asks whether ratel is alive."""
        self._telemetry.record(PROTOCOL, "status_server", "ok", 0.0)
        return received.packet.CreateReply().ReplyPacket(), None

    async def _access(self, received: Received) -> Handled:
        request = received.packet
        user_name = _text(request, "User-Name")
        credentials = _credentials(request)
        with self._telemetry.observe(PROTOCOL, "access_request") as call:
            nas = received.nas
            # a NAS ratel cannot send a CoA or Disconnect: the funds bound the session
            unsteerable = not (nas.accepts_coa or nas.accepts_disconnect)
            decision = await self._authorize(user_name, credentials, funds_bound=unsteerable)
            reply = request.CreateReply()
            if decision.accepted:
                reply.code = rp.AccessAccept
                attributes: Attributes = [
                    ("Session-Timeout", decision.session_timeout),
                    ("Acct-Interim-Interval", self._interim_interval),
                ]
                if decision.static_ip:
                    attributes.append(("Framed-IP-Address", decision.static_ip))
                    if decision.static_netmask:
                        attributes.append(("Framed-IP-Netmask", decision.static_netmask))
                if decision.policy is not None:
                    attributes += policy_attributes(received.nas.vendor, decision.policy)
                _add(reply, attributes)
            else:
                reply.code = rp.AccessReject
                reply.AddAttribute("Reply-Message", decision.message)
                call.outcome, call.code = "rejected", decision.reason
            log.info(
                "access accepted" if decision.accepted else "access rejected",
                extra={
                    "user_name": user_name,
                    "account_id": decision.account_id,
                    "reason": decision.reason,
                    "nas_address": received.nas.address,
                },
            )
            return reply.ReplyPacket(), None

    async def _accounting_request(self, received: Received) -> Handled:
        request = received.packet
        try:
            attributes = _decoded(request)
        except MalformedAttribute as error:
            # Stored nothing: no answer. The NAS's retransmission is as bad,
            # and this makes it seen (logged and counted) each time.
            self._drop("malformed", received.address)
            log.warning(
                "RADIUS accounting with an invalid attribute it needs",
                extra={"nas_address": received.nas.address, "attributes": error.names},
            )
            return None, None
        status = _value(attributes, "Acct-Status-Type")
        if status is None:
            # RFC 2866 5.1: it MUST be there; nothing is recorded, so no answer
            self._drop("missing_acct_status_type", received.address)
            return None, None
        operation = {
            "Start": "accounting_start",
            "Interim-Update": "accounting_interim",
            "Stop": "accounting_stop",
            "Accounting-On": "accounting_on",
            "Accounting-Off": "accounting_off",
        }.get(str(status), "accounting_other")
        nas = received.nas
        outcome: AccountingOutcome | None = None
        with self._telemetry.observe(PROTOCOL, operation) as call:
            try:
                if operation in ("accounting_on", "accounting_off"):
                    closed = await self._accounting.nas_restarted(nas.address)
                    log.info("NAS restarted", extra={"nas_address": nas.address, "closed": closed})
                elif operation == "accounting_other":
                    call.outcome, call.code = "rejected", "unsupported_status"
                else:
                    report = _report(nas, attributes)
                    if not report.acct_session_id:
                        call.outcome, call.code = DROPPED, "missing_acct_session_id"
                        return None, None
                    if operation == "accounting_start":
                        outcome = await self._accounting.start(report)
                    elif operation == "accounting_interim":
                        outcome = await self._accounting.interim(report)
                    else:
                        outcome = await self._accounting.stop(report)
                    if outcome.duplicate:
                        call.code = "duplicate"
            except ConcurrentChange:
                # Nothing was stored: no answer, so the NAS sends it again.
                call.outcome, call.code = "error", "concurrent_change"
                raise
            except UnknownSubscriber as error:
                # Nothing can be charged to nobody: acknowledge, so the NAS stops resending.
                call.outcome, call.code = "rejected", error.code
                log.warning("accounting for an unknown user", extra={"error": str(error)})
            except DomainError as error:
                call.outcome, call.code = "rejected", error.code
                log.warning("accounting refused by the core", extra={"error": str(error)})
        reply = request.CreateReply()
        then = None
        if outcome is not None and self.after_accounting:
            kept = outcome

            async def then() -> None:
                for action in self.after_accounting:
                    await action(nas, operation, kept)

        return reply.ReplyPacket(), then


#: What the helpers below read attributes from: a packet, or its attributes
#: decoded once (``_decoded``) when many are read.
Readable = rp.Packet | Mapping[str, list[Any]]


#: The attributes an accounting report is made of: one whose value cannot be
#: decoded makes the packet malformed. Any other is skipped (RFC 6929 2.8).
_REPORTED: Final = frozenset(
    {
        "User-Name",
        "Acct-Status-Type",
        "Acct-Session-Id",
        "Acct-Multi-Session-Id",
        "3GPP2-Correlation-Id",
        "Acct-Input-Octets",
        "Acct-Output-Octets",
        "Acct-Input-Gigawords",
        "Acct-Output-Gigawords",
        "Acct-Session-Time",
        "Acct-Terminate-Cause",
        "Framed-IP-Address",
    }
)


class MalformedAttribute(Exception):
    """Attributes an accounting report needs whose values cannot be decoded."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def _decoded(request: rp.Packet) -> dict[str, list[Any]]:
    """The attributes present in ``request``, each decoded once, by name
    (asking a packet for an absent attribute costs a KeyError each time).
    An attribute whose value cannot be decoded (an integer of three octets)
    is an "invalid attribute" (RFC 6929 section 2.8): taken as unknown, and
    logged, unless the report needs it (``MalformedAttribute``)."""
    decoded: dict[str, list[Any]] = {}
    invalid: list[str] = []
    for name in request.keys():  # noqa: SIM118  (pyrad: keys() gives names, iterating codes)
        if not isinstance(name, str):
            continue
        try:
            decoded[name] = request[name]
        except Exception:  # whatever pyrad trips on in the value
            invalid.append(name)
    if invalid:
        needed = [name for name in invalid if name in _REPORTED]
        if needed:
            raise MalformedAttribute(needed)
        log.warning("RADIUS attributes skipped: invalid values", extra={"attributes": invalid})
    return decoded


def _enlarge_receive_buffer(transport: asyncio.BaseTransport, kind: str, wanted: int) -> int:
    """Ask the kernel for a receive buffer of ``wanted`` bytes on the
    endpoint's socket; the size it gave (Linux reports twice what it
    accounts for, and caps the request at net.core.rmem_max)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    except OSError as exc:
        log.warning("RADIUS receive buffer not set", extra={"port": kind, "error": str(exc)})
    given = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    if given < wanted:
        log.warning(
            "RADIUS receive buffer smaller than asked: raise net.core.rmem_max",
            extra={"port": kind, "wanted": wanted, "given": given},
        )
    return given


def _text(request: Readable, name: str) -> str:
    values = request.get(name) or []
    value = values[0] if values else ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _value(request: Readable, name: str) -> Any:
    values = request.get(name) or []
    return values[0] if values else None


def _integer(request: Readable, name: str) -> int:
    value = _value(request, name)
    return value if isinstance(value, int) else 0


def _credentials(request: rp.AuthPacket) -> Credentials:
    """The password or the CHAP response of an Access-Request; none (so a
    reject) for a request with both (RFC 2865 4.1 forbids it) or with a
    User-Password that is not 16 to 128 octets in blocks of 16 (5.2)."""
    chap = "CHAP-Password" in request
    encrypted = _value(request, "User-Password")
    if chap and encrypted is not None:
        log.warning("RADIUS Access-Request with both User-Password and CHAP-Password")
        return Credentials()
    if chap:
        # the secret's octets as stored: pyrad strips a str, not bytes
        return Credentials(chap_matches=lambda secret: request.VerifyChapPasswd(secret.encode()))
    if encrypted is None:
        return Credentials()
    if not isinstance(encrypted, bytes) or len(encrypted) % 16 or not 16 <= len(encrypted) <= 128:
        log.warning("RADIUS User-Password of an invalid length")
        return Credentials()
    return Credentials(pap_password=request.PwDecrypt(encrypted))


def _attributes_fit(packet: bytes) -> bool:
    """Whether each attribute after the header has a Length of 2 or more that
    ends within the packet (RFC 2865 section 5): pyrad would cut one that
    runs past the end short and read the packet as valid."""
    at, end = _MIN_LENGTH, len(packet)
    while at < end:
        if end - at < 2:
            return False
        size = packet[at + 1]
        if size < 2 or at + size > end:
            return False
        at += size
    return True


def _report(nas: Nas, request: Mapping[str, list[Any]]) -> AccountingReport:
    correlation = _text(request, "Acct-Multi-Session-Id") or _text(request, "3GPP2-Correlation-Id")
    framed = _value(request, "Framed-IP-Address")
    cause = _value(request, "Acct-Terminate-Cause")
    return AccountingReport(
        nas_address=nas.address,
        acct_session_id=_text(request, "Acct-Session-Id"),
        user_name=_text(request, "User-Name"),
        correlation_id=correlation or None,
        framed_ip=str(framed) if framed else None,
        input_octets=_integer(request, "Acct-Input-Gigawords") * _GIGAWORD
        + _integer(request, "Acct-Input-Octets"),
        output_octets=_integer(request, "Acct-Output-Gigawords") * _GIGAWORD
        + _integer(request, "Acct-Output-Octets"),
        session_time=_integer(request, "Acct-Session-Time"),
        cause=str(cause) if cause is not None else "normal",
    )


def _add(packet: rp.Packet, attributes: Attributes) -> None:
    for name, value in attributes:
        packet.AddAttribute(name, value)
