"""Time-of-day rates: periods, the next tariff change, and credit control
granting across a change (Tariff-Time-Change) and rating the usage reported
before and after it (Tariff-Change-Usage) at each rate."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratel.domain.account import Account
from ratel.domain.catalogue import Product, ProductKind, Service, ServicePolicy, Unit, UsageCharge
from ratel.domain.charging import (
    ChargingContext,
    CreditControlSession,
    Grant,
    Rater,
    UsageRequest,
    price_enquiry,
)
from ratel.domain.customer import Customer
from ratel.domain.errors import DomainError, InvalidCatalogue
from ratel.domain.location import LocationPolicy
from ratel.domain.money import Money
from ratel.domain.rating import DestinationGroup, Rate, RatedDestination, RatePeriod, Tariff


def usd(amount: str | int) -> Money:
    return Money.of(amount, "USD")


def utc(hour: int, minute: int = 0, second: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


LOCAL = DestinationGroup("LOCAL", "Local calls", "400000001")
# peak: 0.05 connection fee and 0.10 a minute; off-peak 20:00-08:00 Paris time: 0.04 a minute
PEAK = Rate.per_interval(usd("0.10"), 60, connection_fee=usd("0.05"))
OFF_PEAK = Rate.per_interval(usd("0.04"), 60)
NIGHT = RatePeriod(time(20), time(8), OFF_PEAK)
# March 2026: Paris is UTC+1 until the 29th, so 20:00 there is 19:00 UTC
CHANGE = utc(19)


def banded_tariff(time_zone: str = "Europe/Paris") -> Tariff:
    tariff = Tariff("VOICE-TOD", "USD", "Voice, peak and off-peak", time_zone)
    tariff.add_prefix("1", PEAK, LOCAL, periods=[NIGHT])
    return tariff


def destination(time_zone: str = "Europe/Paris") -> RatedDestination:
    return banded_tariff(time_zone).rate_for("12025550100")


# -- periods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "moment", "covered"),
    [
        (time(8), time(20), time(8), True),  # the start is included
        (time(8), time(20), time(19, 59, 59), True),
        (time(8), time(20), time(20), False),  # the end is not
        (time(8), time(20), time(7, 59), False),
        (time(20), time(8), time(23, 30), True),  # past midnight
        (time(20), time(8), time(0), True),
        (time(20), time(8), time(7, 59, 59), True),
        (time(20), time(8), time(8), False),
        (time(20), time(8), time(12), False),
    ],
)
def test_a_period_covers_its_times_of_day(
    start: time, end: time, moment: time, covered: bool
) -> None:
    assert RatePeriod(start, end, OFF_PEAK).covers(moment) is covered


def night(start: int, end: int, rate: Rate = OFF_PEAK) -> RatePeriod:
    return RatePeriod(time(start), time(end), rate)


@pytest.mark.parametrize(
    ("periods", "why"),
    [
        ([night(20, 8), night(6, 9)], "overlap"),
        ([night(8, 12), night(11, 13, PEAK)], "overlap"),
        ([night(22, 6), night(23, 1, PEAK)], "overlap"),
        ([night(8, 9, Rate.per_interval(Money.of("1", "EUR"), 60))], "EUR"),
    ],
)
def test_overlapping_periods_and_other_currencies_are_refused(
    periods: list[RatePeriod], why: str
) -> None:
    with pytest.raises(InvalidCatalogue, match=why):
        Tariff("T", "USD").add_custom("DATA", PEAK, periods=periods)


def test_adjacent_periods_are_fine_and_bad_periods_or_zones_are_refused() -> None:
    tariff = Tariff("T", "USD")
    tariff.add_custom(
        "DATA",
        PEAK,
        periods=[RatePeriod(time(8), time(12), OFF_PEAK), RatePeriod(time(12), time(13), PEAK)],
    )
    with pytest.raises(InvalidCatalogue, match="start != end"):
        RatePeriod(time(8), time(8), OFF_PEAK)
    with pytest.raises(InvalidCatalogue, match="local time"):
        RatePeriod(time(8, tzinfo=UTC), time(9), OFF_PEAK)
    with pytest.raises(InvalidCatalogue, match="time zone"):
        Tariff("T", "USD", time_zone="Mars/Olympus_Mons")


@pytest.mark.parametrize(
    ("moment", "time_zone", "expected"),
    [
        (utc(18, 59, 59), "Europe/Paris", PEAK),  # 19:59:59 in Paris
        (utc(19), "Europe/Paris", OFF_PEAK),
        (utc(6, 59), "Europe/Paris", OFF_PEAK),
        (utc(7), "Europe/Paris", PEAK),
        (utc(19), "UTC", PEAK),
        (utc(20), "UTC", OFF_PEAK),
        (utc(1), "America/New_York", OFF_PEAK),  # 20:00 the day before there
        (utc(0, 59), "America/New_York", PEAK),
    ],
)
def test_the_rate_in_force_follows_the_tariffs_local_time(
    moment: datetime, time_zone: str, expected: Rate
) -> None:
    assert destination(time_zone).rate_at(moment) == expected


def test_a_destination_without_periods_never_changes() -> None:
    flat = Tariff("FLAT", "USD")
    flat.add_prefix("1", PEAK)
    rated = flat.rate_for("12025550100")
    assert rated.rate_at(CHANGE) == PEAK
    assert rated.next_change(utc(0), utc(0) + timedelta(days=1)) is None


@pytest.mark.parametrize(
    ("after", "until", "time_zone", "expected"),
    [
        (utc(18, 58), utc(19, 58), "Europe/Paris", CHANGE),
        (utc(18), utc(19), "Europe/Paris", CHANGE),  # the end of the validity is included
        (utc(18), utc(18, 59, 59), "Europe/Paris", None),
        (utc(19), utc(20), "Europe/Paris", None),  # just changed: the next one is tomorrow
        (utc(6, 30), utc(7, 30), "Europe/Paris", utc(7)),  # back to peak
        (utc(19, 30), utc(7, 30, day=3), "Europe/Paris", utc(7, day=3)),  # across midnight
        (utc(19, 30), utc(20, 30), "UTC", utc(20)),
        (utc(0, 30), utc(1, 30), "America/New_York", utc(1)),
        # 2026-03-29 Paris moves to UTC+2: 08:00 there is 06:00 UTC
        (utc(5, 30, day=29), utc(6, 30, day=29), "Europe/Paris", utc(6, day=29)),
    ],
)
def test_the_next_tariff_change_within_a_grant(
    after: datetime, until: datetime, time_zone: str, expected: datetime | None
) -> None:
    assert destination(time_zone).next_change(after, until) == expected


# -- credit control across a change -------------------------------------------------


class World:
    def __init__(self, balance: str = "10") -> None:
        now = utc(12)
        self.customer = Customer.open("c1", "Ada", "USD", now)
        if Decimal(balance):
            self.customer.wallet.credit(usd(balance))
        self.account = Account.create("a1", "c1", "TOD", now)
        product = Product(
            code="TOD",
            name="Peak and off-peak",
            kind=ProductKind.MAIN,
            services=frozenset({Service.VOICE}),
            usage_charges=(UsageCharge("VOICE", "VOICE-TOD"),),
            policy=ServicePolicy(),
        )
        self.rater = Rater((product,), {"VOICE-TOD": banded_tariff()})

    def ctx(self) -> ChargingContext:
        return ChargingContext(
            account=self.account,
            customer=self.customer,
            buckets=[],
            rater=self.rater,
            policy=ServicePolicy(),
            location_policy=LocationPolicy(),
        )

    def session(self, now: datetime) -> CreditControlSession:
        return CreditControlSession.open("s1", self.account, self.customer, now)


def call(requested: int | None = None, used: int = 0, after: int = 0) -> UsageRequest:
    return UsageRequest(
        Service.VOICE,
        Unit.SECONDS,
        "VOICE",
        "12025550100",
        requested=requested,
        used=used,
        used_after_change=after,
    )


def the_grant(answer: object) -> Grant:
    results = answer.results  # type: ignore[attr-defined]
    assert len(results) == 1 and isinstance(results[0], Grant), results
    return results[0]


def test_a_grant_spanning_the_change_says_when_and_holds_the_dearer_side() -> None:
    w = World()
    grant = the_grant(w.session(utc(18, 58)).reserve(w.ctx(), 0, [call(300)], utc(18, 58)))
    assert (grant.units, grant.tariff_change_at) == (300, CHANGE)
    # 5 peak minutes and the connection fee (0.55) cost more than 5 off-peak ones (0.20)
    assert w.customer.wallet.reserved == usd("0.55")


def test_a_grant_before_the_change_ends_is_told_nothing() -> None:
    w = World()
    grant = the_grant(w.session(utc(12)).reserve(w.ctx(), 0, [call(300)], utc(12)))
    assert grant.tariff_change_at is None


def test_funds_for_the_dearer_side_limit_the_grant() -> None:
    # 0.25 buys the fee and 2 peak minutes, or 6 off-peak minutes: 2 minutes are safe
    w = World(balance="0.25")
    grant = the_grant(w.session(utc(18, 58)).reserve(w.ctx(), 0, [call(300)], utc(18, 58)))
    assert grant.units == 120
    assert w.customer.wallet.reserved == usd("0.25")


@pytest.mark.parametrize(
    ("before", "after", "charge"),
    [
        # 2 peak minutes with the fee (0.25), then minutes 3-5 off-peak (0.12)
        (120, 180, "0.37"),
        # the minute started at peak is paid at peak; its rest after the change is in it
        (90, 30, "0.25"),
        (90, 31, "0.29"),
        # all of it after the change: off-peak only, and off-peak has no fee
        (0, 300, "0.20"),
        # none after the change: all at peak
        (300, 0, "0.55"),
        (0, 0, "0"),
    ],
)
def test_usage_before_and_after_the_change_is_rated_at_each_rate(
    before: int, after: int, charge: str
) -> None:
    w = World()
    s = w.session(utc(18, 58))
    s.reserve(w.ctx(), 0, [call(300)], utc(18, 58))
    answer = s.terminate(w.ctx(), 1, [call(used=before + after, after=after)], utc(19, 3))
    assert answer.xdr is not None and answer.xdr.charge == usd(charge)
    # money conservation: the balance paid exactly the xDR, nothing stays held
    assert w.customer.wallet.balance == usd(10) - usd(charge)
    assert w.customer.wallet.reserved == usd(0)


def test_the_grant_after_the_change_is_at_the_new_rate() -> None:
    w = World()
    s = w.session(utc(18, 58))
    s.reserve(w.ctx(), 0, [call(300)], utc(18, 58))
    grant = the_grant(s.report(w.ctx(), 1, [call(300, used=300, after=180)], utc(19, 3)))
    # the next change (08:00 in Paris) is beyond this grant's hour
    assert grant.tariff_change_at is None
    # usage of that grant is all off-peak, without saying so
    answer = s.terminate(w.ctx(), 2, [call(used=60)], utc(19, 4))
    assert answer.xdr is not None and answer.xdr.charge == usd("0.37") + usd("0.04")


def test_price_enquiry_is_at_the_rate_in_force() -> None:
    w = World()
    assert price_enquiry(w.ctx(), call(120), utc(12)) == usd("0.25")
    assert price_enquiry(w.ctx(), call(120), utc(22)) == usd("0.08")
    assert price_enquiry(w.ctx(), call(120)) == usd("0.25")  # no time: the base rate


def test_usage_after_the_change_is_part_of_the_used_units() -> None:
    with pytest.raises(DomainError):
        call(used=60, after=61)
    assert call(used=60, after=20).used_before_change == 40


@settings(max_examples=150, deadline=None)
@given(
    reports=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), min_size=1, max_size=8),
    start_minute=st.integers(50, 59),
)
def test_money_is_conserved_whatever_the_split(
    reports: list[tuple[int, int]], start_minute: int
) -> None:
    """Each report's split is charged at the two rates; what the balance
    lost is the xDR's charge, and that is the sum of the parts."""
    w = World(balance="100")
    now = utc(18, start_minute)
    s = w.session(now)
    s.reserve(w.ctx(), 0, [call(400)], now)
    expected = Decimal(0)
    used_so_far = 0
    rate_now = PEAK
    for number, (before, after) in enumerate(reports, 1):
        # before the change: the rate when the grant was given; after it: off-peak
        # (a grant given after the change announces none, and its rate is off-peak)
        expected += rate_now.increment(used_so_far, before).amount
        expected += OFF_PEAK.increment(used_so_far + before, after).amount
        used_so_far += before + after
        now = now + timedelta(minutes=2)
        answer = s.report(w.ctx(), number, [call(400, used=before + after, after=after)], now)
        assert isinstance(answer.results[0], Grant)
        # the next grant is at the rate in force when it is given
        rate_now = OFF_PEAK if now >= CHANGE else PEAK
    answer = s.terminate(w.ctx(), len(reports) + 1, [call(used=0)], now)
    assert answer.xdr is not None
    assert answer.xdr.charge == usd(expected)
    assert w.customer.wallet.balance == usd(100) - answer.xdr.charge
    assert w.customer.wallet.reserved == usd(0)
