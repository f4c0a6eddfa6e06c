"""Use cases against the real store, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from store_builders import MIB, usd
from use_case_support import CHARGES, SERVICES, START, Clock, define_tariffs

from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.system import HmacHasher, TimeOrderedIds
from ratel.application.accounts import (
    AddAlias,
    BlockAccount,
    ChangeNumber,
    ChangeProduct,
    ChangeSim,
    CreateAccount,
    LiftLocationBlock,
    SetLocation,
    TerminateAccount,
    UnblockAccount,
    UpdateAccount,
)
from ratel.application.add_ons import AddAddOn, RemoveAddOn
from ratel.application.base import Dependencies
from ratel.application.catalogue import DefineProduct
from ratel.application.credit_control import (
    CreditControl,
    Subscriber,
    UnknownSession,
    UnknownSubscriber,
)
from ratel.application.customers import (
    CloseCustomer,
    OpenCustomer,
    ResumeCustomer,
    SetCreditLimit,
    SuspendCustomer,
    UpdateCustomer,
)
from ratel.application.enquiry import BalanceEnquiry, QuotaEnquiry
from ratel.application.housekeeping import Housekeeping
from ratel.application.payments import ManualTransaction, RecordPayment, TopUp
from ratel.application.vouchers import CreateVouchers, RedeemVoucher
from ratel.domain.catalogue import (
    Precedence,
    Product,
    ProductKind,
    QuotaDefinition,
    Renewal,
    Service,
    Unit,
)
from ratel.domain.charging import Denial, Grant, UsageRequest
from ratel.domain.errors import DomainError, DuplicateIdentifier, ReferenceReused
from ratel.domain.identifiers import Identifiers, Msisdn
from ratel.domain.money import Money
from ratel.domain.voucher import VoucherUnusable
from ratel.ports.store import IdentifierKind, UnitOfWork


@pytest.fixture
async def deps(engine) -> Dependencies:  # type: ignore[no-untyped-def]
    deps = Dependencies(
        uow=SqlUnitOfWorkFactory(engine),
        clock=Clock(),
        ids=TimeOrderedIds(),
        hasher=HmacHasher("test"),
    )
    await define_tariffs(deps)
    charges, services = CHARGES, SERVICES
    await DefineProduct(deps)(
        Product(
            "BASIC",
            "Basic",
            ProductKind.MAIN,
            services,
            usage_charges=charges,
            quotas=(QuotaDefinition("BASIC-DATA", Service.DATA, Unit.BYTES, Decimal(100 * MIB)),),
        )
    )
    await DefineProduct(deps)(
        Product("PLAIN", "Plain", ProductKind.MAIN, services, usage_charges=charges)
    )
    await DefineProduct(deps)(
        Product(
            "TURBO",
            "Turbo",
            ProductKind.ADDON,
            frozenset({Service.DATA}),
            precedence=Precedence.HIGH,
            validity=timedelta(hours=24),
            price=usd("2"),
            quotas=(
                QuotaDefinition(
                    "TURBO-DATA", Service.DATA, Unit.BYTES, Decimal(200 * MIB), Renewal.ONCE
                ),
            ),
        )
    )
    return deps


async def customer_with_account(
    deps: Dependencies, balance: str = "10", msisdn: str = "12025550100", product: str = "BASIC"
) -> tuple[str, str]:
    customer = await OpenCustomer(deps)("Ada Lovelace", "USD", country="GB")
    if Decimal(balance):
        await TopUp(deps)(customer.id, usd(balance), "card-1")
    account = await CreateAccount(deps)(
        customer.id, product, identifiers=Identifiers(msisdn=Msisdn.parse(msisdn))
    )
    return customer.id, account.id


def call(requested: int | None = 60, used: int = 0) -> UsageRequest:
    return UsageRequest(
        Service.VOICE, Unit.SECONDS, "VOICE", "12025550199", requested=requested, used=used
    )


def data(requested: int | None = MIB, used: int = 0) -> UsageRequest:
    return UsageRequest(
        Service.DATA, Unit.BYTES, "DATA", rating_group=10, requested=requested, used=used
    )


async def outbox_count(deps: Dependencies) -> int:
    async with deps.uow() as uow:
        return len(await uow.outbox.recent(limit=10_000))


async def balance(deps: Dependencies, customer_id: str) -> Money:
    async with deps.uow() as uow:
        customer = await uow.customers.get(customer_id)
        assert customer is not None
        return customer.wallet.balance


async def test_lifecycle_writes_events_and_journal(deps: Dependencies) -> None:
    customer_id, account_id = await customer_with_account(deps, "43.25")
    view = await BalanceEnquiry(deps)(IdentifierKind.MSISDN, "12025550100")
    assert view.text == "Your current balance is 43.25 USD"
    async with deps.uow() as uow:
        kinds = [e.event_type for e in reversed(await uow.outbox.recent(limit=100))]
        journal = await uow.transactions.for_customer(customer_id)
    assert kinds == ["CustomerCreated", "BalanceChanged", "AccountCreated"]
    assert [(t.amount, t.reason.value, t.reference) for t in journal] == [
        (usd("43.25"), "top_up", "card-1")
    ]
    quotas = await QuotaEnquiry(deps)(account_id)
    assert [(q.quota_code, q.remaining) for q in quotas] == [("BASIC-DATA", Decimal(100 * MIB))]


async def test_failed_use_case_writes_nothing(deps: Dependencies) -> None:
    customer_id, _ = await customer_with_account(deps)
    events_before = await outbox_count(deps)
    with pytest.raises(DuplicateIdentifier):
        await CreateAccount(deps)(
            customer_id, "BASIC", identifiers=Identifiers(msisdn=Msisdn.parse("12025550100"))
        )
    assert await outbox_count(deps) == events_before
    async with deps.uow() as uow:
        assert len(await uow.accounts.for_customer(customer_id)) == 1


async def test_credit_control_cycle_is_stored_and_idempotent(deps: Dependencies) -> None:
    customer_id, account_id = await customer_with_account(deps, "10")
    cc = CreditControl(deps)
    who = Subscriber(IdentifierKind.MSISDN, "12025550100")
    first = await cc.start("gw;1", who, [call(120)])
    assert isinstance(first.results[0], Grant) and first.results[0].units == 120
    update = await cc.update("gw;1", 1, [call(120, used=100)])
    events_after_update = await outbox_count(deps)
    again = await cc.update("gw;1", 1, [call(120, used=100)])
    assert again == update
    assert await outbox_count(deps) == events_after_update
    end = await cc.terminate("gw;1", 2, [call(None, used=30)])
    assert end.xdr is not None and end.xdr.charge == usd("0.35")  # 130 s = 3 min at 0.10 + 0.05
    assert await balance(deps, customer_id) == usd("9.65")
    assert end == await cc.terminate("gw;1", 2, [call(None, used=30)])
    assert await balance(deps, customer_id) == usd("9.65")
    async with deps.uow() as uow:
        xdrs = await uow.xdrs.for_account(account_id)
        customer = await uow.customers.get(customer_id)
        journal = await uow.transactions.for_customer(customer_id)
    assert [x.charge for x in xdrs] == [usd("0.35")]
    assert customer is not None and customer.wallet.reserved == usd(0)
    usage = sum((t.amount for t in journal if t.reason.value == "usage"), usd(0))
    assert usage == usd("-0.35")


async def test_unknown_subscriber_and_session(deps: Dependencies) -> None:
    cc = CreditControl(deps)
    with pytest.raises(UnknownSubscriber):
        await cc.start("x", Subscriber(IdentifierKind.MSISDN, "19999999999"), [call()])
    with pytest.raises(UnknownSession):
        await cc.update("never", 1, [call()])


async def test_suspended_customer_and_blocked_account_are_denied(deps: Dependencies) -> None:
    customer_id, account_id = await customer_with_account(deps)
    cc = CreditControl(deps)
    who = Subscriber(IdentifierKind.ACCOUNT_ID, account_id)
    await BlockAccount(deps)(account_id, "fraud")
    denial = (await cc.start("s1", who, [call()])).results[0]
    assert isinstance(denial, Denial) and denial.reason == "account_blocked"
    await SuspendCustomer(deps)(customer_id)
    denial = (await cc.start("s2", who, [call()])).results[0]
    assert isinstance(denial, Denial) and denial.reason in ("account_blocked", "customer_suspended")


async def test_add_on_quota_first_then_removed(deps: Dependencies) -> None:
    customer_id, account_id = await customer_with_account(deps, "5")
    assignment = await AddAddOn(deps)(account_id, "TURBO", charge=True)
    assert await balance(deps, customer_id) == usd("3")
    cc = CreditControl(deps)
    who = Subscriber(IdentifierKind.ACCOUNT_ID, account_id)
    await cc.start("d1", who, [data(150 * MIB)])
    await cc.terminate("d1", 1, [data(None, used=150 * MIB)])
    by_code = {q.quota_code: q for q in await QuotaEnquiry(deps)(account_id)}
    assert by_code["TURBO-DATA"].used == 150 * MIB
    assert by_code["BASIC-DATA"].used == 0
    await RemoveAddOn(deps)(account_id, assignment.id)
    assert [q.quota_code for q in await QuotaEnquiry(deps)(account_id)] == ["BASIC-DATA"]


async def test_housekeeping_expires_add_ons_and_releases_idle_sessions(deps: Dependencies) -> None:
    customer_id, account_id = await customer_with_account(deps, "5", product="PLAIN")
    await AddAddOn(deps)(account_id, "TURBO")
    cc = CreditControl(deps)
    await cc.start("idle", Subscriber(IdentifierKind.ACCOUNT_ID, account_id), [call(300)])
    async with deps.uow() as uow:
        customer = await uow.customers.get(customer_id)
        assert customer is not None and customer.wallet.reserved == usd("0.55")
    clock = deps.clock
    assert isinstance(clock, Clock)
    clock.at = START + timedelta(hours=25)
    report = await Housekeeping(deps)()
    assert (report.add_ons_expired, report.sessions_released) == (1, 1)
    async with deps.uow() as uow:
        customer = await uow.customers.get(customer_id)
        account = await uow.accounts.get(account_id)
        xdrs = await uow.xdrs.for_account(account_id)
    assert customer is not None and customer.wallet.reserved == usd(0)
    assert account is not None
    assert not [a for a in account.add_ons if a.is_active(clock.at)]
    assert len(xdrs) == 1 and xdrs[0].cause == "idle timeout"
    assert (await Housekeeping(deps)()).sessions_released == 0


class AfterExit:
    """A unit of work that runs ``then`` once it has ended."""

    def __init__(self, uow: UnitOfWork, then: Callable[[], Awaitable[object]]) -> None:
        self._uow = uow
        self._then = then

    async def __aenter__(self) -> UnitOfWork:
        return await self._uow.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._uow.__aexit__(*exc)  # type: ignore[arg-type]
        await self._then()


async def test_a_session_heard_from_after_the_idle_list_was_read_is_not_released(
    deps: Dependencies,
) -> None:
    _, account_id = await customer_with_account(deps, "5", product="PLAIN")
    cc = CreditControl(deps)
    await cc.start("late", Subscriber(IdentifierKind.ACCOUNT_ID, account_id), [call(300)])
    clock = deps.clock
    assert isinstance(clock, Clock)
    clock.at = START + timedelta(hours=2)
    reads = deps.uow

    class GatewaySpeaksAfterTheList:
        """The session's gateway reports once Tcc supervision has listed the
        idle sessions, before it locks them one by one."""

        def __init__(self) -> None:
            self.listed = False

        def __call__(self) -> UnitOfWork:
            uow = reads()
            if self.listed:
                return uow
            self.listed = True
            return AfterExit(uow, lambda: cc.update("late", 1, [call(60, used=60)]))  # type: ignore[return-value]

    supervision = Housekeeping(replace(deps, uow=GatewaySpeaksAfterTheList()))
    assert await supervision.release_idle_sessions() == 0
    answer = await cc.update("late", 2, [call(60, used=60)])
    assert answer.granted


async def test_vouchers_redeem_once(deps: Dependencies) -> None:
    customer_id, _ = await customer_with_account(deps, "0")
    codes = await CreateVouchers(deps)(3, usd("5"), batch="B1")
    assert len(set(codes)) == 3
    await RedeemVoucher(deps)(customer_id, codes[0])
    assert await balance(deps, customer_id) == usd("5")
    with pytest.raises(VoucherUnusable):
        await RedeemVoucher(deps)(customer_id, codes[0])
    with pytest.raises(VoucherUnusable):
        await RedeemVoucher(deps)(customer_id, "00000000000000")
    assert await balance(deps, customer_id) == usd("5")


async def test_a_top_up_or_payment_with_a_reference_is_applied_once(deps: Dependencies) -> None:
    customer_id, _ = await customer_with_account(deps, "0")
    other_id, _ = await customer_with_account(deps, "0", msisdn="12025550111")
    _, first = await TopUp(deps)(customer_id, usd("5"), "ussd-77")
    _, again = await TopUp(deps)(customer_id, usd("5"), "ussd-77")  # the gateway retried
    assert first is not None and again == first
    assert await balance(deps, customer_id) == usd("5")
    with pytest.raises(ReferenceReused):
        await TopUp(deps)(customer_id, usd("50"), "ussd-77")
    # the reference is the customer's own and the reason's own
    await TopUp(deps)(other_id, usd("5"), "ussd-77")
    await RecordPayment(deps)(customer_id, usd("2"), "ussd-77")
    await RecordPayment(deps)(customer_id, usd("2"), "ussd-77")
    # without a reference every request is a new top-up
    await TopUp(deps)(customer_id, usd("1"))
    await TopUp(deps)(customer_id, usd("1"))
    assert await balance(deps, customer_id) == usd("9")
    assert await balance(deps, other_id) == usd("5")


async def test_two_copies_of_one_top_up_at_once_credit_once(deps: Dependencies) -> None:
    customer_id, _ = await customer_with_account(deps, "0")
    results = await asyncio.gather(*(TopUp(deps)(customer_id, usd("3"), "pay-1") for _ in range(4)))
    assert len({transaction.id for _, transaction in results if transaction}) == 1
    assert await balance(deps, customer_id) == usd("3")


async def test_manual_transaction_books_its_ledger_code(deps: Dependencies) -> None:
    customer_id, _ = await customer_with_account(deps, "1")
    await ManualTransaction(deps)(customer_id, usd("-3"), "goodwill reversal", "400000009")
    async with deps.uow() as uow:
        latest = (await uow.transactions.for_customer(customer_id))[0]
    assert (latest.amount, latest.ledger_code, latest.balance_after) == (
        usd("-3"),
        "400000009",
        usd("-2"),
    )


async def test_sms_debit_and_refund(deps: Dependencies) -> None:
    customer_id, account_id = await customer_with_account(deps, "1", product="PLAIN")
    cc = CreditControl(deps)
    sms = UsageRequest(Service.SMS, Unit.MESSAGES, "SMS", "12025550199", requested=1)
    answer = await cc.debit("sms-1", Subscriber(IdentifierKind.ACCOUNT_ID, account_id), sms)
    assert answer.xdr is not None and await balance(deps, customer_id) == usd("0.95")
    assert await cc.debit("sms-1", Subscriber(IdentifierKind.ACCOUNT_ID, account_id), sms) == answer
    assert await balance(deps, customer_id) == usd("0.95")
    assert await cc.refund(answer.xdr.id) == usd("0.05")
    await cc.refund(answer.xdr.id)
    assert await balance(deps, customer_id) == usd("1")


async def test_product_change_replaces_main_quotas(deps: Dependencies) -> None:
    _, account_id = await customer_with_account(deps)
    await ChangeProduct(deps)(account_id, "PLAIN")
    assert await QuotaEnquiry(deps)(account_id) == []


async def test_concurrent_sessions_never_pass_the_credit_limit(deps: Dependencies) -> None:
    """50 sessions start at once on one balance of 1.00: each wants 0.15
    (connection fee and a minute); at most 6 fit, the rest get less or none."""
    customer_id, account_id = await customer_with_account(deps, "1")
    cc = CreditControl(deps)
    who = Subscriber(IdentifierKind.ACCOUNT_ID, account_id)
    answers = await asyncio.gather(*(cc.start(f"c{n}", who, [call(60)]) for n in range(50)))
    granted = [
        a.results[0] for a in answers if isinstance(a.results[0], Grant) and a.results[0].units
    ]
    async with deps.uow() as uow:
        customer = await uow.customers.get(customer_id)
    assert customer is not None
    assert customer.wallet.available() >= usd(0)
    assert customer.wallet.reserved <= usd("1")
    assert len(granted) == 6
    used = [a.results[0].units if isinstance(a.results[0], Grant) else 0 for a in answers]
    ends = await asyncio.gather(
        *(cc.terminate(f"c{n}", 1, [call(None, used=used[n])]) for n in range(50))
    )
    charged = sum((e.xdr.charge for e in ends if e.xdr is not None), usd(0))
    assert charged == usd("0.90")
    assert await balance(deps, customer_id) == usd("0.10")


async def test_customer_lifecycle_use_cases(deps: Dependencies) -> None:
    customer_id, account_id = await customer_with_account(deps, "2")
    updated = await UpdateCustomer(deps)(customer_id, name="Ada King", country="us")
    assert (updated.name, updated.country) == ("Ada King", "US")
    limited = await SetCreditLimit(deps)(customer_id, usd("5"))
    assert limited.wallet.available() == usd("7")
    await SuspendCustomer(deps)(customer_id)
    resumed = await ResumeCustomer(deps)(customer_id)
    assert resumed.status.value == "open"
    await RecordPayment(deps)(customer_id, usd("3"), "bank-42")
    assert await balance(deps, customer_id) == usd("5")
    closed = await CloseCustomer(deps)(customer_id)
    assert closed.status.value == "closed"
    async with deps.uow() as uow:
        account = await uow.accounts.get(account_id)
        kinds = [e.event_type for e in reversed(await uow.outbox.recent(aggregate_id=customer_id))]
    assert account is not None and account.status.value == "terminated"
    assert kinds == [
        "CustomerCreated",
        "BalanceChanged",
        "CustomerUpdated",
        "CreditLimitChanged",
        "CustomerSuspended",
        "CustomerResumed",
        "BalanceChanged",
        "CustomerClosed",
    ]
    with pytest.raises(DomainError):
        await TopUp(deps)(customer_id, usd("1"))


async def test_account_use_cases_change_identifiers_and_status(deps: Dependencies) -> None:
    _, account_id = await customer_with_account(deps)
    await ChangeNumber(deps)(account_id, "12025550111")
    await ChangeSim(deps)(account_id, "001010123456789", "8988211000000000003")
    await UpdateAccount(deps)(account_id, custom_fields={"crm_profile": "gold"})
    await AddAlias(deps)(account_id, "MODEM-7F3A")
    await BlockAccount(deps)(account_id)
    await UnblockAccount(deps)(account_id)
    await SetLocation(deps)(account_id, "MARITIME")
    await LiftLocationBlock(deps)(account_id)
    async with deps.uow() as uow:
        by_number = await uow.accounts.by_identifier(IdentifierKind.MSISDN, "12025550111")
        by_imsi = await uow.accounts.by_identifier(IdentifierKind.IMSI, "001010123456789")
        by_alias = await uow.accounts.by_identifier(IdentifierKind.ALIAS, "MODEM-7F3A")
        old_number = await uow.accounts.by_identifier(IdentifierKind.MSISDN, "12025550100")
    assert by_number is not None and by_number.id == account_id
    assert by_imsi is not None and by_alias is not None and old_number is None
    assert by_number.custom_fields == {"crm_profile": "gold"}
    assert (by_number.status.value, by_number.location, by_number.location_block_lifted) == (
        "active",
        "MARITIME",
        True,
    )
    await TerminateAccount(deps)(account_id)
    with pytest.raises(DomainError):
        await UnblockAccount(deps)(account_id)


async def test_location_block_denies_data_until_lifted(deps: Dependencies) -> None:
    _, account_id = await customer_with_account(deps, "5", product="PLAIN")
    await SetLocation(deps)(account_id, "AEROSPACE")
    cc = CreditControl(deps)
    who = Subscriber(IdentifierKind.ACCOUNT_ID, account_id)
    denial = (await cc.start("loc-1", who, [data()])).results[0]
    assert isinstance(denial, Denial) and denial.reason == "location_restricted"
    assert isinstance((await cc.start("loc-2", who, [call()])).results[0], Grant)
    await LiftLocationBlock(deps)(account_id)
    assert isinstance((await cc.start("loc-3", who, [data()])).results[0], Grant)


async def test_price_and_balance_enquiries_change_nothing(deps: Dependencies) -> None:
    customer_id, account_id = await customer_with_account(deps, "0.10", product="PLAIN")
    cc = CreditControl(deps)
    who = Subscriber(IdentifierKind.ACCOUNT_ID, account_id)
    assert await cc.price(who, call(61)) == usd("0.25")
    assert await cc.can_afford(who, call(30)) is False
    sms = UsageRequest(Service.SMS, Unit.MESSAGES, "SMS", "12025550199", requested=2)
    assert await cc.can_afford(who, sms) is True
    assert await balance(deps, customer_id) == usd("0.10")


async def test_housekeeping_renews_monthly_quotas(deps: Dependencies) -> None:
    customer_id, account_id = await customer_with_account(deps, "1")
    cc = CreditControl(deps)
    await cc.start("m1", Subscriber(IdentifierKind.ACCOUNT_ID, account_id), [data(60 * MIB)])
    await cc.terminate("m1", 1, [data(None, used=60 * MIB)])
    assert [q.used for q in await QuotaEnquiry(deps)(account_id)] == [60 * MIB]
    clock = deps.clock
    assert isinstance(clock, Clock)
    clock.at = START + timedelta(days=31)
    assert (await Housekeeping(deps)()).buckets_renewed == 1
    assert [q.used for q in await QuotaEnquiry(deps)(account_id)] == [0]
    async with deps.uow() as uow:
        renewed = [e for e in await uow.outbox.recent(limit=50) if e.event_type == "QuotaRenewed"]
    assert [e.payload["customer_id"] for e in renewed] == [customer_id]
    assert (await Housekeeping(deps)()).buckets_renewed == 0


async def test_accounts_of_many_customers_in_one_query(deps: Dependencies) -> None:
    first, a1 = await customer_with_account(deps, "0", msisdn="12025550101")
    second, a2 = await customer_with_account(deps, "0", msisdn="12025550102")
    extra = await CreateAccount(deps)(second, "PLAIN")
    async with deps.uow() as uow:
        found = await uow.accounts.for_customers([second, first, "nobody", first])
    assert {k: [a.id for a in v] for k, v in found.items()} == {
        first: [a1],
        second: sorted([a2, extra.id]),
        "nobody": [],
    }
