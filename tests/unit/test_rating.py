"""Rating: rates, prefix matching, tariffs and dialing plans."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratel.domain.errors import CurrencyMismatch, InvalidCatalogue, RatingFailed
from ratel.domain.money import Money
from ratel.domain.rating import (
    DestinationGroup,
    DialingPlan,
    DialingRule,
    PrefixTrie,
    Rate,
    RatedDestination,
    Tariff,
    normalize_number,
)

MIB = 1024 * 1024


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


USSD_RATE = Rate.per_interval(usd("0.2"), 20)
PER_SECOND = Rate.per_interval(usd("0.00015"), 1)
DATA_RATE = Rate.per_interval(usd("0.01"), MIB)
# 0.05 connection fee, 0.10 for the first 30 s, 0.02 per 6 s after, 10 free seconds.
SPLIT_RATE = Rate(
    price_first=usd("0.10"),
    first_interval=30,
    next_interval=6,
    price_next=usd("0.02"),
    connection_fee=usd("0.05"),
    free_units=10,
)
MINUTE_RATE = Rate.per_interval(usd("0.12"), 60, connection_fee=usd("0.30"))

LOCAL = DestinationGroup("LOCAL", "Local calls", "400000001")
INTERNATIONAL = DestinationGroup("INTERNATIONAL", "International calls", "400000002")
WHOLESALE = DestinationGroup("WHOLESALE", "Wholesale calls", "400000003")
USSD = DestinationGroup("USSD", "USSD sessions", "400000001")


# --- Rate.cost ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "units", "expected"),
    [
        # The mission's USSD facts: 0.2 per 20-second interval.
        (USSD_RATE, 45, "0.6"),
        (USSD_RATE, 20, "0.2"),
        (USSD_RATE, 21, "0.4"),
        (USSD_RATE, 1, "0.2"),
        (USSD_RATE, 40, "0.4"),
        (USSD_RATE, 0, "0"),
        # Per-second rating keeps full precision.
        (PER_SECOND, 7, "0.00105"),
        (PER_SECOND, 1, "0.00015"),
        (PER_SECOND, 3600, "0.54"),
        # Data per started MiB.
        (DATA_RATE, MIB + MIB // 2, "0.02"),
        (DATA_RATE, MIB, "0.01"),
        (DATA_RATE, 1, "0.01"),
        (DATA_RATE, 10 * MIB + 1, "0.11"),
        # 60/60 with a connection fee.
        (MINUTE_RATE, 1, "0.42"),
        (MINUTE_RATE, 60, "0.42"),
        (MINUTE_RATE, 61, "0.54"),
        (MINUTE_RATE, 0, "0"),
        # 30/6, 10 free seconds, connection fee.
        (SPLIT_RATE, 0, "0"),
        (SPLIT_RATE, 10, "0"),  # all free: no connection fee either
        (SPLIT_RATE, 11, "0.15"),
        (SPLIT_RATE, 40, "0.15"),  # 30 billable seconds: the first interval
        (SPLIT_RATE, 41, "0.17"),
        (SPLIT_RATE, 46, "0.17"),
        (SPLIT_RATE, 47, "0.19"),
    ],
)
def test_cost(rate: Rate, units: int, expected: str) -> None:
    assert rate.cost(units) == usd(expected)


def test_per_second_cost_is_not_rounded() -> None:
    assert PER_SECOND.cost(7).amount == Decimal("0.00105")
    assert str(PER_SECOND.cost(7)) == "0.00105 USD"


def test_different_first_and_next_prices() -> None:
    rate = Rate(
        price_first=usd("1"),
        first_interval=60,
        next_interval=1,
        price_next=usd("0.01"),
        connection_fee=Money.zero("USD"),
    )
    assert rate.cost(60) == usd("1")
    assert rate.cost(75) == usd("1.15")


@pytest.mark.parametrize(
    ("events", "expected"),
    [(0, "0"), (1, "0.2"), (2, "0.4"), (5, "1.0")],
)
def test_event_cost_of_ussd_one_step_requests(events: int, expected: str) -> None:
    assert USSD_RATE.event_cost(events) == usd(expected)


def test_event_cost_defaults_to_one_event() -> None:
    assert USSD_RATE.event_cost() == usd("0.2")


def test_event_cost_charges_the_connection_fee_once_and_ignores_free_units() -> None:
    # 0.05 fee + 0.10 first + 2 * 0.02 next
    assert SPLIT_RATE.event_cost(3) == usd("0.19")


def test_per_interval_defaults() -> None:
    rate = Rate.per_interval(usd("0.5"), 30, first_interval=60, free_units=5)
    assert rate.first_interval == 60
    assert rate.next_interval == 30
    assert rate.price_first == rate.price_next == usd("0.5")
    assert rate.connection_fee == Money.zero("USD")
    assert rate.free_units == 5
    assert rate.currency == "USD"


@pytest.mark.parametrize("method", ["cost", "event_cost"])
def test_negative_units_are_refused(method: str) -> None:
    with pytest.raises(ValueError):
        getattr(USSD_RATE, method)(-1)


# --- Rate.increment: interim reports -------------------------------------------


def test_interim_increments_charge_the_connection_fee_once() -> None:
    charged = [MINUTE_RATE.increment(used, 30) for used in range(0, 120, 30)]
    assert charged == [usd("0.42"), usd("0"), usd("0.12"), usd("0")]
    assert sum(charged, Money.zero("USD")) == MINUTE_RATE.cost(120)


def test_increment_within_free_units_is_free() -> None:
    assert SPLIT_RATE.increment(0, 10) == Money.zero("USD")
    assert SPLIT_RATE.increment(10, 1) == usd("0.15")
    assert SPLIT_RATE.increment(5, 36) == usd("0.17")


def test_ussd_session_reported_in_parts_costs_the_same() -> None:
    assert USSD_RATE.increment(0, 15) + USSD_RATE.increment(15, 30) == usd("0.6")


RATES = [USSD_RATE, PER_SECOND, DATA_RATE, SPLIT_RATE, MINUTE_RATE]

rates = st.sampled_from(RATES)


@st.composite
def generated_rates(draw: st.DrawFn) -> Rate:
    price = st.decimals(min_value=0, max_value=10, places=5)
    return Rate(
        price_first=usd(str(draw(price))),
        first_interval=draw(st.integers(1, 120)),
        next_interval=draw(st.integers(1, 120)),
        price_next=usd(str(draw(price))),
        connection_fee=usd(str(draw(price))),
        free_units=draw(st.integers(0, 100)),
    )


any_rate = st.one_of(rates, generated_rates())


@given(rate=any_rate, parts=st.lists(st.integers(0, 500), max_size=20))
def test_increments_over_any_split_sum_to_the_session_cost(rate: Rate, parts: list[int]) -> None:
    used = 0
    charged = Money.zero("USD")
    for part in parts:
        charged += rate.increment(used, part)
        used += part
    assert charged == rate.cost(used)


@given(rate=any_rate, units=st.integers(0, 10_000), more=st.integers(0, 1_000))
def test_cost_is_monotone(rate: Rate, units: int, more: int) -> None:
    assert rate.cost(units) <= rate.cost(units + more)
    assert not rate.increment(units, more).is_negative()


@given(rate=any_rate, units=st.integers(0, 10_000))
def test_cost_matches_counting_intervals(rate: Rate, units: int) -> None:
    billable = units - rate.free_units
    if billable <= 0:
        expected = Money.zero("USD")
    else:
        next_intervals = 0
        covered = rate.first_interval
        while covered < billable:
            covered += rate.next_interval
            next_intervals += 1
        expected = rate.connection_fee + rate.price_first + rate.price_next * next_intervals
    assert rate.cost(units) == expected


# --- Rate.units_affordable -------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "already", "funds", "requested", "expected"),
    [
        (USSD_RATE, 0, "0.6", 100, 60),
        (USSD_RATE, 0, "0.59", 100, 40),
        (USSD_RATE, 0, "0.19", 100, 0),
        (USSD_RATE, 0, "10", 100, 100),
        (USSD_RATE, 5, "0.2", 100, 35),  # 0-20 already paid, one more interval
        (USSD_RATE, 20, "0", 100, 0),
        (USSD_RATE, 15, "0", 100, 5),  # the rest of a paid interval is free
        (PER_SECOND, 0, "0.00105", 3600, 7),
        (PER_SECOND, 0, "0", 3600, 0),
        (DATA_RATE, 0, "0.02", 10 * MIB, 2 * MIB),
        (MINUTE_RATE, 0, "0.41", 600, 0),
        (MINUTE_RATE, 0, "0.42", 600, 60),
        (MINUTE_RATE, 0, "0.66", 600, 180),
        (SPLIT_RATE, 0, "0.14", 600, 10),  # only the free seconds
        (SPLIT_RATE, 0, "0.15", 600, 40),
        (SPLIT_RATE, 0, "0.21", 600, 58),
        (SPLIT_RATE, 3, "0.14", 600, 7),
        (USSD_RATE, 0, "-1", 100, 0),
    ],
)
def test_units_affordable(
    rate: Rate, already: int, funds: str, requested: int, expected: int
) -> None:
    assert rate.units_affordable(already, usd(funds), requested) == expected


def test_units_affordable_with_a_free_next_interval_grants_everything() -> None:
    rate = Rate.per_interval(usd("0"), 60, connection_fee=usd("0.5"))
    assert rate.units_affordable(0, usd("0.5"), 10**9) == 10**9
    assert rate.units_affordable(0, usd("0.49"), 10**9) == 0


def test_units_affordable_refuses_another_currency() -> None:
    with pytest.raises(CurrencyMismatch):
        USSD_RATE.units_affordable(0, Money.of("1", "EUR"), 10)


@given(
    rate=any_rate,
    already=st.integers(0, 5_000),
    funds=st.decimals(min_value=0, max_value=50, places=5),
    requested=st.integers(0, 5_000),
)
def test_units_affordable_is_the_largest_affordable(
    rate: Rate, already: int, funds: Decimal, requested: int
) -> None:
    money = usd(str(funds))
    units = rate.units_affordable(already, money, requested)
    assert 0 <= units <= requested
    assert rate.increment(already, units) <= money
    assert units == requested or rate.increment(already, units + 1) > money


# --- invalid rates -----------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"price_first": usd("-0.01")},
        {"price_next": usd("-1")},
        {"connection_fee": usd("-0.5")},
        {"first_interval": 0},
        {"next_interval": 0},
        {"first_interval": -60},
        {"free_units": -1},
        {"first_interval": True},
        {"price_next": Money.of("0.2", "EUR")},
        {"connection_fee": Money.of("0", "EUR")},
    ],
    ids=repr,
)
def test_invalid_rates_are_refused(fields: dict[str, object]) -> None:
    base: dict[str, object] = {
        "price_first": usd("0.2"),
        "first_interval": 20,
        "next_interval": 20,
        "price_next": usd("0.2"),
        "connection_fee": usd("0"),
        "free_units": 0,
    }
    with pytest.raises(InvalidCatalogue):
        Rate(**{**base, **fields})  # type: ignore[arg-type]


def test_per_interval_refuses_a_zero_interval() -> None:
    with pytest.raises(InvalidCatalogue):
        Rate.per_interval(usd("0.2"), 0)


# --- PrefixTrie ----------------------------------------------------------------


def test_trie_longest_match() -> None:
    trie: PrefixTrie[str] = PrefixTrie()
    for prefix in ("1", "1205", "12055", "44", "447"):
        trie.insert(prefix, f"rate-{prefix}")
    assert len(trie) == 5
    assert trie.longest_match("12055576061") == ("12055", "rate-12055")
    assert trie.longest_match("12056") == ("1205", "rate-1205")
    assert trie.longest_match("1999") == ("1", "rate-1")
    assert trie.longest_match("447700900123") == ("447", "rate-447")
    assert trie.longest_match("442079460000") == ("44", "rate-44")
    assert trie.longest_match("4") is None
    assert trie.longest_match("33123") is None
    assert trie.longest_match("") is None


def test_trie_insert_replaces_and_keeps_count() -> None:
    trie: PrefixTrie[int] = PrefixTrie()
    trie.insert("12", 1)
    trie.insert("12", 2)
    assert len(trie) == 1
    assert trie.get("12") == 2
    assert trie.get("1") is None
    assert "12" in trie
    assert "1" not in trie
    assert 12 not in trie


def test_trie_empty_prefix_matches_everything() -> None:
    trie: PrefixTrie[str] = PrefixTrie()
    trie.insert("", "default")
    trie.insert("9", "nine")
    assert trie.longest_match("123") == ("", "default")
    assert trie.longest_match("98") == ("9", "nine")


def test_trie_items_in_order() -> None:
    trie: PrefixTrie[int] = PrefixTrie()
    for value, prefix in enumerate(("9", "12", "1", "120")):
        trie.insert(prefix, value)
    assert list(trie.items()) == [("1", 2), ("12", 1), ("120", 3), ("9", 0)]


@given(
    prefixes=st.dictionaries(
        st.text(alphabet="0123", min_size=1, max_size=6), st.integers(), max_size=60
    ),
    keys=st.lists(st.text(alphabet="01234", max_size=10), max_size=30),
)
def test_trie_agrees_with_a_brute_force_scan(prefixes: dict[str, int], keys: list[str]) -> None:
    trie: PrefixTrie[int] = PrefixTrie()
    for prefix, value in prefixes.items():
        trie.insert(prefix, value)
    assert len(trie) == len(prefixes)
    assert dict(trie.items()) == prefixes
    for key in [*keys, *prefixes]:
        candidates = [prefix for prefix in prefixes if key.startswith(prefix)]
        expected = None
        if candidates:
            longest = max(candidates, key=len)
            expected = (longest, prefixes[longest])
        assert trie.longest_match(key) == expected


# --- Tariff --------------------------------------------------------------------


def build_tariff() -> Tariff:
    tariff = Tariff("VOICE-STD", "USD", "Standard voice")
    tariff.add_prefix("1", Rate.per_interval(usd("0.05"), 60), INTERNATIONAL)
    tariff.add_prefix("1205", Rate.per_interval(usd("0.02"), 60), LOCAL)
    tariff.add_prefix("+12055", Rate.per_interval(usd("0.01"), 60), LOCAL)
    tariff.add_prefix("44", Rate.per_interval(usd("0.10"), 60), INTERNATIONAL)
    tariff.add_prefix("447", Rate.per_interval(usd("0.25"), 60), WHOLESALE)
    tariff.add_custom("*101#", USSD_RATE, USSD)
    tariff.add_custom("*102*3#", Rate.per_interval(usd("0.3"), 20), USSD)
    tariff.add_custom("OUTGOING.SI120", USSD_RATE, USSD)
    tariff.add_custom("DATA", DATA_RATE)
    return tariff


@pytest.mark.parametrize(
    ("destination", "matched", "group"),
    [
        ("12055576061", "12055", LOCAL),
        ("+12055576061", "12055", LOCAL),
        ("+1 205-557-6061", "12055", LOCAL),
        ("12065550100", "1", INTERNATIONAL),
        ("12050000000", "1205", LOCAL),
        ("447700900123", "447", WHOLESALE),
        ("442079460000", "44", INTERNATIONAL),
        ("*101#", "*101#", USSD),
        ("*102*3#", "*102*3#", USSD),
        ("OUTGOING.SI120", "OUTGOING.SI120", USSD),
        ("DATA", "DATA", None),
    ],
)
def test_rate_for(destination: str, matched: str, group: DestinationGroup | None) -> None:
    rated = build_tariff().rate_for(destination)
    assert rated.destination == matched
    assert rated.group == group


def test_rate_for_returns_the_rate_and_ledger_code() -> None:
    tariff = build_tariff()
    rated = tariff.rate_for("12055576061")
    assert rated.rate.cost(61) == usd("0.02")
    assert rated.group is not None
    assert rated.group.ledger_code == "400000001"
    assert tariff.rate_for("447700900123").group == WHOLESALE
    assert WHOLESALE.ledger_code == "400000003"
    assert tariff.rate_for("*101#").rate.cost(45) == usd("0.6")


@pytest.mark.parametrize(
    "destination",
    [
        "33123456789",
        "0044123",  # "00" is the dialing plan's job, not the tariff's
        "*101",
        "*101#1",
        "*103#",
        "OUTGOING.SI121",
        "outgoing.si120",
        "",
        "abc",
        "4",
        "\uff11\uff12\uff10\uff15",  # full-width digits are not E.164 digits
    ],
)
def test_rate_for_without_a_match_fails(destination: str) -> None:
    with pytest.raises(RatingFailed):
        build_tariff().rate_for(destination)


@pytest.mark.parametrize("prefix", ["", "+", "12a", "1 2", "*101#", "\u0661\u0662"])
def test_add_prefix_refuses_non_digits(prefix: str) -> None:
    with pytest.raises(InvalidCatalogue):
        Tariff("T", "USD").add_prefix(prefix, USSD_RATE)


@pytest.mark.parametrize(("code", "currency"), [("", "USD"), ("T", "usd"), ("T", "DOLLAR")])
def test_tariff_needs_a_code_and_a_currency(code: str, currency: str) -> None:
    with pytest.raises(InvalidCatalogue):
        Tariff(code, currency)


def test_tariff_refuses_another_currency() -> None:
    tariff = Tariff("T", "EUR")
    with pytest.raises(InvalidCatalogue):
        tariff.add_prefix("44", USSD_RATE)
    with pytest.raises(InvalidCatalogue):
        tariff.add_custom("*101#", USSD_RATE)


def test_tariff_refuses_duplicates_and_blank_custom_destinations() -> None:
    tariff = build_tariff()
    with pytest.raises(InvalidCatalogue):
        tariff.add_prefix("+44", USSD_RATE)
    with pytest.raises(InvalidCatalogue):
        tariff.add_custom("*101#", USSD_RATE)
    for blank in ("", " *101#"):
        with pytest.raises(InvalidCatalogue):
            tariff.add_custom(blank, USSD_RATE)


def test_custom_destination_wins_over_a_prefix() -> None:
    tariff = Tariff("T", "USD")
    tariff.add_prefix("4", PER_SECOND)
    tariff.add_custom("411", USSD_RATE)
    assert tariff.rate_for("411").rate == USSD_RATE
    assert tariff.rate_for("4111").rate == PER_SECOND


def test_tariff_entries_for_persistence() -> None:
    tariff = build_tariff()
    assert tariff.code == "VOICE-STD"
    assert tariff.currency == "USD"
    assert tariff.name == "Standard voice"
    assert len(tariff) == 9
    assert [e.destination for e in tariff.custom_entries()] == [
        "*101#",
        "*102*3#",
        "OUTGOING.SI120",
        "DATA",
    ]
    assert [e.destination for e in tariff.prefix_entries()] == ["1", "1205", "12055", "44", "447"]
    assert tariff.entries() == tariff.custom_entries() + tariff.prefix_entries()
    assert RatedDestination("447", tariff.rate_for("4478").rate, WHOLESALE) in tariff.entries()
    # Rebuilding from the entries gives the same answers.
    copy = Tariff(tariff.code, tariff.currency, tariff.name)
    for entry in tariff.custom_entries():
        copy.add_custom(entry.destination, entry.rate, entry.group)
    for entry in tariff.prefix_entries():
        copy.add_prefix(entry.destination, entry.rate, entry.group)
    assert copy.entries() == tariff.entries()


@pytest.mark.parametrize(
    ("number", "normalized"),
    [("+1 205-557-6061", "12055576061"), ("0044 20", "004420"), ("12", "12")],
)
def test_normalize_number(number: str, normalized: str) -> None:
    assert normalize_number(number) == normalized


# --- DialingPlan ---------------------------------------------------------------


PLAN = DialingPlan(
    [
        DialingRule("411", "12055576061", exact=True),
        DialingRule("00", ""),
        DialingRule("0", "44"),
        DialingRule("1", "11"),
        DialingRule("*100#", "*101#", exact=True),
    ]
)


@pytest.mark.parametrize(
    ("dialed", "translated"),
    [
        ("411", "12055576061"),
        ("4111", "4111"),  # exact rules match the whole number only
        ("0044207946", "44207946"),  # longest prefix rule: "00", not "0"
        ("02079460000", "442079460000"),
        ("123", "1123"),  # applied once: "1" -> "11" does not loop
        ("*100#", "*101#"),
        ("33123", "33123"),
        ("", ""),
    ],
)
def test_dialing_plan_translate(dialed: str, translated: str) -> None:
    assert PLAN.translate(dialed) == translated


def test_dialing_then_rating() -> None:
    assert build_tariff().rate_for(PLAN.translate("411")).destination == "12055"


def test_dialing_plan_refuses_ambiguous_rules() -> None:
    with pytest.raises(InvalidCatalogue):
        DialingPlan([DialingRule("0", "44"), DialingRule("0", "33")])
    with pytest.raises(InvalidCatalogue):
        DialingPlan([DialingRule("411", "1", exact=True), DialingRule("411", "2", exact=True)])
    with pytest.raises(InvalidCatalogue):
        DialingRule("", "44")


def test_dialing_plan_keeps_its_rules() -> None:
    assert len(PLAN.rules) == 5
    assert DialingPlan([]).translate("0044") == "0044"
