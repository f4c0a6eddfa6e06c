"""A migrated temporary SQLite database and a container on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ratel.adapters.db.migrations import upgrade
from ratel.config import Settings
from ratel.container import Container, build_container, dispose


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ratel.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def container(database_url: str) -> AsyncIterator[Container]:
    container = build_container(Settings(database_url=database_url))
    yield container
    await dispose(container)
