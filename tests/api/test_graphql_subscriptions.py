# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""Balance and quota subscriptions over a real websocket (graphql-transport-ws)
against ratel served by uvicorn on a free port, fed by the event relay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from ratel.app import Service
from ratel.container import Container, dispose
from ratel.domain.money import Money
from tests.api.graphql_support import demo_container, demo_template  # noqa: F401

PROTOCOL = "graphql-transport-ws"
WAIT = 15.0  # seconds a pushed message may take at most (a slow shared machine)

BALANCE = """subscription ($id: String!) {
  accountBalance(accountId: $id) { accountId balance { amount currency } text }
}"""
QUOTAS = """subscription ($id: String!) {
  accountQuotas(accountId: $id) { productCode quotaCode remaining }
}"""


class Served:
    def __init__(self, container: Container, service: Service) -> None:
        self.container = container
        self.service = service

    @property
    def ws_url(self) -> str:
        return self.service.url.replace("http://", "ws://") + "/graphql"


@pytest.fixture
async def served(demo_template: Path, tmp_path: Path) -> AsyncIterator[Served]:
    container = demo_container(
        demo_template,
        tmp_path,
        http_port=0,
        event_relay_interval=0.05,
        housekeeping_interval=3600,
    )
    service = Service(container)
    running = asyncio.create_task(service.run())
    for _ in range(300):
        if service.url or running.done():
            break
        await asyncio.sleep(0.05)
    assert service.url, "the server did not start"
    try:
        yield Served(container, service)
    finally:
        service.stop()
        assert await asyncio.wait_for(running, 30) == 0
        await dispose(container)


async def open_socket(
    url: str, *, header: str | None = None, init: dict[str, Any] | None = None
) -> ClientConnection:
    headers = {"Authorization": f"Bearer {header}"} if header else None
    socket = await connect(url, subprotocols=[PROTOCOL], additional_headers=headers)  # type: ignore[list-item]
    await socket.send(json.dumps({"type": "connection_init", "payload": init or {}}))
    ack = await receive(socket)
    assert ack["type"] == "connection_ack", ack
    return socket


async def receive(socket: ClientConnection) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), WAIT))
        if message["type"] not in ("ping", "pong"):
            return message


async def subscribe(socket: ClientConnection, op: str, query: str, account_id: str) -> None:
    payload = {"query": query, "variables": {"id": account_id}}
    await socket.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))


async def next_data(socket: ClientConnection, op: str) -> Any:
    message = await receive(socket)
    assert message["id"] == op and message["type"] == "next", message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]


async def test_a_top_up_is_pushed_to_the_account_holder(served: Served) -> None:
    socket = await open_socket(served.ws_url, header="alice")
    try:
        await subscribe(socket, "1", BALANCE, "acc_demo_alice")
        first = await next_data(socket, "1")
        assert first["accountBalance"]["balance"] == {"amount": "43.25", "currency": "USD"}

        await served.container.top_up()("cus_demo_alice", Money.of(Decimal("10"), "USD"), "t1")
        pushed = await next_data(socket, "1")
        assert pushed["accountBalance"] == {
            "accountId": "acc_demo_alice",
            "balance": {"amount": "53.25", "currency": "USD"},
            "text": "Your current balance is 53.25 USD",
        }

        # a change of somebody else's balance pushes nothing here
        await served.container.top_up()("cus_demo_bob", Money.of(Decimal("5"), "USD"), "t2")
        await served.container.top_up()("cus_demo_alice", Money.of(Decimal("1"), "USD"), "t3")
        again = await next_data(socket, "1")
        assert again["accountBalance"]["balance"]["amount"] == "54.25"

        await socket.send(json.dumps({"id": "1", "type": "complete"}))
        for _ in range(100):
            if served.container.account_feed().watching == 0:
                break
            await asyncio.sleep(0.05)
        assert served.container.account_feed().watching == 0
    finally:
        await socket.close()


async def test_an_account_holder_is_refused_another_account(served: Served) -> None:
    socket = await open_socket(served.ws_url, header="alice")
    try:
        for op, query in (("b", BALANCE), ("q", QUOTAS)):
            await subscribe(socket, op, query, "acc_demo_bob_fibre")
            message = await receive(socket)
            assert message["id"] == op
            errors = (
                message["payload"]
                if message["type"] == "error"
                else message["payload"].get("errors")
            )
            assert errors and errors[0]["extensions"]["code"] == "FORBIDDEN", message
            assert not (message["payload"].get("data") if message["type"] == "next" else None)
        assert served.container.account_feed().watching == 0
    finally:
        await socket.close()


