"""RADIUS protocol tests: ratel's server on free ports over a migrated
SQLite database, driven by FreeRADIUS's radclient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from radius_support import define_catalogue, server_settings

from ratel.adapters.db.migrations import upgrade
from ratel.adapters.radius.server import RadiusServer
from ratel.container import Container, build_container, dispose


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ratel.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def container(database_url: str) -> AsyncIterator[Container]:
    container = build_container(server_settings(database_url))
    await define_catalogue(container)
    yield container
    await dispose(container)


@pytest.fixture
async def server(container: Container) -> AsyncIterator[RadiusServer]:
    server: RadiusServer = container.radius_server()
    await server.start()
    yield server
    await server.stop()
