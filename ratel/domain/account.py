"""The account: a service endpoint of a customer (a phone number, a login, a
SIM card, an ONT, a modem) with its main product, add-ons, identifiers and
roaming location.

An account is active, blocked or terminated (final). A suspended or closed
customer makes all its accounts unusable without touching their own status,
so that resuming the customer restores exactly what was there before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from ratel.domain import events
from ratel.domain.customer import Customer, CustomerStatus, require_aware
from ratel.domain.errors import (
    AccountBlocked,
    AccountTerminated,
    AccountTerminatedDenied,
    CustomerClosedDenied,
    CustomerSuspended,
    DuplicateAddOn,
    InvalidAccount,
    InvalidAddOn,
    LocationNotRestricted,
    LocationRestricted,
    ServiceDenied,
    UnknownAddOn,
)
from ratel.domain.identifiers import (
    UNSET,
    CpeDevice,
    Iccid,
    Identifiers,
    Imei,
    Imsi,
    Msisdn,
    StaticIp,
    Unset,
)
from ratel.domain.location import LocationPolicy


class AccountStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    TERMINATED = "terminated"


def _required_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidAccount(f"{what} is a non-empty string, got {value!r}")
    return value.strip()


@dataclass(frozen=True, slots=True)
class AddOnAssignment:
    """An add-on product given to an account for a window of time, for example
    a 24-hour or a 30-day data pack. The window is half-open:
    ``effective_from <= t < effective_to``; no ``effective_to`` means until
    removed. A higher ``precedence`` is used first."""

    id: str
    product_code: str
    precedence: int
    effective_from: datetime
    effective_to: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise InvalidAddOn(f"an add-on assignment id is a non-empty string: {self.id!r}")
        if not isinstance(self.product_code, str) or not self.product_code.strip():
            raise InvalidAddOn(f"an add-on product code is a non-empty string: {self.id!r}")
        if isinstance(self.precedence, bool) or not isinstance(self.precedence, int):
            raise InvalidAddOn(f"an add-on precedence is a number: {self.precedence!r}")
        start = require_aware(self.effective_from, "effective_from")
        object.__setattr__(self, "effective_from", start)
        if self.effective_to is not None:
            end = require_aware(self.effective_to, "effective_to")
            if end <= start:
                raise InvalidAddOn(
                    f"add-on {self.id} ends ({end.isoformat()}) "
                    f"before it starts ({start.isoformat()})"
                )
            object.__setattr__(self, "effective_to", end)

    def is_active(self, at: datetime) -> bool:
        at = require_aware(at, "at")
        return self.effective_from <= at and (self.effective_to is None or at < self.effective_to)

    def has_expired(self, at: datetime) -> bool:
        at = require_aware(at, "at")
        return self.effective_to is not None and self.effective_to <= at

    def sort_key(self) -> tuple[int, int, datetime, datetime, str]:
        """Precedence first (highest first), then the earliest expiry, so that a
        pack about to end is used before one that lasts; open-ended ones last."""
        expiry = self.effective_to or self.effective_from  # open-ended: ordered by the flag
        return (
            -self.precedence,
            0 if self.effective_to else 1,
            expiry,
            self.effective_from,
            self.id,
        )


@dataclass(kw_only=True)
class Account:
    """A service endpoint of a customer. Build a new one with ``Account.create``
    (records ``AccountCreated``); the plain constructor rebuilds a stored one.

    ``location`` is the roaming location last reported by the network and
    ``location_block_lifted`` the user's choice to use restricted services
    there anyway; a new location clears that choice.
    """

    id: str
    customer_id: str
    product_code: str
    created_at: datetime
    status: AccountStatus = AccountStatus.ACTIVE
    add_ons: list[AddOnAssignment] = field(default_factory=list)
    identifiers: Identifiers = field(default_factory=Identifiers)
    custom_fields: dict[str, str] = field(default_factory=dict)
    location: str | None = None
    location_changed_at: datetime | None = None
    location_block_lifted: bool = False
    _events: list[events.DomainEvent] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.id = _required_text(self.id, "an account id")
        self.customer_id = _required_text(self.customer_id, "a customer id")
        self.product_code = _required_text(self.product_code, "a product code")
        self.created_at = require_aware(self.created_at, "created_at")
        self.status = AccountStatus(self.status)
        if not isinstance(self.identifiers, Identifiers):
            raise InvalidAccount(f"identifiers must be Identifiers, got {self.identifiers!r}")
        self.custom_fields = _custom_fields(self.custom_fields)
        if self.location is not None:
            self.location = _required_text(self.location, "a location")
        if self.location_changed_at is not None:
            self.location_changed_at = require_aware(
                self.location_changed_at, "location_changed_at"
            )
        ids = [a.id for a in self.add_ons]
        if len(ids) != len(set(ids)):
            raise DuplicateAddOn(f"account {self.id} holds an add-on assignment id twice")
        self.add_ons = list(self.add_ons)

    # -- creation and events ---------------------------------------------------

    @classmethod
    def create(
        cls,
        id: str,
        customer_id: str,
        product_code: str,
        now: datetime,
        *,
        identifiers: Identifiers | None = None,
        custom_fields: Mapping[str, str] | None = None,
    ) -> Account:
        """A new active account on ``product_code``; records ``AccountCreated``."""
        now = require_aware(now)
        account = cls(
            id=id,
            customer_id=customer_id,
            product_code=product_code,
            created_at=now,
            identifiers=identifiers or Identifiers(),
            custom_fields=dict(custom_fields or {}),
        )
        account._record(
            events.AccountCreated(
                occurred_at=now,
                account_id=account.id,
                customer_id=account.customer_id,
                product_code=account.product_code,
            )
        )
        return account

    def pull_events(self) -> list[events.DomainEvent]:
        """The events recorded since the last call, oldest first; empties the list."""
        pulled, self._events = self._events, []
        return pulled

    def _record(self, event: events.DomainEvent) -> None:
        self._events.append(event)

    def _ids(self) -> dict[str, str]:
        return {"account_id": self.id, "customer_id": self.customer_id}

    def _changeable(self, now: datetime, action: str) -> datetime:
        """Every change starts here: a terminated account is final."""
        now = require_aware(now)
        if self.status is AccountStatus.TERMINATED:
            raise AccountTerminated(f"account {self.id} is terminated: cannot {action}")
        return now

    # -- lifecycle -------------------------------------------------------------

    def block(self, reason: str, now: datetime) -> None:
        """Active -> blocked. Blocking a blocked account changes nothing and
        records nothing, so a redelivered request is harmless."""
        now = self._changeable(now, "block")
        if self.status is AccountStatus.BLOCKED:
            return
        self.status = AccountStatus.BLOCKED
        self._record(events.AccountBlocked(occurred_at=now, reason=reason, **self._ids()))

    def unblock(self, now: datetime) -> None:
        """Blocked -> active. Unblocking an active account is a no-op (see ``block``)."""
        now = self._changeable(now, "unblock")
        if self.status is AccountStatus.ACTIVE:
            return
        self.status = AccountStatus.ACTIVE
        self._record(events.AccountUnblocked(occurred_at=now, **self._ids()))

    def terminate(self, now: datetime) -> None:
        """Active or blocked -> terminated, for good. Terminating again raises
        ``AccountTerminated``, as every other change of a terminated account does."""
        now = self._changeable(now, "terminate")
        self.status = AccountStatus.TERMINATED
        self._record(events.AccountTerminated(occurred_at=now, **self._ids()))

    # -- products --------------------------------------------------------------

    def change_product(self, product_code: str, now: datetime) -> None:
        """Move to another main product; records ``ProductChanged`` (nothing when
        it is the current one)."""
        now = self._changeable(now, "change product")
        new = _required_text(product_code, "a product code")
        if new == self.product_code:
            return
        old, self.product_code = self.product_code, new
        self._record(
            events.ProductChanged(
                occurred_at=now, old_product_code=old, new_product_code=new, **self._ids()
            )
        )

    def add_add_on(
        self,
        assignment_id: str,
        product_code: str,
        precedence: int,
        now: datetime,
        effective_from: datetime | None = None,
        effective_to: datetime | None = None,
        *,
        duration: timedelta | None = None,
    ) -> AddOnAssignment:
        """Give the account an add-on from ``effective_from`` (default now) until
        ``effective_to`` or for ``duration`` (default: until removed); records
        ``AddOnAdded``."""
        now = self._changeable(now, "add an add-on")
        if any(a.id == assignment_id for a in self.add_ons):
            raise DuplicateAddOn(f"account {self.id} already holds add-on {assignment_id}")
        start = now if effective_from is None else require_aware(effective_from, "effective_from")
        if duration is not None:
            if effective_to is not None:
                raise InvalidAddOn("give effective_to or duration, not both")
            effective_to = start + duration
        assignment = AddOnAssignment(
            id=assignment_id,
            product_code=product_code,
            precedence=precedence,
            effective_from=start,
            effective_to=effective_to,
        )
        self.add_ons.append(assignment)
        self._record(
            events.AddOnAdded(
                occurred_at=now,
                product_code=assignment.product_code,
                assignment_id=assignment.id,
                effective_from=assignment.effective_from,
                effective_to=assignment.effective_to,
                **self._ids(),
            )
        )
        return assignment

    def remove_add_on(self, assignment_id: str, now: datetime) -> AddOnAssignment:
        """Take an add-on away before its end; records ``AddOnRemoved`` ("removed")."""
        now = self._changeable(now, "remove an add-on")
        for assignment in self.add_ons:
            if assignment.id == assignment_id:
                self.add_ons.remove(assignment)
                self._removed(assignment, now, "removed")
                return assignment
        raise UnknownAddOn(f"account {self.id} holds no add-on {assignment_id}")

    def expire_add_ons(self, now: datetime) -> list[AddOnAssignment]:
        """Drop the add-ons whose window has ended by ``now``; records one
        ``AddOnRemoved`` ("expired") each, earliest expiry first."""
        now = self._changeable(now, "expire add-ons")
        expired = sorted((a for a in self.add_ons if a.has_expired(now)), key=_by_expiry)
        for assignment in expired:
            self.add_ons.remove(assignment)
            self._removed(assignment, now, "expired")
        return expired

    def _removed(self, assignment: AddOnAssignment, now: datetime, reason: str) -> None:
        self._record(
            events.AddOnRemoved(
                occurred_at=now,
                product_code=assignment.product_code,
                assignment_id=assignment.id,
                reason=reason,
                **self._ids(),
            )
        )

    def active_add_ons(self, at: datetime) -> list[AddOnAssignment]:
        """The add-ons in force at ``at``, in the order they are drawn: highest
        precedence first, then the earliest to expire."""
        at = require_aware(at, "at")
        return sorted((a for a in self.add_ons if a.is_active(at)), key=AddOnAssignment.sort_key)

    # -- identifiers -----------------------------------------------------------

    def change_sim(self, imsi: Imsi | None, iccid: Iccid | None, now: datetime) -> None:
        """A SIM swap: new IMSI and ICCID; records ``SimChanged`` (nothing when
        both are the current ones)."""
        now = self._changeable(now, "change the SIM")
        old = self.identifiers
        if old.imsi == imsi and old.iccid == iccid:
            return
        self.identifiers = old.replace(imsi=imsi, iccid=iccid)
        self._record(
            events.SimChanged(
                occurred_at=now,
                old_imsi=_text(old.imsi),
                new_imsi=_text(imsi),
                old_iccid=_text(old.iccid),
                new_iccid=_text(iccid),
                **self._ids(),
            )
        )

    def change_number(self, msisdn: Msisdn | None, now: datetime) -> None:
        """A new MSISDN; records ``NumberChanged`` (nothing when it is the current one)."""
        now = self._changeable(now, "change the number")
        old = self.identifiers.msisdn
        if old == msisdn:
            return
        self.identifiers = self.identifiers.replace(msisdn=msisdn)
        self._record(
            events.NumberChanged(
                occurred_at=now, old_msisdn=_text(old), new_msisdn=_text(msisdn), **self._ids()
            )
        )

    def set_identifiers(
        self,
        now: datetime,
        *,
        imei: Imei | None | Unset = UNSET,
        aliases: frozenset[str] | Unset = UNSET,
        cpe: CpeDevice | None | Unset = UNSET,
        static_ip: StaticIp | None | Unset = UNSET,
    ) -> None:
        """Change the device identifiers (``None`` clears one); records
        ``AccountUpdated`` with the names of those that changed. MSISDN and SIM
        have their own events: use ``change_number`` and ``change_sim``."""
        now = self._changeable(now, "change identifiers")
        new = self.identifiers.replace(imei=imei, aliases=aliases, cpe=cpe, static_ip=static_ip)
        self._update_identifiers(new, now)

    def add_alias(self, alias: str, now: datetime) -> None:
        """Keep an identifier another system gave the account (for example the
        modem ID a satellite NMS returns); records ``AccountUpdated``."""
        now = self._changeable(now, "add an alias")
        self._update_identifiers(self.identifiers.with_alias(alias), now)

    def _update_identifiers(self, new: Identifiers, now: datetime) -> None:
        changed = new.changed_fields(self.identifiers)
        if not changed:
            return
        self.identifiers = new
        self._record(events.AccountUpdated(occurred_at=now, changed=changed, **self._ids()))

    def update_custom_fields(self, now: datetime, fields: Mapping[str, str | None]) -> None:
        """Merge ``fields`` into the custom fields; a ``None`` value removes the
        field. Records ``AccountUpdated`` (``custom_fields``) if anything changed."""
        now = self._changeable(now, "update custom fields")
        merged = dict(self.custom_fields)
        for key, value in fields.items():
            name = _custom_field_name(key)
            if value is None:
                merged.pop(name, None)
            elif isinstance(value, str):
                merged[name] = value
            else:
                raise InvalidAccount(f"custom field {name} takes a string, got {value!r}")
        if merged == self.custom_fields:
            return
        self.custom_fields = merged
        self._record(
            events.AccountUpdated(occurred_at=now, changed=("custom_fields",), **self._ids())
        )

    # -- location --------------------------------------------------------------

    def set_location(self, location: str, now: datetime, policy: LocationPolicy) -> None:
        """The network reports where the user is. A new location records
        ``LocationChanged`` (saying whether it is restricted) and clears a lifted
        block; the same location again (case aside) changes nothing."""
        now = self._changeable(now, "change location")
        new = _required_text(location, "a location")
        if self.location is not None and self.location.casefold() == new.casefold():
            return
        self.location = new
        self.location_changed_at = now
        self.location_block_lifted = False
        self._record(
            events.LocationChanged(
                occurred_at=now,
                location=new,
                restricted=policy.is_restricted(new),
                **self._ids(),
            )
        )

    def lift_location_block(self, now: datetime, policy: LocationPolicy) -> None:
        """The user chooses to use the restricted services in the current
        (restricted) location anyway; records ``LocationBlockLifted``. Lifting
        twice is a no-op; lifting where nothing is restricted raises
        ``LocationNotRestricted``."""
        now = self._changeable(now, "lift the location block")
        if self.location is None or not policy.is_restricted(self.location):
            raise LocationNotRestricted(
                f"account {self.id} is not in a restricted location ({self.location})"
            )
        if self.location_block_lifted:
            return
        self.location_block_lifted = True
        self._record(
            events.LocationBlockLifted(occurred_at=now, location=self.location, **self._ids())
        )

    # -- usability -------------------------------------------------------------

    def check_can_use(
        self, customer: Customer, service: str, location_policy: LocationPolicy
    ) -> None:
        """Raise the reason why the account may not use ``service`` now, checked
        in this order: account terminated, customer closed, account blocked,
        customer suspended, restricted location. Whether the products include
        the service is the catalogue's question, not this one. Every error
        raised is a ``ServiceDenied``; the terminal ones are also
        ``AccountTerminated`` / ``CustomerClosed``."""
        if customer.id != self.customer_id:
            raise ValueError(f"account {self.id} belongs to {self.customer_id}, not {customer.id}")
        if self.status is AccountStatus.TERMINATED:
            raise AccountTerminatedDenied(f"account {self.id} is terminated")
        if customer.status is CustomerStatus.CLOSED:
            raise CustomerClosedDenied(f"customer {customer.id} is closed")
        if self.status is AccountStatus.BLOCKED:
            raise AccountBlocked(f"account {self.id} is blocked")
        if customer.status is CustomerStatus.SUSPENDED:
            raise CustomerSuspended(f"customer {customer.id} is suspended")
        if not location_policy.allows(service, self.location, self.location_block_lifted):
            raise LocationRestricted(
                f"{service} is not available in location {self.location} "
                "unless the user lifts the block"
            )

    def usable_for(self, customer: Customer, service: str, location_policy: LocationPolicy) -> bool:
        """``check_can_use`` as a yes or no."""
        try:
            self.check_can_use(customer, service, location_policy)
        except ServiceDenied:
            return False
        return True


def _by_expiry(assignment: AddOnAssignment) -> tuple[datetime, str]:
    # Only called on expired add-ons, which always have an end.
    assert assignment.effective_to is not None
    return assignment.effective_to, assignment.id


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _custom_field_name(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidAccount(f"a custom field name is a non-empty string, got {key!r}")
    return key.strip()


def _custom_fields(values: Mapping[str, str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(value, str):
            raise InvalidAccount(f"custom field {key!r} takes a string, got {value!r}")
        result[_custom_field_name(key)] = value
    return result
