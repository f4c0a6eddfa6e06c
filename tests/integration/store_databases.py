"""Databases for the store's integration tests: a fresh SQLite file or a
fresh PostgreSQL database on the server named by ``RATEL_TEST_PG_URL``."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ratel.adapters.db.tables import catalogue_version, metadata

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PG_URL = os.environ.get("RATEL_TEST_PG_URL", DEFAULT_PG_URL)

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


async def _server_engine() -> AsyncEngine:
    """An AUTOCOMMIT engine on the PostgreSQL server (CREATE DATABASE cannot
    run in a transaction); fails the test with a clear message if the server
    does not answer."""
    engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
    except Exception as exc:
        await engine.dispose()
        pytest.fail(
            f"PostgreSQL at {make_url(PG_URL).render_as_string(hide_password=True)} is "
            f"unreachable ({type(exc).__name__}: {exc}). The integration tests need it: "
            "start it with `bash scripts/services` (scripts/test does) or set RATEL_TEST_PG_URL.",
            pytrace=False,
        )
    return engine


@asynccontextmanager
async def fresh_database(backend: str, folder: Path) -> AsyncIterator[str]:
    """An empty database of ``backend`` for the duration of the block: its URL."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / f'ratel_it_{secrets.token_hex(4)}.db'}"
        return
    name = f"ratel_it_{secrets.token_hex(6)}"
    server = await _server_engine()
    try:
        async with server.connect() as connection:
            await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            async with server.connect() as connection:
                await connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await server.dispose()


async def empty(engine: AsyncEngine) -> None:
    """Delete every row; move the catalogue version on so that no process
    cache survives the wipe."""
    tables = [t for t in reversed(metadata.sorted_tables) if t is not catalogue_version]
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            await connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await connection.execute(sa.delete(table))
        await connection.execute(
            sa.update(catalogue_version).values(version=catalogue_version.c.version + 1)
        )


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements ``engine`` runs inside the block."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
