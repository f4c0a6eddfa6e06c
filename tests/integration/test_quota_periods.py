"""Quota periods where allowances leak: usage after a period ends but before
housekeeping renews (renewed in the charging transaction now), a renewal
pass of more than one batch, a refund of a renewed period, a product changed
twice, a terminated account's quota; then housekeeping on several nodes at
once and Tcc supervision of blocked, suspended and closed owners. On SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from store_builders import MIB, usd
from use_case_support import CHARGES, SERVICES, START, Clock, define_tariffs

from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.system import HmacHasher, TimeOrderedIds
from ratel.application.accounts import BlockAccount, ChangeProduct, CreateAccount, TerminateAccount
from ratel.application.add_ons import AddAddOn
from ratel.application.base import Dependencies
from ratel.application.catalogue import DefineProduct
from ratel.application.credit_control import CreditControl, Subscriber
from ratel.application.customers import CloseCustomer, OpenCustomer, SuspendCustomer
from ratel.application.enquiry import QuotaEnquiry
from ratel.application.housekeeping import Housekeeping
from ratel.application.payments import TopUp
from ratel.domain.catalogue import (
    Precedence,
    Product,
    ProductKind,
    QuotaDefinition,
    Renewal,
    Service,
    Unit,
)
from ratel.domain.charging import UsageRequest
from ratel.domain.money import Money
from ratel.ports.store import IdentifierKind

# BASIC's monthly data quota was granted at START (1 May 08:00 UTC): its
# first period ends on 1 June 08:00 UTC.
PERIOD_END = START.replace(month=6)


@pytest.fixture
async def deps(engine) -> Dependencies:  # type: ignore[no-untyped-def]
    deps = Dependencies(
        uow=SqlUnitOfWorkFactory(engine),
        clock=Clock(),
        ids=TimeOrderedIds(),
        hasher=HmacHasher("test"),
    )
    await define_tariffs(deps)
    await DefineProduct(deps)(
        Product(
            "BASIC",
            "Basic",
            ProductKind.MAIN,
            SERVICES,
            usage_charges=CHARGES,
            quotas=(QuotaDefinition("BASIC-DATA", Service.DATA, Unit.BYTES, Decimal(100 * MIB)),),
        )
    )
    await DefineProduct(deps)(
        Product("PLAIN", "Plain", ProductKind.MAIN, SERVICES, usage_charges=CHARGES)
    )
    return deps


async def account(
    deps: Dependencies, balance: str = "10", product: str = "BASIC"
) -> tuple[str, str]:
    customer = await OpenCustomer(deps)("Ada Lovelace", "USD", country="GB")
    await TopUp(deps)(customer.id, usd(balance), "card-1")
    acc = await CreateAccount(deps)(customer.id, product)
    return customer.id, acc.id


def data(requested: int | None = MIB, used: int = 0) -> UsageRequest:
    return UsageRequest(
        Service.DATA, Unit.BYTES, "DATA", rating_group=10, requested=requested, used=used
    )


async def use(deps: Dependencies, account_id: str, session: str, units: int) -> str:
    """One data session that uses ``units`` bytes; its xDR id."""
    cc = CreditControl(deps)
    await cc.start(session, Subscriber(IdentifierKind.ACCOUNT_ID, account_id), [data(units)])
    answer = await cc.terminate(session, 1, [data(None, used=units)])
    assert answer.xdr is not None
    return answer.xdr.id


async def balance(deps: Dependencies, customer_id: str) -> Money:
    async with deps.uow() as uow:
        customer = await uow.customers.get(customer_id)
    assert customer is not None
    return customer.wallet.balance


def move(deps: Dependencies, to) -> None:  # type: ignore[no-untyped-def]
    clock = deps.clock
    assert isinstance(clock, Clock)
    clock.at = to


async def test_usage_in_a_new_period_draws_on_its_allowance_before_housekeeping_renews(
    deps: Dependencies,
) -> None:
    """The May allowance is used up. On 1 June 08:01 (the June period has
    begun) the user spends 10 MiB: June's 100 MiB cover it, though
    housekeeping has not come by yet; no money is paid."""
    customer_id, account_id = await account(deps)
    await use(deps, account_id, "may", 100 * MIB)
    assert await balance(deps, customer_id) == usd("10")
    move(deps, PERIOD_END + timedelta(minutes=1))
    await use(deps, account_id, "june", 10 * MIB)
    assert await balance(deps, customer_id) == usd("10"), "June usage paid with money"
    move(deps, PERIOD_END + timedelta(minutes=2))
    await Housekeeping(deps)()
    assert [q.used for q in await QuotaEnquiry(deps)(account_id)] == [10 * MIB]


async def test_usage_after_a_period_end_is_not_wiped_by_a_late_renewal(deps: Dependencies) -> None:
    """40 MiB used in May. In June, before housekeeping has run, 60 MiB are
    used: June shows them, and housekeeping's pass after does not reset them."""
    _, account_id = await account(deps)
    await use(deps, account_id, "may", 40 * MIB)
    move(deps, PERIOD_END + timedelta(seconds=30))
    await use(deps, account_id, "june", 60 * MIB)
    move(deps, PERIOD_END + timedelta(seconds=60))
    await Housekeeping(deps)()
    assert [q.used for q in await QuotaEnquiry(deps)(account_id)] == [60 * MIB]


