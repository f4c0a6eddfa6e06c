"""Money: an exact Decimal amount with an ISO 4217 currency.

Arithmetic keeps full precision and only ever mixes amounts of one currency.
Rounding happens in two named places only:

* ``Money.stored()`` quantizes to ``STORAGE_PLACES`` decimal places: balances,
  reservations and rates are kept at this precision (rates such as 0.00015 per
  second exist, so at least 6 places are needed; we keep 8).
* ``Money.for_record()`` applies the currency's rounding rule when a record
  that people read is written (an xDR, an invoice line).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from ratel.domain.errors import CurrencyMismatch, InvalidMoney

STORAGE_PLACES: Final = 8
_STORAGE_QUANTUM: Final = Decimal(1).scaleb(-STORAGE_PLACES)


@dataclass(frozen=True, slots=True)
class RoundingRule:
    """How amounts of one currency are rounded on records: the smallest step
    (0.01 for cents, 0.05 for Swiss cash rounding, 1 for yen) and the mode."""

    quantum: Decimal
    mode: str = ROUND_HALF_UP

    def apply(self, amount: Decimal) -> Decimal:
        steps = (amount / self.quantum).quantize(Decimal(1), rounding=self.mode)
        return (steps * self.quantum).quantize(self.quantum)


_CENT = RoundingRule(Decimal("0.01"))
_WHOLE = RoundingRule(Decimal("1"))
_MILLS = RoundingRule(Decimal("0.001"))

# Currencies whose minor unit is not 2 digits (ISO 4217); every other valid
# three-letter code rounds to cents.
DEFAULT_RULES: Final = MappingProxyType(
    {
        **dict.fromkeys(("JPY", "KRW", "CLP", "ISK", "VND", "XAF", "XOF", "UGX", "PYG"), _WHOLE),
        **dict.fromkeys(("KWD", "BHD", "OMR", "JOD", "TND", "LYD", "IQD"), _MILLS),
    }
)


def rounding_rule(currency: str, overrides: dict[str, RoundingRule] | None = None) -> RoundingRule:
    """The rule for ``currency``: an operator override, the ISO minor unit, or cents."""
    if overrides and currency in overrides:
        return overrides[currency]
    return DEFAULT_RULES.get(currency, _CENT)


def _as_decimal(value: Decimal | int | str) -> Decimal:
    if isinstance(value, float):  # callers without type checking
        raise InvalidMoney("money is never a float: pass a Decimal, an int or a string")
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise InvalidMoney(f"not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise InvalidMoney(f"not a finite amount: {value!r}")
    if amount and amount.adjusted() >= _MAX_DIGITS:
        # what the store keeps: NUMERIC(24, 8), 16 digits before the point
        raise InvalidMoney(f"an amount has at most {_MAX_DIGITS} digits before the point")
    return amount


_MAX_DIGITS: Final = 16


#: Currency codes that passed ``_check_code`` (at most 26**3 of them).
_VALID_CODES: set[str] = set()


def _check_code(code: object) -> None:
    if not (
        isinstance(code, str)
        and len(code) == 3
        and code.isascii()  # "ÉUR" is alphabetic and upper case, but no ISO code
        and code.isalpha()
        and code.isupper()
    ):
        raise InvalidMoney(f"not an ISO 4217 currency code: {code!r}")
    if type(code) is str:
        _VALID_CODES.add(code)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency. Construct with a Decimal, int or string."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        amount = self.amount
        # Fast path: arithmetic and the store hand over finite Decimals and a
        # code already checked; a charging request makes a dozen of these.
        if type(amount) is not Decimal or not amount.is_finite():
            object.__setattr__(self, "amount", _as_decimal(amount))
        code = self.currency
        if type(code) is not str or code not in _VALID_CODES:
            _check_code(code)

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        return cls(_as_decimal(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        if cls is Money and type(currency) is str and currency in _VALID_CODES:
            return _exact(_DECIMAL_ZERO, currency)
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} cannot be combined")

    # Same-currency arithmetic of two Money values needs no checks: their
    # amounts are finite Decimals (an overflow raises, it never gives an
    # infinity) and their currency was checked when the first was made.

    def __add__(self, other: Money) -> Money:
        if type(other) is Money and other.currency == self.currency:
            return _exact(self.amount + other.amount, self.currency)
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        if type(other) is Money and other.currency == self.currency:
            return _exact(self.amount - other.amount, self.currency)
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return _exact(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, Money | float):
            raise TypeError("money is multiplied by an exact number only")
        return Money(self.amount * Decimal(factor), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def is_zero(self) -> bool:
        return self.amount == 0

    def is_negative(self) -> bool:
        return self.amount < 0

    def is_positive(self) -> bool:
        return self.amount > 0

    def min(self, other: Money) -> Money:
        return self if self <= other else other

    def max(self, other: Money) -> Money:
        return self if self >= other else other

    def stored(self) -> Money:
        """Quantized to the storage precision (8 places, banker's rounding)."""
        return _exact(
            self.amount.quantize(_STORAGE_QUANTUM, rounding=ROUND_HALF_EVEN), self.currency
        )

    def for_record(self, overrides: dict[str, RoundingRule] | None = None) -> Money:
        """Rounded by the currency's rule, for an xDR or an invoice line."""
        return Money(rounding_rule(self.currency, overrides).apply(self.amount), self.currency)

    def __str__(self) -> str:
        return f"{self.amount:f} {self.currency}"

    def display(self) -> str:
        """As a person reads it: record-rounded, for example ``43.25 USD``."""
        return str(self.for_record())


_DECIMAL_ZERO: Final = Decimal(0)
_new = object.__new__
# the slots' own setters, which a frozen dataclass's __setattr__ does not stand in front of
_set_amount: Callable[[Money, Decimal], None] = vars(Money)["amount"].__set__
_set_currency: Callable[[Money, str], None] = vars(Money)["currency"].__set__


def _exact(amount: Decimal, currency: str) -> Money:
    """``Money(amount, currency)`` without the checks, for what arithmetic on
    valid Money gives: a finite Decimal and a currency already checked. Three
    times cheaper than the constructor, and a charging request makes a dozen."""
    money: Money = _new(Money)
    _set_amount(money, amount)
    _set_currency(money, currency)
    return money
