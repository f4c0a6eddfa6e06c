# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""A WebSocket (graphql-transport-ws) connection authenticates once,
at connect time. Queries, mutations and new subscriptions sent later over the
same socket ran with that stale principal, even after the token was logged
out or the staff user was blocked. Only pushes of an already-running
subscription are re-checked (``live._still_allowed``)."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from tests.api.graphql_support import demo_template  # noqa: F401
from tests.api.test_graphql_subscriptions import (  # noqa: F401
    Served,
    open_socket,
    receive,
    served_for_real,
)


async def socket_of(url: str, token: str) -> ClientConnection:
    """A socket whose token came in ``connection_init``, as from a browser."""
    return await open_socket(url, init={"Authorization": f"Bearer {token}"})


async def operation(socket: ClientConnection, op: str, query: str) -> dict[str, Any]:
    """Send one operation; its first answer (``next`` or ``error``), or a
    close of the socket as ``{"type": "closed"}``."""
    await socket.send(json.dumps({"id": op, "type": "subscribe", "payload": {"query": query}}))
    try:
        return await receive(socket)
    except Exception as closed:  # ConnectionClosed: also a refusal
        return {"type": "closed", "reason": repr(closed)}


def refused(message: dict[str, Any]) -> bool:
    if message["type"] in ("closed", "error"):
        return True
    errors = message["payload"].get("errors") or []
    codes = {e.get("extensions", {}).get("code") for e in errors}
    return bool(codes & {"UNAUTHENTICATED", "FORBIDDEN"})


ME = "{ me { balance { text } } }"
BUY = 'mutation { buyAddOn(productCode: "SMS50") { addOn { productCode } errors { code } } }'
BALANCE = 'subscription { accountBalance(accountId: "acc_demo_alice") { balance { amount } text } }'


async def test_a_logged_out_token_can_no_longer_query_or_mutate_over_its_open_websocket(
    served_for_real: Served,
) -> None:
    """After logout, operations sent over the socket opened with that token
    must be refused (UNAUTHENTICATED, or the socket closed). Now: the query
    answers the balance and the mutation buys an add-on, charging Alice."""
    container = served_for_real.container
    session = await container.self_care_login()("acc_demo_alice", "alice-self-care")
    socket = await socket_of(served_for_real.ws_url, session.token)
    try:
        before = await operation(socket, "1", ME)
        assert not refused(before), before
        assert (await receive(socket))["type"] == "complete"

        assert await container.logout()(session.token) is True

        after = await operation(socket, "2", ME)
        assert refused(after), f"a logged-out token still reads over the socket: {after}"
        bought = await operation(socket, "3", BUY)
        assert refused(bought), f"a logged-out token still buys over the socket: {bought}"
    finally:
        await socket.close()


async def test_a_logged_out_token_cannot_start_a_new_subscription_on_its_open_websocket(
    served_for_real: Served,
) -> None:
    """A subscription started after logout must be refused before its first
    value. Now: Guard checks the connect-time principal and the first balance
    is pushed (``_still_allowed`` runs only before later pushes)."""
    container = served_for_real.container
    session = await container.self_care_login()("acc_demo_alice", "alice-self-care")
    socket = await socket_of(served_for_real.ws_url, session.token)
    try:
        assert await container.logout()(session.token) is True
        first = await operation(socket, "1", BALANCE)
        assert refused(first), f"a logged-out token got a balance pushed: {first}"
    finally:
        await socket.close()


async def test_a_blocked_staff_user_can_no_longer_mutate_over_an_open_websocket(
    served_for_real: Served,
) -> None:
    """Blocking a staff user ends their sessions "at once" (BlockStaffUser);
    their open socket must stop working too. Now: the blocked administrator
    still opens customers over it."""
    container = served_for_real.container
    session = await container.staff_login()("admin", "ratel-admin-demo")
    socket = await socket_of(served_for_real.ws_url, session.token)
    try:
        await container.block_staff_user()("admin")
        opened = await operation(
            socket,
            "1",
            'mutation { openCustomer(input: {name: "Mallory", currency: "USD"})'
            " { customer { id } errors { code } } }",
        )
        assert refused(opened), f"a blocked administrator still mutates: {opened}"
    finally:
        await socket.close()


async def test_logout_over_a_websocket_revokes_the_token_given_in_connection_init(
    served_for_real: Served,
) -> None:
    """A browser cannot set headers on a websocket, so its token comes in
    connection_init (view.on_ws_connect). ``logout`` sent over that socket
    must revoke it. Now: it reads only the upgrade request's headers, answers
    loggedOut false and the token stays valid."""
    container = served_for_real.container
    session = await container.self_care_login()("acc_demo_alice", "alice-self-care")
    socket = await socket_of(served_for_real.ws_url, session.token)
    try:
        answer = await operation(socket, "1", "mutation { logout { loggedOut } }")
        assert answer["payload"]["data"] == {"logout": {"loggedOut": True}}, answer
    finally:
        await socket.close()
    # the token must be dead: logging it out again revokes nothing
    assert await container.logout()(session.token) is False
