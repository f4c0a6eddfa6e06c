"""The `ratel serve` process in-process: graceful stop and a port in use."""

from __future__ import annotations

import asyncio
import gc
import socket

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ratel.app import SERVING_GC_THRESHOLDS, Service, create_app, tune_collector
from ratel.config import Settings
from ratel.container import build_container

# any free ports: never 1812/1813, which other test runs on the machine may hold
# never the well-known protocol ports: other test runs share the machine
NO_PROTOCOL_PORTS = {"radius_auth_port": 0, "radius_acct_port": 0, "diameter_port": 0}


async def started(service: Service, task: asyncio.Task[int]) -> str:
    for _ in range(500):
        if service.url or task.done():
            break
        await asyncio.sleep(0.01)
    assert service.url, "the HTTP listener did not start"
    return service.url


async def test_stop_lets_the_request_in_flight_finish(database_url: str) -> None:
    container = build_container(
        Settings(
            database_url=database_url, http_port=0, housekeeping_interval=60, **NO_PROTOCOL_PORTS
        )
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
        container = build_container(
            Settings(database_url=database_url, http_port=port, **NO_PROTOCOL_PORTS)
        )
        code = await asyncio.wait_for(Service(container).run(), 10)
    assert code == 1
    assert container.listeners().status("http").state.value == "down"  # type: ignore[union-attr]


class Recorder:
    """A component that writes down what happens to it."""

    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name = name
        self._log = log
        self._fail = fail

    async def start(self) -> None:
        if self._fail:
            raise OSError("address already in use")
        self._log.append(f"start {self.name}")

    async def stop(self) -> None:
        self._log.append(f"stop {self.name}")


async def test_components_start_before_http_and_stop_after_it(database_url: str) -> None:
    from dependency_injector import providers

    log: list[str] = []
    container = build_container(Settings(database_url=database_url, http_port=0))
    container.components.override(
        providers.List(providers.Object(Recorder("a", log)), providers.Object(Recorder("b", log)))
    )
    service = Service(container)
    running = asyncio.create_task(service.run())
    await started(service, running)
    assert log == ["start a", "start b"]
    service.stop()
    assert await asyncio.wait_for(running, 10) == 0
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_a_component_that_cannot_start_stops_the_others(database_url: str) -> None:
    from dependency_injector import providers

    log: list[str] = []
    container = build_container(Settings(database_url=database_url, http_port=0))
    container.components.override(
        providers.List(
            providers.Object(Recorder("a", log)), providers.Object(Recorder("b", log, fail=True))
        )
    )
    code = await asyncio.wait_for(Service(container).run(), 10)
    assert code == 1
    assert log == ["start a", "stop a"]
    assert container.listeners().status("http") is None or (
        container.listeners().status("http").state.value != "up"  # type: ignore[union-attr]
    )


async def test_serve_runs_the_event_relay(database_url: str) -> None:
    from decimal import Decimal

    from ratel.domain.money import Money

    container = build_container(
        Settings(
            database_url=database_url, http_port=0, event_relay_interval=0.05, **NO_PROTOCOL_PORTS
        )
    )
    seen = asyncio.Queue[str]()

    async def on_balance(entry) -> None:  # type: ignore[no-untyped-def]
        await seen.put(entry.aggregate_id)

    container.event_relay().subscribe(on_balance, "BalanceChanged")
    service = Service(container)
    running = asyncio.create_task(service.run())
    await started(service, running)
    customer = await container.open_customer()("Ada", "USD")
    await container.top_up()(customer.id, Money.of(Decimal("5"), "USD"), "card-1")
    assert await asyncio.wait_for(seen.get(), 10) == customer.id
    service.stop()
    assert await asyncio.wait_for(running, 10) == 0


def test_serving_tunes_the_collector_for_a_long_running_process() -> None:
    before = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold() == SERVING_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # start-up objects out of every collection
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
