"""The store on SQLAlchemy 2.0 Core with asyncio drivers (aiosqlite,
asyncpg): tables, repositories, the unit of work and migrations.

Entry points:

* ``create_engine(url)`` for ``sqlite+aiosqlite:///path`` or
  ``postgresql+asyncpg://...``;
* ``SqlUnitOfWorkFactory(engine)``, the ``UnitOfWorkFactory`` port;
* ``upgrade(url)`` / ``downgrade(url)`` (and ``upgrade_engine`` /
  ``downgrade_engine`` inside an event loop) to migrate the schema.
"""

from ratel.adapters.db.engine import create_engine
from ratel.adapters.db.migrations import downgrade, downgrade_engine, upgrade, upgrade_engine
from ratel.adapters.db.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory

__all__ = [
    "SqlUnitOfWork",
    "SqlUnitOfWorkFactory",
    "create_engine",
    "downgrade",
    "downgrade_engine",
    "upgrade",
    "upgrade_engine",
]
