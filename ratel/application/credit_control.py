"""Credit control: the calls RADIUS and Diameter adapters make.

One transaction per request. Lock order is always session, then customer,
then the account's buckets, so two sessions of one customer never deadlock.
A retransmitted request finds its stored answer and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ratel.application.base import Dependencies, UseCase, found, journal, record
from ratel.domain import events
from ratel.domain.account import Account
from ratel.domain.catalogue import Product, effective_policy
from ratel.domain.charging import (
    Answer,
    ChargingConfig,
    ChargingContext,
    CreditControlSession,
    Rater,
    UsageRequest,
    Xdr,
    check_balance,
    price_enquiry,
    units_covered,
)
from ratel.domain.customer import Customer
from ratel.domain.errors import NotFound, SessionExists
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.location import LocationPolicy
from ratel.domain.money import Money
from ratel.domain.quota import QuotaBucket
from ratel.domain.rating import Tariff
from ratel.ports.store import IdentifierKind, UnitOfWork

if TYPE_CHECKING:
    from ratel.application.charging_batch import Companion

log = logging.getLogger("ratel.credit_control")


class UnknownSubscriber(NotFound):
    """No account has the identifier the network sent (Diameter 5030)."""

    code = "unknown_subscriber"


class UnknownSession(NotFound):
    """A request for a session that was never started (Diameter 5002)."""

    code = "unknown_session"


@dataclass(frozen=True, slots=True)
class Subscriber:
    """How the network names the user: an MSISDN, an IMSI, a login ..."""

    kind: IdentifierKind
    value: str


async def charging_context(
    uow: UnitOfWork,
    config: ChargingConfig,
    location_policy: LocationPolicy,
    account: Account,
    customer: Customer,
    now: datetime,
    buckets: list[QuotaBucket] | None = None,
) -> ChargingContext:
    """Everything the charging core needs about one account, loaded with the
    buckets locked: its products, their tariffs (cached by the store), the
    dialing plan and the effective service policy. ``buckets``: the
    account's buckets when the caller loaded them (locked) already."""
    main = found(
        await uow.catalogue.get_product(account.product_code), "product", account.product_code
    )
    add_ons: list[Product] = []
    for assignment in account.active_add_ons(now):
        product = await uow.catalogue.get_product(assignment.product_code)
        if product is not None:
            add_ons.append(product)
    tariffs: dict[str, Tariff] = {}
    for product in (main, *add_ons):
        for charge in product.usage_charges:
            if charge.tariff_code not in tariffs:
                tariff = await uow.catalogue.get_tariff(charge.tariff_code)
                if tariff is not None:
                    tariffs[charge.tariff_code] = tariff
    dialing = await uow.catalogue.dialing_plan()
    if buckets is None:
        buckets = await uow.quotas.for_account(account.id, lock=True)
    policy = effective_policy(
        main, add_ons, account.identifiers.cpe.port_type if account.identifiers.cpe else None
    )
    ctx = ChargingContext(
        account=account,
        customer=customer,
        buckets=buckets,
        rater=Rater((main, *add_ons), tariffs, dialing),
        policy=policy,
        location_policy=location_policy,
        config=config,
    )
    for bucket in buckets:
        # A period that ended is renewed here, in the transaction that draws
        # on it, not when housekeeping comes by: usage of the new period is
        # counted in it (not paid with money, not wiped by a late renewal).
        if bucket.renew(now):
            ctx.events.append(
                events.QuotaRenewed(
                    occurred_at=now,
                    account_id=bucket.account_id,
                    customer_id=customer.id,
                    bucket_id=bucket.id,
                    allowance=bucket.allowance,
                )
            )
    return ctx


async def store_charging(
    uow: UnitOfWork,
    deps: Dependencies,
    session: CreditControlSession,
    ctx: ChargingContext,
    balance_before: Money,
    xdr: Xdr | None,
    *,
    new: bool = False,
    companion: Companion | None = None,
) -> None:
    """Write what a credit-control call changed (session, wallet, buckets,
    the xDR, the balance transaction, the events) and the protocol adapter's
    ``companion`` record, and commit them together."""
    if new:
        await uow.sessions.add(session)
    else:
        await uow.sessions.save(session)
    await uow.customers.save(ctx.customer)
    await uow.quotas.save(ctx.buckets)
    if xdr is not None:
        await uow.xdrs.add(xdr)
    await journal(
        uow,
        deps,
        ctx.customer,
        balance_before,
        TransactionReason.USAGE,
        reference=session.id,
        account_id=session.account_id,
    )
    await record(uow, ctx.customer, ctx.account, extra=ctx.events)
    if companion is not None:
        await companion.writer.write_companions(uow, [companion.record])
    await uow.commit()


async def stored_with(uow: UnitOfWork, answer: Answer, companion: Companion | None) -> Answer:
    """A retransmission's stored answer; its ``companion`` record is written
    and committed (nothing else is), as a batch writes it."""
    if companion is not None:
        await companion.writer.write_companions(uow, [companion.record])
        await uow.commit()
    return answer


