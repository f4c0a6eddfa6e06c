"""The scheduled job: expire add-ons, renew quotas, release idle sessions,
purge expired login tokens.

Each step works in small batches, one transaction per object, so a long
backlog never holds locks for long and one bad row does not stop the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ratel.application.base import UseCase, record
from ratel.application.credit_control import charging_context, store_charging
from ratel.domain import events
from ratel.domain.account import AccountStatus
from ratel.domain.charging import IDLE_TIMEOUT, RELEASE_REQUEST_NUMBER
from ratel.domain.errors import DomainError

log = logging.getLogger(__name__)

#: Buckets renewed in one transaction of a housekeeping pass.
RENEWED_AT_ONCE = 500
#: Idle sessions listed at once (each is released in its own transaction).
RELEASED_AT_ONCE = 500
#: Accounts with ended add-ons listed at once (each in its own transaction).
EXPIRED_AT_ONCE = 500
#: Expired tokens deleted in one statement.
PURGED_AT_ONCE = 10_000


@dataclass(frozen=True, slots=True)
class HousekeepingReport:
    add_ons_expired: int
    buckets_renewed: int
    sessions_released: int
    tokens_purged: int = 0


class Housekeeping(UseCase):
    """One pass of the scheduled job."""

    idle_grace = timedelta(seconds=60)
    # An expired token is refused anyway; it is kept a day for diagnosis.
    token_retention = timedelta(days=1)

    async def __call__(self) -> HousekeepingReport:
        """Each step, whatever the one before did: a renewal aborted by the
        database must not keep idle sessions holding their customers' money."""
        return HousekeepingReport(
            await self._step(self.expire_add_ons),
            await self._step(self.renew_quotas),
            await self._step(self.release_idle_sessions),
            await self._step(self.purge_expired_tokens),
        )

    async def _step(self, step: Callable[[], Awaitable[int]]) -> int:
        try:
            return await step()
        except Exception:
            log.exception("housekeeping: %s failed; the next pass tries again", step.__name__)
            return 0

    async def expire_add_ons(self) -> int:
        """Every ended add-on, page by page of accounts (each account in its
        own transaction)."""
        now = self.deps.clock.now()
        expired = 0
        after: str | None = None
        while True:
            async with self.deps.uow() as uow:
                page = await uow.accounts.with_add_ons_ending(
                    now, limit=EXPIRED_AT_ONCE, after=after
                )
            for account_id in page:
                expired += await self._expire(account_id, now)
            if len(page) < EXPIRED_AT_ONCE:
                return expired
            after = page[-1]

    async def _expire(self, account_id: str, now: datetime) -> int:
        """The ended add-ons of one account; how many."""
        async with self.deps.uow() as uow:
            account = await uow.accounts.get(account_id, lock=True)
            if account is None or account.status is AccountStatus.TERMINATED:
                return 0
            gone = account.expire_add_ons(now)
            if gone:
                await uow.accounts.save(account)
                await record(uow, account)
                await uow.commit()
            return len(gone)

    async def renew_quotas(self) -> int:
        """Renew every bucket whose period ended, ``RENEWED_AT_ONCE`` per
        transaction until none is left (charging renews the buckets it draws
        on by itself; this renews the others and tells of it)."""
        renewed = 0
        while True:
            done = await self._renew_some(self.deps.clock.now())
            renewed += done
            # a page charging renewed in part comes back short: go on while
            # any was renewed here
            if not done:
                return renewed

    async def _renew_some(self, now: datetime) -> int:
        """One transaction of renewals: how many were renewed."""
        async with self.deps.uow() as uow:
            buckets = await uow.quotas.due_for_renewal(now, limit=RENEWED_AT_ONCE)
            changed = [b for b in buckets if b.renew(now)]
            if changed:
                await uow.quotas.save(changed)
                owners: dict[str, str] = {}
                for account_id in {b.account_id for b in changed}:
                    account = await uow.accounts.get(account_id)
                    owners[account_id] = account.customer_id if account else ""
                await uow.outbox.add(
                    [
                        events.QuotaRenewed(
                            occurred_at=now,
                            account_id=b.account_id,
                            customer_id=owners[b.account_id],
                            bucket_id=b.id,
                            allowance=b.allowance,
                        )
                        for b in changed
                    ]
                )
            await uow.commit()
        return len(changed)

    async def release_idle_sessions(self) -> int:
        """Tcc supervision: a session whose gateway went silent past its grant's
        validity (plus a grace) is ended with the usage it reported; its holds
        go back and it produces its xDR."""
        now = self.deps.clock.now()
        horizon = now - timedelta(seconds=self.deps.charging.validity_seconds) - self.idle_grace
        released = 0
        after: tuple[datetime, str] | None = None
        while True:
            # page by page, each past the last one seen: a session that cannot
            # be released does not come back at the head of every page
            async with self.deps.uow() as uow:
                page = await uow.sessions.idle_since(horizon, limit=RELEASED_AT_ONCE, after=after)
            for _, session_id in page:
                released += await self._release(session_id, horizon, now)
            if len(page) < RELEASED_AT_ONCE:
                return released
            after = page[-1]

    async def _release(self, session_id: str, horizon: datetime, now: datetime) -> int:
        """Release one idle session in its own transaction; 1 when it was."""
        try:
            async with self.deps.uow() as uow:
                session = await uow.sessions.get(session_id, lock=True)
                if session is None or session.state.value != "open":
                    return 0
                if session.last_activity >= horizon:
                    return 0  # the gateway spoke since the list was read
                customer = await uow.customers.get(session.customer_id, lock=True)
                account = await uow.accounts.get(session.account_id)
                if customer is None or account is None:
                    return 0
                ctx = await charging_context(
                    uow, self.deps.charging, self.deps.location_policy, account, customer, now
                )
                before = customer.wallet.balance
                xdr = None
                for sub in [s for s, active in session.sub_sessions.items() if active]:
                    answer = session.terminate(
                        ctx,
                        RELEASE_REQUEST_NUMBER,
                        [],
                        now,
                        sub_session=sub,
                        cause=IDLE_TIMEOUT,
                        xdr_id=self.deps.ids.new("xdr"),
                    )
                    xdr = answer.xdr or xdr
                await store_charging(uow, self.deps, session, ctx, before, xdr)
                return 1
        except DomainError:
            log.exception("could not release idle session %s", session_id)
            return 0

    async def purge_expired_tokens(self) -> int:
        """Delete login tokens that expired more than ``token_retention`` ago."""
        before = self.deps.clock.now() - self.token_retention
        removed = 0
        while True:
            async with self.deps.uow() as uow:
                done = await uow.tokens.remove_expired(before, limit=PURGED_AT_ONCE)
                await uow.commit()
            removed += done
            if done < PURGED_AT_ONCE:
                return removed
