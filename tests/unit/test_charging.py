"""Credit control: the one charging core behind RADIUS and Diameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratel.domain import events
from ratel.domain.account import Account
from ratel.domain.catalogue import (
    ExhaustionAction,
    Precedence,
    Product,
    ProductKind,
    QuotaDefinition,
    Renewal,
    Service,
    ServicePolicy,
    Unit,
    UsageCharge,
)
from ratel.domain.charging import (
    IDLE_TIMEOUT,
    ChargingConfig,
    ChargingContext,
    CreditControlSession,
    Denial,
    FinalUnitIndication,
    Grant,
    Rater,
    UsageRequest,
    check_balance,
    price_enquiry,
    units_covered,
)
from ratel.domain.customer import Customer
from ratel.domain.errors import OutOfOrderRequest, SessionClosed
from ratel.domain.location import LocationPolicy
from ratel.domain.money import Money
from ratel.domain.quota import QuotaBucket
from ratel.domain.rating import DestinationGroup, DialingPlan, DialingRule, Rate, Tariff

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIB = 1024 * 1024
GIB = 1024 * MIB
LOCAL = DestinationGroup("LOCAL", "Local calls", "400000001")
INTL = DestinationGroup("INTL", "International calls", "400000002")
DOMESTIC_SMS = DestinationGroup("DOMESTIC", "Domestic SMS", "400000004")
USSD = DestinationGroup("USSD", "USSD", "400000005")
DATA = DestinationGroup("DATA", "Data", "400000006")


def usd(amount: str | int) -> Money:
    return Money.of(amount, "USD")


def tariffs() -> dict[str, Tariff]:
    voice = Tariff("VOICE-STD", "USD")
    # 0.10 per minute, per-minute billing, 0.05 connection fee
    voice.add_prefix("1", Rate.per_interval(usd("0.10"), 60, connection_fee=usd("0.05")), LOCAL)
    # international: 0.60 per minute, first 30 s then 6 s steps (0.06 each)
    voice.add_prefix("44", Rate(usd("0.30"), 30, 6, usd("0.06"), usd(0)), INTL)
    sms = Tariff("SMS-STD", "USD")
    sms.add_prefix("1", Rate.per_interval(usd("0.05"), 1), DOMESTIC_SMS)
    data = Tariff("DATA-STD", "USD")
    data.add_custom("DATA", Rate.per_interval(usd("0.01"), MIB), DATA)
    ussd = Tariff("USSD-STD", "USD")
    ussd.add_custom("OUTGOING.SI120", Rate.per_interval(usd("0.2"), 20), USSD)
    return {t.code: t for t in (voice, sms, data, ussd)}


def main_product(
    policy: ServicePolicy | None = None, quotas: tuple[QuotaDefinition, ...] = ()
) -> Product:
    return Product(
        code="BASIC",
        name="Basic mobile",
        kind=ProductKind.MAIN,
        services=frozenset({Service.VOICE, Service.SMS, Service.DATA, Service.USSD}),
        usage_charges=(
            UsageCharge("VOICE", "VOICE-STD"),
            UsageCharge("SMS", "SMS-STD"),
            UsageCharge("DATA", "DATA-STD"),
            UsageCharge(UsageCharge.ussd_access_code(120), "USSD-STD"),
        ),
        quotas=quotas,
        policy=policy or ServicePolicy(download_kbps=10_000),
    )


class World:
    """One customer with one account, its buckets and a charging context."""

    def __init__(
        self,
        balance: str = "10",
        credit_limit: str = "0",
        policy: ServicePolicy | None = None,
        buckets: list[QuotaBucket] | None = None,
        products: tuple[Product, ...] = (),
        dialing: DialingPlan | None = None,
    ) -> None:
        self.customer = Customer.open("c1", "Ada", "USD", NOW, credit_limit=usd(credit_limit))
        if Decimal(balance):
            self.customer.wallet.credit(usd(balance))
        self.account = Account.create("a1", "c1", "BASIC", NOW)
        self.buckets = buckets or []
        self.main = main_product(policy)
        self.rater = Rater((self.main, *products), tariffs(), dialing)
        self.policy = self.main.policy

    def ctx(self) -> ChargingContext:
        return ChargingContext(
            account=self.account,
            customer=self.customer,
            buckets=self.buckets,
            rater=self.rater,
            policy=self.policy,
            location_policy=LocationPolicy(),
        )

    def session(self, sid: str = "s1") -> CreditControlSession:
        return CreditControlSession.open(sid, self.account, self.customer, NOW)

    @property
    def balance(self) -> Money:
        return self.customer.wallet.balance


def call(dest: str = "12025550100", requested: int | None = None, used: int = 0) -> UsageRequest:
    return UsageRequest(Service.VOICE, Unit.SECONDS, "VOICE", dest, requested=requested, used=used)


def data(requested: int | None = None, used: int = 0, rg: int | None = 10) -> UsageRequest:
    return UsageRequest(
        Service.DATA, Unit.BYTES, "DATA", rating_group=rg, requested=requested, used=used
    )


def only_grant(answer: object) -> Grant:
    results = answer.results  # type: ignore[attr-defined]
    assert len(results) == 1 and isinstance(results[0], Grant), results
    return results[0]


def only_denial(answer: object) -> Denial:
    results = answer.results  # type: ignore[attr-defined]
    assert len(results) == 1 and isinstance(results[0], Denial), results
    return results[0]


# -- voice: interims, connection fee once, one xDR ---------------------------------


def test_voice_call_charged_once_for_connection_and_per_minute() -> None:
    w = World(balance="10")
    s = w.session()
    grant = only_grant(s.reserve(w.ctx(), 0, [call(requested=120)], NOW))
    assert grant.units == 120
    # 0.05 connection fee + 2 minutes held
    assert w.customer.wallet.reserved == usd("0.25")
    s.report(w.ctx(), 1, [call(requested=120, used=100)], NOW + timedelta(seconds=100))
    s.report(w.ctx(), 2, [call(requested=120, used=50)], NOW + timedelta(seconds=150))
    answer = s.terminate(w.ctx(), 3, [call(used=10)], NOW + timedelta(seconds=160))
    # 160 s at per-minute billing = 3 minutes = 0.30, plus the connection fee once
    assert answer.xdr is not None
    assert answer.xdr.charge == usd("0.35")
    assert w.balance == usd("9.65")
    assert w.customer.wallet.reserved == usd(0)
    line = answer.xdr.lines[0]
    assert (line.units, line.ledger_code, line.destination_group) == (160, "400000001", "LOCAL")


def test_interval_rounding_is_per_session_not_per_report() -> None:
    # international: 30 s first interval, then 6 s steps; 10 reports of 7 s = 70 s
    w = World()
    s = w.session()
    s.reserve(w.ctx(), 0, [call("447700900123", requested=10)], NOW)
    for n in range(1, 10):
        s.report(w.ctx(), n, [call("447700900123", requested=10, used=7)], NOW)
    answer = s.terminate(w.ctx(), 10, [call("447700900123", used=7)], NOW)
    # 70 s = 30 + 40 -> ceil(40/6) = 7 steps: 0.30 + 7 * 0.06 = 0.72
    assert answer.xdr is not None and answer.xdr.charge == usd("0.72")
    assert w.balance == usd("9.28")


def test_funds_run_out_final_units_then_denial() -> None:
    # 0.25 buys the connection fee and 2 minutes
    w = World(balance="0.25")
    s = w.session()
    grant = only_grant(s.reserve(w.ctx(), 0, [call(requested=300)], NOW))
    assert grant.units == 120
    assert grant.final is not None and grant.final.action is ExhaustionAction.TERMINATE
    assert w.customer.wallet.available() == usd(0)
    denial = only_denial(s.report(w.ctx(), 1, [call(requested=300, used=120)], NOW))
    assert denial.reason == "insufficient_funds"
    answer = s.terminate(w.ctx(), 2, [call(used=0)], NOW)
    assert answer.xdr is not None and answer.xdr.charge == usd("0.25")
    assert w.balance == usd(0)


def test_no_funds_at_all_is_denied_and_holds_nothing() -> None:
    w = World(balance="0")
    s = w.session()
    denial = only_denial(s.reserve(w.ctx(), 0, [call(requested=60)], NOW))
    assert denial.reason == "insufficient_funds"
    assert w.customer.wallet.reserved == usd(0)


def test_credit_limit_extends_what_may_be_reserved() -> None:
    w = World(balance="0", credit_limit="0.25")
    s = w.session()
    assert only_grant(s.reserve(w.ctx(), 0, [call(requested=600)], NOW)).units == 120


def test_hotline_redirect_when_the_policy_says_so() -> None:
    policy = ServicePolicy(
        on_exhaustion=ExhaustionAction.REDIRECT, hotline_url="http://topup.example/"
    )
    w = World(balance="0.05", policy=policy)  # 5 MiB of data
    s = w.session()
    grant = only_grant(s.reserve(w.ctx(), 0, [data(requested=10 * MIB)], NOW))
    assert grant.units == 5 * MIB
    assert grant.final is not None
    assert grant.final.action is ExhaustionAction.REDIRECT
    assert grant.final.redirect_url == "http://topup.example/"
    ctx = w.ctx()
    s.report(ctx, 1, [data(requested=10 * MIB, used=5 * MIB)], NOW)
    exhausted = [e for e in ctx.events if isinstance(e, events.FundsExhausted)]
    assert exhausted and exhausted[0].action == "redirect"


# -- retransmissions and order -----------------------------------------------------------


def test_retransmitted_report_gets_the_same_answer_and_charges_nothing() -> None:
    w = World()
    s = w.session()
    s.reserve(w.ctx(), 0, [call(requested=60)], NOW)
    first = s.report(w.ctx(), 1, [call(requested=60, used=60)], NOW)
    balance, reserved = w.balance, w.customer.wallet.reserved
    again = s.report(w.ctx(), 1, [call(requested=60, used=60)], NOW)
    assert again is first
    assert (w.balance, w.customer.wallet.reserved) == (balance, reserved)


def test_retransmitted_terminate_returns_the_same_xdr() -> None:
    w = World()
    s = w.session()
    s.reserve(w.ctx(), 0, [call(requested=60)], NOW)
    first = s.terminate(w.ctx(), 1, [call(used=30)], NOW)
    balance = w.balance
    assert s.terminate(w.ctx(), 1, [call(used=30)], NOW).xdr == first.xdr
    assert w.balance == balance


def test_the_xdr_event_tells_why_the_session_ended() -> None:
    w = World()
    s = w.session()
    s.reserve(w.ctx(), 0, [call(requested=60)], NOW)
    ctx = w.ctx()
    end = s.terminate(ctx, 1, [call(used=30)], NOW, cause=IDLE_TIMEOUT, xdr_id="x-1")
    assert end.xdr is not None and end.xdr.cause == IDLE_TIMEOUT
    (produced,) = [e for e in ctx.events if isinstance(e, events.XdrProduced)]
    assert (produced.xdr_id, produced.cause) == ("x-1", IDLE_TIMEOUT)
    assert produced.payload()["cause"] == IDLE_TIMEOUT


def test_old_request_number_is_refused_and_closed_session_too() -> None:
    w = World()
    s = w.session()
    s.reserve(w.ctx(), 0, [call(requested=60)], NOW)
    s.report(w.ctx(), 2, [call(requested=60, used=10)], NOW)
    with pytest.raises(OutOfOrderRequest):
        s.report(w.ctx(), 1, [call(requested=60, used=10)], NOW)
    s.terminate(w.ctx(), 3, [call(used=0)], NOW)
    with pytest.raises(SessionClosed):
        s.report(w.ctx(), 4, [call(requested=60, used=10)], NOW)


# -- quotas before money ---------------------------------------------------------------


def data_bucket(
    bid: str, gib: int, precedence: int, expires: datetime | None, product: str
) -> QuotaBucket:
    definition = QuotaDefinition(
        f"{product}-DATA", Service.DATA, Unit.BYTES, Decimal(gib * GIB), Renewal.ONCE
    )
    return QuotaBucket.grant(
        id=bid,
        account_id="a1",
        product_code=product,
        definition=definition,
        precedence=precedence,
        now=NOW,
        ends_at=expires,
    )


def turbo_regular_basic() -> list[QuotaBucket]:
    return [
        data_bucket("basic", 1, Precedence.MAIN, None, "BASIC"),
        data_bucket("regular", 5, Precedence.MEDIUM, NOW + timedelta(days=30), "REGULAR"),
        data_bucket("turbo", 2, Precedence.HIGH, NOW + timedelta(hours=24), "TURBO"),
    ]


def test_turbo_then_regular_then_basic_then_money() -> None:
    w = World(balance="1", buckets=turbo_regular_basic())
    s = w.session()
    s.reserve(w.ctx(), 0, [data(requested=GIB)], NOW)
    used = {b.id: b for b in w.buckets}
    # 3 GiB: Turbo's 2 GiB, then 1 GiB of Regular
    for n in range(1, 4):
        s.report(w.ctx(), n, [data(requested=GIB, used=GIB)], NOW + timedelta(hours=n))
    assert used["turbo"].used == 2 * GIB
    assert used["regular"].used == GIB
    assert used["basic"].used == 0
    assert w.balance == usd(1)
    answer = s.terminate(w.ctx(), 4, [data(used=0)], NOW + timedelta(hours=4))
    assert answer.xdr is not None and answer.xdr.charge == usd(0)
    assert dict(answer.xdr.lines[0].bucket_units) == {"regular": GIB, "turbo": 2 * GIB}


def test_expired_turbo_is_skipped_for_regular() -> None:
    w = World(buckets=turbo_regular_basic())
    s = w.session()
    later = NOW + timedelta(hours=25)
    s.reserve(w.ctx(), 0, [data(requested=GIB)], later)
    s.terminate(w.ctx(), 1, [data(used=GIB)], later)
    assert {b.id: b.used for b in w.buckets} == {"basic": 0, "regular": GIB, "turbo": 0}


def test_validity_is_bounded_by_the_add_on_end() -> None:
    w = World(buckets=turbo_regular_basic())
    s = w.session()
    grant = only_grant(
        s.reserve(w.ctx(), 0, [data(requested=GIB)], NOW + timedelta(hours=23, minutes=50))
    )
    assert grant.validity_seconds == 600


def test_usage_past_the_grant_and_the_next_grant_draw_the_buckets_in_one_order() -> None:
    # one request commits past its hold (into the next buckets) and grants across
    # the rest and money: both use the consumption order, which the charging of
    # the request does not change
    w = World(balance="1", buckets=turbo_regular_basic())
    s = w.session()
    assert only_grant(s.reserve(w.ctx(), 0, [data(requested=GIB)], NOW)).units == GIB
    ctx = w.ctx()
    ctx.config = ChargingConfig(max_grant={Unit.BYTES: 8 * GIB})
    grant = only_grant(s.report(ctx, 1, [data(requested=6 * GIB, used=5 * GIB // 2)], NOW))
    by_id = {b.id: b for b in w.buckets}
    assert {i: b.used for i, b in by_id.items()} == {
        "turbo": 2 * GIB,
        "regular": GIB // 2,
        "basic": 0,
    }
    assert {i: b.reserved for i, b in by_id.items()} == {
        "turbo": 0,
        "regular": 9 * GIB // 2,
        "basic": GIB,
    }
    # 4.5 GiB of Regular, 1 GiB of Basic, and what 1 USD buys: the last units
    assert grant.units == 11 * GIB // 2 + 100 * MIB
    assert grant.final is not None and grant.final.action is ExhaustionAction.TERMINATE
    assert w.customer.wallet.reserved == usd(1)
    # Turbo is used up, but Regular and Basic of the same scope are not
    assert not [e for e in ctx.events if isinstance(e, events.QuotaExhausted)]


def test_quota_exhausted_then_money_and_one_event() -> None:
    w = World(balance="1", buckets=[data_bucket("basic", 1, Precedence.MAIN, None, "BASIC")])
    s = w.session()
    ctx = w.ctx()
    s.reserve(ctx, 0, [data(requested=GIB)], NOW)
    s.report(ctx, 1, [data(requested=10 * MIB, used=GIB)], NOW)
    s.terminate(ctx, 2, [data(used=10 * MIB)], NOW)
    assert [e.bucket_ids for e in ctx.events if isinstance(e, events.QuotaExhausted)] == [
        ("basic",)
    ]
    assert w.balance == usd("0.90")


def test_throttle_instead_of_charging_when_quota_is_gone() -> None:
    policy = ServicePolicy(on_exhaustion=ExhaustionAction.THROTTLE, throttle_download_kbps=128)
    w = World(
        balance="100",
        policy=policy,
        buckets=[data_bucket("basic", 1, Precedence.MAIN, None, "BASIC")],
    )
    s = w.session()
    grant = only_grant(s.reserve(w.ctx(), 0, [data(requested=2 * GIB)], NOW))
    assert grant.units == GIB
    assert grant.final is not None and grant.final.action is ExhaustionAction.THROTTLE
    assert grant.final.throttle_download_kbps == 128
    assert w.customer.wallet.reserved == usd(0)


def test_free_rating_group_is_granted_without_charge() -> None:
    policy = ServicePolicy(free_rating_groups=frozenset({1}))
    w = World(balance="0", policy=policy)
    s = w.session()
    answer = s.reserve(w.ctx(), 0, [data(requested=MIB, rg=1), data(requested=MIB, rg=2)], NOW)
    free, paid = answer.results
    assert isinstance(free, Grant) and free.free and free.units == MIB
    assert isinstance(paid, Denial) and paid.reason == "insufficient_funds"
    end = s.terminate(w.ctx(), 1, [data(used=5 * MIB, rg=1)], NOW)
    assert end.xdr is not None and end.xdr.charge == usd(0)


def test_free_rating_group_usage_leaves_quota_and_money_alone() -> None:
    policy = ServicePolicy(free_rating_groups=frozenset({1}))
    w = World(balance="1", buckets=turbo_regular_basic(), policy=policy)
    s = w.session()
    s.reserve(w.ctx(), 0, [data(requested=MIB, rg=1)], NOW)
    s.report(w.ctx(), 1, [data(requested=MIB, used=7 * MIB, rg=1)], NOW)
    end = s.terminate(w.ctx(), 2, [data(used=3 * MIB, rg=1)], NOW)
    assert [b.used for b in w.buckets] == [0, 0, 0]
    assert w.customer.wallet.balance == usd(1)
    assert end.xdr is not None and end.xdr.lines[0].units == 10 * MIB
    assert end.xdr.lines[0].bucket_units == ()


def test_last_of_several_sms_quotas_notifies_once_after_the_150th() -> None:
    def sms_bucket(bid: str, count: int, precedence: int) -> QuotaBucket:
        definition = QuotaDefinition(
            bid, Service.SMS, Unit.MESSAGES, Decimal(count), destination_group="DOMESTIC"
        )
        return QuotaBucket.grant(
            id=bid,
            account_id="a1",
            product_code="P",
            definition=definition,
            precedence=precedence,
            now=NOW,
        )

    w = World(
        balance="1",
        buckets=[sms_bucket("sms100", 100, Precedence.HIGH), sms_bucket("sms50", 50, 0)],
    )
    notices: list[int] = []
    for n in range(1, 152):
        ctx = w.ctx()
        s = w.session(f"sms{n}")
        sms = UsageRequest(Service.SMS, Unit.MESSAGES, "SMS", "12025550100", requested=1)
        assert only_grant(s.debit_event(ctx, 0, sms, NOW)).units == 1
        if any(isinstance(e, events.QuotaExhausted) for e in ctx.events):
            notices.append(n)
    assert notices == [150]
    # the 151st SMS was paid
    assert w.balance == usd("0.95")


def test_direct_debit_refused_without_funds_changes_nothing() -> None:
    w = World(balance="0.04")
    s = w.session()
    sms = UsageRequest(Service.SMS, Unit.MESSAGES, "SMS", "12025550100", requested=1)
    denial = only_denial(s.debit_event(w.ctx(), 0, sms, NOW))
    assert denial.reason == "insufficient_funds"
    assert w.balance == usd("0.04")


# -- USSD, translation, enquiries ---------------------------------------------------------


def test_ussd_45_second_session_is_three_intervals() -> None:
    w = World(balance="1")
    s = w.session()
    ussd = UsageRequest(Service.USSD, Unit.SECONDS, "OUTGOING.SI120", service_identifier=120)
    s.reserve(w.ctx(), 0, [ussd.__class__(**{**_fields(ussd), "requested": 20})], NOW)
    s.report(w.ctx(), 1, [_with(ussd, requested=20, used=20)], NOW)
    s.report(w.ctx(), 2, [_with(ussd, requested=20, used=20)], NOW)
    answer = s.terminate(w.ctx(), 3, [_with(ussd, used=5)], NOW)
    assert answer.xdr is not None and answer.xdr.charge == usd("0.6")
    assert w.balance == usd("0.4")


def _fields(r: UsageRequest) -> dict[str, object]:
    return {name: getattr(r, name) for name in r.__dataclass_fields__}


def _with(r: UsageRequest, **changes: object) -> UsageRequest:
    return UsageRequest(**{**_fields(r), **changes})  # type: ignore[arg-type]


def test_translated_number_returned_when_the_policy_says() -> None:
    dialing = DialingPlan([DialingRule("411", "12055576061", exact=True)])
    w = World(policy=ServicePolicy(provision_translated_number=True), dialing=dialing)
    answer = w.session().reserve(w.ctx(), 0, [call("411", requested=60)], NOW)
    assert answer.translated_number == "12055576061"
    w2 = World(policy=ServicePolicy(), dialing=dialing)
    assert (
        w2.session().reserve(w2.ctx(), 0, [call("411", requested=60)], NOW).translated_number
        is None
    )


def test_price_enquiry_and_check_balance_change_nothing() -> None:
    w = World(balance="0.10")
    assert price_enquiry(w.ctx(), call(requested=61)) == usd("0.25")
    assert check_balance(w.ctx(), call(requested=30), NOW) is False  # 0.15 needed
    assert check_balance(
        w.ctx(), UsageRequest(Service.SMS, Unit.MESSAGES, "SMS", "1202", requested=2), NOW
    )
    assert w.balance == usd("0.10") and w.customer.wallet.reserved == usd(0)


# -- who may not use the service ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("prepare", "reason"),
    [
        (lambda w: w.account.block("fraud", NOW), "account_blocked"),
        (lambda w: w.account.terminate(NOW), "account_terminated"),
        (lambda w: w.customer.suspend("unpaid", NOW), "customer_suspended"),
        (
            lambda w: w.account.set_location("MARITIME", NOW, LocationPolicy()),
            "location_restricted",
        ),
    ],
)
def test_unusable_accounts_are_denied_data(prepare: object, reason: str) -> None:
    w = World()
    prepare(w)  # type: ignore[operator]
    denial = only_denial(w.session().reserve(w.ctx(), 0, [data(requested=MIB)], NOW))
    assert denial.reason == reason
    assert w.customer.wallet.reserved == usd(0)


def test_maritime_keeps_voice() -> None:
    w = World()
    w.account.set_location("MARITIME", NOW, LocationPolicy())
    assert only_grant(w.session().reserve(w.ctx(), 0, [call(requested=60)], NOW)).units == 60


@pytest.mark.parametrize(
    "action", [ExhaustionAction.REDIRECT, ExhaustionAction.THROTTLE, ExhaustionAction.RESTRICT]
)
def test_a_call_is_ended_and_paid_for_whatever_the_products_data_exhaustion_action(
    action: ExhaustionAction,
) -> None:
    """Redirect to the hotline page, throttle and restrict are what a data
    session does when its quota and money run out. A call cannot be sent to
    a web page or throttled: its last grant ends it (TERMINATE), and its
    minutes past a voice bundle are paid from the balance. The product's data
    action was applied to calls: the last grant of a call said REDIRECT to
    the top-up page, and a call past its bundle was refused with 4012 while
    the balance could pay."""
    policy = ServicePolicy(
        hotline_url="https://topup.example/",
        throttle_download_kbps=128,
        throttle_upload_kbps=64,
        on_exhaustion=action,
    )
    w = World(balance="0.25", policy=policy)
    grant = only_grant(w.session().reserve(w.ctx(), 0, [call(requested=300)], NOW))
    assert grant.units == 120  # 0.05 connection and two minutes at 0.10
    assert grant.final == FinalUnitIndication(ExhaustionAction.TERMINATE)
    minutes = QuotaDefinition("MINUTES", Service.VOICE, Unit.SECONDS, Decimal(60), Renewal.ONCE)
    bundle = QuotaBucket.grant(
        id="min",
        account_id="a1",
        product_code="BASIC",
        definition=minutes,
        precedence=Precedence.MAIN,
        now=NOW,
        ends_at=None,
    )
    w = World(balance="1", policy=policy, buckets=[bundle])
    grant = only_grant(w.session().reserve(w.ctx(), 0, [call(requested=180)], NOW))
    assert grant.units == 180  # the bundle's minute, then two paid by the balance
    assert grant.final is None


# -- sub-sessions ---------------------------------------------------------------------------


def test_sub_sessions_of_one_mobile_session_produce_one_xdr() -> None:
    w = World()
    s = w.session()
    s.reserve(w.ctx(), 0, [data(requested=MIB)], NOW, sub_session="bs-1")
    s.reserve(w.ctx(), 0, [data(requested=MIB)], NOW, sub_session="bs-2")
    first = s.terminate(w.ctx(), 1, [data(used=MIB)], NOW, sub_session="bs-1")
    assert first.xdr is None
    last = s.terminate(w.ctx(), 1, [data(used=2 * MIB)], NOW, sub_session="bs-2")
    assert last.xdr is not None
    assert last.xdr.lines[0].units == 3 * MIB
    assert last.xdr.charge == usd("0.03")
    assert set(last.xdr.sub_sessions) == {"bs-1", "bs-2"}
    assert w.customer.wallet.reserved == usd(0)


def test_live_sub_sessions_of_one_stream_each_keep_their_hold() -> None:
    """A PDSN hand-off where both sub-sessions are live: each has its grant
    out, so each needs its own hold. With one hold per stream, the second
    sub-session's request settled the first one's hold and granted the same
    funds again: 1.00 USD granted twice on a balance of 1.00."""
    w = World(balance="1")
    s = w.session()
    first = only_grant(s.reserve(w.ctx(), 0, [data(requested=100 * MIB)], NOW, sub_session="bs-1"))
    assert first.units == 100 * MIB
    assert w.customer.wallet.reserved == usd("1.00")
    second = s.reserve(w.ctx(), 0, [data(requested=100 * MIB)], NOW, sub_session="bs-2")
    assert isinstance(second.results[0], Denial)  # nothing left: bs-1 holds it all
    assert w.customer.wallet.reserved == usd("1.00")
    # bs-1 reports half its grant and asks again: the other half stays its own
    again = only_grant(
        s.report(w.ctx(), 1, [data(used=50 * MIB, requested=100 * MIB)], NOW, sub_session="bs-1")
    )
    assert again.units == 50 * MIB
    assert w.customer.wallet.balance == usd("0.50")
    assert w.customer.wallet.reserved == usd("0.50")
    # bs-1 ends with all of it used; bs-2, which was granted nothing, ends with nothing
    s.terminate(w.ctx(), 2, [data(used=50 * MIB)], NOW, sub_session="bs-1")
    last = s.terminate(w.ctx(), 1, [data(used=0)], NOW, sub_session="bs-2")
    assert last.xdr is not None and last.xdr.charge == usd("1.00")
    assert w.customer.wallet.balance == usd("0.00")
    assert w.customer.wallet.reserved == usd("0")


def test_a_second_live_sub_session_is_priced_after_the_first_ones_grant() -> None:
    """The first 50 MiB of a session are free, then 0.01 per MiB; the balance
    is 1.00. bs-1's grant of 100 MiB takes the free 50 and holds 0.50; bs-2's
    was priced from the stream's used units as if bs-1's grant were not out,
    so it got the free units again: 100 MiB for 0.50, and the balance ended
    at -0.50 with no credit limit when both used what they were granted."""
    w = World(balance="1")
    tariff = Tariff("DATA-FREE-50", "USD")
    tariff.add_custom("DATA", Rate.per_interval(usd("0.01"), MIB, free_units=50 * MIB), DATA)
    w.rater = Rater(
        (Product("P", "P", ProductKind.MAIN, usage_charges=(UsageCharge("DATA", tariff.code),)),),
        {tariff.code: tariff},
    )
    s = w.session()
    a = only_grant(s.reserve(w.ctx(), 0, [data(requested=100 * MIB)], NOW, sub_session="bs-1"))
    assert a.units == 100 * MIB and w.customer.wallet.reserved == usd("0.50")
    b = only_grant(s.reserve(w.ctx(), 0, [data(requested=100 * MIB)], NOW, sub_session="bs-2"))
    assert b.units == 50 * MIB  # what the 0.50 left pays, the free units being bs-1's
    s.terminate(w.ctx(), 1, [data(used=a.units)], NOW, sub_session="bs-1")
    s.terminate(w.ctx(), 1, [data(used=b.units)], NOW, sub_session="bs-2")
    assert w.customer.wallet.balance == usd("0.00")
    assert w.customer.wallet.reserved == usd(0)


def test_a_sub_sessions_hold_is_released_when_the_session_closes() -> None:
    """Two sub-sessions each hold their grant; the one that ends settles its
    own, and the other's stays held until it ends too."""
    w = World(balance="10")
    s = w.session()
    s.reserve(w.ctx(), 0, [data(requested=100 * MIB)], NOW, sub_session="bs-1")
    s.reserve(w.ctx(), 0, [data(requested=100 * MIB)], NOW, sub_session="bs-2")
    assert w.customer.wallet.reserved == usd("2.00")
    s.terminate(w.ctx(), 1, [data(used=10 * MIB)], NOW, sub_session="bs-1")
    assert w.customer.wallet.reserved == usd("1.00")  # bs-2's grant is still out
    last = s.terminate(w.ctx(), 1, [data(used=30 * MIB)], NOW, sub_session="bs-2")
    assert last.xdr is not None and last.xdr.charge == usd("0.40")
    assert w.customer.wallet.balance == usd("9.60")
    assert w.customer.wallet.reserved == usd("0")


