"""Quota buckets and service wallets: allowances drawn before money.

A bucket is what one product (main or add-on) gives one account for one
scope: a service, optionally narrowed to a destination group or a rating
group. Buckets are drawn in consumption order: highest precedence first
(add-ons before the main product), then the earliest expiry, then the oldest.
Money buckets (service wallets) pay the rated cost of usage before the balance.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ratel.domain.catalogue import QuotaDefinition, Renewal, Service, Unit
from ratel.domain.errors import InvalidQuota

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def add_months(at: datetime, months: int) -> datetime:
    """``at`` moved by whole months, the day clamped to the month's end
    (31 January + 1 month = 28/29 February)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def next_period_end(start: datetime, renewal: Renewal) -> datetime | None:
    if renewal is Renewal.DAILY:
        return start + timedelta(days=1)
    if renewal is Renewal.MONTHLY:
        return add_months(start, 1)
    return None


@dataclass(frozen=True, slots=True)
class QuotaScope:
    """What a bucket covers. Buckets with the same scope are "the same quota"
    for the exhausted notice."""

    service: Service
    destination_group: str | None = None
    rating_group: int | None = None

    def __post_init__(self) -> None:
        # values loaded from storage may arrive as plain strings
        object.__setattr__(self, "service", Service(self.service))

    def covers(
        self, service: Service, destination_group: str | None, rating_group: int | None
    ) -> bool:
        if service != self.service:
            return False
        if self.destination_group is not None and self.destination_group != destination_group:
            return False
        return self.rating_group is None or self.rating_group == rating_group


@dataclass(slots=True)
class QuotaBucket:
    """Units of one scope for one account, with what is used and what open
    sessions hold. ``left`` = allowance - used; ``free`` = left - reserved."""

    id: str
    account_id: str
    product_code: str
    scope: QuotaScope
    unit: Unit
    allowance: Decimal
    renewal: Renewal
    precedence: int
    valid_from: datetime
    expires_at: datetime | None = None  # once-only quota or add-on end
    period_end: datetime | None = None  # next renewal
    used: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    assignment_id: str | None = None  # the add-on assignment that gave it
    currency: str | None = None  # money buckets
    quota_code: str = ""

    def __post_init__(self) -> None:
        self.unit = Unit(self.unit)
        self.renewal = Renewal(self.renewal)
        if self.allowance < 0 or self.used < 0 or self.reserved < 0:
            raise InvalidQuota(f"bucket {self.id}: allowance, used and reserved are >= 0")

    @classmethod
    def grant(
        cls,
        *,
        id: str,
        account_id: str,
        product_code: str,
        definition: QuotaDefinition,
        precedence: int,
        now: datetime,
        ends_at: datetime | None = None,
        assignment_id: str | None = None,
    ) -> QuotaBucket:
        """A fresh bucket from a product's quota definition. ``ends_at`` is the
        add-on's end: the bucket never outlives its product."""
        expires = ends_at
        if definition.renewal is Renewal.ONCE and definition.validity is not None:
            own = now + definition.validity
            expires = own if expires is None else min(expires, own)
        return cls(
            id=id,
            account_id=account_id,
            product_code=product_code,
            scope=QuotaScope(
                definition.service, definition.destination_group, definition.rating_group
            ),
            unit=definition.unit,
            allowance=definition.allowance,
            renewal=definition.renewal,
            precedence=precedence,
            valid_from=now,
            expires_at=expires,
            period_end=next_period_end(now, definition.renewal),
            assignment_id=assignment_id,
            currency=definition.currency,
            quota_code=definition.code,
        )

    @property
    def left(self) -> Decimal:
        return max(self.allowance - self.used, Decimal(0))

    @property
    def free(self) -> Decimal:
        return max(self.allowance - self.used - self.reserved, Decimal(0))

    def is_active(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.expires_at is None or at < self.expires_at)

    def is_exhausted(self) -> bool:
        return self.used >= self.allowance

    def order_key(self) -> tuple[int, datetime, datetime, str]:
        return (
            -self.precedence,
            self.expires_at or _FAR_FUTURE,
            self.valid_from,
            self.id,
        )

    def hold(self, units: Decimal) -> Decimal:
        """Reserve up to ``units``; return what was held."""
        taken = min(units, self.free)
        if taken < 0:
            raise InvalidQuota("a hold is positive")
        self.reserved += taken
        return taken

    def settle(self, held: Decimal, used: Decimal) -> None:
        """Close a hold of ``held`` units of which ``used`` were consumed."""
        if held > self.reserved or held < 0 or used < 0:
            raise InvalidQuota(f"bucket {self.id}: cannot settle {held}/{used} of {self.reserved}")
        self.reserved -= held
        self.used += used

    def draw(self, units: Decimal) -> Decimal:
        """Consume up to ``units`` without a hold (direct debit, overuse)."""
        if units < 0:
            raise InvalidQuota("a draw is positive")
        taken = min(units, self.free)
        self.used += taken
        return taken

    def give_back(self, units: Decimal) -> None:
        """A refund returns consumed units."""
        if units < 0:
            raise InvalidQuota("a refund is positive")
        self.used = max(self.used - units, Decimal(0))

    @property
    def period_start(self) -> datetime:
        """When the current period began (``valid_from`` for a bucket that
        never renews, and in its first period)."""
        if self.period_end is None:
            return self.valid_from
        if self.renewal is Renewal.DAILY:
            return max(self.valid_from, self.period_end - timedelta(days=1))
        if self.renewal is Renewal.MONTHLY:
            end = self.period_end
            months = (end.year - self.valid_from.year) * 12 + end.month - self.valid_from.month
            return max(self.valid_from, add_months(self.valid_from, months - 1))
        return self.valid_from

    def renew(self, now: datetime) -> bool:
        """Start the periods that ``now`` has reached: usage goes back to zero.
        Returns whether a renewal happened."""
        renewed = False
        while self.period_end is not None and now >= self.period_end:
            if self.expires_at is not None and self.period_end >= self.expires_at:
                break
            self.period_end = self._period_end_after(self.period_end)
            self.used = Decimal(0)
            renewed = True
        return renewed

    def resume(self, definition: QuotaDefinition, now: datetime) -> bool:
        """Take this bucket back when the account returns to its product within
        the bucket's period, after a product change ended it: its usage and its
        renewal dates go on, with the allowance ``definition`` gives now (a
        fresh bucket would give the allowance again, and count the period from
        the change). Returns whether it could: not once its period, or a
        once-only quota's validity, is over."""
        if self.expires_at is None or self.expires_at > now or self.quota_code != definition.code:
            return False
        if self.period_end is not None and now >= self.period_end:
            return False
        end = None
        if definition.renewal is Renewal.ONCE and definition.validity is not None:
            end = self.valid_from + definition.validity
            if end <= now:
                return False
        self.expires_at = end
        self.allowance = definition.allowance
        return True

    def _period_end_after(self, start: datetime) -> datetime | None:
        """The end of the period that begins at ``start``. Monthly periods count
        from ``valid_from``, so a quota granted on 31 January renews on 28 February,
        31 March, 30 April (not on the 28th for ever after February)."""
        if self.renewal is Renewal.MONTHLY:
            months = (start.year - self.valid_from.year) * 12 + start.month - self.valid_from.month
            return add_months(self.valid_from, months + 1)
        return next_period_end(start, self.renewal)