async def test_staff_see_quota_changes_with_the_token_in_connection_init(
    served: Served,
) -> None:
    socket = await open_socket(served.ws_url, init={"Authorization": "Bearer administrator"})
    try:
        await subscribe(socket, "q", QUOTAS, "acc_demo_grace")
        before = {q["productCode"] for q in (await next_data(socket, "q"))["accountQuotas"]}
        assert "SMS50" not in before

        await served.container.add_add_on()("acc_demo_grace", "SMS50")
        after = (await next_data(socket, "q"))["accountQuotas"]
        assert "SMS50" in {q["productCode"] for q in after}
    finally:
        await socket.close()


async def test_anonymous_and_bad_tokens_get_nothing(served: Served) -> None:
    socket = await open_socket(served.ws_url)
    try:
        await subscribe(socket, "1", BALANCE, "acc_demo_alice")
        message = await receive(socket)
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        await socket.close()

    refused = await connect(served.ws_url, subprotocols=[PROTOCOL])  # type: ignore[list-item]
    try:
        payload = {"Authorization": "Bearer not-a-token"}
        await refused.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(Exception) as closed:
            await asyncio.wait_for(refused.recv(), WAIT)
        assert "4403" in str(closed.value)
    finally:
        await refused.close()


@pytest.mark.parametrize(
    "caller", ["anonymous", "administrator", "helpdesk", "alice", "crm_read", "crm_write", "ussd"]
)
async def test_the_permission_matrix_for_subscriptions(served: Served, caller: str) -> None:
    from tests.api.test_graphql_permissions import GRANTED, SUBSCRIPTIONS

    socket = await open_socket(served.ws_url, header=None if caller == "anonymous" else caller)
    try:
        for key in sorted(SUBSCRIPTIONS):
            query = QUOTAS if key.endswith("accountQuotas") else BALANCE
            await subscribe(socket, key, query, "acc_demo_alice")
            message = await receive(socket)
            assert message["id"] == key
            payload = message["payload"]
            errors = payload if message["type"] == "error" else payload.get("errors")
            if key in GRANTED[caller]:
                assert message["type"] == "next" and not errors, message
            else:
                code = "UNAUTHENTICATED" if caller == "anonymous" else "FORBIDDEN"
                assert errors and errors[0]["extensions"]["code"] == code, message
    finally:
        await socket.close()


@pytest.fixture
async def served_for_real(demo_template: Path, tmp_path: Path) -> AsyncIterator[Served]:
    """As ``served``, with the real identity use cases behind the tokens."""
    container = demo_container(
        demo_template, tmp_path, http_port=0, event_relay_interval=0.05, housekeeping_interval=3600
    )
    container.authenticate.reset_override()
    service = Service(container)
    running = asyncio.create_task(service.run())
    for _ in range(300):
        if service.url or running.done():
            break
        await asyncio.sleep(0.05)
    assert service.url, "the server did not start"
    try:
        yield Served(container, service)
    finally:
        service.stop()
        assert await asyncio.wait_for(running, 30) == 0
        await dispose(container)


async def test_a_logged_out_token_loses_its_subscription(served_for_real: Served) -> None:
    container = served_for_real.container
    session = await container.self_care_login()("acc_demo_alice", "alice-self-care")
    socket = await open_socket(
        served_for_real.ws_url, init={"Authorization": f"Bearer {session.token}"}
    )
    try:
        await subscribe(socket, "1", BALANCE, "acc_demo_alice")
        assert (await next_data(socket, "1"))["accountBalance"]["text"].endswith("43.25 USD")
        await container.top_up()("cus_demo_alice", Money.of(Decimal("1"), "USD"), "t1")
        assert (await next_data(socket, "1"))["accountBalance"]["text"].endswith("44.25 USD")

        assert await container.logout()(session.token) is True
        await container.top_up()("cus_demo_alice", Money.of(Decimal("1"), "USD"), "t2")
        message = await receive(socket)
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED", message
        assert "45.25" not in json.dumps(message)
    finally:
        await socket.close()