class CreditControl(UseCase):
    """Start, update and end credit-control sessions; direct debits."""

    async def _context(
        self, uow: UnitOfWork, account: Account, customer: Customer
    ) -> ChargingContext:
        return await charging_context(
            uow,
            self.deps.charging,
            self.deps.location_policy,
            account,
            customer,
            self.deps.clock.now(),
        )

    async def _account(self, uow: UnitOfWork, subscriber: Subscriber) -> Account:
        account = await uow.accounts.by_identifier(subscriber.kind, subscriber.value)
        if account is None:
            raise UnknownSubscriber(f"no account has {subscriber.kind.value} {subscriber.value}")
        return account

    async def _customer(self, uow: UnitOfWork, customer_id: str) -> Customer:
        return found(await uow.customers.get(customer_id, lock=True), "customer", customer_id)

    async def _finish(
        self,
        uow: UnitOfWork,
        session: CreditControlSession,
        ctx: ChargingContext,
        before: Money,
        answer: Answer,
        *,
        new: bool,
        companion: Companion | None = None,
    ) -> None:
        await store_charging(
            uow, self.deps, session, ctx, before, answer.xdr, new=new, companion=companion
        )

    async def start(
        self,
        session_id: str,
        subscriber: Subscriber,
        requests: Sequence[UsageRequest],
        *,
        number: int = 0,
        sub_session: str = "",
        companion: Companion | None = None,
    ) -> Answer:
        """INITIAL: authorize and grant. A second sub-session of a known
        session joins it; a retransmitted INITIAL gets the stored answer.
        ``companion``: a protocol adapter's record, written in the same
        transaction (in every method that takes one)."""
        now = self.deps.clock.now()
        try:
            async with self.deps.uow() as uow:
                existing = await uow.sessions.get(session_id, lock=True)
                if existing is not None:
                    return await self._continue(
                        uow, existing, number, requests, sub_session, "reserve", companion=companion
                    )
                account = await self._account(uow, subscriber)
                customer = await self._customer(uow, account.customer_id)
                ctx = await self._context(uow, account, customer)
                session = CreditControlSession.open(session_id, account, customer, now)
                before = customer.wallet.balance
                answer = session.reserve(ctx, number, requests, now, sub_session=sub_session)
                await self._finish(uow, session, ctx, before, answer, new=True, companion=companion)
                return answer
        except SessionExists:
            # the same INITIAL raced itself: the first one's answer stands
            return await self.update_or_stored(
                session_id, number, requests, sub_session, "reserve", companion=companion
            )

    async def update(
        self,
        session_id: str,
        number: int,
        requests: Sequence[UsageRequest],
        *,
        sub_session: str = "",
        companion: Companion | None = None,
    ) -> Answer:
        """UPDATE: commit used units and grant again."""
        return await self.update_or_stored(
            session_id, number, requests, sub_session, "report", companion=companion
        )

    async def terminate(
        self,
        session_id: str,
        number: int,
        requests: Sequence[UsageRequest],
        *,
        sub_session: str = "",
        cause: str = "normal",
        companion: Companion | None = None,
    ) -> Answer:
        """TERMINATE: commit the last usage; the last sub-session produces the xDR."""
        return await self.update_or_stored(
            session_id, number, requests, sub_session, "terminate", cause, companion=companion
        )

    async def update_or_stored(
        self,
        session_id: str,
        number: int,
        requests: Sequence[UsageRequest],
        sub_session: str,
        call: str,
        cause: str = "normal",
        *,
        companion: Companion | None = None,
    ) -> Answer:
        async with self.deps.uow() as uow:
            session = await uow.sessions.get(session_id, lock=True)
            if session is None:
                raise UnknownSession(f"session {session_id} was never started")
            return await self._continue(
                uow, session, number, requests, sub_session, call, cause, companion=companion
            )

    async def _continue(
        self,
        uow: UnitOfWork,
        session: CreditControlSession,
        number: int,
        requests: Sequence[UsageRequest],
        sub_session: str,
        call: str,
        cause: str = "normal",
        *,
        companion: Companion | None = None,
    ) -> Answer:
        stored = session.stored_answer(number, sub_session)
        if stored is not None:
            return await stored_with(uow, stored, companion)  # a retransmission
        now = self.deps.clock.now()
        customer = await self._customer(uow, session.customer_id)
        account = found(await uow.accounts.get(session.account_id), "account", session.account_id)
        ctx = await self._context(uow, account, customer)
        before = customer.wallet.balance
        if call == "reserve":
            answer = session.reserve(ctx, number, requests, now, sub_session=sub_session)
        elif call == "report":
            answer = session.report(ctx, number, requests, now, sub_session=sub_session)
        else:
            answer = session.terminate(
                ctx,
                number,
                requests,
                now,
                sub_session=sub_session,
                cause=cause,
                xdr_id=self.deps.ids.new("xdr"),
            )
        await self._finish(uow, session, ctx, before, answer, new=False, companion=companion)
        return answer

    async def debit(
        self,
        session_id: str,
        subscriber: Subscriber,
        request: UsageRequest,
        *,
        number: int = 0,
        companion: Companion | None = None,
        xdr_id: str | None = None,
    ) -> Answer:
        """EVENT with direct debiting (an SMS): charge now, one xDR (named
        ``xdr_id`` when the caller names it)."""
        now = self.deps.clock.now()
        try:
            async with self.deps.uow() as uow:
                existing = await uow.sessions.get(session_id)
                if existing is not None:
                    stored = existing.stored_answer(number)
                    if stored is not None:
                        return await stored_with(uow, stored, companion)
                account = await self._account(uow, subscriber)
                customer = await self._customer(uow, account.customer_id)
                ctx = await self._context(uow, account, customer)
                session = CreditControlSession.open(session_id, account, customer, now)
                before = customer.wallet.balance
                answer = session.debit_event(
                    ctx, number, request, now, xdr_id=xdr_id or self.deps.ids.new("xdr")
                )
                await self._finish(uow, session, ctx, before, answer, new=True, companion=companion)
                return answer
        except SessionExists:
            async with self.deps.uow() as uow:
                session = found(await uow.sessions.get(session_id), "session", session_id)
                stored = found(session.stored_answer(number), "answer", f"{session_id}/{number}")
                return await stored_with(uow, stored, companion)

    async def price(self, subscriber: Subscriber, request: UsageRequest) -> Money:
        """PRICE_ENQUIRY: what the units would cost, changing nothing."""
        async with self.deps.uow() as uow:
            account = await self._account(uow, subscriber)
            customer = await self._customer(uow, account.customer_id)
            ctx = await self._context(uow, account, customer)
            return price_enquiry(ctx, request, self.deps.clock.now())

    async def can_afford(self, subscriber: Subscriber, request: UsageRequest) -> bool:
        """CHECK_BALANCE: whether quota or funds cover the units, changing nothing."""
        async with self.deps.uow() as uow:
            account = await self._account(uow, subscriber)
            customer = await self._customer(uow, account.customer_id)
            ctx = await self._context(uow, account, customer)
            return check_balance(ctx, request, self.deps.clock.now())

    async def units_covered(self, subscriber: Subscriber, request: UsageRequest) -> int | None:
        """How many units of the request's service quota and funds pay for
        now (``None``: nothing bounds them), changing nothing."""
        async with self.deps.uow() as uow:
            account = await self._account(uow, subscriber)
            customer = await self._customer(uow, account.customer_id)
            ctx = await self._context(uow, account, customer)
            return units_covered(ctx, request, self.deps.clock.now())

    async def refund(self, xdr_id: str, reason: str = "refund") -> Money:
        """REFUND_ACCOUNT: give back what an xDR's balance paid, and its units."""
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            xdr = found(await uow.xdrs.get(xdr_id), "xDR", xdr_id)
            customer = await self._customer(uow, xdr.customer_id)
            refund_ref = f"refund:{xdr.id}"
            # the customer is locked: two refunds of one xDR take turns here
            already = await uow.transactions.for_customer(
                customer.id, reference=refund_ref, limit=1
            )
            if already:
                return already[0].amount  # refunding twice gives nothing more
            buckets = await uow.quotas.for_account(xdr.account_id, lock=True)
            for line in xdr.lines:
                for bucket_id, units in line.bucket_units:
                    for bucket in buckets:
                        if bucket.id != bucket_id:
                            continue
                        if xdr.ended_at < bucket.period_start:
                            # drawn from a period since renewed: giving them
                            # back would free units of this one
                            log.info(
                                "refund: units of a renewed period are not given back",
                                extra={"xdr_id": xdr.id, "bucket_id": bucket.id},
                            )
                            continue
                        bucket.give_back(units)
            await uow.quotas.save(buckets)
            amount = xdr.balance_charge
            before = customer.wallet.balance
            if amount.is_positive():
                customer.top_up(amount, now, refund_ref)
            await uow.customers.save(customer)
            refunded = await journal(
                uow,
                self.deps,
                customer,
                before,
                TransactionReason.REFUND,
                reference=refund_ref,
                account_id=xdr.account_id,
            )
            if refunded is None:
                # Quota paid it all: the balance does not move, but the refund
                # is written all the same (0.00), so that it is given once.
                await uow.transactions.add(
                    BalanceTransaction(
                        id=self.deps.ids.new("txn"),
                        customer_id=customer.id,
                        amount=Money.zero(customer.currency).stored(),
                        balance_after=customer.wallet.balance.stored(),
                        reason=TransactionReason.REFUND,
                        created_at=now,
                        reference=refund_ref,
                        account_id=xdr.account_id,
                    )
                )
            await record(uow, customer)
            await uow.commit()
            return amount
