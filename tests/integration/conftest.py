"""Integration tests of the store on a real SQLite file and a real PostgreSQL.

``database_url`` is parametrized over both backends. Each backend's database
is made fresh for the test session (a temporary SQLite file; a PostgreSQL
database ``ratel_it_<random>`` created on the server named by
``RATEL_TEST_PG_URL`` and dropped at the end) and migrated with ``upgrade``.
Every test gets its own engine on an emptied database.

PostgreSQL tests never skip: an unreachable server fails them, because the
test command (scripts/test) starts PostgreSQL first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from store_databases import BACKENDS, empty, fresh_database

from ratel.adapters.db.engine import create_engine
from ratel.adapters.db.migrations import upgrade
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated database of each backend, shared by the session's tests."""
    async with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        upgrade(url)
        yield url


@pytest.fixture
def backend(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await empty(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def uow(engine: AsyncEngine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine)
