"""The Diameter credit-control server: a ``ratel serve`` component.

The node (node.py) runs on ratel's own event loop: it hands each CCR to
``answer``, a coroutine run as a task, so the requests of one peer are
answered concurrently, each charged through the group-commit path
(``container.charging()``); the CCA goes back on the request's own
connection. Beyond ``max_in_flight`` requests of one peer being answered,
and while stopping, the node answers 3004 at once.

Server-initiated requests: on a top-up, a new add-on or a block, every open
session of the account (or of the customer's accounts) gets a Re-Auth-Request
on the peer that opened it, so the gateway reports and asks again; on the
account's termination an Abort-Session-Request. Each is retried a few times
in its own task when the peer does not answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from diameter.message import Message

from ratel.adapters.diameter import codec
from ratel.adapters.diameter.credit_control import CreditControlAnswers, CreditControlOptions
from ratel.adapters.diameter.node import DiameterNode
from ratel.adapters.diameter.peers import SessionPeers
from ratel.adapters.health import ListenerRegistry
from ratel.adapters.telemetry import ERROR, OK, REJECTED, Telemetry
from ratel.application.charging_batch import Charging
from ratel.application.network_sessions import OpenSessions
from ratel.application.relay import EventRelay
from ratel.domain.charging import IDLE_TIMEOUT
from ratel.ports.store import OutboxEntry
from ratel.ports.system import Clock

log = logging.getLogger("ratel.diameter")

PROTOCOL = "diameter"

#: Events after which the gateway must report and ask again (RAR).
REAUTHORIZE_ON = (
    "BalanceChanged",
    "AddOnAdded",
    "CreditLimitChanged",
    "QuotaRenewed",
    "AccountBlocked",
    "CustomerSuspended",
)
#: How long a RAR waits before it is sent, so that the events of one change
#: (a top-up and its credit limit, each bucket of a renewed account) make one.
RAR_GATHERING_SECONDS = 0.1
#: Events after which the session ends (ASR).
ABORT_ON = ("AccountTerminated",)


@dataclass(frozen=True, slots=True)
class DiameterSettings:
    """The node's identity, where it listens and whom it accepts."""

    host: str
    port: int
    origin_host: str
    origin_realm: str
    peers: Mapping[str, Sequence[str]]  # Origin-Host -> allowed addresses (empty: any)
    options: CreditControlOptions
    validity_seconds: int
    max_in_flight: int = 1000  # per peer: requests being answered before 3004
    request_timeout: float = 5.0
    request_attempts: int = 3
    shutdown_timeout: float = 5.0
    watchdog_seconds: float = 30.0  # Tw: a silent peer gets a DWR
    answer_timeout: float = 4.0  # for a DWA, and for the CER of a new connection
    vendor_id: int = 0  # the CEA's Vendor-Id: the operator's IANA enterprise number, if any


