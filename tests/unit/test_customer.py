"""Customer lifecycle, money movements, billing periods and contact data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratel.domain import events
from ratel.domain.customer import (
    BillingPeriod,
    Contact,
    Customer,
    CustomerStatus,
    PeriodUnit,
    require_aware,
)
from ratel.domain.errors import (
    CreditLimitExceeded,
    CurrencyMismatch,
    CustomerClosed,
    DomainError,
    IllegalTransition,
    InvalidCustomer,
    InvalidMoney,
    NaiveDatetime,
)
from ratel.domain.money import Money
from ratel.domain.wallet import Wallet

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def usd(amount: str | int) -> Money:
    return Money.of(amount, "USD")


def customer_in(status: CustomerStatus, *, balance: str = "10", limit: str = "5") -> Customer:
    """A stored customer rebuilt in ``status``; the constructor records nothing."""
    return Customer(
        id="c-1",
        name="Ada Lovelace",
        currency="USD",
        wallet=Wallet(usd(balance), usd(limit), usd(0)),
        created_at=NOW,
        status=status,
    )


# -- creation --------------------------------------------------------------------


def test_open_records_customer_created() -> None:
    customer = Customer.open(
        "c-1",
        "Ada Lovelace",
        "USD",
        NOW,
        credit_limit=usd(50),
        country="gb",
        contact=Contact(email="ada@example.org", phone="+44 20 7946 0000"),
        billing_period=BillingPeriod.monthly(15),
        customer_class="business",
        custom_fields={"crm_id": "0015g00000XyZ"},
    )
    assert customer.status is CustomerStatus.OPEN
    assert customer.is_usable
    assert customer.country == "GB"
    assert customer.wallet == Wallet(usd(0), usd(50), usd(0))
    assert customer.created_at == NOW
    assert customer.pull_events() == [
        events.CustomerCreated(
            occurred_at=NOW, customer_id="c-1", name="Ada Lovelace", currency="USD"
        )
    ]
    assert customer.pull_events() == []  # drained


def test_open_defaults() -> None:
    customer = Customer.open("c-2", "Bob", "EUR", NOW)
    assert customer.wallet == Wallet.empty("EUR")
    assert customer.billing_period == BillingPeriod(PeriodUnit.MONTHLY, 1)
    assert customer.contact == Contact()
    assert customer.country is None
    assert customer.customer_class == ""
    assert customer.custom_fields == {}


def test_rebuilding_a_stored_customer_records_nothing() -> None:
    assert customer_in(CustomerStatus.SUSPENDED).pull_events() == []


def test_equal_customers_compare_equal_whatever_their_pending_events() -> None:
    a = customer_in(OPEN)
    b = customer_in(OPEN)
    b.suspend("x", NOW)
    b.resume(NOW)
    assert a == b


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"id": " "}, InvalidCustomer),
        ({"name": ""}, InvalidCustomer),
        ({"country": "GBR"}, InvalidCustomer),
        ({"country": "G1"}, InvalidCustomer),
        ({"created_at": datetime(2025, 1, 1)}, NaiveDatetime),  # noqa: DTZ001
        ({"wallet": Wallet.empty("EUR")}, InvalidCustomer),
        ({"custom_fields": {"": "x"}}, InvalidCustomer),
        ({"custom_fields": {"k": 1}}, InvalidCustomer),
        ({"status": "frozen"}, ValueError),
    ],
)
def test_invalid_customer(kwargs: dict[str, object], error: type[Exception]) -> None:
    fields: dict[str, object] = {
        "id": "c-1",
        "name": "Ada",
        "currency": "USD",
        "wallet": Wallet.empty("USD"),
        "created_at": NOW,
    }
    with pytest.raises(error):
        Customer(**(fields | kwargs))  # type: ignore[arg-type]


def test_open_refuses_credit_limit_in_another_currency() -> None:
    with pytest.raises(CurrencyMismatch):
        Customer.open("c-1", "Ada", "USD", NOW, credit_limit=Money.of(5, "EUR"))


# -- every (status, action) pair --------------------------------------------------

Action = Callable[[Customer], None]

ACTIONS: dict[str, Action] = {
    "suspend": lambda c: c.suspend("non-payment", LATER),
    "resume": lambda c: c.resume(LATER),
    "close": lambda c: c.close(LATER),
    "update": lambda c: c.update(LATER, name="Ada King"),
    "set_credit_limit": lambda c: c.set_credit_limit(usd(20), LATER),
    "top_up": lambda c: c.top_up(usd(3), LATER, "voucher-1"),
    "pay": lambda c: c.pay(usd(3), LATER, "inv-1"),
    "adjust": lambda c: c.adjust(usd(-3), LATER, "goodwill reversal", "ticket-9"),
    "charge": lambda c: c.charge(usd(3), LATER, "monthly fee", "sub-1"),
}

OPEN, SUSPENDED, CLOSED = CustomerStatus.OPEN, CustomerStatus.SUSPENDED, CustomerStatus.CLOSED

# (status before, action) -> (status after, event type) or the error raised.
# ``None`` as event type: an idempotent no-op that records nothing.
Outcome = tuple[CustomerStatus, type[events.DomainEvent] | None] | type[DomainError]
TRANSITIONS: dict[tuple[CustomerStatus, str], Outcome] = {
    (OPEN, "suspend"): (SUSPENDED, events.CustomerSuspended),
    (OPEN, "resume"): (OPEN, None),
    (OPEN, "close"): (CLOSED, events.CustomerClosed),
    (OPEN, "update"): (OPEN, events.CustomerUpdated),
    (OPEN, "set_credit_limit"): (OPEN, events.CreditLimitChanged),
    (OPEN, "top_up"): (OPEN, events.BalanceChanged),
    (OPEN, "pay"): (OPEN, events.BalanceChanged),
    (OPEN, "adjust"): (OPEN, events.BalanceChanged),
    (OPEN, "charge"): (OPEN, events.BalanceChanged),
    (SUSPENDED, "suspend"): (SUSPENDED, None),
    (SUSPENDED, "resume"): (OPEN, events.CustomerResumed),
    (SUSPENDED, "close"): (CLOSED, events.CustomerClosed),
    (SUSPENDED, "update"): (SUSPENDED, events.CustomerUpdated),
    (SUSPENDED, "set_credit_limit"): (SUSPENDED, events.CreditLimitChanged),
    (SUSPENDED, "top_up"): (SUSPENDED, events.BalanceChanged),
    (SUSPENDED, "pay"): (SUSPENDED, events.BalanceChanged),
    (SUSPENDED, "adjust"): (SUSPENDED, events.BalanceChanged),
    (SUSPENDED, "charge"): (SUSPENDED, events.BalanceChanged),
    (CLOSED, "suspend"): CustomerClosed,
    (CLOSED, "resume"): CustomerClosed,
    (CLOSED, "close"): CustomerClosed,
    (CLOSED, "update"): CustomerClosed,
    (CLOSED, "set_credit_limit"): CustomerClosed,
    (CLOSED, "top_up"): CustomerClosed,
    # a closed customer may still pay its final bill, and staff may write it off
    (CLOSED, "pay"): (CLOSED, events.BalanceChanged),
    (CLOSED, "adjust"): (CLOSED, events.BalanceChanged),
    (CLOSED, "charge"): CustomerClosed,
}


def test_transition_table_covers_every_pair() -> None:
    assert set(TRANSITIONS) == {(s, a) for s in CustomerStatus for a in ACTIONS}


@pytest.mark.parametrize(
    ("status", "action", "outcome"),
    [(s, a, o) for (s, a), o in TRANSITIONS.items()],
    ids=[f"{s}-{a}" for s, a in TRANSITIONS],
)
def test_transition(status: CustomerStatus, action: str, outcome: Outcome) -> None:
    customer = customer_in(status)
    if isinstance(outcome, type):
        before = (customer.status, customer.wallet.balance, customer.name)
        with pytest.raises(outcome):
            ACTIONS[action](customer)
        assert (customer.status, customer.wallet.balance, customer.name) == before
        assert customer.pull_events() == []
        return
    after, event_type = outcome
    ACTIONS[action](customer)
    assert customer.status is after
    assert customer.is_usable is (after is OPEN)
    recorded = customer.pull_events()
    if event_type is None:
        assert recorded == []
    else:
        assert [type(e) for e in recorded] == [event_type]
        assert recorded[0].occurred_at == LATER
        assert recorded[0].aggregate_id == "c-1"


def test_customer_closed_is_an_illegal_transition() -> None:
    assert issubclass(CustomerClosed, IllegalTransition)


def test_suspend_event_carries_the_reason() -> None:
    customer = customer_in(OPEN)
    customer.suspend("non-payment", LATER)
    assert customer.pull_events() == [
        events.CustomerSuspended(occurred_at=LATER, customer_id="c-1", reason="non-payment")
    ]


# -- money -------------------------------------------------------------------------


def test_money_movements_record_delta_balance_reason_and_reference() -> None:
    customer = customer_in(OPEN, balance="10", limit="5")
    customer.top_up(usd("2.50"), LATER, "voucher-1")
    customer.pay(usd(1), LATER, "inv-1")
    customer.adjust(usd("-14"), LATER, "manual debit", "ticket-9")
    customer.charge(usd("0.50"), LATER, "sms", "sess-1")
    assert customer.wallet.balance == usd("-1.00")
    changes = [
        (e.delta, e.balance, e.reason, e.reference)
        for e in customer.pull_events()
        if isinstance(e, events.BalanceChanged)
    ]
    assert changes == [
        (usd("2.50"), usd("12.50"), "top_up", "voucher-1"),
        (usd(1), usd("13.50"), "payment", "inv-1"),
        (usd(-14), usd("-0.50"), "manual debit", "ticket-9"),
        (usd("-0.50"), usd("-1.00"), "sms", "sess-1"),
    ]


def test_manual_transaction_may_pass_the_credit_limit() -> None:
    customer = customer_in(OPEN, balance="1", limit="2")
    customer.adjust(usd(-10), LATER, "recurring fee arrears")
    assert customer.wallet.balance == usd(-9)
    assert len(customer.pull_events()) == 1


def test_charge_refused_past_the_credit_limit_changes_nothing() -> None:
    customer = customer_in(OPEN, balance="1", limit="2")
    with pytest.raises(CreditLimitExceeded):
        customer.charge(usd("3.01"), LATER, "fee")
    assert customer.wallet.balance == usd(1)
    assert customer.pull_events() == []
    customer.charge(usd(3), LATER, "fee")  # exactly down to the limit
    assert customer.wallet.balance == usd(-2)


def test_zero_charge_records_nothing() -> None:
    customer = customer_in(OPEN)
    customer.charge(usd(0), LATER, "free call")
    assert customer.pull_events() == []
    assert customer.wallet.balance == usd(10)


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (lambda c: c.top_up(Money.of(1, "EUR"), LATER), CurrencyMismatch),
        (lambda c: c.pay(Money.of(1, "EUR"), LATER), CurrencyMismatch),
        (lambda c: c.adjust(Money.of(1, "EUR"), LATER, "x"), CurrencyMismatch),
        (lambda c: c.charge(Money.of(1, "EUR"), LATER, "x"), CurrencyMismatch),
        (lambda c: c.charge(Money.of(0, "EUR"), LATER, "x"), CurrencyMismatch),
        (lambda c: c.set_credit_limit(Money.of(1, "EUR"), LATER), CurrencyMismatch),
        (lambda c: c.top_up(usd(0), LATER), InvalidMoney),
        (lambda c: c.top_up(usd(-1), LATER), InvalidMoney),
        (lambda c: c.pay(usd(0), LATER), InvalidMoney),
        (lambda c: c.charge(usd(-1), LATER, "x"), InvalidMoney),
        (lambda c: c.adjust(usd(0), LATER, "x"), InvalidMoney),
        (lambda c: c.set_credit_limit(usd(-1), LATER), InvalidMoney),
        (lambda c: c.adjust(usd(1), LATER, " "), InvalidCustomer),
        (lambda c: c.charge(usd(1), LATER, ""), InvalidCustomer),
    ],
)
def test_bad_money_movements_change_nothing(action: Action, error: type[Exception]) -> None:
    customer = customer_in(OPEN)
    with pytest.raises(error):
        action(customer)
    assert customer.wallet == Wallet(usd(10), usd(5), usd(0))
    assert customer.pull_events() == []


def test_credit_limit_change_and_same_limit_is_a_no_op() -> None:
    customer = customer_in(OPEN, limit="5")
    customer.set_credit_limit(usd(5), LATER)
    assert customer.pull_events() == []
    customer.set_credit_limit(usd(25), LATER)
    assert customer.wallet.credit_limit == usd(25)
    assert customer.pull_events() == [
        events.CreditLimitChanged(occurred_at=LATER, customer_id="c-1", credit_limit=usd(25))
    ]


# -- updates -------------------------------------------------------------------------


def test_update_records_only_the_fields_that_changed() -> None:
    customer = customer_in(OPEN)
    customer.update(
        LATER,
        name="Ada Lovelace",  # unchanged
        contact=Contact(email="ada@example.org"),
        country="fr",
        billing_period=BillingPeriod.weekly(1),
        custom_fields={"zendesk_org": "42"},
    )
    assert customer.country == "FR"
    assert customer.contact.email == "ada@example.org"
    assert customer.custom_fields == {"zendesk_org": "42"}
    assert customer.pull_events() == [
        events.CustomerUpdated(
            occurred_at=LATER,
            customer_id="c-1",
            changed=("contact", "country", "billing_period", "custom_fields"),
        )
    ]


def test_update_without_change_records_nothing() -> None:
    customer = customer_in(OPEN)
    customer.update(LATER)
    customer.update(LATER, name=" Ada Lovelace ", country=None, customer_class="")
    assert customer.pull_events() == []


def test_update_can_clear_the_country() -> None:
    customer = customer_in(OPEN)
    customer.update(LATER, country="DE")
    customer.update(LATER, country=None)
    assert customer.country is None
    assert [e.changed for e in customer.pull_events() if isinstance(e, events.CustomerUpdated)] == [
        ("country",),
        ("country",),
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": " "},
        {"country": "Germany"},
        {"custom_fields": {" ": "x"}},
        {"contact": "ada@example.org"},
        {"billing_period": "monthly"},
        {"customer_class": 3},
    ],
)
def test_bad_update_changes_nothing(kwargs: dict[str, object]) -> None:
    customer = customer_in(OPEN)
    with pytest.raises(InvalidCustomer):
        customer.update(LATER, **({"name": "Ada King"} | kwargs))  # type: ignore[arg-type]
    assert customer.name == "Ada Lovelace"
    assert customer.pull_events() == []


# -- contact ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email", ["ada@example.org", "a.b+tag@mail.example.co.uk", " ada@example.org "]
)
def test_valid_email(email: str) -> None:
    assert Contact(email=email).email == email.strip()


@pytest.mark.parametrize(
    "email", ["ada", "ada@", "@example.org", "ada@example", "ada @example.org", "a@b@c.d"]
)
def test_invalid_email(email: str) -> None:
    with pytest.raises(InvalidCustomer):
        Contact(email=email)


def test_contact_blanks_are_none_and_lines_trimmed() -> None:
    contact = Contact(email="  ", phone="", address_lines=(" 1 Main St ", "", "Springfield"))
    assert contact == Contact(address_lines=("1 Main St", "Springfield"))
    with pytest.raises(InvalidCustomer):
        Contact(address_lines="1 Main St")  # type: ignore[arg-type]


# -- billing periods -------------------------------------------------------------------


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "at", "start", "end"),
    [
        (BillingPeriod.monthly(1), utc(2025, 3, 14, 9), utc(2025, 3, 1), utc(2025, 4, 1)),
        (BillingPeriod.monthly(1), utc(2025, 3, 1), utc(2025, 3, 1), utc(2025, 4, 1)),
        (
            BillingPeriod.monthly(1),
            utc(2025, 2, 28, 23, 59, 59),
            utc(2025, 2, 1),
            utc(2025, 3, 1),
        ),
        (BillingPeriod.monthly(15), utc(2025, 3, 14, 9), utc(2025, 2, 15), utc(2025, 3, 15)),
        (BillingPeriod.monthly(15), utc(2025, 3, 15), utc(2025, 3, 15), utc(2025, 4, 15)),
        (BillingPeriod.monthly(28), utc(2025, 1, 5), utc(2024, 12, 28), utc(2025, 1, 28)),
        (BillingPeriod.monthly(10), utc(2025, 12, 31), utc(2025, 12, 10), utc(2026, 1, 10)),
        (BillingPeriod.monthly(28), utc(2024, 2, 29, 12), utc(2024, 2, 28), utc(2024, 3, 28)),
        # 2025-03-14 is a Friday
        (BillingPeriod.weekly(1), utc(2025, 3, 14, 9), utc(2025, 3, 10), utc(2025, 3, 17)),
        (BillingPeriod.weekly(5), utc(2025, 3, 14, 9), utc(2025, 3, 14), utc(2025, 3, 21)),
        (BillingPeriod.weekly(6), utc(2025, 3, 14, 9), utc(2025, 3, 8), utc(2025, 3, 15)),
        (BillingPeriod.weekly(7), utc(2025, 3, 16), utc(2025, 3, 16), utc(2025, 3, 23)),
        (BillingPeriod.daily(), utc(2025, 3, 14, 9), utc(2025, 3, 14), utc(2025, 3, 15)),
        (BillingPeriod.daily(), utc(2025, 12, 31, 23), utc(2025, 12, 31), utc(2026, 1, 1)),
        # another timezone: the instant counts, periods are cut in UTC
        (
            BillingPeriod.daily(),
            datetime(2025, 3, 15, 1, tzinfo=timezone(timedelta(hours=3))),
            utc(2025, 3, 14),
            utc(2025, 3, 15),
        ),
    ],
)
def test_period_containing(
    period: BillingPeriod, at: datetime, start: datetime, end: datetime
) -> None:
    assert period.period_containing(at) == (start, end)


@given(
    st.sampled_from(
        [BillingPeriod.monthly(d) for d in (1, 15, 28)]
        + [BillingPeriod.weekly(d) for d in (1, 4, 7)]
        + [BillingPeriod.daily()]
    ),
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
def test_periods_contain_their_instant_and_tile_time(period: BillingPeriod, at: datetime) -> None:
    start, end = period.period_containing(at)
    assert start <= at < end
    assert period.period_containing(end)[0] == end  # the next period starts where this ends
    assert period.period_containing(start - timedelta(microseconds=1))[1] == start


@pytest.mark.parametrize(
    ("unit", "anchor"),
    [
        ("monthly", 0),
        ("monthly", 29),
        ("weekly", 0),
        ("weekly", 8),
        ("daily", 2),
        ("yearly", 1),
        ("monthly", True),
    ],
)
def test_invalid_billing_period(unit: str, anchor: int) -> None:
    with pytest.raises(InvalidCustomer):
        BillingPeriod(unit, anchor)  # type: ignore[arg-type]


def test_billing_period_accepts_unit_names() -> None:
    assert BillingPeriod("weekly", 3) == BillingPeriod.weekly(3)  # type: ignore[arg-type]


def test_period_containing_refuses_naive_time() -> None:
    with pytest.raises(NaiveDatetime):
        BillingPeriod.daily().period_containing(datetime(2025, 1, 1))  # noqa: DTZ001


# -- time --------------------------------------------------------------------------------


def test_naive_now_is_refused_everywhere() -> None:
    naive = datetime(2025, 1, 1)  # noqa: DTZ001
    with pytest.raises(NaiveDatetime):
        Customer.open("c-1", "Ada", "USD", naive)
    customer = customer_in(OPEN)
    actions: list[Callable[[], None]] = [
        lambda: customer.suspend("x", naive),
        lambda: customer.resume(naive),
        lambda: customer.close(naive),
        lambda: customer.update(naive, name="B"),
        lambda: customer.top_up(usd(1), naive),
        lambda: customer.charge(usd(1), naive, "x"),
    ]
    for action in actions:
        with pytest.raises(NaiveDatetime):
            action()
    assert customer.status is OPEN
    assert customer.pull_events() == []


def test_require_aware_converts_to_utc() -> None:
    cet = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=1)))
    assert require_aware(cet) == utc(2025, 1, 1, 11)
    assert require_aware(cet).tzinfo is UTC


# -- property: lifecycle ---------------------------------------------------------------


@given(st.lists(st.sampled_from(sorted(ACTIONS)), max_size=30))
def test_closed_stays_closed_and_each_change_records_one_event(names: list[str]) -> None:
    customer = customer_in(OPEN, balance="1000", limit="0")
    was_closed = False
    for name in names:
        before = (
            customer.status,
            customer.name,
            customer.wallet.balance,
            customer.wallet.credit_limit,
        )
        try:
            ACTIONS[name](customer)
        except DomainError:
            assert customer.pull_events() == []
            continue
        after = (
            customer.status,
            customer.name,
            customer.wallet.balance,
            customer.wallet.credit_limit,
        )
        assert len(customer.pull_events()) == (0 if after == before else 1)
        was_closed = was_closed or customer.status is CLOSED
        if was_closed:
            assert customer.status is CLOSED
