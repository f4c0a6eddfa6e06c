"""The DPI forwarder sends a session's Start and Stop in turn: the Start
first reads the policy from the store, and a short session's Stop must not
reach the Sandvine broker before it (the broker would keep the IP's mapping
for ever)."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

from ratel.adapters.radius.dpi import DpiForwarder


class Server:
    def __init__(self) -> None:
        self.after_accounting: list[object] = []


class Sessions:
    async def policy(self, account_id: str) -> SimpleNamespace:
        await asyncio.sleep(0.01)  # a store round trip
        return SimpleNamespace(dpi_policy_name="gold")


class Telemetry:
    @contextlib.contextmanager
    def observe(self, protocol: str, operation: str):  # type: ignore[no-untyped-def]
        yield SimpleNamespace(outcome="ok", code="")


async def test_start_reaches_the_broker_before_stop() -> None:
    forwarder = DpiForwarder(
        Server(),
        Sessions(),
        Telemetry(),
        host="127.0.0.1",
        port=1813,
        secret="s",  # type: ignore[arg-type]
    )
    sent: list[str] = []

    async def send(code: int, attributes: list[tuple[str, object]]) -> SimpleNamespace:
        sent.append(str(dict(attributes)["Acct-Status-Type"]))
        return SimpleNamespace(acked=True)

    forwarder._client.send = send  # type: ignore[method-assign]
    session = SimpleNamespace(
        nas_address="192.0.2.1",
        user_name="alice",
        framed_ip="10.0.0.7",
        acct_session_id="a1",
        account_id="acc-1",
    )
    outcome = SimpleNamespace(session=session, duplicate=False)
    await forwarder.after_accounting(None, "accounting_start", outcome)  # type: ignore[arg-type]
    await forwarder.after_accounting(None, "accounting_stop", outcome)  # type: ignore[arg-type]
    await forwarder.stop()
    assert sent == ["Start", "Stop"]
