"""The group-commit front of credit control as the container builds it: a
component of `ratel serve`, sized by the settings, counted in the metrics."""

from __future__ import annotations

import pytest

from ratel.adapters.charging import ChargingBatcher, ChargingWorkers
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.telemetry import Instrumented
from ratel.application.credit_control import Subscriber, UnknownSubscriber
from ratel.config import SettingsError, load_settings
from ratel.container import build_container, dispose
from ratel.domain.catalogue import Service, Unit
from ratel.domain.charging import UsageRequest
from ratel.ports.store import IdentifierKind


def test_settings_size_the_workers() -> None:
    settings = load_settings(env={"RATEL_CHARGING_WORKERS": "3", "RATEL_CHARGING_BATCH": "50"})
    assert (settings.charging_workers, settings.charging_batch) == (3, 50)
    assert load_settings(env={}).charging_workers == 0  # automatic
    with pytest.raises(SettingsError, match="RATEL_CHARGING_BATCH"):
        load_settings(env={"RATEL_CHARGING_BATCH": "0"})
    with pytest.raises(SettingsError, match="RATEL_CHARGING_WORKERS"):
        load_settings(env={"RATEL_CHARGING_WORKERS": "-1"})


@pytest.mark.parametrize(
    ("url", "setting", "expected"),
    [
        ("sqlite+aiosqlite:///:memory:", "0", 1),
        ("postgresql+asyncpg://ratel@db/ratel", "0", 4),
        ("postgresql+asyncpg://ratel@db/ratel", "3", 3),
    ],
)
def test_workers_follow_the_backend_unless_set(url: str, setting: str, expected: int) -> None:
    container = build_container(
        load_settings(env={"RATEL_DATABASE_URL": url, "RATEL_CHARGING_WORKERS": setting})
    )
    workers = container.charging_workers()
    assert isinstance(workers, ChargingWorkers)
    assert workers._workers == expected
    assert workers in container.components()


@pytest.mark.parametrize(
    ("url", "own_pool"),
    [("sqlite+aiosqlite:///:memory:", False), ("postgresql+asyncpg://ratel@db/ratel", True)],
)
async def test_batches_run_on_the_charging_engine(url: str, own_pool: bool) -> None:
    container = build_container(
        load_settings(env={"RATEL_DATABASE_URL": url, "RATEL_CHARGING_WORKERS": "3"})
    )
    try:
        workers = container.charging_workers()
        uow = workers._batch.deps.uow
        assert isinstance(uow, SqlUnitOfWorkFactory)
        assert uow.engine is container.charging_engine()
        assert (uow.engine is not container.engine()) is own_pool
        if own_pool:
            assert uow.engine.pool.size() == 3  # type: ignore[attr-defined]
        # one process, one database: the caches are the main pool's
        assert uow._sessions is container.uow()._sessions
        assert uow._cache is container.uow()._cache
    finally:
        await dispose(container)


async def test_charging_is_a_started_component_and_counted(database_url: str) -> None:
    container = build_container(load_settings(env={"RATEL_DATABASE_URL": database_url}))
    charging = container.charging()
    assert isinstance(charging, Instrumented) and isinstance(charging.wrapped, ChargingBatcher)
    assert charging is container.charging()
    workers = container.charging_workers()
    await workers.start()
    try:
        assert workers.running
        sms = UsageRequest(Service.SMS, Unit.MESSAGES, "SMS", "12025550199", requested=1)
        with pytest.raises(UnknownSubscriber):
            await charging.debit("e1", Subscriber(IdentifierKind.MSISDN, "19999999999"), sms)
    finally:
        await workers.stop()
        await dispose(container)
    assert not workers.running
    metrics = container.telemetry().exposition().decode()
    assert 'operation="charging.debit"' in metrics
