"""Rating and charging arithmetic checked against the mission's examples and
brute force: prefixes, affordable units, rounding, consumption order."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rating_support import (
    LOCAL,
    MIB,
    NOW,
    USSD,
    World,
    call,
    data,
    default_tariffs,
    grant_of,
    unit_bucket,
    usd,
)

from ratel.domain.catalogue import Service, Unit, UsageCharge
from ratel.domain.charging import Rater, UsageRequest
from ratel.domain.money import Money, RoundingRule
from ratel.domain.rating import (
    DestinationGroup,
    DialingPlan,
    DialingRule,
    PrefixTrie,
    Rate,
    Tariff,
)


def ussd(used: int = 0, requested: int | None = 20) -> UsageRequest:
    return UsageRequest(
        Service.USSD,
        Unit.SECONDS,
        UsageCharge.ussd_access_code(120),
        service_identifier=120,
        requested=requested,
        used=used,
    )


def test_ussd_45_second_session_is_three_intervals() -> None:
    w = World(balance="10")
    s = w.session()
    assert grant_of(s.reserve(w.ctx(), 0, [ussd()], NOW)).units == 20
    s.report(w.ctx(), 1, [ussd(used=20)], NOW + timedelta(seconds=20))
    s.report(w.ctx(), 2, [ussd(used=20)], NOW + timedelta(seconds=40))
    end = s.terminate(w.ctx(), 3, [ussd(used=5, requested=None)], NOW + timedelta(seconds=45))
    assert end.xdr is not None and end.xdr.charge == usd("0.6")
    assert w.balance == usd("9.4")
    assert end.xdr.lines[0].ledger_code == USSD.ledger_code


def test_ussd_one_step_request_is_one_interval() -> None:
    w = World(balance="10")
    s = w.session()
    answer = s.debit_event(w.ctx(), 0, ussd(requested=1), NOW)
    assert answer.xdr is not None and answer.xdr.charge == usd("0.2")
    assert w.balance == usd("9.8")


def test_411_translates_and_rates_on_the_longest_prefix() -> None:
    tariffs = default_tariffs()
    voice = Tariff("VOICE-STD", "USD")
    g120 = DestinationGroup("G120", "120", "1")
    g1205 = DestinationGroup("G1205", "1205", "2")
    voice.add_prefix("120", Rate.per_interval(usd("1"), 60), g120)
    voice.add_prefix("1205", Rate.per_interval(usd("0.10"), 60), g1205)
    voice.add_prefix("12055", Rate.per_interval(usd("0.20"), 60), LOCAL)
    tariffs["VOICE-STD"] = voice
    plan = DialingPlan([DialingRule("411", "12055576061", exact=True), DialingRule("4", "999")])
    assert plan.translate("411") == "12055576061"
    assert plan.translate("4110") == "999110"
    w = World(tariffs=tariffs, dialing=plan)
    assert w.rater.rate(call("411")).destination == "12055"
    assert w.rater.rate(call("12056")).destination == "1205"
    assert w.rater.rate(call("1209")).destination == "120"
    assert w.rater.rate(call("+1 205-600")).destination == "1205"


def test_prefix_trie_longest_match_brute_force() -> None:
    trie: PrefixTrie[str] = PrefixTrie()
    prefixes = ["1", "12", "120", "1205", "44", "447", "4477"]
    for p in prefixes:
        trie.insert(p, p)
    for key in ["1", "13", "1204", "12059", "4", "44", "4470", "44779", "5"]:
        best = max((p for p in prefixes if key.startswith(p)), key=len, default=None)
        got = trie.longest_match(key)
        assert (got[1] if got else None) == best


@settings(max_examples=300, deadline=None)
@given(
    fee=st.integers(0, 30),
    first_price=st.integers(0, 30),
    next_price=st.integers(0, 30),
    first=st.integers(1, 7),
    nxt=st.integers(1, 7),
    free=st.integers(0, 6),
    already=st.integers(0, 25),
    funds=st.integers(-5, 120),
    requested=st.integers(0, 25),
)
def test_units_affordable_is_the_largest_affordable(
    fee: int,
    first_price: int,
    next_price: int,
    first: int,
    nxt: int,
    free: int,
    already: int,
    funds: int,
    requested: int,
) -> None:
    cents = Decimal("0.01")
    rate = Rate(
        usd(first_price * cents), first, nxt, usd(next_price * cents), usd(fee * cents), free
    )
    budget = usd(funds * cents)
    got = rate.units_affordable(already, budget, requested)
    best = max((u for u in range(requested + 1) if rate.increment(already, u) <= budget), default=0)
    assert got == best


@settings(max_examples=60, deadline=None)
@given(reports=st.lists(st.integers(0, 200), min_size=1, max_size=10))
def test_many_small_reports_cost_what_one_report_costs(reports: list[int]) -> None:
    total = sum(reports)
    one = World(balance="100")
    s1 = one.session()
    s1.reserve(one.ctx(), 0, [call(requested=30)], NOW)
    end1 = s1.terminate(one.ctx(), 1, [call(used=total)], NOW)
    many = World(balance="100")
    s2 = many.session()
    s2.reserve(many.ctx(), 0, [call(requested=30)], NOW)
    for n, used in enumerate(reports[:-1], 1):
        s2.report(many.ctx(), n, [call(requested=30, used=used)], NOW)
    end2 = s2.terminate(many.ctx(), len(reports), [call(used=reports[-1])], NOW)
    assert end1.xdr is not None and end2.xdr is not None
    assert (
        end1.xdr.charge
        == end2.xdr.charge
        == Rate.per_interval(usd("0.10"), 60, connection_fee=usd("0.05")).cost(total).for_record()
    )
    assert one.balance == many.balance == usd(100) - end1.xdr.charge
    assert many.customer.wallet.reserved == usd(0)


def test_unused_grant_is_released_and_free_rating_group_is_free() -> None:
    w = World(balance="1")
    s = w.session()
    grant_of(s.reserve(w.ctx(), 0, [data(requested=50 * MIB)], NOW))
    assert w.customer.wallet.reserved == usd("0.5")
    end = s.terminate(w.ctx(), 1, [data(used=0)], NOW)
    assert end.xdr is not None and end.xdr.charge == usd(0)
    assert w.customer.wallet.reserved == usd(0) and w.balance == usd(1)


def test_seconds_quota_then_per_minute_money() -> None:
    bucket = unit_bucket("mins", Service.VOICE, Unit.SECONDS, 100)
    w = World(balance="10", buckets=[bucket])
    s = w.session()
    s.reserve(w.ctx(), 0, [call(requested=300)], NOW)
    end = s.terminate(w.ctx(), 1, [call(used=130)], NOW)
    # 100 s from the quota, 30 s of money: connection fee + one started minute
    assert bucket.used == 100
    assert end.xdr is not None and end.xdr.charge == usd("0.15")
    assert w.balance == usd("9.85")


@pytest.mark.parametrize(
    ("amount", "currency", "rule", "expected"),
    [
        ("0.005", "USD", None, "0.01"),
        ("0.0049", "USD", None, "0.00"),
        ("-0.005", "USD", None, "-0.01"),
        ("12.5", "JPY", None, "13"),
        ("1.0005", "KWD", None, "1.001"),
        ("1.024", "CHF", RoundingRule(Decimal("0.05")), "1.00"),
        ("1.025", "CHF", RoundingRule(Decimal("0.05")), "1.05"),
    ],
)
def test_record_rounding(
    amount: str, currency: str, rule: RoundingRule | None, expected: str
) -> None:
    overrides = {currency: rule} if rule else None
    assert Money.of(amount, currency).for_record(overrides) == Money.of(expected, currency)


def test_add_on_tariff_wins_over_main_product() -> None:
    from ratel.domain.catalogue import Precedence, Product, ProductKind

    tariffs = default_tariffs()
    cheap = Tariff("VOICE-CHEAP", "USD")
    cheap.add_prefix("1", Rate.per_interval(usd("0.01"), 60), LOCAL)
    tariffs["VOICE-CHEAP"] = cheap
    addon = Product(
        code="CHEAP",
        name="Cheap calls",
        kind=ProductKind.ADDON,
        precedence=Precedence.HIGH,
        usage_charges=(UsageCharge("VOICE", "VOICE-CHEAP"),),
    )
    w = World(tariffs=tariffs)
    rater = Rater((w.main, addon), tariffs)
    assert rater.rate(call()).rate.price_first == usd("0.01")
