"""Schema migrations: Alembic, driven from code.

The scripts live in ``alembic/`` at the repository root (one tree for SQLite
and PostgreSQL). An installed wheel carries them inside the package, at
``ratel/adapters/db/alembic`` (see the hatch ``force-include`` in
pyproject.toml); both places are looked for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command

_HERE = Path(__file__).resolve()
_CANDIDATES = (_HERE.parents[3] / "alembic", _HERE.parent / "alembic")


def script_location() -> Path:
    """The folder holding ``env.py`` and ``versions/``."""
    for candidate in _CANDIDATES:
        # env.py tells our scripts apart from site-packages/alembic, the
        # library itself, which is what parents[3] is in an installed package.
        if (candidate / "env.py").is_file() and (candidate / "versions").is_dir():
            return candidate
    raise FileNotFoundError(
        "ratel's migration scripts were not found in " + " or ".join(map(str, _CANDIDATES))
    )


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration built in code (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        # "%" is ConfigParser interpolation syntax: escape it in passwords.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _outside_event_loop(function: Any, *args: Any) -> None:
    """Run ``function`` here, or in a worker thread when this thread already
    runs an event loop (env.py starts its own with ``asyncio.run``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        function(*args)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(function, *args).result()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (blocking; callable
    from synchronous code and, blocking it, from inside an event loop)."""
    _outside_event_loop(command.upgrade, alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base``: empty)."""
    _outside_event_loop(command.downgrade, alembic_config(url), revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate through an existing engine, without leaving the event loop."""
    await _run_on(engine, command.upgrade, revision)


async def downgrade_engine(engine: AsyncEngine, revision: str = "base") -> None:
    """Migrate down through an existing engine."""
    await _run_on(engine, command.downgrade, revision)


async def _run_on(engine: AsyncEngine, action: Any, revision: str) -> None:
    config = alembic_config()
    async with engine.begin() as connection:

        def run(sync_connection: Any) -> None:
            # env.py uses this connection (and its transaction) when given one.
            config.attributes["connection"] = sync_connection
            action(config, revision)

        await connection.run_sync(run)
