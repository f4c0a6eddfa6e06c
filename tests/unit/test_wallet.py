"""Wallet: balance, credit limit and reservations; the credit limit is never passed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from ratel.domain.errors import (
    CreditLimitExceeded,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidMoney,
)
from ratel.domain.money import Money
from ratel.domain.wallet import Wallet


def usd(amount: str | int) -> Money:
    return Money(amount, "USD")


def wallet(balance: str = "0", credit_limit: str = "0", reserved: str = "0") -> Wallet:
    return Wallet(usd(balance), usd(credit_limit), usd(reserved))


def state(w: Wallet) -> tuple[Money, Money, Money]:
    return (w.balance, w.credit_limit, w.reserved)


# -- construction ---------------------------------------------------------------


def test_empty_wallet() -> None:
    w = Wallet.empty("EUR")
    assert state(w) == (Money.zero("EUR"), Money.zero("EUR"), Money.zero("EUR"))
    assert w.currency == "EUR"
    assert w.available() == Money.zero("EUR")


def test_empty_wallet_with_a_credit_limit() -> None:
    w = Wallet.empty("EUR", Money("50", "EUR"))
    assert w.available() == Money("50", "EUR")


@pytest.mark.parametrize(
    ("balance", "limit", "reserved"),
    [(usd(1), Money(0, "EUR"), usd(0)), (usd(1), usd(0), Money(0, "EUR"))],
)
def test_a_wallet_holds_one_currency(balance: Money, limit: Money, reserved: Money) -> None:
    with pytest.raises(CurrencyMismatch):
        Wallet(balance, limit, reserved)


def test_empty_wallet_refuses_a_limit_in_another_currency() -> None:
    with pytest.raises(CurrencyMismatch):
        Wallet.empty("USD", Money("10", "EUR"))


@pytest.mark.parametrize(("limit", "reserved"), [("-0.01", "0"), ("0", "-0.01")])
def test_negative_limit_or_reservation_refused(limit: str, reserved: str) -> None:
    with pytest.raises(InvalidMoney):
        wallet("10", limit, reserved)


def test_balance_may_be_negative_within_the_limit() -> None:
    w = wallet("-30", "50")
    assert w.available() == usd(20)


# -- available -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("balance", "limit", "reserved", "available"),
    [
        ("100", "0", "0", "100"),
        ("100", "50", "0", "150"),
        ("100", "50", "30", "120"),
        ("-20", "50", "10", "20"),
        ("0", "0", "0", "0"),
        ("10", "0", "10", "0"),
        ("43.25", "0", "0.00015", "43.24985"),
    ],
)
def test_available_is_balance_plus_limit_minus_reserved(
    balance: str, limit: str, reserved: str, available: str
) -> None:
    assert wallet(balance, limit, reserved).available() == usd(available)


# -- reserve ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("balance", "limit", "reserved", "amount", "ok"),
    [
        ("10", "0", "0", "10", True),  # exactly what is available
        ("10", "0", "0", "10.00000001", False),
        ("10", "5", "0", "15", True),  # into the credit limit
        ("10", "5", "0", "15.01", False),
        ("10", "5", "12", "3", True),
        ("10", "5", "12", "3.01", False),
        ("-5", "5", "0", "0", True),  # nothing left, but a zero hold is harmless
        ("-5", "5", "0", "0.01", False),
    ],
)
def test_reserve_within_the_limit_and_refuse_past_it(
    balance: str, limit: str, reserved: str, amount: str, ok: bool
) -> None:
    w = wallet(balance, limit, reserved)
    before = state(w)
    assert w.can_reserve(usd(amount)) is ok
    if ok:
        w.reserve(usd(amount))
        assert w.reserved == usd(reserved) + usd(amount)
        assert w.balance == usd(balance)
    else:
        with pytest.raises(CreditLimitExceeded):
            w.reserve(usd(amount))
        assert state(w) == before  # a refusal changes nothing


def test_credit_limit_exceeded_is_insufficient_funds() -> None:
    with pytest.raises(InsufficientFunds):
        wallet("1").reserve(usd(2))


def test_two_reservations_share_the_available_money() -> None:
    w = wallet("10", "5")
    w.reserve(usd(8))
    w.reserve(usd(7))
    assert w.available() == usd(0)
    with pytest.raises(CreditLimitExceeded):
        w.reserve(usd("0.01"))
    assert w.reserved == usd(15)


def test_negative_reservation_refused() -> None:
    w = wallet("10")
    with pytest.raises(InvalidMoney):
        w.reserve(usd("-1"))
    assert state(w) == (usd(10), usd(0), usd(0))


def test_reserving_nothing_is_allowed_below_the_limit() -> None:
    # usage past the last grant (a RADIUS interim) left the balance negative:
    # the next grant holds nothing, and that must not undo the charge
    w = wallet("-0.01")
    w.reserve(usd(0))
    assert state(w) == (usd("-0.01"), usd(0), usd(0))
    with pytest.raises(CreditLimitExceeded):
        w.reserve(usd("0.01"))


def test_reservation_in_another_currency_refused() -> None:
    w = wallet("10")
    with pytest.raises(CurrencyMismatch):
        w.reserve(Money("1", "EUR"))
    assert state(w) == (usd(10), usd(0), usd(0))


# -- release -----------------------------------------------------------------------


def test_release_gives_back_held_money() -> None:
    w = wallet("10", "0", "6")
    w.release(usd(4))
    assert state(w) == (usd(10), usd(0), usd(2))
    assert w.available() == usd(8)


@pytest.mark.parametrize("amount", ["-1", "6.01"])
def test_release_of_more_than_held_or_negative_refused(amount: str) -> None:
    w = wallet("10", "0", "6")
    with pytest.raises(InvalidMoney):
        w.release(usd(amount))
    assert state(w) == (usd(10), usd(0), usd(6))


# -- settle ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "charged", "balance_after", "available_after"),
    [
        ("6", "4", "6", "6"),  # used less than held: the rest comes back
        ("6", "6", "4", "4"),
        ("6", "0", "10", "10"),
        ("6", "9", "1", "1"),  # used more than granted: charged anyway
    ],
)
def test_settle_closes_the_hold_and_charges(
    held: str, charged: str, balance_after: str, available_after: str
) -> None:
    w = wallet("10", "0", "6")
    w.settle(usd(held), usd(charged))
    assert w.reserved == usd(0)
    assert w.balance == usd(balance_after)
    assert w.available() == usd(available_after)


def test_settle_with_more_than_held_may_go_into_the_credit_limit() -> None:
    # the network used more than granted; the usage happened, so it is charged
    w = wallet("1", "5", "1")
    w.settle(usd(1), usd(4))
    assert w.balance == usd(-3)
    assert w.available() == usd(2)


def test_settle_of_more_than_is_held_refused_and_nothing_changes() -> None:
    w = wallet("10", "0", "6")
    with pytest.raises(InvalidMoney):
        w.settle(usd(7), usd(1))
    assert state(w) == (usd(10), usd(0), usd(6))


def test_settle_with_a_negative_charge_refused_and_nothing_changes() -> None:
    w = wallet("10", "0", "6")
    with pytest.raises(InvalidMoney):
        w.settle(usd(6), usd(-5))
    assert state(w) == (usd(10), usd(0), usd(6))


def test_settle_in_another_currency_refused_and_nothing_changes() -> None:
    w = wallet("10", "0", "6")
    with pytest.raises(CurrencyMismatch):
        w.settle(usd(6), Money("3", "EUR"))
    assert state(w) == (usd(10), usd(0), usd(6))


# -- credit, debit, adjust ------------------------------------------------------------------


def test_credit_raises_the_balance() -> None:
    w = wallet("-20", "50", "5")
    w.credit(usd("43.25"))
    assert state(w) == (usd("23.25"), usd(50), usd(5))


@pytest.mark.parametrize("amount", ["0", "-1"])
def test_credit_is_positive(amount: str) -> None:
    w = wallet("10")
    with pytest.raises(InvalidMoney):
        w.credit(usd(amount))
    assert w.balance == usd(10)


@pytest.mark.parametrize(
    ("balance", "limit", "reserved", "amount", "balance_after"),
    [
        ("10", "0", "0", "10", "0"),
        ("10", "0", "0", "0", "10"),
        ("10", "5", "0", "15", "-5"),
        ("10", "5", "3", "12", "-2"),
    ],
)
def test_debit_within_the_limit(
    balance: str, limit: str, reserved: str, amount: str, balance_after: str
) -> None:
    w = wallet(balance, limit, reserved)
    w.debit(usd(amount))
    assert state(w) == (usd(balance_after), usd(limit), usd(reserved))


@pytest.mark.parametrize(
    ("balance", "limit", "reserved", "amount"),
    [("10", "0", "0", "10.01"), ("10", "5", "0", "15.01"), ("10", "5", "3", "12.01")],
)
def test_debit_past_the_limit_refused_and_nothing_changes(
    balance: str, limit: str, reserved: str, amount: str
) -> None:
    w = wallet(balance, limit, reserved)
    with pytest.raises(CreditLimitExceeded):
        w.debit(usd(amount))
    assert state(w) == (usd(balance), usd(limit), usd(reserved))


def test_negative_debit_refused() -> None:
    w = wallet("10")
    with pytest.raises(InvalidMoney):
        w.debit(usd(-1))
    assert w.balance == usd(10)


@pytest.mark.parametrize(("delta", "balance_after"), [("5", "15"), ("-25", "-15"), ("-100", "-90")])
def test_adjust_by_staff_may_pass_the_limit_on_purpose(delta: str, balance_after: str) -> None:
    w = wallet("10", "5")
    w.adjust(usd(delta))
    assert w.balance == usd(balance_after)


def test_adjust_in_another_currency_refused() -> None:
    w = wallet("10")
    with pytest.raises(CurrencyMismatch):
        w.adjust(Money("1", "EUR"))
    assert w.balance == usd(10)


# -- properties -----------------------------------------------------------------------------

cents = st.integers(min_value=0, max_value=100_000).map(lambda c: usd(Decimal(c) / 100))


class WalletMachine(RuleBasedStateMachine):
    """Random sessions against one wallet: holds, releases, settlements (never
    charging more than was held), direct debits and top-ups."""

    def __init__(self) -> None:
        super().__init__()
        self.wallet = Wallet.empty("USD", usd(50))
        self.start_balance = self.wallet.balance
        self.holds: list[Money] = []
        self.credited = usd(0)
        self.charged = usd(0)

    @rule(amount=cents)
    def reserve(self, amount: Money) -> None:
        fits = amount <= self.wallet.available()
        try:
            self.wallet.reserve(amount)
        except CreditLimitExceeded:
            assert not fits
        else:
            assert fits
            self.holds.append(amount)

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        held = self.holds.pop(data.draw(st.integers(0, len(self.holds) - 1)))
        self.wallet.release(held)

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        held = self.holds.pop(data.draw(st.integers(0, len(self.holds) - 1)))
        held_cents = int(held.amount * 100)
        charged = usd(Decimal(data.draw(st.integers(0, held_cents))) / 100)
        self.wallet.settle(held, charged)
        self.charged = self.charged + charged

    @rule(amount=cents)
    def debit(self, amount: Money) -> None:
        fits = amount <= self.wallet.available()
        try:
            self.wallet.debit(amount)
        except CreditLimitExceeded:
            assert not fits
        else:
            assert fits
            self.charged = self.charged + amount

    @rule(amount=cents.filter(lambda m: m.is_positive()))
    def credit(self, amount: Money) -> None:
        self.wallet.credit(amount)
        self.credited = self.credited + amount

    @invariant()
    def never_past_the_credit_limit(self) -> None:
        w = self.wallet
        assert w.balance - w.reserved >= -w.credit_limit
        assert not w.available().is_negative()

    @invariant()
    def reserved_is_the_sum_of_open_holds(self) -> None:
        assert self.wallet.reserved == sum(self.holds, usd(0))

    @invariant()
    def money_is_conserved(self) -> None:
        assert self.wallet.balance - self.start_balance == self.credited - self.charged


WalletMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestWalletSequences = WalletMachine.TestCase


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["reserve", "debit"]), cents), max_size=20))
def test_reserve_and_debit_sequences_stop_at_the_limit(steps: list[tuple[str, Money]]) -> None:
    w = wallet("20", "30")
    accepted = usd(0)
    for action, amount in steps:
        before = state(w)
        try:
            getattr(w, action)(amount)
        except CreditLimitExceeded:
            assert state(w) == before
            assert amount > w.available()
        else:
            accepted = accepted + amount
    # everything accepted fits in balance + limit, and is accounted for
    assert accepted <= usd(50)
    assert w.available() == usd(50) - accepted


def test_available_of_a_wallet_whose_parts_were_replaced_by_another_currency_refuses() -> None:
    # the one-Money fast path of ``available`` only takes one currency
    w = wallet("10", "5", "3")
    w.reserved = Money("1", "EUR")
    with pytest.raises(CurrencyMismatch):
        w.available()
    w = wallet("10", "5", "3")
    w.credit_limit = Money("1", "EUR")
    with pytest.raises(CurrencyMismatch):
        w.available()
    assert wallet("10", "5", "3").available() == usd("12")
    assert type(wallet("10", "5", "3").available()) is Money
