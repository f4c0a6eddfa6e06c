"""Metrics and structured logs (no database, no network)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ratel.adapters.telemetry import (
    Instrumented,
    JsonFormatter,
    Telemetry,
    configure_logging,
    instrument,
)
from ratel.domain.errors import InsufficientFunds


def sample(telemetry: Telemetry, name: str, **labels: str) -> float:
    value = telemetry.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_observe_counts_and_times_a_successful_call() -> None:
    telemetry = Telemetry()
    with telemetry.observe("radius", "access_request"):
        pass
    labels = {"protocol": "radius", "operation": "access_request"}
    assert sample(telemetry, "ratel_requests_total", outcome="ok", **labels) == 1
    assert sample(telemetry, "ratel_request_duration_seconds_count", **labels) == 1
    assert sample(telemetry, "ratel_errors_total", outcome="ok", code="ok", **labels) == 0


def test_a_domain_error_is_a_rejection_with_its_code() -> None:
    telemetry = Telemetry()
    with pytest.raises(InsufficientFunds), telemetry.observe("diameter", "ccr_initial"):
        raise InsufficientFunds("no money")
    labels = {"protocol": "diameter", "operation": "ccr_initial"}
    assert sample(telemetry, "ratel_requests_total", outcome="rejected", **labels) == 1
    assert (
        sample(
            telemetry,
            "ratel_errors_total",
            outcome="rejected",
            code=InsufficientFunds.code,
            **labels,
        )
        == 1
    )


def test_any_other_exception_is_an_error_named_by_its_type() -> None:
    telemetry = Telemetry()
    with pytest.raises(RuntimeError), telemetry.observe("graphql", "topUp"):
        raise RuntimeError("boom")
    assert (
        sample(
            telemetry,
            "ratel_errors_total",
            protocol="graphql",
            operation="topUp",
            outcome="error",
            code="RuntimeError",
        )
        == 1
    )


def test_an_adapter_may_set_the_outcome_of_an_answer() -> None:
    telemetry = Telemetry()
    with telemetry.observe("radius", "access_request") as call:
        call.outcome, call.code = "rejected", "account_blocked"
    assert (
        sample(
            telemetry,
            "ratel_errors_total",
            protocol="radius",
            operation="access_request",
            outcome="rejected",
            code="account_blocked",
        )
        == 1
    )


async def test_observed_decorates_coroutine_functions() -> None:
    telemetry = Telemetry()

    @telemetry.observed("diameter", "ccr_update")
    async def answer(value: int) -> int:
        return value * 2

    assert await answer(21) == 42
    assert (
        sample(
            telemetry,
            "ratel_requests_total",
            protocol="diameter",
            operation="ccr_update",
            outcome="ok",
        )
        == 1
    )


class Sessions:
    """A use case with a __call__ and methods."""

    code = "x"

    async def __call__(self, n: int) -> int:
        return n

    async def start(self, n: int) -> int:
        return n + 1

    def sync_helper(self) -> str:
        return "plain"


async def test_instrumented_use_cases_count_calls_and_public_methods() -> None:
    telemetry = Telemetry()
    sessions = instrument(Sessions(), telemetry, "internal", "credit_control")
    assert isinstance(sessions, Instrumented)
    assert await sessions(1) == 1
    assert await sessions.start(1) == 2
    assert await sessions.start(2) == 3
    assert sessions.sync_helper() == "plain"
    assert sessions.code == "x"

    def ok(operation: str) -> float:
        return sample(
            telemetry,
            "ratel_requests_total",
            protocol="internal",
            operation=operation,
            outcome="ok",
        )

    assert ok("credit_control") == 1
    assert ok("credit_control.start") == 2


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging("INFO", "json", stream)
    yield stream
    for handler in list(root.handlers):
        if handler.get_name() == "ratel":
            root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_identifiers_given_as_extras(captured: io.StringIO) -> None:
    log = logging.getLogger("ratel.test")
    log.info(
        "session %s released",
        "s-1",
        extra={"session_id": "s-1", "account_id": "acc_1", "customer_id": "cus_1"},
    )
    log.debug("not at INFO")
    lines = captured.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["level"] == "info"
    assert event["logger"] == "ratel.test"
    assert event["message"] == "session s-1 released"
    assert (event["session_id"], event["account_id"], event["customer_id"]) == (
        "s-1",
        "acc_1",
        "cus_1",
    )
    assert event["time"].endswith("+00:00")


def test_an_exception_stays_on_one_line(captured: io.StringIO) -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logging.getLogger("ratel.test").exception("failed", extra={"amount": object()})
    lines = captured.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert "ValueError" in event["exception"]
    assert event["amount"].startswith("<object")


def test_configuring_twice_keeps_one_handler(captured: io.StringIO) -> None:
    configure_logging("INFO", "text", captured)
    logging.getLogger("ratel.test").info("hello", extra={"account_id": "acc_1"})
    lines = captured.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("ratel.test: hello account_id=acc_1")


def test_the_formatter_does_not_repeat_standard_fields() -> None:
    record = logging.LogRecord("ratel", logging.WARNING, __file__, 1, "m", None, None)
    event = json.loads(JsonFormatter().format(record))
    assert set(event) == {"time", "level", "logger", "message"}