class DiameterServer:
    """The Diameter node as a component of ``ratel serve``."""

    name = "diameter"

    def __init__(
        self,
        settings: DiameterSettings,
        credit_control: Charging,
        open_sessions: OpenSessions,
        relay: EventRelay,
        peers: SessionPeers,
        clock: Clock,
        telemetry: Telemetry,
        listeners: ListenerRegistry,
    ) -> None:
        self.settings = settings
        self._open_sessions = open_sessions
        self._peers = peers
        self._telemetry = telemetry
        self._listener = listeners.register(self.name)
        self._answers = CreditControlAnswers(
            credit_control,
            peers,
            clock,
            settings.options,
            (settings.origin_host, settings.origin_realm),
            settings.validity_seconds,
        )
        self._node: DiameterNode | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        # sessions whose RAR is gathering events, not yet sent
        self._gathering: set[str] = set()
        relay.subscribe(self._reauthorize, *REAUTHORIZE_ON)
        relay.subscribe(self._abort, *ABORT_ON)
        # a session ended, also by Tcc supervision (housekeeping): no RAR for it again
        relay.subscribe(self._ended, "XdrProduced")

    # -- life ------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """Where the node listens (the real port when 0 was asked)."""
        if self._node is None:
            raise RuntimeError("the Diameter node is not started")
        return self._node.address

    async def start(self) -> None:
        s = self.settings
        node = DiameterNode(
            s.origin_host,
            s.origin_realm,
            s.host,
            s.port,
            s.peers,
            self,
            max_in_flight=s.max_in_flight,
            watchdog=s.watchdog_seconds,
            answer_timeout=s.answer_timeout,
            vendor_id=s.vendor_id,
            on_unreadable=self._count_unreadable,
            on_busy=self._count_busy,
        )
        try:
            await node.start()
        except OSError as exc:
            self._listener.down(f"cannot listen on {s.host}:{s.port}: {exc}")
            raise
        self._node = node
        host, port = node.address
        self._listener.up(f"aaa://{host}:{port}")
        # not "listening": that line announces the HTTP URL to operators and tests
        log.info(
            "diameter listening",
            extra={"listener": self.name, "address": f"{host}:{port}", "origin": s.origin_host},
        )

    async def stop(self) -> None:
        node = self._node
        if node is None:
            return
        self._listener.down("shutting down")
        for task in list(self._tasks):
            task.cancel()
        # new requests get 3004 (the gateway fails over to another OCS at once);
        # those in flight are answered, then the peers get a DPR
        await node.stop(self.settings.shutdown_timeout)
        self._node = None
        self._listener.down("stopped")

    # -- requests from the network (on the loop, a task each) ----------------------------

    async def answer(self, request: Message) -> Message:
        """The CCA to a CCR, charged; counted and timed in ``/metrics``."""
        started = time.perf_counter()
        operation, outcome, code = "ccr", OK, ""
        try:
            answer, operation = await self._answers.answer(request)
            result = codec.integer(answer.avps, codec.RESULT_CODE) or 0
            if result != codec.SUCCESS:
                # business refusals (4xxx, 5030, 5031) are answers; the rest errors
                outcome = REJECTED if result < 5000 or result >= 5030 else ERROR
                code = str(result)
        except Exception:
            log.exception("diameter: a CCR could not be answered")
            outcome, code = ERROR, str(codec.UNABLE_TO_COMPLY)
            answer = codec.answer_to(
                request,
                self.settings.origin_host,
                self.settings.origin_realm,
                [codec.new(codec.RESULT_CODE, codec.UNABLE_TO_COMPLY)],
            )
        self._telemetry.record(PROTOCOL, operation, outcome, time.perf_counter() - started, code)
        return answer

    def _count_unreadable(self) -> None:
        self._telemetry.record(PROTOCOL, "unreadable", REJECTED, 0.0, "malformed")

    def _count_busy(self) -> None:
        self._telemetry.record(PROTOCOL, "overload", REJECTED, 0.0, "3004")

    # -- server-initiated requests ------------------------------------------------------------

    async def re_auth(self, session_id: str) -> int | None:
        """Send a RAR for the session to its own peer; the RAA's Result-Code
        (None when the peer never answered)."""
        return await self._request_for(session_id, codec.RE_AUTH)

    async def abort(self, session_id: str) -> int | None:
        """Send an ASR for the session to its own peer; the ASA's Result-Code."""
        return await self._request_for(session_id, codec.ABORT_SESSION)

    async def _request_for(self, session_id: str, command: int) -> int | None:
        peer = await self._peers.get(session_id)
        if peer is None:
            return None  # not a Diameter session (RADIUS), or already ended
        s = self.settings
        avps = [
            codec.new(codec.SESSION_ID, session_id),
            codec.new(codec.ORIGIN_HOST, s.origin_host.encode()),
            codec.new(codec.ORIGIN_REALM, s.origin_realm.encode()),
            codec.new(codec.DESTINATION_REALM, peer.origin_realm.encode()),
            codec.new(codec.DESTINATION_HOST, peer.origin_host.encode()),
            codec.new(codec.AUTH_APPLICATION_ID, codec.CREDIT_CONTROL_APPLICATION),
        ]
        if command == codec.RE_AUTH:
            avps.append(codec.new(codec.RE_AUTH_REQUEST_TYPE, codec.AUTHORIZE_ONLY))
        operation = "rar" if command == codec.RE_AUTH else "asr"
        # one request: an attempt after the first is its retransmission (T-flag)
        request = codec.request_message(command, codec.CREDIT_CONTROL_APPLICATION, avps)
        sent = False
        for attempt in range(s.request_attempts):
            started = time.perf_counter()
            node = self._node
            if node is None:
                return None
            try:
                waiting = node.send_request(peer.origin_host, request)
            except ConnectionError:
                # reconnecting, or connected to another node of the cluster
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            sent = True
            try:
                answer = await asyncio.wait_for(waiting, s.request_timeout)
            except (TimeoutError, ConnectionError):
                continue  # no answer, or the peer left: again
            result = codec.integer(answer.avps, codec.RESULT_CODE)
            self._telemetry.record(
                PROTOCOL,
                operation,
                OK if result == codec.SUCCESS else REJECTED,
                time.perf_counter() - started,
                str(result),
            )
            if result == codec.UNKNOWN_SESSION_ID:
                # The gateway has no such session (it ended it, or restarted):
                # its peer note goes, or every later event would ask again.
                await self._peers.forget(session_id)
            return result
        if not sent:
            # With several nodes, a peer is connected to one of them: the
            # others see every event too and end here. Not an error of this
            # node (a peer that stays away is visible on the node it left).
            log.info(
                "diameter: %s not sent: peer %s is not connected to this node",
                operation,
                peer.origin_host,
                extra={"session_id": session_id},
            )
            self._telemetry.record(PROTOCOL, operation, REJECTED, 0.0, "not_connected")
            return None
        log.warning("diameter: no answer to %s", operation, extra={"session_id": session_id})
        self._telemetry.record(PROTOCOL, operation, ERROR, 0.0, "no_answer")
        return None

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sessions_of(self, entry: OutboxEntry) -> list[str]:
        if entry.aggregate == "customer":
            return await self._open_sessions.of_customer(entry.aggregate_id)
        return await self._open_sessions.of_account(entry.aggregate_id)

    async def _reauthorize(self, entry: OutboxEntry) -> None:
        if self._node is None:
            return
        if entry.event_type == "BalanceChanged" and not _raised(entry.payload):
            return  # a charge: the gateway already knows
        for session_id in await self._sessions_of(entry):
            if session_id not in self._gathering:
                self._gathering.add(session_id)
                self._spawn(self._re_auth_gathered(session_id))

    async def _re_auth_gathered(self, session_id: str) -> None:
        """One RAR for the events that come while it waits to be sent: the
        gateway's next report sees them all. An event after it was sent gets a
        RAR of its own (the gateway may have asked before that change)."""
        try:
            await asyncio.sleep(RAR_GATHERING_SECONDS)
        finally:
            self._gathering.discard(session_id)
        await self.re_auth(session_id)

    async def _abort(self, entry: OutboxEntry) -> None:
        if self._node is None:
            return
        for session_id in await self._sessions_of(entry):
            self._spawn(self.abort(session_id))

    async def _ended(self, entry: OutboxEntry) -> None:
        """A session released by Tcc supervision: no RAR for it any more. A
        TERMINATE forgets its session's peer with its charge, and a RADIUS
        session or a direct debit has none to forget, so their xDRs cost no
        transaction here (an entry from before causes were told: forgotten)."""
        if entry.payload.get("cause", IDLE_TIMEOUT) == IDLE_TIMEOUT:
            await self._peers.forget(entry.aggregate_id)


def _raised(payload: Mapping[str, object]) -> bool:
    """Whether a BalanceChanged payload says the balance went up."""
    delta = payload.get("delta")
    amount = delta.get("amount") if isinstance(delta, dict) else delta
    try:
        return Decimal(str(amount)) > 0
    except ArithmeticError:
        return False
