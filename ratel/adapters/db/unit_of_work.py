"""The unit of work: one database transaction on one ``AsyncConnection`` and
the repositories that work inside it.

SQLAlchemy Core, not the ORM: the hot charging path is a handful of explicit
statements per request with no lazy loads and no flush bookkeeping.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ratel.adapters.db.accounts import SqlAccountRepository
from ratel.adapters.db.catalogue import (
    CatalogueCache,
    SqlCatalogueRepository,
    catalogue_cache_for,
)
from ratel.adapters.db.crm import SqlCrmLinkRepository
from ratel.adapters.db.customers import SqlCustomerRepository
from ratel.adapters.db.identity import (
    SqlApiKeyRepository,
    SqlCredentialRepository,
    SqlStaffRepository,
    SqlTokenRepository,
)
from ratel.adapters.db.quotas import SqlQuotaRepository
from ratel.adapters.db.records import (
    SqlOutbox,
    SqlTransactionRepository,
    SqlVoucherRepository,
    SqlXdrRepository,
)
from ratel.adapters.db.sessions import SessionCache, SqlSessionRepository, session_cache_for
from ratel.adapters.db.statements import Transaction


class SqlUnitOfWork(Transaction):
    """A transaction on ``engine``: ``async with`` begins it, ``commit()``
    makes every change durable at once, and leaving the block without
    committing (or with an exception) rolls everything back.

    The repositories exist while the block runs. They remember what they
    handed out (identity maps), which is how wallets are written as changes.
    """

    customers: SqlCustomerRepository
    accounts: SqlAccountRepository
    catalogue: SqlCatalogueRepository
    quotas: SqlQuotaRepository
    sessions: SqlSessionRepository
    xdrs: SqlXdrRepository
    transactions: SqlTransactionRepository
    vouchers: SqlVoucherRepository
    outbox: SqlOutbox
    staff: SqlStaffRepository
    api_keys: SqlApiKeyRepository
    tokens: SqlTokenRepository
    credentials: SqlCredentialRepository
    crm_links: SqlCrmLinkRepository

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        catalogue_cache: CatalogueCache | None = None,
        session_cache: SessionCache | None = None,
    ) -> None:
        super().__init__(engine)
        self._cache = (
            catalogue_cache if catalogue_cache is not None else catalogue_cache_for(engine)
        )
        self._sessions = session_cache if session_cache is not None else session_cache_for(engine)

    def _opened(self, connection: AsyncConnection) -> None:
        self.customers = SqlCustomerRepository(connection)
        self.accounts = SqlAccountRepository(connection)
        self.catalogue = SqlCatalogueRepository(connection, self._cache)
        self.quotas = SqlQuotaRepository(connection)
        self.sessions = SqlSessionRepository(
            connection,
            self._sessions,
            catalogue_version=self.catalogue.observe_version,
            accounts_read=self.accounts.read_with_sessions,
        )
        self.xdrs = SqlXdrRepository(connection)
        self.transactions = SqlTransactionRepository(connection)
        self.vouchers = SqlVoucherRepository(connection)
        self.outbox = SqlOutbox(connection)
        self.staff = SqlStaffRepository(connection)
        self.api_keys = SqlApiKeyRepository(connection)
        self.tokens = SqlTokenRepository(connection)
        self.credentials = SqlCredentialRepository(connection)
        self.crm_links = SqlCrmLinkRepository(connection)

    async def commit(self) -> None:
        await super().commit()
        self.sessions.committed()

    async def rollback(self) -> None:
        await self.shared_connection().rollback()
        # What the repositories remember describes rows that no longer exist.
        for repository in (
            self.customers,
            self.accounts,
            self.quotas,
            self.sessions,
            self.catalogue,
            self.staff,
        ):
            repository.forget()


class SqlUnitOfWorkFactory:
    """Makes a fresh ``SqlUnitOfWork`` per use-case call; all of them share
    the engine's pool and its catalogue cache."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._cache = catalogue_cache_for(engine)
        self._sessions = session_cache_for(engine)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, catalogue_cache=self._cache, session_cache=self._sessions)
