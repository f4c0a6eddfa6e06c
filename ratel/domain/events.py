"""Domain events: every state change of an aggregate records one.

Use cases store them in the outbox in the same transaction as the change;
provisioning, notifications and CoA/RAR react to them. Events are plain
frozen dataclasses; ``event_type`` is the stable type name (``event_type``) written to the outbox,
and ``payload()`` gives the JSON-ready fields.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar

from ratel.domain.money import Money


def _jsonable(value: Any) -> Any:
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list | frozenset | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, kw_only=True)
class DomainEvent(ABC):
    """Base of all events. ``aggregate`` is the kind of object that changed and
    ``aggregate_id`` its identifier, so the outbox can keep order per object."""

    aggregate: ClassVar[str] = "unknown"
    occurred_at: datetime

    @property
    def event_type(self) -> str:
        return type(self).__name__

    @property
    @abstractmethod
    def aggregate_id(self) -> str:
        """The identifier of the object that changed."""

    def payload(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, kw_only=True)
class CustomerEvent(DomainEvent):
    aggregate: ClassVar[str] = "customer"
    customer_id: str

    @property
    def aggregate_id(self) -> str:
        return self.customer_id


@dataclass(frozen=True, kw_only=True)
class AccountEvent(DomainEvent):
    aggregate: ClassVar[str] = "account"
    account_id: str
    customer_id: str

    @property
    def aggregate_id(self) -> str:
        return self.account_id


@dataclass(frozen=True, kw_only=True)
class SessionEvent(DomainEvent):
    aggregate: ClassVar[str] = "session"
    session_id: str
    account_id: str

    @property
    def aggregate_id(self) -> str:
        return self.session_id


# -- customers -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CustomerCreated(CustomerEvent):
    name: str
    currency: str


@dataclass(frozen=True, kw_only=True)
class CustomerUpdated(CustomerEvent):
    changed: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class CustomerSuspended(CustomerEvent):
    reason: str


@dataclass(frozen=True, kw_only=True)
class CustomerResumed(CustomerEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class CustomerClosed(CustomerEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class BalanceChanged(CustomerEvent):
    """The balance moved: a top-up, a payment, a charge, a manual transaction."""

    delta: Money
    balance: Money
    reason: str
    reference: str = ""


@dataclass(frozen=True, kw_only=True)
class CreditLimitChanged(CustomerEvent):
    credit_limit: Money


# -- accounts ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AccountCreated(AccountEvent):
    product_code: str


@dataclass(frozen=True, kw_only=True)
class AccountUpdated(AccountEvent):
    changed: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class AccountBlocked(AccountEvent):
    reason: str


@dataclass(frozen=True, kw_only=True)
class AccountUnblocked(AccountEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class AccountTerminated(AccountEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class ProductChanged(AccountEvent):
    old_product_code: str
    new_product_code: str


@dataclass(frozen=True, kw_only=True)
class AddOnAdded(AccountEvent):
    product_code: str
    assignment_id: str
    effective_from: datetime
    effective_to: datetime | None


@dataclass(frozen=True, kw_only=True)
class AddOnRemoved(AccountEvent):
    product_code: str
    assignment_id: str
    reason: str  # "removed" or "expired"


@dataclass(frozen=True, kw_only=True)
class SimChanged(AccountEvent):
    old_imsi: str | None
    new_imsi: str | None
    old_iccid: str | None
    new_iccid: str | None


@dataclass(frozen=True, kw_only=True)
class NumberChanged(AccountEvent):
    old_msisdn: str | None
    new_msisdn: str | None


@dataclass(frozen=True, kw_only=True)
class LocationChanged(AccountEvent):
    location: str
    restricted: bool


@dataclass(frozen=True, kw_only=True)
class LocationBlockLifted(AccountEvent):
    location: str


# -- quotas and charging ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class QuotaExhausted(AccountEvent):
    """The last quota covering a service and destination (or rating) group is
    used up: sent once, when no other bucket for the same scope has units left."""

    service: str
    destination_group: str | None
    rating_group: int | None
    bucket_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class QuotaRenewed(AccountEvent):
    bucket_id: str
    allowance: Decimal


@dataclass(frozen=True, kw_only=True)
class FundsExhausted(SessionEvent):
    """A session got its final units: what the network must do now."""

    customer_id: str
    action: str
    redirect_url: str | None


@dataclass(frozen=True, kw_only=True)
class SessionCharged(SessionEvent):
    """Usage was committed against a session (a report or a direct debit)."""

    customer_id: str
    amount: Money


@dataclass(frozen=True, kw_only=True)
class XdrProduced(SessionEvent):
    customer_id: str
    xdr_id: str
    charge: Money
    cause: str = "normal"  # the xDR's: why the session ended
