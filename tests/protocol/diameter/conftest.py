"""ratel's Diameter node on a real TCP port (any free one), on a migrated
SQLite file and a PostgreSQL database with the demo operator, and gateways
that connect to it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "integration"))

from gateway import USSD_CONTEXT, VENDOR_ID, Gateway
from store_databases import BACKENDS, fresh_database

from ratel.adapters.db.migrations import upgrade
from ratel.config import Settings
from ratel.container import Container, build_container, dispose
from ratel.demo import load_demo

PEERS = (
    ("gw1.test", ("127.0.0.1",)),
    ("gw2.test", ()),
    ("gw-elsewhere.test", ("192.0.2.7",)),  # registered, but not from here
    ("fdgw.test", ("127.0.0.1",)),  # freeDiameter
)


@pytest.fixture(scope="module", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh migrated database of each backend per test module."""
    async with fresh_database(request.param, tmp_path_factory.mktemp("diameter")) as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
async def ocs(database_url: str) -> AsyncIterator[Container]:
    """A container serving Diameter (and relaying events), demo data loaded."""
    url = database_url
    container = build_container(
        Settings(
            database_url=url,
            diameter_port=0,
            radius_auth_port=0,  # every component starts: never the well-known ports
            radius_acct_port=0,
            diameter_peers=PEERS,
            diameter_ussd_context_id=USSD_CONTEXT,
            diameter_vendor_id=VENDOR_ID,
            event_relay_interval=0.05,
            charging_validity_seconds=600,
        )
    )
    await load_demo(container)
    components = list(container.components())
    for component in components:
        await component.start()
    yield container
    for component in reversed(components):
        await component.stop()
    await dispose(container)


@pytest.fixture(scope="module")
def port(ocs: Container) -> int:
    return ocs.diameter().address[1]


@pytest.fixture(scope="module")
async def gw1(port: int) -> AsyncIterator[Gateway]:
    # the node answers on the test's loop: the gateway's blocking calls in a thread
    gateway = Gateway("gw1.test", port)
    await asyncio.to_thread(gateway.start)
    yield gateway
    await asyncio.to_thread(gateway.stop)