async def test_a_refund_of_last_periods_xdr_leaves_this_periods_usage(deps: Dependencies) -> None:
    """A May session (60 MiB from quota) is refunded in June, after the
    renewal and 50 MiB of June usage: May's units are not given back to
    June's period, which still shows its 50 MiB used."""
    _, account_id = await account(deps)
    may_xdr = await use(deps, account_id, "may", 60 * MIB)
    move(deps, PERIOD_END)
    assert (await Housekeeping(deps)()).buckets_renewed == 1
    move(deps, PERIOD_END + timedelta(days=1))
    await use(deps, account_id, "june", 50 * MIB)
    await CreditControl(deps).refund(may_xdr)
    assert [q.used for q in await QuotaEnquiry(deps)(account_id)] == [50 * MIB]


async def test_a_second_product_change_leaves_a_long_expired_bucket_ended(
    deps: Dependencies,
) -> None:
    """BASIC -> PLAIN on 10 May ends BASIC's bucket then. PLAIN -> BASIC on
    5 July leaves that bucket's end on 10 May (moving it would make
    housekeeping renew a quota the account lost in May)."""
    _, account_id = await account(deps)
    move(deps, START + timedelta(days=9))
    await ChangeProduct(deps)(account_id, "PLAIN")
    async with deps.uow() as uow:
        (old,) = await uow.quotas.for_account(account_id)
    ended_at = old.expires_at
    move(deps, START.replace(month=7, day=5))
    await ChangeProduct(deps)(account_id, "BASIC")
    move(deps, START.replace(month=7, day=5) + timedelta(minutes=1))
    renewed = (await Housekeeping(deps)()).buckets_renewed
    async with deps.uow() as uow:
        again = {b.id: b for b in await uow.quotas.for_account(account_id)}[old.id]
    assert (renewed, again.expires_at) == (0, ended_at)


async def test_a_product_changed_and_back_within_a_period_gives_no_fresh_allowance(
    deps: Dependencies,
) -> None:
    """70 of BASIC's 100 MiB used, then BASIC -> PLAIN -> BASIC on 10 May:
    May's period goes on with its 70 MiB used, and renews on 1 June as
    before. Each round trip gave a fresh 100 MiB (USSD's package change
    reaches it), and moved the renewals to the 10th."""
    customer_id, account_id = await account(deps)
    await use(deps, account_id, "may", 70 * MIB)
    move(deps, START + timedelta(days=9))
    await ChangeProduct(deps)(account_id, "PLAIN")
    move(deps, START + timedelta(days=9, minutes=1))
    await ChangeProduct(deps)(account_id, "BASIC")
    [quota] = await QuotaEnquiry(deps)(account_id)
    assert (quota.used, quota.renews_at) == (70 * MIB, PERIOD_END)
    await use(deps, account_id, "more", 40 * MIB)  # 30 MiB from quota, 10 MiB at 0.01
    assert await balance(deps, customer_id) == usd("9.90")
    move(deps, PERIOD_END + timedelta(minutes=1))
    assert (await Housekeeping(deps)()).buckets_renewed == 1
    [quota] = await QuotaEnquiry(deps)(account_id)
    assert quota.used == 0


async def test_a_terminated_accounts_quota_is_not_renewed(deps: Dependencies) -> None:
    """Terminating an account ends its quota buckets: housekeeping renews
    them no more."""
    from ratel.application.accounts import TerminateAccount

    _, account_id = await account(deps)
    await use(deps, account_id, "may", 10 * MIB)
    await TerminateAccount(deps)(account_id)
    move(deps, PERIOD_END + timedelta(minutes=1))
    assert (await Housekeeping(deps)()).buckets_renewed == 0


