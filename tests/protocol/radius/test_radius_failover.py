"""Two ratel servers on one database, and a NAS whose accounting fails over
from one to the other and back (as a NAS with a primary and a secondary
accounting server does when the primary is slow to answer): every octet is
charged once, whichever server had last seen the session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from radius_support import (
    MIB,
    Subscriber,
    radclient,
    register_nas,
    server_settings,
    subscriber,
)

from ratel.adapters.radius.server import RadiusServer
from ratel.container import Container, build_container, dispose
from ratel.ports.store import IdentifierKind

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def second(database_url: str) -> AsyncIterator[RadiusServer]:
    """Another ratel node on the same database, with its own caches."""
    container = build_container(server_settings(database_url))
    server: RadiusServer = container.radius_server()
    await server.start()
    yield server
    await server.stop()
    await dispose(container)


@pytest.fixture
async def sub(container: Container, server: RadiusServer, second: RadiusServer) -> Subscriber:
    """Alice, with 5.00, behind a NAS both servers know."""
    await register_nas(container)
    await second.nas.load()
    return await subscriber(container, "alice@isp", balance="5.00")


def acct(status: str, session: str, **counters: int) -> str:
    attributes = [
        'User-Name = "alice@isp"',
        f"Acct-Status-Type = {status}",
        f'Acct-Session-Id = "{session}"',
    ]
    return ", ".join(
        attributes + [f"{name.replace('_', '-')} = {value}" for name, value in counters.items()]
    )


async def send(server: RadiusServer, attributes: str) -> None:
    reply = await radclient(server.addresses["acct"][1], "acct", attributes)
    assert reply.code == "Accounting-Response", reply.output


async def balance(container: Container, account_id: str) -> Decimal:
    view = await container.balance_enquiry()(IdentifierKind.ACCOUNT_ID, account_id)
    return view.balance.amount


async def test_reports_alternating_between_two_servers_are_each_charged_once(
    container: Container, server: RadiusServer, second: RadiusServer, sub: Subscriber
) -> None:
    await send(server, acct("Start", "fo-1"))
    await send(server, acct("Interim-Update", "fo-1", Acct_Output_Octets=10 * MIB))
    await send(second, acct("Interim-Update", "fo-1", Acct_Output_Octets=20 * MIB))
    # back to the first server, which last saw the session at 10 MiB
    await send(server, acct("Interim-Update", "fo-1", Acct_Output_Octets=30 * MIB))
    assert await balance(container, sub.account_id) == Decimal("4.70")  # 30 MiB at 0.01
    # the second server's report resent to the first: already charged
    await send(server, acct("Interim-Update", "fo-1", Acct_Output_Octets=20 * MIB))
    assert await balance(container, sub.account_id) == Decimal("4.70")
    await send(second, acct("Stop", "fo-1", Acct_Output_Octets=35 * MIB))
    [xdr] = await container.account_xdrs()(sub.account_id)
    assert xdr.lines[0].units == 35 * MIB
    assert await balance(container, sub.account_id) == Decimal("4.65")


async def test_a_session_id_reused_on_the_other_server_is_charged_as_a_new_session(
    container: Container, server: RadiusServer, second: RadiusServer, sub: Subscriber
) -> None:
    await send(server, acct("Start", "1"))
    await send(server, acct("Interim-Update", "1", Acct_Output_Octets=10 * MIB))
    await send(second, acct("Stop", "1", Acct_Output_Octets=10 * MIB))
    # the NAS rebooted and counts from 1 again; the first server last saw "1" open
    await send(server, acct("Start", "1"))
    await send(server, acct("Interim-Update", "1", Acct_Output_Octets=5 * MIB))
    assert await balance(container, sub.account_id) == Decimal("4.85")
    await send(second, acct("Interim-Update", "1", Acct_Output_Octets=7 * MIB))
    await send(server, acct("Stop", "1", Acct_Output_Octets=8 * MIB))
    assert await balance(container, sub.account_id) == Decimal("4.82")
    xdrs = await container.account_xdrs()(sub.account_id)
    assert sorted(x.lines[0].units for x in xdrs) == [8 * MIB, 10 * MIB]


async def test_one_start_sent_to_both_servers_at_once_opens_one_session(
    container: Container, server: RadiusServer, second: RadiusServer, sub: Subscriber
) -> None:
    starts = [acct("Start", f"both-{n}") for n in range(4)]
    await asyncio.gather(*(send(node, start) for start in starts for node in (server, second)))
    sessions = await container.radius_sessions().open_for_account(sub.account_id)
    assert sorted(s.acct_session_id for s in sessions) == [f"both-{n}" for n in range(4)]
    assert len({s.charging_session_id for s in sessions}) == 4
    # each is charged once from here, whichever server gets its reports
    for n, node in enumerate((server, second, second, server)):
        await send(node, acct("Interim-Update", f"both-{n}", Acct_Output_Octets=10 * MIB))
    assert await balance(container, sub.account_id) == Decimal("4.60")
