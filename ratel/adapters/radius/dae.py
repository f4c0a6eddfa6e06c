"""Dynamic authorization (RFC 5176): CoA and Disconnect-Request to a NAS.

One ``RadiusClient`` per NAS, with its own UDP socket and its own
identifiers (pyrad's ``ClientAsync`` serves one server with at most 255
requests in flight, which is the same limit: one client per NAS keeps it per
NAS). A request is sent again with the same identifier and authenticator
until an answer comes or the retries are spent.

``DynamicAuthorization`` decides what to send:

- a session whose grant was refused for lack of funds or quota gets a CoA
  to the hotline (redirect to the policy's top-up URL) or to the throttle
  rates, as the product says, or a Disconnect when it says terminate;
- a payment, top-up or new add-on sends a CoA restoring the policy to the
  customer's hotlined or throttled sessions; so does the next report of such
  a session that is granted again (the restore went unanswered, or the
  top-up came while the hotline was on its way);
- the CoAs of one session go one at a time, so a restore decided while the
  hotline awaits its ACK sees the hotline's outcome;
- a blocked, suspended, closed or terminated account is disconnected.

A NAS that accepts neither (Cisco ASR 5700) is never sent one. The outcome
(ACK, or NAK with its Error-Cause, or no answer) is logged and kept on the
session (``radius_sessions.last_dae``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Final

from pyrad import packet as rp

from ratel.adapters.radius.attributes import (
    Attributes,
    coa_lifts_hotline,
    hotline_attributes,
    policy_attributes,
    throttle_attributes,
)
from ratel.adapters.radius.client import DaeResult, RadiusClient
from ratel.adapters.radius.server import RadiusServer
from ratel.adapters.telemetry import Telemetry
from ratel.application.radius import AccountingOutcome, RadiusSessions
from ratel.application.relay import EventRelay
from ratel.domain.catalogue import ExhaustionAction
from ratel.domain.charging import Answer
from ratel.domain.identifiers import UNSET, Unset
from ratel.domain.nas import Nas, RadiusSession, Restriction
from ratel.ports.store import OutboxEntry

log = logging.getLogger("ratel.radius.dae")

PROTOCOL: Final = "radius_dae"
_ACKS: Final = {rp.CoAACK, rp.DisconnectACK}
_NAKS: Final = {rp.CoANAK, rp.DisconnectNAK}


class DynamicAuthorization:
    """The ``radius-dae`` component: reacts to accounting answers and to
    domain events by sending CoA or Disconnect to the sessions' NAS."""

    name = "radius-dae"

    RESTORE_ON: Final = ("BalanceChanged", "AddOnAdded", "CreditLimitChanged", "QuotaRenewed")
    #: Refusals that hotline or throttle (a product's final-unit action)
    #: when it says so; any other refusal disconnects, restricted or not.
    FOR_FUNDS: Final = frozenset({"insufficient_funds", "credit_limit_exceeded"})
    DISCONNECT_ACCOUNT_ON: Final = ("AccountBlocked", "AccountTerminated")
    DISCONNECT_CUSTOMER_ON: Final = ("CustomerSuspended", "CustomerClosed")

    def __init__(
        self,
        server: RadiusServer,
        sessions: RadiusSessions,
        relay: EventRelay,
        telemetry: Telemetry,
        *,
        timeout: float = 2.0,
        retries: int = 3,
    ) -> None:
        self._server = server
        self._sessions = sessions
        self._telemetry = telemetry
        self._timeout = timeout
        self._retries = retries
        self._clients: dict[str, RadiusClient] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session_locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}
        server.after_accounting.append(self.after_accounting)
        relay.subscribe(self._on_event, *self.RESTORE_ON)
        relay.subscribe(self._on_event, *self.DISCONNECT_ACCOUNT_ON, *self.DISCONNECT_CUSTOMER_ON)

    async def start(self) -> None:
        """Nothing to bind: sockets open per NAS on first use."""

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def client(self, nas: Nas) -> RadiusClient:
        """The NAS's client (a new one when the NAS's definition changed)."""
        client = self._clients.get(nas.address)
        wanted = (nas.address, nas.dae_port, nas.secret)
        if client is None or client.peer != wanted:
            if client is not None:
                client.close()
            client = RadiusClient(*wanted, timeout=self._timeout, retries=self._retries)
            self._clients[nas.address] = client
        return client

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("dynamic authorization failed", exc_info=task.exception())

    # -- what to send -------------------------------------------------------------

    async def after_accounting(self, nas: Nas, operation: str, outcome: AccountingOutcome) -> None:
        """A refused grant: hotline, throttle or disconnect the session; a
        granted one on a restricted session: restore it (in a task of this
        component, so that ``stop`` waits for it)."""
        session, answer = outcome.session, outcome.answer
        if session is None or answer is None:
            return
        if operation not in ("accounting_start", "accounting_interim"):
            return
        if answer.granted and session.restricted:
            # The restoring CoA went unanswered, or the top-up was handled
            # while the hotline CoA was on its way: the session has funds now.
            self._spawn(self._restore_session(session, "granted"))
        elif not answer.granted and not session.restricted:
            self._spawn(self._refused(nas, session, answer))
        elif not answer.granted and not self._for_funds(answer):
            # Restricted already, and now blocked, terminated, suspended or
            # closed: its Disconnect (from the event) may have gone unanswered,
            # and hotline or throttle traffic is not charged.
            self._spawn(self._refused(nas, session, answer))

    def _for_funds(self, answer: Answer) -> bool:
        denial = answer.first_denial()
        return denial is not None and denial.reason in self.FOR_FUNDS

    @asynccontextmanager
    async def _one_at_a_time(self, session: RadiusSession) -> AsyncIterator[bool]:
        """One CoA or Disconnect at a time per session, so that a restore
        decided while a hotline is on its way sees the hotline's outcome.
        Gives whether another one had to finish first."""
        key = (session.nas_address, session.acct_session_id)
        lock, users = self._session_locks.get(key) or (asyncio.Lock(), 0)
        # counted, not judged by ``locked()``: between one holder leaving and
        # the next taking it the lock looks free, and a third request would
        # get a lock of its own
        self._session_locks[key] = (lock, users + 1)
        waited = lock.locked()
        try:
            async with lock:
                yield waited
        finally:
            lock, users = self._session_locks[key]
            if users == 1:
                del self._session_locks[key]
            else:
                self._session_locks[key] = (lock, users - 1)

    async def _refused(self, nas: Nas, session: RadiusSession, answer: Answer) -> None:
        denial = answer.first_denial()
        final = denial.final if denial is not None else None
        async with self._one_at_a_time(session) as waited:
            restrict = self._for_funds(answer)
            if waited and restrict:
                # the report before was refused too: its hotline or throttle
                # may have just been applied
                current = await self._sessions.get(session.nas_address, session.acct_session_id)
                if current is None or current.restricted:
                    return
            restriction: tuple[Attributes, Restriction] | None = None
            if (
                restrict
                and final is not None
                and final.action is ExhaustionAction.REDIRECT
                and final.redirect_url
            ):
                attributes = hotline_attributes(nas.vendor, final.redirect_url)
                restriction = attributes, Restriction.HOTLINE
            elif restrict and final is not None and final.action is ExhaustionAction.THROTTLE:
                attributes = throttle_attributes(
                    nas.vendor, final.throttle_download_kbps, final.throttle_upload_kbps
                )
                restriction = attributes, Restriction.THROTTLE
            if restriction is not None and restriction[0]:
                attributes, kind = restriction
                result = await self.change(nas, session, attributes, restriction=kind, why=kind)
                if result is not None and (result.acked or not result.answered):
                    return  # applied, or unanswered: the next refused report sends it again
                # The NAS takes no CoA, or refused it (NAK): the user would stay
                # connected without funds. Disconnect, if it takes that.
                log.warning(
                    "radius: the session could not be restricted; disconnecting it",
                    extra={"nas_address": nas.address, "session_id": session.charging_session_id},
                )
            await self.disconnect(nas, session, why=denial.reason if denial else "denied")

    async def change(
        self,
        nas: Nas,
        session: RadiusSession,
        attributes: Attributes,
        *,
        restriction: Restriction | None,
        why: str,
    ) -> DaeResult | None:
        """A CoA-Request with ``attributes`` for the session, which restricts
        it as ``restriction`` (None: lifts its restriction) once acknowledged.
        None: the NAS takes no CoA."""
        if not nas.accepts_coa:
            return None
        return await self._send(nas, session, rp.CoARequest, attributes, restriction, why)

    async def disconnect(self, nas: Nas, session: RadiusSession, *, why: str) -> DaeResult | None:
        """A Disconnect-Request for the session (None: the NAS takes none)."""
        if not nas.accepts_disconnect:
            return None
        return await self._send(nas, session, rp.DisconnectRequest, [], UNSET, why)

    async def _send(
        self,
        nas: Nas,
        session: RadiusSession,
        code: int,
        attributes: Attributes,
        restriction: Restriction | None | Unset,
        why: str,
    ) -> DaeResult:
        identity: Attributes = [
            # RFC 5176 3: which NAS, then which session
            _nas_identification(session.nas_address),
            ("User-Name", session.user_name),
            ("Acct-Session-Id", session.acct_session_id),
        ]
        if session.framed_ip:
            identity.append(("Framed-IP-Address", session.framed_ip))
        operation = "coa" if code == rp.CoARequest else "disconnect"
        with self._telemetry.observe(PROTOCOL, operation) as call:
            result = await self.client(nas).send(code, identity + attributes)
            if not result.acked:
                call.outcome = "rejected" if result.answered else "error"
                call.code = result.error_cause or ("nak" if result.answered else "timeout")
        log.log(
            logging.INFO if result.acked else logging.WARNING,
            f"{operation} {result}",
            extra={
                "reason": why,
                "nas_address": nas.address,
                "session_id": session.charging_session_id,
                "acct_session_id": session.acct_session_id,
                "account_id": session.account_id,
            },
        )
        await self._sessions.dae_result(
            session.nas_address,
            session.acct_session_id,
            f"{operation} {why}: {result}",
            restriction if result.acked else UNSET,
        )
        return result

    # -- domain events (from the relay: quick, the network work is a task) ------------

    async def _on_event(self, entry: OutboxEntry) -> None:
        self._spawn(self._react(entry))

    async def _react(self, entry: OutboxEntry) -> None:
        """The event's CoA or Disconnect for each open session it concerns
        that this node claims (``RadiusSessions.claim``: with several nodes,
        one sends it)."""
        try:
            if entry.event_type in self.RESTORE_ON:
                if entry.aggregate == "account":
                    sessions = await self._sessions.open_for_account(entry.aggregate_id)
                else:
                    sessions = await self._sessions.open_for_customer(entry.aggregate_id)
                await _per_nas(sessions, lambda s: self._restore_session(s, entry.event_type))
                return
            if entry.event_type in self.DISCONNECT_ACCOUNT_ON:
                sessions = await self._sessions.open_for_account(entry.aggregate_id)
            elif entry.event_type in self.DISCONNECT_CUSTOMER_ON:
                sessions = await self._sessions.open_for_customer(entry.aggregate_id)
            else:
                return

            async def disconnect(session: RadiusSession) -> None:
                # One per session as it stands, whichever event and node: closing
                # a customer raises AccountTerminated for each account and
                # CustomerClosed. A later report allows a new one.
                reaction = f"disconnect:{session.charging_session_id}:{session.reports}"
                if await self._sessions.claim(reaction, session):
                    await self._disconnect_session(session, entry.event_type)

            await _per_nas(sessions, disconnect)
        except Exception:
            log.exception("dynamic authorization failed", extra={"event_id": entry.id})

    async def _restore_session(self, listed: RadiusSession, why: str) -> None:
        """The restoring CoA, when the session is restricted as stored and its
        account may use data again. One per session as it stands (its charged
        reports), whichever node and event decide it: one top-up often raises
        several events, each node sees each of them, and on one node they
        wait for each other here. The next report makes a new one possible,
        for a restore the NAS never answered."""
        async with self._one_at_a_time(listed):
            session = await self._sessions.get(listed.nas_address, listed.acct_session_id)
            if session is None or not session.restricted:
                return
            if not await self._sessions.can_use(session.account_id):
                return  # still nothing to spend: the hotline stays
            nas = self._server.nas.get(session.nas_address)
            if nas is None:
                return
            if not await self._sessions.claim(f"restore:{session.reports}", session):
                return  # sent already, by this node or another
            policy = await self._sessions.policy(session.account_id)
            attributes = policy_attributes(nas.vendor, policy)
            portal = session.restriction is Restriction.HOTLINE and not coa_lifts_hotline(
                nas.vendor
            )
            if portal or not attributes:
                # A CoA with the policy would leave the portal redirect on (a CoA
                # keeps what it does not name), or there is nothing to restore
                # with (an RFC-only NAS and a policy without a name: an empty
                # CoA would be ACKed and lift nothing). The user reconnects, and
                # the Access-Accept brings the whole policy.
                done = await self.disconnect(nas, session, why=f"{why}: restored by reconnecting")
                if done is not None and (done.acked or not done.answered):
                    return  # gone, or unanswered: the next granted report tries again
                if not attributes:
                    log.warning(
                        "radius: a paid-up session stays restricted: its NAS takes no "
                        "Disconnect and its policy names nothing a CoA could restore",
                        extra={
                            "nas_address": nas.address,
                            "session_id": session.charging_session_id,
                        },
                    )
                    return
                log.warning(
                    "radius: the NAS took no Disconnect for a paid-up hotlined session; "
                    "restoring its rates by CoA, which may leave the portal redirect on",
                    extra={"nas_address": nas.address, "session_id": session.charging_session_id},
                )
            await self.change(nas, session, attributes, restriction=None, why=why)

    async def _disconnect_session(self, session: RadiusSession, why: str) -> None:
        nas = self._server.nas.get(session.nas_address)
        if nas is not None:
            await self.disconnect(nas, session, why=why)


def _nas_identification(address: str) -> tuple[str, str]:
    """The NAS's address as RFC 5176's NAS identification attribute (the
    address the NAS is registered and talks to ratel from)."""
    if ipaddress.ip_address(address).version == 6:
        return ("NAS-IPv6-Address", address)
    return ("NAS-IP-Address", address)


async def _per_nas(
    sessions: list[RadiusSession], act: Callable[[RadiusSession], Awaitable[None]]
) -> None:
    """``act`` on each session: the NASes at once, each NAS's sessions one
    after another (a NAS that does not answer holds back only its own)."""
    by_nas: dict[str, list[RadiusSession]] = {}
    for session in sessions:
        by_nas.setdefault(session.nas_address, []).append(session)

    async def in_turn(listed: list[RadiusSession]) -> None:
        for session in listed:
            await act(session)

    await asyncio.gather(*(in_turn(listed) for listed in by_nas.values()))