async def test_one_housekeeping_pass_renews_every_due_bucket(deps: Dependencies) -> None:
    """600 buckets due at once (a bulk-imported base sharing a period end):
    one pass renews them all, 500 per transaction."""
    from ratel.domain.catalogue import QuotaDefinition as Q
    from ratel.domain.quota import QuotaBucket

    _, account_id = await account(deps)
    definition = Q("EXTRA", Service.SMS, Unit.MESSAGES, Decimal(10))
    async with deps.uow() as uow:
        await uow.quotas.add_many(
            [
                QuotaBucket.grant(
                    id=f"qb-extra-{n:04d}",
                    account_id=account_id,
                    product_code="BASIC",
                    definition=definition,
                    precedence=0,
                    now=START,
                )
                for n in range(600)
            ]
        )
        await uow.commit()
    move(deps, PERIOD_END + timedelta(minutes=1))
    await Housekeeping(deps)()
    async with deps.uow() as uow:
        stale = [b for b in await uow.quotas.for_account(account_id) if b.period_end <= PERIOD_END]
    assert stale == [], f"{len(stale)} buckets still in May's period after a pass"


async def test_two_nodes_renew_a_bucket_once(deps: Dependencies) -> None:
    ids = []
    for n in range(20):
        _, account_id = await account(deps)
        await use(deps, account_id, f"s{n}", 10 * MIB)
        ids.append(account_id)
    move(deps, PERIOD_END + timedelta(minutes=1))
    reports = await asyncio.gather(*(Housekeeping(deps)() for _ in range(3)))
    assert sum(r.buckets_renewed for r in reports) == 20
    async with deps.uow() as uow:
        events = [e for e in await uow.outbox.recent(limit=1000) if e.event_type == "QuotaRenewed"]
    assert len(events) == 20
    for account_id in ids:
        assert [q.used for q in await QuotaEnquiry(deps)(account_id)] == [0]


@pytest.mark.parametrize("what", ["block", "terminate", "suspend", "close"])
async def test_silent_session_is_released(deps: Dependencies, what: str) -> None:
    customer_id, account_id = await account(deps, product="PLAIN")
    cc = CreditControl(deps)
    await cc.start("s1", Subscriber(IdentifierKind.ACCOUNT_ID, account_id), [data(10 * MIB)])
    await cc.update("s1", 1, [data(10 * MIB, used=5 * MIB)])
    if what == "block":
        await BlockAccount(deps)(account_id, "test")
    elif what == "terminate":
        await TerminateAccount(deps)(account_id)
    elif what == "suspend":
        await SuspendCustomer(deps)(customer_id)
    else:
        await CloseCustomer(deps)(customer_id)
    move(deps, START + timedelta(hours=3))
    report = await Housekeeping(deps)()
    assert report.sessions_released == 1
    async with deps.uow() as uow:
        customer = await uow.customers.get(customer_id)
    assert customer is not None
    assert customer.wallet.reserved.is_zero()
    assert customer.wallet.balance == usd("9.95")


async def test_turbo_then_regular_then_basic(deps: Dependencies) -> None:
    for code, prec, gib, hours in (
        ("TURBO", Precedence.HIGH, 2, 24),
        ("REGULAR", Precedence.MEDIUM, 5, 720),
    ):
        await DefineProduct(deps)(
            Product(
                code,
                code,
                ProductKind.ADDON,
                frozenset({Service.DATA}),
                precedence=prec,
                validity=timedelta(hours=hours),
                quotas=(
                    QuotaDefinition(
                        f"{code}-Q",
                        Service.DATA,
                        Unit.BYTES,
                        Decimal(gib * 1024 * MIB),
                        Renewal.ONCE,
                    ),
                ),
            )
        )
    customer_id, account_id = await account(deps)  # BASIC: 100 MiB monthly
    await AddAddOn(deps)(account_id, "REGULAR")
    await AddAddOn(deps)(account_id, "TURBO")
    cc = CreditControl(deps)
    who = Subscriber(IdentifierKind.ACCOUNT_ID, account_id)
    await cc.start("a", who, [data(100 * MIB)])
    await cc.terminate("a", 1, [data(None, used=2100 * MIB)])
    used = {q.product_code: q.used for q in await QuotaEnquiry(deps)(account_id)}
    assert used == {"TURBO": 2048 * MIB, "REGULAR": 52 * MIB, "BASIC": 0}
    move(deps, START + timedelta(hours=25))
    await Housekeeping(deps)()
    await cc.start("b", who, [data(10 * MIB)])
    await cc.terminate("b", 1, [data(None, used=10 * MIB)])
    used = {q.product_code: q.used for q in await QuotaEnquiry(deps)(account_id)}
    assert used == {"REGULAR": 62 * MIB, "BASIC": 0}
    assert await balance(deps, customer_id) == usd("10")