def consumption_order(
    buckets: Iterable[QuotaBucket],
    service: Service,
    destination_group: str | None,
    rating_group: int | None,
    at: datetime,
    unit: Unit | None = None,
) -> list[QuotaBucket]:
    """Active buckets covering a usage, in the order they are drawn."""
    chosen = [
        b
        for b in buckets
        if b.is_active(at)
        and b.scope.covers(service, destination_group, rating_group)
        and (unit is None or b.unit == unit)
    ]
    chosen.sort(key=QuotaBucket.order_key)
    return chosen


def newly_exhausted_scopes(
    buckets: Sequence[QuotaBucket],
    touched: Iterable[QuotaBucket],
    at: datetime,
    was_exhausted: dict[str, bool],
) -> list[tuple[QuotaScope, list[QuotaBucket]]]:
    """Scopes whose last bucket has just been used up.

    ``was_exhausted`` maps bucket id to its exhausted state before the change.
    A scope is reported once: when a touched bucket became exhausted and no
    other active bucket of the same scope has units left (100 + 50 SMS notify
    after the 150th SMS, not the 100th)."""
    result: list[tuple[QuotaScope, list[QuotaBucket]]] = []
    seen: set[QuotaScope] = set()
    for bucket in touched:
        if bucket.scope in seen or was_exhausted.get(bucket.id, False) or not bucket.is_exhausted():
            continue
        same = [
            b
            for b in buckets
            if b.scope == bucket.scope
            and b.unit == bucket.unit
            and (b.is_active(at) or b is bucket)
        ]
        if all(b.is_exhausted() for b in same):
            seen.add(bucket.scope)
            result.append((bucket.scope, same))
    return result
