"""Quota buckets: consumption order by precedence, renewal, expiry and the
"quota exhausted" notice when the last bucket of a scope is used up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratel.domain.catalogue import Precedence, QuotaDefinition, Renewal, Service, Unit
from ratel.domain.errors import InvalidQuota
from ratel.domain.quota import (
    QuotaBucket,
    QuotaScope,
    add_months,
    consumption_order,
    newly_exhausted_scopes,
    next_period_end,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GB = Decimal(10**9)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def definition(
    code: str = "Q",
    allowance: Decimal | int = 100,
    *,
    service: Service = Service.DATA,
    unit: Unit = Unit.BYTES,
    renewal: Renewal = Renewal.MONTHLY,
    destination_group: str | None = None,
    rating_group: int | None = None,
    validity: timedelta | None = None,
    currency: str | None = None,
) -> QuotaDefinition:
    return QuotaDefinition(
        code=code,
        service=service,
        unit=unit,
        allowance=Decimal(allowance),
        renewal=renewal,
        destination_group=destination_group,
        rating_group=rating_group,
        validity=validity,
        currency=currency,
    )


def grant(
    bucket_id: str,
    quota: QuotaDefinition,
    precedence: int = Precedence.MAIN,
    now: datetime = T0,
    ends_at: datetime | None = None,
) -> QuotaBucket:
    return QuotaBucket.grant(
        id=bucket_id,
        account_id="acc-1",
        product_code=bucket_id.upper(),
        definition=quota,
        precedence=precedence,
        now=now,
        ends_at=ends_at,
    )


def bucket(
    bucket_id: str = "b",
    allowance: int = 100,
    *,
    used: int = 0,
    reserved: int = 0,
    renewal: Renewal = Renewal.ONCE,
) -> QuotaBucket:
    return QuotaBucket(
        id=bucket_id,
        account_id="acc-1",
        product_code="P",
        scope=QuotaScope(Service.DATA),
        unit=Unit.BYTES,
        allowance=Decimal(allowance),
        renewal=renewal,
        precedence=0,
        valid_from=T0,
        used=Decimal(used),
        reserved=Decimal(reserved),
    )


def draw_in_order(buckets: Sequence[QuotaBucket], units: Decimal) -> dict[str, Decimal]:
    """Draw ``units`` bucket by bucket, as the charging core does."""
    taken: dict[str, Decimal] = {}
    remaining = units
    for b in buckets:
        if remaining <= 0:
            break
        take = b.draw(remaining)
        if take:
            taken[b.id] = take
            remaining -= take
    return taken


def ids(buckets: Sequence[QuotaBucket]) -> list[str]:
    return [b.id for b in buckets]


def data_order(buckets: Sequence[QuotaBucket], at: datetime) -> list[str]:
    return ids(consumption_order(buckets, Service.DATA, None, None, at))


# -- mission example: basic, Turbo and Regular ------------------------------------------


@pytest.fixture
def turbo_regular_basic() -> list[QuotaBucket]:
    basic = grant("basic", definition("BASIC", GB), Precedence.MAIN)
    turbo = grant(
        "turbo",
        definition("TURBO", 2 * GB, renewal=Renewal.ONCE, validity=24 * HOUR),
        Precedence.HIGH,
        ends_at=T0 + 24 * HOUR,
    )
    regular = grant(
        "regular",
        definition("REGULAR", 5 * GB, renewal=Renewal.ONCE, validity=30 * DAY),
        Precedence.MEDIUM,
        ends_at=T0 + 30 * DAY,
    )
    # listed in no particular order
    return [basic, regular, turbo]


def test_turbo_first_then_regular_then_basic(turbo_regular_basic: list[QuotaBucket]) -> None:
    assert data_order(turbo_regular_basic, T0) == ["turbo", "regular", "basic"]
    assert data_order(turbo_regular_basic, T0 + 23 * HOUR) == ["turbo", "regular", "basic"]


def test_regular_comes_first_once_turbo_is_used_up(turbo_regular_basic: list[QuotaBucket]) -> None:
    order = consumption_order(turbo_regular_basic, Service.DATA, None, None, T0 + HOUR)
    assert draw_in_order(order, 2 * GB) == {"turbo": 2 * GB}

    order = consumption_order(turbo_regular_basic, Service.DATA, None, None, T0 + 2 * HOUR)
    assert [b.id for b in order if b.free > 0] == ["regular", "basic"]
    assert draw_in_order(order, Decimal(1000)) == {"regular": Decimal(1000)}


def test_a_draw_larger_than_turbo_spills_into_regular(
    turbo_regular_basic: list[QuotaBucket],
) -> None:
    order = consumption_order(turbo_regular_basic, Service.DATA, None, None, T0)
    taken = draw_in_order(order, Decimal("7.5") * GB)
    assert taken == {"turbo": 2 * GB, "regular": 5 * GB, "basic": Decimal("0.5") * GB}


def test_regular_comes_first_once_turbo_expires(turbo_regular_basic: list[QuotaBucket]) -> None:
    # Turbo is untouched (2 GB left) but its 24 hours are over
    last_moment = T0 + 24 * HOUR - timedelta(microseconds=1)
    assert data_order(turbo_regular_basic, last_moment) == ["turbo", "regular", "basic"]
    assert data_order(turbo_regular_basic, T0 + 24 * HOUR) == ["regular", "basic"]
    assert data_order(turbo_regular_basic, T0 + 29 * DAY) == ["regular", "basic"]
    assert data_order(turbo_regular_basic, T0 + 30 * DAY) == ["basic"]


def test_consumption_order_before_a_bucket_starts(turbo_regular_basic: list[QuotaBucket]) -> None:
    assert data_order(turbo_regular_basic, T0 - timedelta(seconds=1)) == []


def test_at_equal_precedence_the_earliest_expiry_goes_first() -> None:
    month = grant("month", definition("M", renewal=Renewal.ONCE, validity=30 * DAY), Precedence.LOW)
    day = grant("day", definition("D", renewal=Renewal.ONCE, validity=DAY), Precedence.LOW)
    forever = grant("forever", definition("F"), Precedence.LOW)
    assert data_order([forever, month, day], T0) == ["day", "month", "forever"]


def test_at_equal_precedence_and_expiry_the_oldest_goes_first() -> None:
    newer = grant("a-newer", definition("N"), Precedence.LOW, now=T0 + HOUR)
    older = grant("z-older", definition("O"), Precedence.LOW, now=T0)
    assert data_order([newer, older], T0 + 2 * HOUR) == ["z-older", "a-newer"]


def test_a_numeric_precedence_sorts_between_the_levels() -> None:
    high = grant("high", definition("H"), Precedence.HIGH)
    p250 = grant("p250", definition("P"), 250)
    medium = grant("medium", definition("M"), Precedence.MEDIUM)
    assert data_order([medium, high, p250], T0) == ["high", "p250", "medium"]


def test_consumption_order_filters_by_unit() -> None:
    money = grant(
        "wallet",
        definition("W", 5, unit=Unit.MONEY, renewal=Renewal.ONCE, currency="USD"),
        Precedence.HIGH,
    )
    data = grant("data", definition("D"))
    both = [money, data]
    assert ids(consumption_order(both, Service.DATA, None, None, T0)) == ["wallet", "data"]
    assert ids(consumption_order(both, Service.DATA, None, None, T0, Unit.BYTES)) == ["data"]
    assert ids(consumption_order(both, Service.DATA, None, None, T0, Unit.MONEY)) == ["wallet"]


# -- mission example: 100 + 50 domestic SMS ---------------------------------------------

DOMESTIC_SMS = QuotaScope(Service.SMS, "DOMESTIC")


def sms_buckets() -> list[QuotaBucket]:
    return [
        grant(
            "sms-100",
            definition(
                "SMS100", 100, service=Service.SMS, unit=Unit.MESSAGES, destination_group="DOMESTIC"
            ),
        ),
        grant(
            "sms-50",
            definition(
                "SMS50", 50, service=Service.SMS, unit=Unit.MESSAGES, destination_group="DOMESTIC"
            ),
        ),
        # another scope: its unused messages do not hold back the domestic notice
        grant(
            "sms-intl",
            definition(
                "SMSINTL",
                10,
                service=Service.SMS,
                unit=Unit.MESSAGES,
                destination_group="INTERNATIONAL",
            ),
        ),
    ]


def send_sms(buckets: list[QuotaBucket], at: datetime) -> list[tuple[QuotaScope, list[str]]]:
    before = {b.id: b.is_exhausted() for b in buckets}
    order = consumption_order(buckets, Service.SMS, "DOMESTIC", None, at, Unit.MESSAGES)
    taken = draw_in_order(order, Decimal(1))
    touched = [b for b in order if b.id in taken]
    return [
        (scope, sorted(ids(same)))
        for scope, same in newly_exhausted_scopes(buckets, touched, at, before)
    ]


def test_exhausted_notice_after_the_150th_sms_not_the_100th() -> None:
    buckets = sms_buckets()
    notices: dict[int, list[tuple[QuotaScope, list[str]]]] = {}
    for n in range(1, 152):
        reported = send_sms(buckets, T0 + n * timedelta(minutes=1))
        if reported:
            notices[n] = reported
    assert notices == {150: [(DOMESTIC_SMS, ["sms-100", "sms-50"])]}
    by_id = {b.id: b for b in buckets}
    assert by_id["sms-100"].used == 100
    assert by_id["sms-50"].used == 50
    assert by_id["sms-intl"].used == 0


def test_the_100th_sms_exhausts_one_bucket_but_not_the_scope() -> None:
    buckets = sms_buckets()
    for n in range(1, 100):
        assert send_sms(buckets, T0 + n * timedelta(seconds=1)) == []
    assert send_sms(buckets, T0 + HOUR) == []  # the 100th
    by_id = {b.id: b for b in buckets}
    assert by_id["sms-100"].is_exhausted()
    assert not by_id["sms-50"].is_exhausted()


def test_both_buckets_used_up_in_one_step_notify_once() -> None:
    buckets = sms_buckets()
    before = {b.id: b.is_exhausted() for b in buckets}
    order = consumption_order(buckets, Service.SMS, "DOMESTIC", None, T0, Unit.MESSAGES)
    assert draw_in_order(order, Decimal(200)) == {"sms-100": 100, "sms-50": 50}
    reported = newly_exhausted_scopes(buckets, order, T0, before)
    assert [(scope, sorted(ids(same))) for scope, same in reported] == [
        (DOMESTIC_SMS, ["sms-100", "sms-50"])
    ]


def test_an_already_exhausted_bucket_is_not_reported_again() -> None:
    buckets = sms_buckets()
    for b in buckets[:2]:
        b.draw(b.allowance)
    before = {b.id: b.is_exhausted() for b in buckets}
    assert newly_exhausted_scopes(buckets, buckets[:2], T0, before) == []


def test_an_expired_bucket_with_units_left_does_not_hold_back_the_notice() -> None:
    buckets = sms_buckets()
    expired = grant(
        "sms-old",
        definition(
            "OLD",
            20,
            service=Service.SMS,
            unit=Unit.MESSAGES,
            destination_group="DOMESTIC",
            renewal=Renewal.ONCE,
            validity=HOUR,
        ),
        Precedence.LOW,
        now=T0 - 2 * HOUR,
    )
    buckets.append(expired)
    buckets[0].draw(Decimal(100))
    before = {b.id: b.is_exhausted() for b in buckets}
    buckets[1].draw(Decimal(50))
    reported = newly_exhausted_scopes(buckets, [buckets[1]], T0, before)
    assert [(scope, sorted(ids(same))) for scope, same in reported] == [
        (DOMESTIC_SMS, ["sms-100", "sms-50"])
    ]


def test_a_bucket_that_still_has_units_is_not_exhausted() -> None:
    b = bucket(allowance=10)
    b.draw(Decimal(9))
    assert newly_exhausted_scopes([b], [b], T0, {"b": False}) == []
    b.draw(Decimal(1))
    assert newly_exhausted_scopes([b], [b], T0, {"b": False}) == [(b.scope, [b])]


# -- months and periods ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "months", "expected"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2028, 1, 31, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),  # leap year
        (datetime(2026, 3, 31, tzinfo=UTC), 1, datetime(2026, 4, 30, tzinfo=UTC)),
        (datetime(2026, 1, 30, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 1, 28, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 1, datetime(2026, 2, 15, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), 1, datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2026, 1, 31, tzinfo=UTC), 13, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2026, 1, 31, tzinfo=UTC), 2, datetime(2026, 3, 31, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), -1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), -1, datetime(2025, 12, 15, tzinfo=UTC)),
        (datetime(2026, 5, 31, tzinfo=UTC), 0, datetime(2026, 5, 31, tzinfo=UTC)),
        (
            datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC),
            1,
            datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),
        ),
    ],
)
def test_add_months_clamps_to_the_month_end(at: datetime, months: int, expected: datetime) -> None:
    moved = add_months(at, months)
    assert moved == expected
    assert moved.tzinfo is UTC


@pytest.mark.parametrize(
    ("renewal", "expected"),
    [
        (Renewal.DAILY, datetime(2026, 2, 1, 10, tzinfo=UTC)),
        (Renewal.MONTHLY, datetime(2026, 2, 28, 10, tzinfo=UTC)),
        (Renewal.ONCE, None),
    ],
)
def test_next_period_end(renewal: Renewal, expected: datetime | None) -> None:
    assert next_period_end(datetime(2026, 1, 31, 10, tzinfo=UTC), renewal) == expected


# -- grant ---------------------------------------------------------------------------------


def test_grant_builds_a_fresh_bucket_from_the_definition() -> None:
    quota = definition(
        "SMS100", 100, service=Service.SMS, unit=Unit.MESSAGES, destination_group="DOMESTIC"
    )
    b = QuotaBucket.grant(
        id="b1",
        account_id="acc-9",
        product_code="BASIC",
        definition=quota,
        precedence=Precedence.MAIN,
        now=T0,
        assignment_id="asg-1",
    )
    assert b.id == "b1"
    assert b.account_id == "acc-9"
    assert b.product_code == "BASIC"
    assert b.scope == QuotaScope(Service.SMS, "DOMESTIC", None)
    assert b.unit is Unit.MESSAGES
    assert b.allowance == 100
    assert (b.used, b.reserved, b.left, b.free) == (0, 0, 100, 100)
    assert b.valid_from == T0
    assert b.expires_at is None
    assert b.period_end == datetime(2026, 2, 1, tzinfo=UTC)
    assert b.assignment_id == "asg-1"
    assert b.quota_code == "SMS100"
    assert b.currency is None


def test_grant_of_a_service_wallet_keeps_its_currency() -> None:
    quota = definition("W", 5, unit=Unit.MONEY, renewal=Renewal.ONCE, currency="USD")
    assert grant("w", quota).currency == "USD"


@pytest.mark.parametrize(
    ("renewal", "validity", "ends_at", "expires_at"),
    [
        (Renewal.ONCE, 30 * DAY, T0 + DAY, T0 + DAY),  # the add-on ends first
        (Renewal.ONCE, DAY, T0 + 30 * DAY, T0 + DAY),  # the quota's validity ends first
        (Renewal.ONCE, 30 * DAY, None, T0 + 30 * DAY),
        (Renewal.ONCE, None, T0 + 7 * DAY, T0 + 7 * DAY),
        (Renewal.ONCE, None, None, None),
        (Renewal.MONTHLY, None, T0 + 45 * DAY, T0 + 45 * DAY),
        (Renewal.DAILY, None, T0 + 3 * DAY, T0 + 3 * DAY),
        (Renewal.MONTHLY, None, None, None),
    ],
)
def test_grant_never_outlives_the_add_on(
    renewal: Renewal,
    validity: timedelta | None,
    ends_at: datetime | None,
    expires_at: datetime | None,
) -> None:
    b = grant("b", definition(renewal=renewal, validity=validity), Precedence.HIGH, ends_at=ends_at)
    assert b.expires_at == expires_at
    if ends_at is not None:
        assert not b.is_active(ends_at)


def test_once_only_quota_expires_after_its_validity() -> None:
    b = grant("b", definition(renewal=Renewal.ONCE, validity=24 * HOUR), now=T0 + HOUR)
    assert b.period_end is None
    assert not b.is_active(T0)
    assert b.is_active(T0 + HOUR)
    assert b.is_active(T0 + 25 * HOUR - timedelta(microseconds=1))
    assert not b.is_active(T0 + 25 * HOUR)
    assert data_order([b], T0 + 25 * HOUR) == []
    assert b.renew(T0 + 10 * DAY) is False


# -- renewal --------------------------------------------------------------------------------


def test_daily_renewal_resets_usage_at_each_period_end() -> None:
    start = T0 + 10 * HOUR
    b = grant("d", definition(renewal=Renewal.DAILY), now=start)
    b.draw(Decimal(60))
    assert b.renew(start + 23 * HOUR) is False
    assert b.used == 60
    assert b.renew(start + DAY) is True
    assert b.used == 0
    assert b.period_end == start + 2 * DAY
    b.draw(Decimal(100))
    assert b.is_exhausted()
    assert b.renew(start + 2 * DAY - timedelta(microseconds=1)) is False
    assert b.is_exhausted()
    assert b.renew(start + 2 * DAY) is True
    assert b.free == 100


def test_several_missed_daily_periods_renew_at_once() -> None:
    b = grant("d", definition(renewal=Renewal.DAILY))
    b.draw(Decimal(60))
    assert b.renew(T0 + 5 * DAY + 3 * HOUR) is True
    assert b.used == 0
    assert b.period_end == T0 + 6 * DAY
    assert b.renew(T0 + 5 * DAY + 4 * HOUR) is False


def test_monthly_renewal_from_the_31st_keeps_the_month_end() -> None:
    start = datetime(2026, 1, 31, 9, tzinfo=UTC)
    b = grant("m", definition(), now=start)
    assert b.period_end == datetime(2026, 2, 28, 9, tzinfo=UTC)
    b.draw(Decimal(40))
    assert b.renew(datetime(2026, 2, 28, 8, tzinfo=UTC)) is False
    assert b.renew(datetime(2026, 2, 28, 9, tzinfo=UTC)) is True
    assert b.used == 0
    # the next period runs to 31 March, not to 28 March
    assert b.period_end == datetime(2026, 3, 31, 9, tzinfo=UTC)
    b.draw(Decimal(70))
    assert b.renew(datetime(2026, 3, 30, tzinfo=UTC)) is False
    assert b.used == 70
    assert b.renew(datetime(2026, 3, 31, 9, tzinfo=UTC)) is True
    assert b.used == 0
    assert b.period_end == datetime(2026, 4, 30, 9, tzinfo=UTC)


def test_a_bucket_knows_when_its_current_period_began() -> None:
    start = datetime(2026, 1, 31, 9, tzinfo=UTC)
    b = grant("m", definition(), now=start)
    assert b.period_start == start
    for now, began in (
        (datetime(2026, 2, 28, 9, tzinfo=UTC), datetime(2026, 2, 28, 9, tzinfo=UTC)),
        (datetime(2026, 4, 2, tzinfo=UTC), datetime(2026, 3, 31, 9, tzinfo=UTC)),
    ):
        b.renew(now)
        assert b.period_start == began


def test_several_missed_monthly_periods_renew_at_once() -> None:
    b = grant("m", definition(), now=datetime(2026, 1, 15, tzinfo=UTC))
    b.draw(Decimal(100))
    assert b.renew(datetime(2026, 5, 20, tzinfo=UTC)) is True
    assert b.used == 0
    assert b.period_end == datetime(2026, 6, 15, tzinfo=UTC)


def test_several_missed_monthly_periods_from_the_31st() -> None:
    b = grant("m", definition(), now=datetime(2026, 1, 31, tzinfo=UTC))
    assert b.renew(datetime(2026, 5, 1, tzinfo=UTC)) is True
    assert b.period_end == datetime(2026, 5, 31, tzinfo=UTC)


def test_renewal_keeps_what_open_sessions_hold() -> None:
    b = grant("d", definition(renewal=Renewal.DAILY))
    b.draw(Decimal(50))
    b.hold(Decimal(30))
    b.renew(T0 + DAY)
    assert (b.used, b.reserved, b.free) == (0, 30, 70)


def test_renewal_stops_at_the_add_on_end() -> None:
    b = grant("m", definition(), Precedence.HIGH, ends_at=T0 + 45 * DAY)  # to 15 February
    b.draw(Decimal(80))
    assert b.renew(T0 + 31 * DAY) is True  # 1 February: a new period inside the add-on
    assert b.period_end == datetime(2026, 3, 1, tzinfo=UTC)
    b.draw(Decimal(30))
    # 1 March is past the add-on's end: no fresh allowance
    assert b.renew(datetime(2026, 3, 5, tzinfo=UTC)) is False
    assert b.used == 30
    assert not b.is_active(datetime(2026, 3, 5, tzinfo=UTC))


def test_daily_renewal_up_to_the_end_and_no_further() -> None:
    b = grant("d", definition(renewal=Renewal.DAILY), Precedence.HIGH, ends_at=T0 + 2 * DAY)
    b.draw(Decimal(10))
    assert b.renew(T0 + 10 * DAY) is True  # the period starting at T0 + 1 day, then stop
    assert b.period_end == T0 + 2 * DAY
    assert b.used == 0
    b.draw(Decimal(5))
    assert b.renew(T0 + 11 * DAY) is False
    assert b.used == 5


# -- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "service", "group", "rating_group", "covered"),
    [
        (QuotaScope(Service.SMS, "DOMESTIC"), Service.SMS, "DOMESTIC", None, True),
        (QuotaScope(Service.SMS, "DOMESTIC"), Service.SMS, "DOMESTIC", 7, True),
        (QuotaScope(Service.SMS, "DOMESTIC"), Service.SMS, "INTERNATIONAL", None, False),
        (QuotaScope(Service.SMS, "DOMESTIC"), Service.SMS, None, None, False),
        (QuotaScope(Service.SMS, "DOMESTIC"), Service.VOICE, "DOMESTIC", None, False),
        (QuotaScope(Service.DATA, rating_group=10), Service.DATA, None, 10, True),
        (QuotaScope(Service.DATA, rating_group=10), Service.DATA, "ANY", 10, True),
        (QuotaScope(Service.DATA, rating_group=10), Service.DATA, None, 20, False),
        (QuotaScope(Service.DATA, rating_group=10), Service.DATA, None, None, False),
        (QuotaScope(Service.DATA, "LOCAL", 10), Service.DATA, "LOCAL", 10, True),
        (QuotaScope(Service.DATA, "LOCAL", 10), Service.DATA, "LOCAL", 11, False),
        (QuotaScope(Service.DATA, "LOCAL", 10), Service.DATA, "OTHER", 10, False),
        (QuotaScope(Service.VOICE), Service.VOICE, "DOMESTIC", None, True),
        (QuotaScope(Service.VOICE), Service.VOICE, "INTERNATIONAL", None, True),
        (QuotaScope(Service.VOICE), Service.VOICE, None, None, True),
        (QuotaScope(Service.VOICE), Service.VOICE, None, 5, True),
        (QuotaScope(Service.VOICE), Service.SMS, None, None, False),
    ],
)
def test_scope_covers(
    scope: QuotaScope, service: Service, group: str | None, rating_group: int | None, covered: bool
) -> None:
    assert scope.covers(service, group, rating_group) is covered


def test_consumption_order_picks_the_buckets_whose_scope_covers_the_usage() -> None:
    domestic = grant(
        "domestic",
        definition("DOM", destination_group="DOMESTIC", service=Service.VOICE, unit=Unit.SECONDS),
        Precedence.HIGH,
    )
    wide = grant("wide", definition("ALL", service=Service.VOICE, unit=Unit.SECONDS))
    portal = grant("portal", definition("RG10", rating_group=10), Precedence.HIGH)
    data = grant("data", definition("DATA"))
    buckets = [domestic, wide, portal, data]
    assert ids(consumption_order(buckets, Service.VOICE, "DOMESTIC", None, T0)) == [
        "domestic",
        "wide",
    ]
    assert ids(consumption_order(buckets, Service.VOICE, "INTERNATIONAL", None, T0)) == ["wide"]
    assert ids(consumption_order(buckets, Service.DATA, None, 10, T0)) == ["portal", "data"]
    assert ids(consumption_order(buckets, Service.DATA, None, 20, T0)) == ["data"]
    assert ids(consumption_order(buckets, Service.SMS, None, None, T0)) == []


# -- hold, settle, draw, give back -------------------------------------------------------


def test_hold_reserves_up_to_the_free_units() -> None:
    b = bucket(allowance=100, used=20)
    assert b.hold(Decimal(30)) == 30
    assert (b.used, b.reserved, b.left, b.free) == (20, 30, 80, 50)
    assert b.hold(Decimal(80)) == 50
    assert (b.reserved, b.free) == (80, 0)
    assert b.hold(Decimal(1)) == 0
    assert not b.is_exhausted()  # held is not used


def test_hold_of_a_negative_amount_is_refused() -> None:
    b = bucket()
    with pytest.raises(InvalidQuota):
        b.hold(Decimal(-1))
    assert b.reserved == 0


@pytest.mark.parametrize(
    ("held", "used", "reserved_after", "used_after", "exhausted"),
    [
        (30, 20, 10, 30, False),  # used less than held
        (30, 30, 10, 40, False),
        (40, 0, 0, 10, False),  # nothing used: all given back
        (40, 90, 0, 100, True),  # used more than held: still counted
        (40, 120, 0, 130, True),  # overuse beyond the allowance
    ],
)
def test_settle_closes_a_hold(
    held: int, used: int, reserved_after: int, used_after: int, exhausted: bool
) -> None:
    b = bucket(allowance=100, used=10, reserved=40)
    b.settle(Decimal(held), Decimal(used))
    assert (b.reserved, b.used) == (reserved_after, used_after)
    assert b.left == max(100 - used_after, 0)
    assert b.free == max(100 - used_after - reserved_after, 0)
    assert b.is_exhausted() is exhausted


@pytest.mark.parametrize(("held", "used"), [(41, 0), (-1, 0), (10, -1)])
def test_settle_refuses_what_is_not_held(held: int, used: int) -> None:
    b = bucket(allowance=100, used=10, reserved=40)
    with pytest.raises(InvalidQuota):
        b.settle(Decimal(held), Decimal(used))
    assert (b.used, b.reserved) == (10, 40)


def test_draw_takes_only_free_units() -> None:
    b = bucket(allowance=100, used=10, reserved=70)
    assert b.draw(Decimal(50)) == 20
    assert (b.used, b.reserved, b.free) == (30, 70, 0)
    assert b.draw(Decimal(5)) == 0
    assert b.used == 30


def test_draw_of_zero_or_a_negative_amount() -> None:
    b = bucket(allowance=100, used=10)
    assert b.draw(Decimal(0)) == 0
    with pytest.raises(InvalidQuota):
        b.draw(Decimal(-5))
    assert b.used == 10


@pytest.mark.parametrize(("refund", "used_after"), [(20, 30), (50, 0), (80, 0), (0, 50)])
def test_give_back_returns_consumed_units(refund: int, used_after: int) -> None:
    b = bucket(allowance=100, used=50)
    b.give_back(Decimal(refund))
    assert b.used == used_after


def test_give_back_of_a_negative_amount_is_refused() -> None:
    b = bucket(allowance=100, used=50)
    with pytest.raises(InvalidQuota):
        b.give_back(Decimal(-10))
    assert b.used == 50


@pytest.mark.parametrize(("allowance", "used", "reserved"), [(-1, 0, 0), (10, -1, 0), (10, 0, -1)])
def test_a_bucket_never_holds_negative_units(allowance: int, used: int, reserved: int) -> None:
    with pytest.raises(InvalidQuota):
        bucket(allowance=allowance, used=used, reserved=reserved)


def test_left_and_free_are_never_negative() -> None:
    b = bucket(allowance=10, used=15, reserved=5)
    assert (b.left, b.free) == (0, 0)
    assert b.is_exhausted()


# -- properties ------------------------------------------------------------------------------

PRECEDENCES = st.one_of(
    st.sampled_from([Precedence.MAIN, Precedence.LOW, Precedence.MEDIUM, Precedence.HIGH]),
    st.integers(min_value=1, max_value=500),
)


@st.composite
def random_bucket(draw: st.DrawFn, index: int) -> QuotaBucket:
    allowance = draw(st.integers(0, 50))
    used = draw(st.integers(0, allowance + 5))
    reserved = draw(st.integers(0, 20))
    expires_in = draw(st.one_of(st.none(), st.integers(-48, 1000)))
    starts_in = draw(st.integers(-1000, 5))
    group = draw(st.sampled_from([None, None, "LOCAL", "ROAMING"]))
    return QuotaBucket(
        id=f"b{index:02d}",
        account_id="acc-1",
        product_code="P",
        scope=QuotaScope(Service.DATA, group),
        unit=Unit.BYTES,
        allowance=Decimal(allowance),
        renewal=Renewal.ONCE,
        precedence=draw(PRECEDENCES),
        valid_from=T0 + starts_in * HOUR,
        expires_at=None if expires_in is None else T0 + expires_in * HOUR,
        used=Decimal(used),
        reserved=Decimal(reserved),
    )


@st.composite
def bucket_sets(draw: st.DrawFn) -> list[QuotaBucket]:
    size = draw(st.integers(0, 8))
    return [draw(random_bucket(i)) for i in range(size)]


def order_rank(b: QuotaBucket) -> tuple[int, datetime]:
    return (-b.precedence, b.expires_at or datetime.max.replace(tzinfo=UTC))


@settings(max_examples=200)
@given(bucket_sets(), st.sampled_from([None, "LOCAL", "ROAMING"]))
def test_consumption_order_is_by_precedence_then_expiry(
    buckets: list[QuotaBucket], group: str | None
) -> None:
    order = consumption_order(buckets, Service.DATA, group, None, T0)
    ranks = [order_rank(b) for b in order]
    assert ranks == sorted(ranks)
    # exactly the active buckets whose scope covers the usage, each once
    expected = {
        b.id
        for b in buckets
        if b.valid_from <= T0
        and (b.expires_at is None or b.expires_at > T0)
        and b.scope.destination_group in (None, group)
    }
    assert sorted(ids(order)) == sorted(expected)


@settings(max_examples=200)
@given(bucket_sets(), st.integers(0, 300))
def test_drawing_in_order_empties_higher_buckets_first(
    buckets: list[QuotaBucket], units: int
) -> None:
    order = consumption_order(buckets, Service.DATA, "LOCAL", None, T0)
    free_before = {b.id: b.free for b in order}
    used_before = {b.id: b.used for b in buckets}
    taken = draw_in_order(order, Decimal(units))

    assert sum(taken.values(), Decimal(0)) == min(
        Decimal(units), sum(free_before.values(), Decimal(0))
    )
    for position, b in enumerate(order):
        assert taken.get(b.id, 0) <= free_before[b.id]
        if taken.get(b.id):
            # nothing was taken from b while a bucket before it still had free units
            assert all(higher.free == 0 for higher in order[:position])
    for b in buckets:  # only what was taken was used, and only from drawn buckets
        assert b.used == used_before[b.id] + taken.get(b.id, 0)


# -- a product changed and back: the ended bucket resumes ------------------------------------


def test_a_bucket_ended_by_a_product_change_resumes_within_its_period() -> None:
    monthly = definition("M", 100)
    ended = grant("basic", monthly)
    ended.used = Decimal(70)
    ended.expires_at = T0 + 9 * DAY  # the change away
    assert ended.resume(definition("M", 120), T0 + 10 * DAY)
    assert (ended.expires_at, ended.used, ended.allowance) == (None, 70, 120)
    assert ended.period_end == T0.replace(month=2)  # the period goes on from 1 January


def test_a_bucket_resumes_neither_past_its_period_nor_for_another_quota() -> None:
    ended = grant("basic", definition("M", 100))
    ended.expires_at = T0 + 9 * DAY
    assert not ended.resume(definition("OTHER", 100), T0 + 10 * DAY)
    assert not ended.resume(definition("M", 100), T0.replace(month=2))
    assert ended.expires_at == T0 + 9 * DAY
    running = grant("basic", definition("M", 100))
    assert not running.resume(definition("M", 100), T0 + DAY)  # not ended


def test_a_once_only_bucket_resumes_until_its_own_validity_ends() -> None:
    bonus = definition("B", 100, renewal=Renewal.ONCE, validity=30 * DAY)
    ended = grant("basic", bonus)
    ended.expires_at = T0 + 9 * DAY
    assert ended.resume(bonus, T0 + 10 * DAY)
    assert ended.expires_at == T0 + 30 * DAY
    ended.expires_at = T0 + 12 * DAY
    assert not ended.resume(bonus, T0 + 30 * DAY)
