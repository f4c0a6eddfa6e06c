"""The unit of work: one database transaction on one ``AsyncConnection`` and
the repositories that work inside it.

SQLAlchemy Core, not the ORM: the hot charging path is a handful of explicit
statements per request with no lazy loads and no flush bookkeeping.
"""

from __future__ import annotations

from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncEngine

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

    The repositories exist while the block runs, each made when first used
    (a charging batch uses five of the fourteen). They remember what they
    handed out (identity maps), which is how wallets are written as changes.
    """

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

    @cached_property
    def customers(self) -> SqlCustomerRepository:
        return SqlCustomerRepository(
            self.shared_connection(), buckets_read=self.quotas.read_with_customers
        )

    @cached_property
    def accounts(self) -> SqlAccountRepository:
        return SqlAccountRepository(
            self.shared_connection(), catalogue_version=self.catalogue.observe_version
        )

    @cached_property
    def catalogue(self) -> SqlCatalogueRepository:
        return SqlCatalogueRepository(self.shared_connection(), self._cache)

    @cached_property
    def quotas(self) -> SqlQuotaRepository:
        return SqlQuotaRepository(self.shared_connection())

    @cached_property
    def sessions(self) -> SqlSessionRepository:
        return SqlSessionRepository(
            self.shared_connection(),
            self._sessions,
            catalogue_version=self.catalogue.observe_version,
            accounts_read=self.accounts.read_with_sessions,
            owners_read=self.customers.read_with_sessions,
        )

    @cached_property
    def xdrs(self) -> SqlXdrRepository:
        return SqlXdrRepository(self.shared_connection())

    @cached_property
    def transactions(self) -> SqlTransactionRepository:
        return SqlTransactionRepository(self.shared_connection())

    @cached_property
    def vouchers(self) -> SqlVoucherRepository:
        return SqlVoucherRepository(self.shared_connection())

    @cached_property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self.shared_connection())

    @cached_property
    def staff(self) -> SqlStaffRepository:
        return SqlStaffRepository(self.shared_connection())

    @cached_property
    def api_keys(self) -> SqlApiKeyRepository:
        return SqlApiKeyRepository(self.shared_connection())

    @cached_property
    def tokens(self) -> SqlTokenRepository:
        return SqlTokenRepository(self.shared_connection())

    @cached_property
    def credentials(self) -> SqlCredentialRepository:
        return SqlCredentialRepository(self.shared_connection())

    @cached_property
    def crm_links(self) -> SqlCrmLinkRepository:
        return SqlCrmLinkRepository(self.shared_connection())

    async def commit(self) -> None:
        await super().commit()
        if "sessions" in self.__dict__:
            self.sessions.committed()

    async def rollback(self) -> None:
        await self.shared_connection().rollback()
        # What the repositories remember describes rows that no longer exist.
        for name in ("customers", "accounts", "quotas", "sessions", "catalogue", "staff"):
            repository = self.__dict__.get(name)
            if repository is not None:
                repository.forget()


class SqlUnitOfWorkFactory:
    """Makes a fresh ``SqlUnitOfWork`` per use-case call; all of them share
    the engine's pool and its catalogue and session caches (those of
    ``like``, a factory of the same database on another pool, when given)."""

    def __init__(self, engine: AsyncEngine, like: SqlUnitOfWorkFactory | None = None) -> None:
        self.engine = engine
        self._cache = like._cache if like is not None else catalogue_cache_for(engine)
        self._sessions = like._sessions if like is not None else session_cache_for(engine)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, catalogue_cache=self._cache, session_cache=self._sessions)
