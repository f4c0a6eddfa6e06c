"""DPI provisioning over RADIUS: a Sandvine policy broker (SPB) learns which
subscriber is behind which address from accounting messages. When a session
starts, its Framed-IP-Address is forwarded as an Accounting-Request Start
(with the user, the session and the policy name the DPI box knows); when it
stops, an Accounting-Request Stop clears it.

Forwarding happens after the NAS got its Accounting-Response, in tasks of
this component, retried with the client's timeouts; a broker that does not
answer is logged and counted, never holds up charging.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Final

from pyrad import packet as rp

from ratel.adapters.radius.attributes import Attributes
from ratel.adapters.radius.client import RadiusClient
from ratel.adapters.radius.server import RadiusServer
from ratel.adapters.telemetry import Telemetry
from ratel.application.radius import AccountingOutcome, RadiusSessions
from ratel.domain.nas import Nas, RadiusSession

log = logging.getLogger("ratel.radius.dpi")

PROTOCOL: Final = "radius_dpi"


class DpiForwarder:
    """The ``radius-dpi`` component (only when a broker is configured)."""

    name = "radius-dpi"

    def __init__(
        self,
        server: RadiusServer,
        sessions: RadiusSessions,
        telemetry: Telemetry,
        *,
        host: str,
        port: int,
        secret: str,
        timeout: float = 2.0,
        retries: int = 3,
    ) -> None:
        self._sessions = sessions
        self._telemetry = telemetry
        self._client = RadiusClient(host, port, secret, timeout=timeout, retries=retries)
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[tuple[str, str], asyncio.Task[None]] = {}  # per session
        self.enabled = bool(host and secret)
        if self.enabled:
            server.after_accounting.append(self.after_accounting)

    async def start(self) -> None:
        """Nothing to bind: the socket opens on first use."""

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        self._client.close()

    def _spawn(self, session: RadiusSession, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after what was sent for ``session`` before: the broker
        gets a session's Stop after its Start, however long the Start's policy
        read or retries take (else it would keep the IP's mapping for ever)."""
        key = (session.nas_address, session.acct_session_id)
        before = self._last.get(key)

        async def in_turn() -> None:
            if before is not None:
                await asyncio.wait({before})
            await work

        task = asyncio.create_task(in_turn())
        self._tasks.add(task)
        self._last[key] = task

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._last.get(key) is finished:
                del self._last[key]

        task.add_done_callback(done)

    async def after_accounting(self, nas: Nas, operation: str, outcome: AccountingOutcome) -> None:
        session = outcome.session
        if session is None or outcome.duplicate or not session.framed_ip:
            return
        if operation == "accounting_start":
            self._spawn(session, self._forward(session, "Start"))
        elif operation == "accounting_stop":
            self._spawn(session, self._forward(session, "Stop"))

    async def _forward(self, session: RadiusSession, status: str) -> None:
        try:
            attributes: Attributes = [
                ("Acct-Status-Type", status),
                ("User-Name", session.user_name),
                ("Framed-IP-Address", str(session.framed_ip)),
                ("Acct-Session-Id", session.acct_session_id),
            ]
            if status == "Start":
                policy = await self._sessions.policy(session.account_id)
                if policy.dpi_policy_name:
                    attributes.append(("Filter-Id", policy.dpi_policy_name))
            with self._telemetry.observe(PROTOCOL, status.lower()) as call:
                result = await self._client.send(rp.AccountingRequest, attributes)
                if not result.acked:
                    call.outcome, call.code = "error", str(result)
            log.log(
                logging.INFO if result.acked else logging.WARNING,
                f"DPI {status}: {result}",
                extra={"framed_ip": session.framed_ip, "account_id": session.account_id},
            )
        except Exception:
            log.exception("DPI forwarding failed", extra={"account_id": session.account_id})
