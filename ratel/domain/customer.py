"""The customer: the billed party that owns accounts and holds the money.

A customer is open, suspended (for example for non-payment) or closed
(terminated, final). Every change records a domain event in a pending list
that the use case drains with ``pull_events()`` and writes to the outbox in
the same transaction as the change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from ratel.domain import events
from ratel.domain.errors import (
    CurrencyMismatch,
    CustomerClosed,
    InvalidCustomer,
    InvalidMoney,
    NaiveDatetime,
)
from ratel.domain.identifiers import UNSET, Unset
from ratel.domain.money import Money
from ratel.domain.wallet import Wallet


def require_aware(value: datetime, what: str = "now") -> datetime:
    """``value`` as UTC; a naive datetime is refused because its meaning
    depends on the machine's clock settings."""
    if not isinstance(value, datetime):
        raise NaiveDatetime(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetime(f"{what} must be timezone-aware: {value!r}")
    return value.astimezone(UTC)


class CustomerStatus(StrEnum):
    OPEN = "open"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class PeriodUnit(StrEnum):
    MONTHLY = "monthly"
    WEEKLY = "weekly"
    DAILY = "daily"


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """How a customer's bills are cut. ``anchor_day`` is the day of the month a
    monthly period starts on (1-28, so that every month has it), the ISO weekday
    a weekly one starts on (1 = Monday ... 7 = Sunday), and 1 for daily.
    Periods start at midnight UTC and are half-open: ``[start, end)``."""

    unit: PeriodUnit = PeriodUnit.MONTHLY
    anchor_day: int = 1

    def __post_init__(self) -> None:
        try:
            unit = PeriodUnit(self.unit)
        except ValueError as exc:
            raise InvalidCustomer(f"billing period unit is one of {list(PeriodUnit)}") from exc
        object.__setattr__(self, "unit", unit)
        highest = {PeriodUnit.MONTHLY: 28, PeriodUnit.WEEKLY: 7, PeriodUnit.DAILY: 1}[unit]
        if (
            isinstance(self.anchor_day, bool)
            or not isinstance(self.anchor_day, int)
            or not 1 <= self.anchor_day <= highest
        ):
            raise InvalidCustomer(
                f"a {unit} billing period's anchor day is 1-{highest}, not {self.anchor_day!r}"
            )

    @classmethod
    def monthly(cls, anchor_day: int = 1) -> BillingPeriod:
        return cls(PeriodUnit.MONTHLY, anchor_day)

    @classmethod
    def weekly(cls, anchor_weekday: int = 1) -> BillingPeriod:
        return cls(PeriodUnit.WEEKLY, anchor_weekday)

    @classmethod
    def daily(cls) -> BillingPeriod:
        return cls(PeriodUnit.DAILY, 1)

    def period_containing(self, at: datetime) -> tuple[datetime, datetime]:
        """The ``(start, end)`` of the period that ``at`` falls in (UTC)."""
        moment = require_aware(at, "at")
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.unit is PeriodUnit.DAILY:
            return midnight, midnight + timedelta(days=1)
        if self.unit is PeriodUnit.WEEKLY:
            start = midnight - timedelta(days=(moment.isoweekday() - self.anchor_day) % 7)
            return start, start + timedelta(days=7)
        year, month = moment.year, moment.month
        if moment.day < self.anchor_day:
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        start = midnight.replace(year=year, month=month, day=self.anchor_day)
        end_year, end_month = (year + 1, 1) if month == 12 else (year, month + 1)
        return start, start.replace(year=end_year, month=end_month)


# Light check only: something@domain.tld without spaces. Real validation of a
# mailbox is sending it mail, which is not the domain's business.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def _optional_text(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


@dataclass(frozen=True, slots=True)
class Contact:
    """How to reach the customer. Every part is optional; blank strings are
    kept as ``None``."""

    email: str | None = None
    phone: str | None = None
    address_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        email = _optional_text(self.email)
        if email is not None and not _EMAIL.fullmatch(email):
            raise InvalidCustomer(f"not an email address: {self.email!r}")
        object.__setattr__(self, "email", email)
        object.__setattr__(self, "phone", _optional_text(self.phone))
        if isinstance(self.address_lines, str):
            raise InvalidCustomer("address_lines is a sequence of lines, not one string")
        lines = tuple(line.strip() for line in self.address_lines)
        object.__setattr__(self, "address_lines", tuple(line for line in lines if line))


_COUNTRY = re.compile(r"[A-Z]{2}")


def _country(value: str | None) -> str | None:
    """ISO 3166-1 alpha-2, upper-cased; the shape is checked, not the code list."""
    if value is None:
        return None
    country = value.strip().upper()
    if not _COUNTRY.fullmatch(country):
        raise InvalidCustomer(f"a country is an ISO 3166 alpha-2 code: {value!r}")
    return country


def _required_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCustomer(f"{what} is a non-empty string, got {value!r}")
    return value.strip()


def _custom_fields(values: Mapping[str, str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key.strip() or not isinstance(value, str):
            raise InvalidCustomer(f"custom fields map names to strings: {key!r}={value!r}")
        result[key.strip()] = value
    return result


_UPDATABLE: Final = (
    "name",
    "contact",
    "country",
    "customer_class",
    "billing_period",
    "custom_fields",
)


@dataclass(kw_only=True)
class Customer:
    """The billed party: its currency, wallet (balance, credit limit,
    reservations), lifecycle status, billing period, contact, country, class
    and custom fields.

    Build a new customer with ``Customer.open`` (records ``CustomerCreated``);
    the plain constructor rebuilds a stored one and records nothing.
    """

    id: str
    name: str
    currency: str
    wallet: Wallet
    created_at: datetime
    status: CustomerStatus = CustomerStatus.OPEN
    billing_period: BillingPeriod = field(default_factory=BillingPeriod)
    contact: Contact = field(default_factory=Contact)
    country: str | None = None
    customer_class: str = ""
    custom_fields: dict[str, str] = field(default_factory=dict)
    _events: list[events.DomainEvent] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.id = _required_text(self.id, "a customer id")
        self.name = _required_text(self.name, "a customer name")
        self.created_at = require_aware(self.created_at, "created_at")
        self.status = CustomerStatus(self.status)
        self.country = _country(self.country)
        self.custom_fields = _custom_fields(self.custom_fields)
        if self.wallet.currency != self.currency:
            raise InvalidCustomer(
                f"the wallet is in {self.wallet.currency}, the customer in {self.currency}"
            )

    # -- creation and events ---------------------------------------------------

    @classmethod
    def open(
        cls,
        id: str,
        name: str,
        currency: str,
        now: datetime,
        *,
        credit_limit: Money | None = None,
        country: str | None = None,
        contact: Contact | None = None,
        billing_period: BillingPeriod | None = None,
        customer_class: str = "",
        custom_fields: Mapping[str, str] | None = None,
    ) -> Customer:
        """A new open customer with an empty wallet; records ``CustomerCreated``."""
        now = require_aware(now)
        if credit_limit is not None and credit_limit.currency != currency:
            raise CurrencyMismatch(f"the credit limit must be in {currency}, got {credit_limit}")
        customer = cls(
            id=id,
            name=name,
            currency=currency,
            wallet=Wallet.empty(currency, credit_limit),
            created_at=now,
            billing_period=billing_period or BillingPeriod(),
            contact=contact or Contact(),
            country=country,
            customer_class=customer_class,
            custom_fields=dict(custom_fields or {}),
        )
        customer._record(
            events.CustomerCreated(
                occurred_at=now, customer_id=customer.id, name=customer.name, currency=currency
            )
        )
        return customer

    def pull_events(self) -> list[events.DomainEvent]:
        """The events recorded since the last call, oldest first; empties the list."""
        pulled, self._events = self._events, []
        return pulled

    def _record(self, event: events.DomainEvent) -> None:
        self._events.append(event)

    def _refuse_if_closed(self, action: str) -> None:
        if self.status is CustomerStatus.CLOSED:
            raise CustomerClosed(f"customer {self.id} is closed: cannot {action}")

    @property
    def is_usable(self) -> bool:
        """Its accounts may use services only while the customer is open."""
        return self.status is CustomerStatus.OPEN

    # -- lifecycle -------------------------------------------------------------

    def suspend(self, reason: str, now: datetime) -> None:
        """Open -> suspended. Suspending a suspended customer changes nothing and
        records nothing, so a redelivered request is harmless."""
        now = require_aware(now)
        self._refuse_if_closed("suspend")
        if self.status is CustomerStatus.SUSPENDED:
            return
        self.status = CustomerStatus.SUSPENDED
        self._record(events.CustomerSuspended(occurred_at=now, customer_id=self.id, reason=reason))

    def resume(self, now: datetime) -> None:
        """Suspended -> open. Resuming an open customer is a no-op (see ``suspend``)."""
        now = require_aware(now)
        self._refuse_if_closed("resume")
        if self.status is CustomerStatus.OPEN:
            return
        self.status = CustomerStatus.OPEN
        self._record(events.CustomerResumed(occurred_at=now, customer_id=self.id))

    def close(self, now: datetime) -> None:
        """Open or suspended -> closed, for good. Closing again raises
        ``CustomerClosed``, as every other change of a closed customer does."""
        now = require_aware(now)
        self._refuse_if_closed("close")
        self.status = CustomerStatus.CLOSED
        self._record(events.CustomerClosed(occurred_at=now, customer_id=self.id))

    def update(
        self,
        now: datetime,
        *,
        name: str | Unset = UNSET,
        contact: Contact | Unset = UNSET,
        country: str | None | Unset = UNSET,
        customer_class: str | Unset = UNSET,
        billing_period: BillingPeriod | Unset = UNSET,
        custom_fields: Mapping[str, str] | Unset = UNSET,
    ) -> None:
        """Change descriptive fields; records ``CustomerUpdated`` naming the fields
        that really changed, or nothing when none did. ``custom_fields`` replaces
        the whole map."""
        now = require_aware(now)
        self._refuse_if_closed("update")
        # Validate everything first so that a bad field changes nothing.
        wanted: dict[str, object] = {}
        if not isinstance(name, Unset):
            wanted["name"] = _required_text(name, "a customer name")
        if not isinstance(contact, Unset):
            if not isinstance(contact, Contact):
                raise InvalidCustomer(f"contact must be a Contact, got {contact!r}")
            wanted["contact"] = contact
        if not isinstance(country, Unset):
            wanted["country"] = _country(country)
        if not isinstance(customer_class, Unset):
            if not isinstance(customer_class, str):
                raise InvalidCustomer(f"customer_class is a string, got {customer_class!r}")
            wanted["customer_class"] = customer_class.strip()
        if not isinstance(billing_period, Unset):
            if not isinstance(billing_period, BillingPeriod):
                raise InvalidCustomer(f"billing_period must be a BillingPeriod: {billing_period!r}")
            wanted["billing_period"] = billing_period
        if not isinstance(custom_fields, Unset):
            wanted["custom_fields"] = _custom_fields(custom_fields)
        changed = tuple(n for n in _UPDATABLE if n in wanted and getattr(self, n) != wanted[n])
        if not changed:
            return
        for name_ in changed:
            setattr(self, name_, wanted[name_])
        self._record(events.CustomerUpdated(occurred_at=now, customer_id=self.id, changed=changed))

    def set_credit_limit(self, limit: Money, now: datetime) -> None:
        """New credit limit (zero or positive, in the customer's currency);
        records ``CreditLimitChanged``, nothing when it is the same."""
        now = require_aware(now)
        self._refuse_if_closed("change the credit limit")
        if limit.currency != self.currency:
            raise CurrencyMismatch(f"the credit limit must be in {self.currency}, got {limit}")
        if limit.is_negative():
            raise InvalidMoney("a credit limit is zero or positive")
        if limit == self.wallet.credit_limit:
            return
        self.wallet.credit_limit = limit
        self._record(
            events.CreditLimitChanged(occurred_at=now, customer_id=self.id, credit_limit=limit)
        )

    # -- money -----------------------------------------------------------------

    def top_up(self, amount: Money, now: datetime, reference: str = "") -> None:
        """Prepaid top-up (voucher, card): credits the balance. Refused once closed."""
        now = require_aware(now)
        self._refuse_if_closed("top up")
        self.wallet.credit(amount)
        self._balance_changed(amount, now, "top_up", reference)

    def pay(self, amount: Money, now: datetime, reference: str = "") -> None:
        """A payment against the bill. Accepted from a closed customer too, who
        may still settle the final invoice."""
        now = require_aware(now)
        self.wallet.credit(amount)
        self._balance_changed(amount, now, "payment", reference)

    def adjust(self, delta: Money, now: datetime, reason: str, reference: str = "") -> None:
        """A manual transaction by staff (credit or debit, ``delta`` signed); it may
        pass the credit limit on purpose and is allowed on a closed customer
        (write-offs of a final debt)."""
        now = require_aware(now)
        if delta.is_zero():
            raise InvalidMoney("a manual transaction moves a non-zero amount")
        if not reason.strip():
            raise InvalidCustomer("a manual transaction needs a reason")
        self.wallet.adjust(delta)
        self._balance_changed(delta, now, reason.strip(), reference)

    def charge(self, amount: Money, now: datetime, reason: str, reference: str = "") -> None:
        """Debit ``amount`` at once (usage, a fee); refused past the credit limit
        (``CreditLimitExceeded``) and once closed. A zero charge records nothing."""
        now = require_aware(now)
        self._refuse_if_closed("charge")
        if not reason.strip():
            raise InvalidCustomer("a charge needs a reason")
        if amount.currency != self.currency:
            # Checked here because a zero amount would otherwise slip through.
            raise CurrencyMismatch(f"the charge must be in {self.currency}, got {amount}")
        if amount.is_zero():
            return
        self.wallet.debit(amount)
        self._balance_changed(-amount, now, reason.strip(), reference)

    def _balance_changed(self, delta: Money, now: datetime, reason: str, reference: str) -> None:
        self._record(
            events.BalanceChanged(
                occurred_at=now,
                customer_id=self.id,
                delta=delta,
                balance=self.wallet.balance,
                reason=reason,
                reference=reference,
            )
        )
