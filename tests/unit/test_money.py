"""Money: exact decimal amounts in one currency, rounded only where records are written."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratel.domain.errors import CurrencyMismatch, DomainError, InvalidMoney
from ratel.domain.money import STORAGE_PLACES, Money, RoundingRule, rounding_rule

# -- construction -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("43.25", Decimal("43.25")),
        ("0.00015", Decimal("0.00015")),
        ("-7", Decimal(-7)),
        (" 1.5 ", Decimal("1.5")),
        ("1e2", Decimal(100)),
        (0, Decimal(0)),
        (12, Decimal(12)),
        (-3, Decimal(-3)),
        (Decimal("2.675"), Decimal("2.675")),
        (Decimal("0.1"), Decimal("0.1")),
    ],
)
def test_money_is_built_from_str_int_and_decimal(
    value: str | int | Decimal, expected: Decimal
) -> None:
    money = Money(value, "USD")  # type: ignore[arg-type]
    assert money.amount == expected
    assert isinstance(money.amount, Decimal)
    assert Money.of(value, "USD") == money


def test_a_string_amount_is_exact_not_a_binary_fraction() -> None:
    # 0.1 as a float is 0.1000000000000000055511151231257827...
    assert Money("0.1", "USD").amount == Decimal(1) / Decimal(10)
    assert Money("0.1", "USD") + Money("0.2", "USD") == Money("0.3", "USD")


@pytest.mark.parametrize("value", [0.1, 1.0, 2.675, 0.0, -5.5])
def test_float_is_refused(value: float) -> None:
    with pytest.raises(InvalidMoney):
        Money(value, "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidMoney):
        Money.of(value, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["", "abc", "1,5", "12 USD", "NaN", "Infinity", "-inf", "sNaN", None]
)
def test_not_an_amount_is_refused(value: object) -> None:
    with pytest.raises(InvalidMoney):
        Money(value, "USD")  # type: ignore[arg-type]


def test_invalid_money_is_a_domain_error_and_a_value_error() -> None:
    with pytest.raises(DomainError):
        Money(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money("x", "USD")


@pytest.mark.parametrize("currency", ["USD", "EUR", "JPY", "KWD", "CHF", "XAF"])
def test_iso_currency_codes_are_accepted(currency: str) -> None:
    assert Money("1", currency).currency == currency


@pytest.mark.parametrize(
    "currency",
    ["usd", "Usd", "US", "USDX", "", "US1", "U$D", "12A", " US", "ÉUR", "ДОЛ", None, 840],
)
def test_bad_currency_codes_are_refused(currency: object) -> None:
    with pytest.raises(InvalidMoney):
        Money("1", currency)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity")]
)
def test_a_decimal_that_is_not_a_number_is_refused_too(value: Decimal) -> None:
    # finite Decimals skip the conversion: these must not
    with pytest.raises(InvalidMoney):
        Money(value, "USD")


def test_a_decimal_subclass_becomes_a_plain_decimal() -> None:
    class Exact(Decimal):
        pass

    money = Money(Exact("1.50"), "USD")
    assert type(money.amount) is Decimal and money.amount == Decimal("1.50")


def test_a_code_accepted_once_lets_no_lookalike_through() -> None:
    class Code(str):
        pass

    assert Money(Decimal(1), "GBP").currency == "GBP"  # checked, remembered
    assert Money(Decimal(2), "GBP").currency == "GBP"
    assert Money(Decimal(1), Code("GBP")).currency == "GBP"  # a str: checked
    for bad in ("gbp", "GB", Code("gbp"), b"GBP"):
        with pytest.raises(InvalidMoney):
            Money(Decimal(1), bad)  # type: ignore[arg-type]


def test_zero() -> None:
    zero = Money.zero("EUR")
    assert zero.amount == 0
    assert zero.currency == "EUR"
    assert zero.is_zero()
    assert not zero.is_positive()
    assert not zero.is_negative()


def test_money_is_immutable() -> None:
    money = Money("1", "USD")
    with pytest.raises(AttributeError):
        money.amount = Decimal(2)  # type: ignore[misc]


# -- arithmetic ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        ("10.50", "+", "0.25", "10.75"),
        ("10.50", "-", "0.75", "9.75"),
        ("0", "-", "0.01", "-0.01"),
        ("-1.5", "+", "1.5", "0"),
        ("0.00000001", "+", "0.00000002", "0.00000003"),
    ],
)
def test_addition_and_subtraction(left: str, op: str, right: str, expected: str) -> None:
    a, b = Money(left, "USD"), Money(right, "USD")
    result = a + b if op == "+" else a - b
    assert result == Money(expected, "USD")
    assert result.currency == "USD"


@pytest.mark.parametrize(
    ("amount", "factor", "expected"),
    [
        ("0.00015", 7, "0.00105"),
        ("0.2", 3, "0.6"),
        ("1.10", Decimal("0.5"), "0.55"),
        ("19.99", 0, "0"),
        ("2.5", -2, "-5"),
    ],
)
def test_multiplication_by_an_exact_number(
    amount: str, factor: int | Decimal, expected: str
) -> None:
    money = Money(amount, "USD")
    assert money * factor == Money(expected, "USD")
    assert factor * money == Money(expected, "USD")


def test_internal_precision_keeps_sub_cent_rates_exactly() -> None:
    per_second = Money("0.00015", "USD")
    total = per_second * 7
    assert total.amount == Decimal("0.00105")
    # adding one second at a time gives the same exact figure: nothing rounded on the way
    running = Money.zero("USD")
    for _ in range(7):
        running = running + per_second
    assert running.amount == Decimal("0.00105")


def test_multiplying_by_a_float_or_money_is_refused() -> None:
    money = Money("1", "USD")
    with pytest.raises(TypeError):
        money * 1.5  # type: ignore[operator]
    with pytest.raises(TypeError):
        money * money  # type: ignore[operator]


def test_negation() -> None:
    assert -Money("2.50", "EUR") == Money("-2.50", "EUR")
    assert (-Money("2.50", "EUR")).is_negative()


@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
        lambda a, b: a.min(b),
        lambda a, b: a.max(b),
    ],
    ids=["add", "sub", "lt", "le", "gt", "ge", "min", "max"],
)
def test_two_currencies_never_mix(combine: object) -> None:
    usd, eur = Money("1", "USD"), Money("1", "EUR")
    with pytest.raises(CurrencyMismatch):
        combine(usd, eur)  # type: ignore[operator]


def test_money_does_not_combine_with_plain_numbers() -> None:
    with pytest.raises(TypeError):
        Money("1", "USD") + Decimal(1)  # type: ignore[operator]
    with pytest.raises(TypeError):
        assert Money("1", "USD") < 2  # type: ignore[operator]


# -- comparisons --------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "lt", "eq"),
    [
        ("1.00", "1.01", True, False),
        ("1.01", "1.00", False, False),
        ("1.0", "1.00", False, True),
        ("-0.01", "0", True, False),
        ("100", "99.99999999", False, False),
    ],
)
def test_comparisons(left: str, right: str, lt: bool, eq: bool) -> None:
    a, b = Money(left, "USD"), Money(right, "USD")
    assert (a < b) is lt
    assert (a == b) is eq
    assert (a <= b) is (lt or eq)
    assert (a > b) is (not lt and not eq)
    assert (a >= b) is (not lt)
    assert a.min(b) == (a if lt or eq else b)
    assert a.max(b) == (b if lt else a)


def test_equal_amounts_in_different_currencies_are_not_equal() -> None:
    assert Money("1", "USD") != Money("1", "EUR")
    assert Money("1", "USD") != Decimal(1)


def test_equal_money_hashes_equal_whatever_the_trailing_zeros() -> None:
    assert hash(Money("1.5", "USD")) == hash(Money("1.50000000", "USD"))
    assert len({Money("1.5", "USD"), Money("1.50", "USD"), Money("1.5", "EUR")}) == 2


@pytest.mark.parametrize(
    ("amount", "zero", "positive", "negative"),
    [("0", True, False, False), ("0.00000001", False, True, False), ("-0.01", False, False, True)],
)
def test_sign_predicates(amount: str, zero: bool, positive: bool, negative: bool) -> None:
    money = Money(amount, "USD")
    assert (money.is_zero(), money.is_positive(), money.is_negative()) == (zero, positive, negative)


# -- storage precision -----------------------------------------------------------


def test_storage_keeps_eight_places() -> None:
    assert STORAGE_PLACES == 8


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0.00015", "0.00015000"),
        ("1", "1.00000000"),
        ("0.123456789", "0.12345679"),
        ("0.000000005", "0.00000000"),  # banker's rounding: half to even (0)
        ("0.000000015", "0.00000002"),  # half to even (2)
        ("0.000000025", "0.00000002"),  # half to even (2)
        ("-0.123456785", "-0.12345678"),
        ("100000000000.999999999", "100000000001.00000000"),
    ],
)
def test_stored_quantizes_to_eight_places(amount: str, expected: str) -> None:
    stored = Money(amount, "USD").stored()
    assert stored.amount == Decimal(expected)
    assert stored.amount.as_tuple().exponent == -8
    assert stored.currency == "USD"


# -- rounding for records ---------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.675", "USD", "2.68"),  # half up, not half-even (2.68) nor float (2.67)
        ("2.665", "USD", "2.67"),  # half up where half-even would give 2.66
        ("2.674999", "USD", "2.67"),
        ("-2.675", "USD", "-2.68"),  # half away from zero
        ("43.25", "USD", "43.25"),
        ("43.2", "USD", "43.20"),
        ("0.00105", "EUR", "0.00"),
        ("0.005", "EUR", "0.01"),
        ("1234.5", "JPY", "1235"),
        ("1234.49", "JPY", "1234"),
        ("0.4", "KRW", "0"),
        ("1.2345", "KWD", "1.235"),
        ("1.2344", "KWD", "1.234"),
        ("7", "BHD", "7.000"),
    ],
)
def test_for_record_rounds_by_the_currency_minor_unit(
    amount: str, currency: str, expected: str
) -> None:
    rounded = Money(amount, currency).for_record()
    assert rounded.amount == Decimal(expected)
    # the exponent shows the number of places the record carries
    assert rounded.amount.as_tuple().exponent == Decimal(expected).as_tuple().exponent
    assert rounded.currency == currency


CHF_CASH = {"CHF": RoundingRule(Decimal("0.05"))}


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1.02", "1.00"),
        ("1.025", "1.05"),  # exactly half a step: up
        ("1.03", "1.05"),
        ("1.07", "1.05"),
        ("1.075", "1.10"),
        ("1.08", "1.10"),
        ("19.99", "20.00"),
    ],
)
def test_an_operator_rule_overrides_the_currency_default(amount: str, expected: str) -> None:
    assert Money(amount, "CHF").for_record(CHF_CASH).amount == Decimal(expected)
    assert str(Money(amount, "CHF").for_record(CHF_CASH)) == f"{expected} CHF"


def test_an_override_only_touches_its_own_currency() -> None:
    assert Money("1.02", "CHF").for_record().amount == Decimal("1.02")
    assert Money("1.02", "USD").for_record(CHF_CASH).amount == Decimal("1.02")


def test_a_rule_with_banker_mode() -> None:
    rule = RoundingRule(Decimal("0.01"), ROUND_HALF_EVEN)
    assert rule.apply(Decimal("2.675")) == Decimal("2.68")
    assert rule.apply(Decimal("2.665")) == Decimal("2.66")


@pytest.mark.parametrize(
    ("currency", "quantum"),
    [
        ("USD", "0.01"),
        ("EUR", "0.01"),
        ("ZAR", "0.01"),
        ("JPY", "1"),
        ("KWD", "0.001"),
        ("OMR", "0.001"),
    ],
)
def test_rounding_rule_defaults(currency: str, quantum: str) -> None:
    assert rounding_rule(currency).quantum == Decimal(quantum)
    assert rounding_rule(currency, {}).quantum == Decimal(quantum)
    assert rounding_rule(currency, CHF_CASH).quantum == Decimal(quantum)


def test_rounding_rule_override() -> None:
    assert rounding_rule("CHF", CHF_CASH).quantum == Decimal("0.05")


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("43.25", "USD", "43.25 USD"),
        ("43.249", "USD", "43.25 USD"),
        ("43.2", "USD", "43.20 USD"),
        ("5", "USD", "5.00 USD"),
        ("1E+2", "USD", "100.00 USD"),
        ("-0.5", "EUR", "-0.50 EUR"),
        ("1500.6", "JPY", "1501 JPY"),
        ("2.5", "KWD", "2.500 KWD"),
    ],
)
def test_display(amount: str, currency: str, text: str) -> None:
    assert Money(amount, currency).display() == text


def test_str_shows_the_exact_amount_without_exponent() -> None:
    assert str(Money("0.00105", "USD")) == "0.00105 USD"
    assert str(Money("1E+3", "JPY")) == "1000 JPY"


# -- properties ---------------------------------------------------------------------

# 12 integer digits and 8 places: every sum of three stays within Decimal's 28 digits
amounts = st.decimals(
    min_value=Decimal("-999999999999.99999999"),
    max_value=Decimal("999999999999.99999999"),
    places=8,
    allow_nan=False,
    allow_infinity=False,
)
currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD", "CHF"])


@settings(max_examples=200)
@given(amounts, amounts, amounts)
def test_addition_is_associative_commutative_and_exact(a: Decimal, b: Decimal, c: Decimal) -> None:
    x, y, z = Money(a, "USD"), Money(b, "USD"), Money(c, "USD")
    assert (x + y) + z == x + (y + z)
    assert x + y == y + x
    assert (x + y).amount == a + b
    assert (x + y) - y == x
    assert x - x == Money.zero("USD")


@settings(max_examples=200)
@given(amounts, currencies)
def test_stored_is_idempotent(a: Decimal, currency: str) -> None:
    once = Money(a, currency).stored()
    assert once.stored() == once
    assert abs(once.amount - a) <= Decimal("0.000000005")


@settings(max_examples=200)
@given(amounts, currencies, st.booleans())
def test_for_record_never_moves_by_more_than_half_a_quantum(
    a: Decimal, currency: str, swiss_cash: bool
) -> None:
    overrides = CHF_CASH if swiss_cash else None
    quantum = rounding_rule(currency, overrides).quantum
    rounded = Money(a, currency).for_record(overrides)
    assert abs(rounded.amount - a) <= quantum / 2
    # the result is a whole number of quanta, and rounding it again changes nothing
    assert rounded.amount % quantum == 0
    assert rounded.for_record(overrides) == rounded


# -- the unchecked fast paths give what the checked constructor gives -------------


class _Cents(Money):
    """A Money subclass: arithmetic on it takes the checked path."""


@settings(max_examples=200)
@given(amounts, amounts, currencies)
def test_arithmetic_results_are_plain_checked_money(a: Decimal, b: Decimal, currency: str) -> None:
    x, y = Money(a, currency), Money(b, currency)
    for result, expected in (
        (x + y, a + b),
        (x - y, a - b),
        (-x, -a),
        (x.stored(), a.quantize(Decimal(1).scaleb(-STORAGE_PLACES), rounding=ROUND_HALF_EVEN)),
    ):
        assert type(result) is Money
        assert type(result.amount) is Decimal
        assert result.amount.is_finite()
        assert result == Money(expected, currency)
        assert hash(result) == hash(Money(expected, currency))
        assert repr(result) == repr(Money(expected, currency))
        with pytest.raises(AttributeError):
            result.amount = Decimal(1)  # type: ignore[misc]


def test_the_fast_paths_still_refuse_what_the_checks_refuse() -> None:
    usd = Money.of("1", "USD")
    with pytest.raises(CurrencyMismatch):
        usd + Money.of("1", "EUR")
    with pytest.raises(CurrencyMismatch):
        usd - Money.of("1", "EUR")
    with pytest.raises(TypeError):
        usd + Decimal(1)  # type: ignore[operator]
    with pytest.raises(InvalidMoney):
        Money.zero("usd")
    with pytest.raises(InvalidMoney):
        Money.zero("ÉUR")
    assert type(Money.zero("USD").amount) is Decimal
    assert Money.zero("USD") == Money.of(0, "USD")
    # a subclass and a plain Money still combine (through the checked path)
    assert usd + _Cents(Decimal(2), "USD") == Money.of("3", "USD")
    assert _Cents(Decimal(2), "USD") - usd == Money.of("1", "USD")
    assert type(_Cents.zero("USD")) is _Cents
