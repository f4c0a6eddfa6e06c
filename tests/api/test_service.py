"""The `ratel serve` process in-process: graceful stop and a port in use."""

from __future__ import annotations

import asyncio
import socket

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ratel.app import Service, create_app
from ratel.config import Settings
from ratel.container import build_container


async def started(service: Service, task: asyncio.Task[int]) -> str:
    for _ in range(500):
        if service.url or task.done():
            break
        await asyncio.sleep(0.01)
    assert service.url, "the HTTP listener did not start"
    return service.url


async def test_stop_lets_the_request_in_flight_finish(database_url: str) -> None:
    container = build_container(
        Settings(database_url=database_url, http_port=0, housekeeping_interval=60)
    )
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: Request) -> Response:
        entered.set()
        await release.wait()
        return PlainTextResponse("done")

    service = Service(container, create_app(container, [Route("/slow", slow)]))
    running = asyncio.create_task(service.run())
    url = await started(service, running)
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{url}/healthz")).status_code == 200
        in_flight = asyncio.create_task(client.get(f"{url}/slow"))
        await entered.wait()

        service.stop()
        await asyncio.sleep(0.3)
        assert not running.done(), "the process must wait for the request in flight"
        assert container.listeners().status("http").state.value == "down"  # type: ignore[union-attr]

        release.set()
        response = await in_flight
    assert (response.status_code, response.text) == (200, "done")
    assert await asyncio.wait_for(running, 10) == 0
    assert container.listeners().status("scheduler").state.value == "down"  # type: ignore[union-attr]


async def test_a_port_in_use_is_a_failed_start(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        container = build_container(Settings(database_url=database_url, http_port=port))
        code = await asyncio.wait_for(Service(container).run(), 10)
    assert code == 1
    assert container.listeners().status("http").state.value == "down"  # type: ignore[union-attr]
