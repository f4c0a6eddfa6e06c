"""The wiring: providers build one of each thing and can be overridden."""

from __future__ import annotations

from datetime import UTC, datetime

from dependency_injector import providers

from ratel.adapters.telemetry import Instrumented
from ratel.application.customers import OpenCustomer
from ratel.config import Settings
from ratel.container import Container, build_container, dispose, operation_name

FIXED = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return FIXED


def test_use_cases_are_instrumented_singletons() -> None:
    container = build_container(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    open_customer = container.open_customer()
    assert open_customer is container.open_customer()
    assert isinstance(open_customer, Instrumented)
    assert isinstance(open_customer.wrapped, OpenCustomer)
    assert open_customer.wrapped.deps is container.deps()


def test_settings_reach_the_policies() -> None:
    container = build_container(
        Settings(
            database_url="sqlite+aiosqlite:///:memory:",
            restricted_locations=frozenset({"ARCTIC"}),
            charging_validity_seconds=120,
        )
    )
    deps = container.deps()
    assert deps.location_policy.restricted_locations == {"ARCTIC"}
    assert deps.charging.validity_seconds == 120


def test_operation_names_are_snake_case() -> None:
    assert operation_name(OpenCustomer) == "open_customer"
    assert operation_name(Container) == "container"


async def test_a_provider_can_be_overridden(database_url: str) -> None:
    container = build_container(Settings(database_url=database_url))
    container.clock.override(providers.Object(FixedClock()))
    try:
        customer = await container.open_customer()("Ada", "USD")
    finally:
        await dispose(container)
    assert customer.created_at == FIXED
