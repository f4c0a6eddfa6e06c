"""The HTTP application: /healthz and /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ratel.app import create_app
from ratel.config import Settings
from ratel.container import Container, build_container, dispose
from ratel.domain.errors import NotFound


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://ratel.test") as client:
        yield client


async def test_healthy_when_the_database_answers_and_no_listener_is_down(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "listeners": {}}


async def test_healthy_lists_the_listeners_that_are_up(
    client: httpx.AsyncClient, container: Container
) -> None:
    container.listeners().register("http").up("http://127.0.0.1:8080")
    container.listeners().register("scheduler").up()
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["listeners"] == {"http": "up", "scheduler": "up"}


async def test_unavailable_when_a_listener_is_down(
    client: httpx.AsyncClient, container: Container
) -> None:
    container.listeners().register("http").up()
    container.listeners().register("radius").down("address already in use")
    response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["listeners"] == {"http": "up", "radius": "down"}
    assert body["problems"] == {"radius": "address already in use"}


async def test_unavailable_while_a_listener_is_starting(
    client: httpx.AsyncClient, container: Container
) -> None:
    container.listeners().register("diameter")
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["listeners"] == {"diameter": "starting"}


async def test_a_listener_back_up_makes_the_node_healthy_again(
    client: httpx.AsyncClient, container: Container
) -> None:
    radius = container.listeners().register("radius")
    radius.down("restarting")
    assert (await client.get("/healthz")).status_code == 503
    radius.up()
    assert (await client.get("/healthz")).status_code == 200


async def test_unavailable_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'directory' / 'ratel.db'}"
    container = build_container(Settings(database_url=url))
    container.listeners().register("http").up()
    try:
        transport = httpx.ASGITransport(app=create_app(container))
        async with httpx.AsyncClient(transport=transport, base_url="http://ratel.test") as client:
            response = await client.get("/healthz")
    finally:
        await dispose(container)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "unreachable"
    assert body["listeners"] == {"http": "up"}
    assert set(body["problems"]) == {"database"}


async def test_metrics_count_and_time_use_cases(
    client: httpx.AsyncClient, container: Container
) -> None:
    await container.open_customer()("Ada Lovelace", "USD")
    with pytest.raises(NotFound):
        await container.suspend_customer()("cus_does_not_exist")

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'ratel_requests_total{operation="open_customer",outcome="ok",protocol="internal"} 1.0'
        in text
    )
    assert (
        'ratel_requests_total{operation="suspend_customer",outcome="rejected",protocol="internal"}'
        " 1.0" in text
    )
    assert (
        'ratel_errors_total{code="not_found",operation="suspend_customer",outcome="rejected",'
        'protocol="internal"} 1.0' in text
    )
    assert (
        'ratel_request_duration_seconds_count{operation="open_customer",protocol="internal"} 1.0'
        in text
    )
    assert 'ratel_request_duration_seconds_bucket{le="0.005",operation="open_customer"' in text


async def test_metrics_of_each_container_start_from_zero(database_url: str) -> None:
    # Each container has its own registry: two in one process do not clash.
    first = build_container(Settings(database_url=database_url))
    second = build_container(Settings(database_url=database_url))
    try:
        await first.open_customer()("Ada", "USD")
        assert b'operation="open_customer"' in first.telemetry().exposition()
        assert b'operation="open_customer"' not in second.telemetry().exposition()
    finally:
        await dispose(first)
        await dispose(second)


async def test_unknown_paths_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/nope")).status_code == 404
