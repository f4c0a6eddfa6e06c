"""The HTTP side of ratel and the ``ratel serve`` process.

``create_app(container)`` is the Starlette application: ``/healthz``,
``/metrics`` and the GraphQL API at ``/graphql`` (HTTP and WebSocket).
``serve(container)`` runs one process on one asyncio loop: the HTTP server,
the housekeeping scheduler (and the RADIUS and Diameter listeners as they
arrive), until SIGTERM or SIGINT; then it stops accepting,
lets in-flight requests and the running housekeeping pass finish, closes the
database connections and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Generator, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ratel.adapters.component import Component
from ratel.adapters.health import ListenerState
from ratel.adapters.scheduler import Scheduler
from ratel.adapters.telemetry import METRICS_CONTENT_TYPE
from ratel.container import Container, dispose
from ratel.graphql.view import RatelGraphQL

log = logging.getLogger("ratel.serve")


# -- the application ---------------------------------------------------------------


def routes(container: Container) -> list[BaseRoute]:
    """Every HTTP route of ratel. Add new endpoints (``/graphql``) here."""

    async def healthz(request: Request) -> Response:
        body: dict[str, object] = {"status": "ok", "database": "ok"}
        problems: dict[str, str] = {}
        try:
            await container.database_check()()
        except Exception as exc:  # any failure means "not healthy", never a 500
            body["database"] = "unreachable"
            problems["database"] = f"{type(exc).__name__}: {exc}".strip()[:500]
            log.warning("health check: the database does not answer", exc_info=True)
        listeners: dict[str, str] = {}
        for status in container.listeners().statuses():
            listeners[status.name] = status.state.value
            if status.state is not ListenerState.UP:
                problems[status.name] = status.detail or status.state.value
        body["listeners"] = listeners
        if problems:
            body["status"] = "unavailable"
            body["problems"] = problems
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    async def metrics(request: Request) -> Response:
        return Response(
            container.telemetry().exposition(), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )

    graphql = RatelGraphQL(
        container.graphql_schema(),
        container.graphql_use_cases(),
        container.authenticate(),
        graphiql=container.graphql_development(),
    )
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        # an ASGI app as endpoint: strawberry answers GET and POST itself
        Route("/graphql", graphql),
        WebSocketRoute("/graphql", graphql),
    ]


#: The largest HTTP request body read: a GraphQL request is a few kB; its
#: document is bounded by the token limit, its variables only by this.
MAX_BODY = 1 << 20


class BodyLimit:
    """Refuses (413) an HTTP request whose body is larger than ``limit``,
    before the application reads or parses any of it."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        whole: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replay() -> Message:
            return whole.pop() if whole else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("HTTP request refused: body larger than %d bytes", self.limit)
        response = PlainTextResponse("request body too large", status_code=413)
        await response(scope, receive, send)


def create_app(container: Container, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The Starlette application of ``container``; ``extra_routes`` are added
    after ratel's own (for tests and plug-ins)."""
    app = Starlette(routes=[*routes(container), *extra_routes], middleware=[Middleware(BodyLimit)])
    app.state.container = container
    return app


# -- the process -------------------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn, told to leave signals to ``serve`` (it would otherwise re-raise
    SIGTERM after shutting down and the process would die with it) and to
    report when it is listening."""

    def __init__(self, config: uvicorn.Config, container: Container) -> None:
        super().__init__(config)
        self._listener = container.listeners().register("http")
        self.url = ""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        except SystemExit:  # uvicorn's answer to a port it cannot bind
            self._listener.down(f"cannot listen on {self.config.host}:{self.config.port}")
            raise
        if not self.started:
            self._listener.down("did not start")
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        self.url = f"http://{host}:{port}"
        self._listener.up(self.url)
        log.info("listening", extra={"listener": "http", "url": self.url})

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._listener.down("shutting down")
        await super().shutdown(sockets)


class Service:
    """One ratel process: the HTTP server and the scheduler (and the protocol
    listeners as they arrive) on the running loop. ``run`` returns the exit
    code once ``stop`` was called and in-flight work has finished."""

    def __init__(self, container: Container, app: Starlette | None = None) -> None:
        self._container = container
        self._settings = container.settings()
        config = uvicorn.Config(
            app or create_app(container),
            host=self._settings.http_host,
            port=self._settings.http_port,
            log_config=None,  # our logging, our format
            access_log=False,
            lifespan="auto",
            ws="websockets-sansio",  # GraphQL subscriptions (graphql-transport-ws)
            timeout_graceful_shutdown=int(self._settings.shutdown_timeout),
        )
        self._server = _Server(config, container)
        self._scheduler = Scheduler(
            container.housekeeping(), self._settings.housekeeping_interval, container.listeners()
        )
        self._components: list[Component] = list(container.components())
        self._started: list[Component] = []

    @property
    def url(self) -> str:
        """The HTTP listener's URL once it is up (with the real port when 0 was asked)."""
        return self._server.url

    def stop(self) -> None:
        """Stop accepting work and finish what is in flight; a second call
        stops waiting for open HTTP connections."""
        if self._server.should_exit:
            self._server.force_exit = True
        self._server.should_exit = True
        self._scheduler.stop()

    async def _start_components(self) -> bool:
        """Start every component in order; on a failure stop those started
        and say so (``serve`` then exits 1)."""
        for component in self._components:
            try:
                await component.start()
            except Exception:
                log.exception("cannot start", extra={"component": component.name})
                await self._stop_components()
                return False
            self._started.append(component)
        return True

    async def _stop_components(self) -> None:
        while self._started:
            component = self._started.pop()
            try:
                await asyncio.wait_for(component.stop(), self._settings.shutdown_timeout)
            except Exception:
                log.exception("did not stop cleanly", extra={"component": component.name})

    async def run(self) -> int:
        """Serve until stopped; 0 on a clean stop. Closes the database
        connections on the way out."""
        scheduling = asyncio.create_task(self._scheduler.run(), name="housekeeping-scheduler")
        code = 0
        try:
            if not await self._start_components():
                self.stop()
                code = 1
            else:
                try:
                    await self._server.serve()
                except SystemExit as exc:  # uvicorn exits when it cannot bind
                    code = exc.code if isinstance(exc.code, int) else 1
                if not self._server.started:
                    code = code or 1
            await self._stop_components()
            self._scheduler.stop()
            # The running pass finishes; if it hangs past the grace period we give up.
            try:
                await asyncio.wait_for(scheduling, self._settings.shutdown_timeout)
            except TimeoutError:
                log.error("housekeeping did not finish within the shutdown timeout")
                code = code or 1
        finally:
            if not scheduling.done():
                scheduling.cancel()
            await self._stop_components()  # when serving failed on the way
            await dispose(self._container)
        log.info("stopped", extra={"exit_code": code})
        return code


#: The garbage collector's thresholds while serving. A charging batch makes
#: tens of thousands of short-lived objects; at CPython's default (700 new
#: objects) the collector ran several times per batch and took a sixth of the
#: server's CPU (benchmarks.radius). Nothing is kept from collection: cycles
#: are found as before, a little later.
SERVING_GC_THRESHOLDS = (50_000, 20, 20)


def tune_collector() -> None:
    """Set the collector up for a long-running server: what exists at start
    (modules, settings, the schema) is frozen out of every collection, and
    young objects are collected in larger, rarer passes."""
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)


async def serve(container: Container) -> int:
    """Run ratel until SIGTERM or SIGINT; the process exit code (0: clean stop)."""
    tune_collector()
    service = Service(container)
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        service.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await service.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
