"""A RADIUS client for one peer: a NAS's dynamic authorization port (CoA,
Disconnect) or a DPI policy broker's accounting port.

Its own UDP socket and its own identifiers: at most 255 requests in flight
per peer (one octet), which is why there is one client per peer. A request is
sent again, with the same identifier and authenticator, until an answer
comes or the retries are spent. Answers with a wrong Response Authenticator
or Message-Authenticator are ignored.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass
from typing import Final

from pyrad import packet as rp

from ratel.adapters.radius.attributes import Attributes, dictionary

log = logging.getLogger("ratel.radius.client")

_POSITIVE: Final = {rp.CoAACK, rp.DisconnectACK, rp.AccountingResponse}

Answered = tuple[rp.Packet, bytes]


@dataclass(frozen=True, slots=True)
class DaeResult:
    """What the peer answered: ACK, NAK (with its Error-Cause) or nothing."""

    acked: bool
    error_cause: str | None = None
    answered: bool = True

    def __str__(self) -> str:
        if not self.answered:
            return "no answer"
        if self.acked:
            return "ACK"
        return f"NAK Error-Cause={self.error_cause}" if self.error_cause else "NAK"


class _ClientEndpoint(asyncio.DatagramProtocol):
    def __init__(self, client: RadiusClient) -> None:
        self._client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._client.answered(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("RADIUS client socket error", extra={"error": str(exc)})


class RadiusClient:
    """Sends requests to one RADIUS peer and waits for their answers."""

    def __init__(
        self, address: str, port: int, secret: str, *, timeout: float, retries: int
    ) -> None:
        self.peer = (address, port, secret)
        self._secret = secret.encode()
        self._timeout = timeout
        self._retries = max(1, retries)
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[int, tuple[rp.Packet, asyncio.Future[Answered]]] = {}
        self._next_id = 0
        self._free: asyncio.Semaphore | None = None

    async def _open(self) -> asyncio.DatagramTransport:
        if self._transport is None or self._transport.is_closing():
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _ClientEndpoint(self), remote_addr=self.peer[:2]
            )
            self._transport = transport
        return self._transport

    def _identifier(self) -> int:
        for _ in range(256):
            candidate = self._next_id
            self._next_id = (self._next_id + 1) % 256
            if candidate not in self._pending:
                return candidate
        raise RuntimeError("no free RADIUS identifier")  # the semaphore prevents it

    def answered(self, data: bytes) -> None:
        """An answer arrived: hand it to the request waiting for it."""
        if len(data) < 20:
            return
        pending = self._pending.get(data[1])
        if pending is None:
            return
        request, future = pending
        peer = self.peer[0]
        try:
            reply = rp.Packet(secret=self._secret, dict=dictionary(), packet=data)
        except (rp.PacketError, KeyError, ValueError, TypeError, IndexError, struct.error):
            log.warning("malformed RADIUS answer", extra={"peer": peer})
            return
        if not request.VerifyReply(reply, data):
            log.warning("RADIUS answer with a bad authenticator", extra={"peer": peer})
            return
        if not future.done():
            future.set_result((reply, data))

    async def send(self, code: int, attributes: Attributes) -> DaeResult:
        """Send a CoA-Request, Disconnect-Request or Accounting-Request and wait
        for its answer (ACK or Accounting-Response: acked)."""
        if self._free is None:
            self._free = asyncio.Semaphore(255)  # identifiers are one octet
        async with self._free:
            transport = await self._open()
            kind = rp.AcctPacket if code == rp.AccountingRequest else rp.CoAPacket
            request = kind(code=code, id=self._identifier(), secret=self._secret, dict=dictionary())
            for name, value in attributes:
                request.AddAttribute(name, value)
            request.add_message_authenticator()
            raw = request.RequestPacket()
            future: asyncio.Future[Answered] = asyncio.get_running_loop().create_future()
            self._pending[request.id] = (request, future)
            try:
                for _ in range(self._retries):
                    transport.sendto(raw)
                    try:
                        reply, _ = await asyncio.wait_for(asyncio.shield(future), self._timeout)
                    except TimeoutError:
                        continue
                    if reply.code in _POSITIVE:
                        return DaeResult(True)
                    causes = reply.get("Error-Cause") or []
                    return DaeResult(False, str(causes[0]) if causes else None)
                return DaeResult(False, answered=False)
            finally:
                del self._pending[request.id]
                if not future.done():
                    future.cancel()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
