"""Observability: Prometheus metrics and structured logs.

Every protocol adapter (RADIUS, Diameter, GraphQL) and every use case call
is counted and timed the same way, with ``Telemetry.observe(protocol,
operation)``::

    with telemetry.observe("diameter", "ccr_initial") as call:
        answer = await credit_control.start(...)
        if not answer.granted:
            call.outcome = "rejected"

The metrics live on a registry of their own (not the process-global one), so
that each container, and each test, starts from zero.

Logs are stdlib ``logging``: ``configure_logging`` installs one handler on
the root logger that writes JSON lines (or text for a terminal). Pass the
identifiers an operator searches by as extras:
``log.info("session released", extra={"session_id": sid, "account_id": aid})``.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ratel.domain.errors import DomainError

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

#: ``Content-Type`` of ``Telemetry.exposition()``.
METRICS_CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

# Charging answers take a few milliseconds; gateways time out after one to a
# few seconds. Fine buckets at the low end show regressions early.
LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)

OK: Final = "ok"
REJECTED: Final = "rejected"  # a business rule said no (a DomainError): expected
ERROR: Final = "error"  # anything else: a bug or an outage


class Observation:
    """One call being observed. ``outcome`` is decided from the exception on
    exit; set it (and ``code``) yourself when a refusal is an answer, not an
    exception (a RADIUS Access-Reject, a Diameter 4012)."""

    __slots__ = ("_operation", "_protocol", "_started", "_telemetry", "code", "outcome")

    def __init__(self, telemetry: Telemetry, protocol: str, operation: str) -> None:
        self._telemetry = telemetry
        self._protocol = protocol
        self._operation = operation
        self.outcome = OK
        self.code = ""
        self._started = 0.0

    def __enter__(self) -> Observation:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._started
        if exc is not None:
            if isinstance(exc, DomainError):
                self.outcome, self.code = REJECTED, exc.code
            else:
                self.outcome, self.code = ERROR, type(exc).__name__
        self._telemetry.record(self._protocol, self._operation, self.outcome, elapsed, self.code)


class Telemetry:
    """The metrics of one ratel process, on their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ratel_requests",
            "Requests handled, per protocol, operation and outcome (ok, rejected, error).",
            ("protocol", "operation", "outcome"),
            registry=self.registry,
        )
        self.errors = Counter(
            "ratel_errors",
            "Requests that did not succeed, per protocol, operation, outcome and error code.",
            ("protocol", "operation", "outcome", "code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "ratel_request_duration_seconds",
            "Time to answer a request, per protocol and operation.",
            ("protocol", "operation"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, protocol: str, operation: str) -> Observation:
        """Count and time one call: a context manager (``with``)."""
        return Observation(self, protocol, operation)

    def observed(
        self, protocol: str, operation: str
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        """The same as a decorator of a coroutine function."""

        def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
            @functools.wraps(func)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                with self.observe(protocol, operation):
                    return await func(*args, **kwargs)

            return wrapper

        return decorate

    def record(
        self, protocol: str, operation: str, outcome: str, seconds: float, code: str = ""
    ) -> None:
        """Account for one finished call."""
        self.requests.labels(protocol, operation, outcome).inc()
        self.latency.labels(protocol, operation).observe(seconds)
        if outcome != OK:
            self.errors.labels(protocol, operation, outcome, code or outcome).inc()

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)


class Instrumented:
    """A use case whose calls are counted and timed: ``__call__`` as
    ``operation`` and every public coroutine method as ``operation.method``
    (``credit_control.start``). Everything else passes through."""

    def __init__(self, inner: object, telemetry: Telemetry, protocol: str, operation: str) -> None:
        self._inner = inner
        self._telemetry = telemetry
        self._protocol = protocol
        self._operation = operation

    @property
    def wrapped(self) -> object:
        """The use case itself."""
        return self._inner

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._telemetry.observe(self._protocol, self._operation):
            return await cast(Callable[..., Awaitable[Any]], self._inner)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute
        wrapped = self._telemetry.observed(self._protocol, f"{self._operation}.{name}")(attribute)
        # kept on the instance: the next lookup does not come back here (hot path)
        self.__dict__[name] = wrapped
        return wrapped

    def __repr__(self) -> str:
        return f"Instrumented({self._inner!r}, {self._protocol}:{self._operation})"


def instrument(inner: T, telemetry: Telemetry, protocol: str, operation: str) -> T:
    """``inner`` with its calls observed; typed as ``inner`` for the callers."""
    return cast(T, Instrumented(inner, telemetry, protocol, operation))


# -- logging ---------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
) | frozenset({"color_message", "taskName"})  # uvicorn's colour copy; Python 3.12's task name


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message,
    then the extras (``session_id``, ``account_id``, ``customer_id`` ...) and
    the traceback of an exception as ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            event.setdefault(key, value)
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        # default=str: ids, Decimals and datetimes in extras never break a log line
        return json.dumps(event, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        return f"{line} {extras}" if extras else line


_HANDLER_NAME: Final = "ratel"


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr) as
    JSON lines (``fmt="json"``) or text. Calling it again replaces ratel's
    handler rather than adding a second one."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's loggers would otherwise keep their own handlers and format
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