def test_units_covered_are_quota_then_what_the_funds_pay_at_the_rate() -> None:
    """What bounds the Session-Timeout of a NAS that cannot be sent a CoA or
    a Disconnect: the units quota and funds pay for, changing nothing."""
    w = World(balance="1", credit_limit="0.50")
    assert units_covered(w.ctx(), data(), NOW) == 150 * MIB  # 1.50 at 0.01 per MiB
    assert w.customer.wallet.reserved == usd(0)
    w.buckets.append(data_bucket("q", 1, Precedence.MAIN, None, "BASIC"))
    assert units_covered(w.ctx(), data(), NOW) == GIB + 150 * MIB
    broke = World(balance="0")
    assert units_covered(broke.ctx(), data(), NOW) == 0
    free = World()
    tariff = Tariff("FREE-DATA", "USD")
    tariff.add_custom("DATA", Rate.per_interval(usd(0), MIB), DATA)
    free.rater = Rater(
        (Product("P", "P", ProductKind.MAIN, usage_charges=(UsageCharge("DATA", "FREE-DATA"),)),),
        {"FREE-DATA": tariff},
    )
    assert units_covered(free.ctx(), data(), NOW) is None  # nothing bounds a free rate


# -- rounding only on the record --------------------------------------------------------------


def test_sub_cent_rates_are_exact_until_the_record() -> None:
    w = World()
    tariff = Tariff("PER-SECOND", "USD")
    tariff.add_prefix("1", Rate.per_interval(usd("0.00015"), 1), LOCAL)
    w.rater = Rater(
        (Product("P", "P", ProductKind.MAIN, usage_charges=(UsageCharge("VOICE", "PER-SECOND"),)),),
        {"PER-SECOND": tariff},
    )
    s = w.session()
    s.reserve(w.ctx(), 0, [call(requested=1000)], NOW)
    assert w.customer.wallet.reserved == usd("0.15")
    s.report(w.ctx(), 1, [call(requested=1000, used=7)], NOW)
    assert w.balance == usd("9.99895")  # exact while the session runs
    answer = s.terminate(w.ctx(), 2, [call(used=1000)], NOW)
    # 1007 s * 0.00015 = 0.15105 -> 0.15 on the xDR, and the balance pays the xDR exactly
    assert answer.xdr is not None and answer.xdr.charge == usd("0.15")
    assert w.balance == usd("9.85")


# -- properties ------------------------------------------------------------------------------

step = st.tuples(st.integers(0, 2), st.integers(0, 400), st.integers(0, 400))


@settings(max_examples=200, deadline=None)
@given(
    balance=st.integers(0, 300),
    limit=st.integers(0, 100),
    steps=st.lists(step, min_size=1, max_size=40),
    quota=st.integers(0, 300),
)
def test_money_is_conserved_and_the_credit_limit_holds(
    balance: int, limit: int, steps: list[tuple[int, int, int]], quota: int
) -> None:
    """Several concurrent sessions on one wallet: whatever they ask and use
    (never more than granted), the wallet never passes its credit limit, and
    when all sessions end the balance moved by exactly the xDRs' charges."""
    buckets = []
    if quota:
        definition = QuotaDefinition("q", Service.VOICE, Unit.SECONDS, Decimal(quota), Renewal.ONCE)
        buckets.append(
            QuotaBucket.grant(
                id="q",
                account_id="a1",
                product_code="BASIC",
                definition=definition,
                precedence=0,
                now=NOW,
            )
        )
    w = World(
        balance=str(Decimal(balance) / 100), credit_limit=str(Decimal(limit) / 100), buckets=buckets
    )
    start = w.balance
    sessions = [w.session(f"s{i}") for i in range(3)]
    granted = [0, 0, 0]
    numbers = [0, 0, 0]
    for i, s in enumerate(sessions):
        answer = s.reserve(w.ctx(), 0, [call(requested=60)], NOW)
        granted[i] = answer.results[0].units if isinstance(answer.results[0], Grant) else 0
    for which, use, want in steps:
        s = sessions[which]
        numbers[which] += 1
        used = min(use, granted[which])
        answer = s.report(w.ctx(), numbers[which], [call(requested=want, used=used)], NOW)
        granted[which] = answer.results[0].units if isinstance(answer.results[0], Grant) else 0
        wallet = w.customer.wallet
        assert wallet.balance - wallet.reserved >= -wallet.credit_limit
        assert not wallet.reserved.is_negative()
    total = usd(0)
    for i, s in enumerate(sessions):
        answer = s.terminate(w.ctx(), numbers[i] + 1, [call(used=granted[i])], NOW)
        assert answer.xdr is not None
        total = total + answer.xdr.charge
    assert w.customer.wallet.reserved == usd(0)
    assert start - w.balance == total
    assert w.balance >= -w.customer.wallet.credit_limit
    if buckets:
        assert buckets[0].used <= buckets[0].allowance and buckets[0].reserved == 0


@settings(max_examples=100, deadline=None)
@given(reports=st.lists(st.tuples(st.integers(0, 120), st.booleans()), min_size=1, max_size=15))
def test_retransmissions_never_change_the_outcome(reports: list[tuple[int, bool]]) -> None:
    """The same sequence with every report possibly sent twice ends with the
    same balance and the same xDR as without retransmissions."""

    def run(retransmit: bool) -> tuple[Money, Money]:
        w = World(balance="5")
        s = w.session()
        granted = only_grant(s.reserve(w.ctx(), 0, [call(requested=120)], NOW)).units
        for n, (use, twice) in enumerate(reports, start=1):
            req = [call(requested=120, used=min(use, granted))]
            answer = s.report(w.ctx(), n, req, NOW)
            if retransmit and twice:
                assert s.report(w.ctx(), n, req, NOW) is answer
            granted = answer.results[0].units if isinstance(answer.results[0], Grant) else 0
        end = s.terminate(w.ctx(), len(reports) + 1, [call(used=granted)], NOW)
        assert end.xdr is not None
        return w.balance, end.xdr.charge

    assert run(False) == run(True)
