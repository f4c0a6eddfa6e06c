"""Credit control: the one charging abstraction behind RADIUS and Diameter.

A ``CreditControlSession`` holds one network session's state. Each request
(INITIAL, UPDATE, TERMINATE, EVENT) carries one ``UsageRequest`` per stream
(a Diameter Multiple-Services-Credit-Control, or the single stream of a
RADIUS session): the units used since the last report and the units wanted
next. The session commits the used units (quota buckets first, in
consumption order, then money at the tariff), releases what was held and
not used, and holds the next grant (buckets first, then money within the
credit limit). Each answer is stored by request number, so a retransmitted
request gets the same answer and changes nothing. TERMINATE produces exactly
one xDR, even when the session was made of several sub-sessions.

Money is charged cumulatively per stream: what a report costs is
``rate.cost(all units so far) - rate.cost(units before)``, so connection fees,
free seconds and interval rounding apply once per session, whatever the
number of interim reports. Rounding to the currency happens only on the xDR,
and the balance is adjusted by the same rounding so that the money debited
always equals the xDR's charge.

When a destination's rate changes at a time of day (peak / off-peak), a grant
whose validity spans the change carries ``tariff_change_at`` (RFC 4006
Tariff-Time-Change), and the usage the network reports as after the change
(``used_after_change``) is rated at the new rate, the rest at the rate in
force when the grant was given. Both parts continue the same cumulative
count, so a session still pays one connection fee.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from ratel.domain import events
from ratel.domain.account import Account
from ratel.domain.catalogue import ExhaustionAction, Product, Service, ServicePolicy, Unit
from ratel.domain.customer import Customer
from ratel.domain.errors import (
    DomainError,
    InsufficientFunds,
    OutOfOrderRequest,
    RatingFailed,
    SessionClosed,
)
from ratel.domain.location import LocationPolicy
from ratel.domain.money import Money, RoundingRule
from ratel.domain.quota import QuotaBucket, consumption_order, newly_exhausted_scopes
from ratel.domain.rating import DialingPlan, Rate, RatedDestination, Tariff

_MIB = 1024 * 1024


class RequestKind(StrEnum):
    INITIAL = "initial"
    UPDATE = "update"
    TERMINATE = "terminate"
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class ChargingConfig:
    """Grant sizes and timers. The network may ask for less or more; we grant
    at most ``max_grant`` per request so one session cannot hold all funds."""

    default_grant: Mapping[Unit, int] = field(
        default_factory=lambda: MappingProxyType(
            {Unit.SECONDS: 300, Unit.BYTES: 10 * _MIB, Unit.MESSAGES: 1}
        )
    )
    max_grant: Mapping[Unit, int] = field(
        default_factory=lambda: MappingProxyType(
            {Unit.SECONDS: 3600, Unit.BYTES: 1024 * _MIB, Unit.MESSAGES: 100}
        )
    )
    validity_seconds: int = 3600
    threshold_ratio: Decimal = Decimal("0.2")
    rounding_overrides: Mapping[str, RoundingRule] = field(default_factory=dict)

    def grant_size(self, unit: Unit, requested: int | None) -> int:
        wanted = self.default_grant.get(unit, 1) if requested is None else requested
        return max(0, min(wanted, self.max_grant.get(unit, wanted)))


@dataclass(frozen=True, slots=True)
class UsageRequest:
    """One stream of a request: a rating group of a data session, a call, an
    SMS, a USSD dialogue. ``used`` is the units consumed since the last
    report; ``requested`` the units wanted next (None: the default grant;
    0: none). ``used_after_change`` is the part of ``used`` consumed after
    the tariff change the last grant announced (Tariff-Change-Usage); the
    rest was consumed before it."""

    service: Service
    unit: Unit
    access_code: str
    destination: str | None = None
    rating_group: int | None = None
    service_identifier: int | None = None
    requested: int | None = None
    used: int = 0
    final: bool = False
    used_after_change: int = 0

    def __post_init__(self) -> None:
        if self.used < 0 or (self.requested is not None and self.requested < 0):
            raise DomainError("used and requested units are zero or positive")
        if not 0 <= self.used_after_change <= self.used:
            raise DomainError("units used after a tariff change are part of the used units")

    @property
    def used_before_change(self) -> int:
        return self.used - self.used_after_change

    @property
    def key(self) -> str:
        """The stream the request reports on and asks for. Two services
        sharing a rating group (two Service-Identifiers of Rating-Group 10)
        are two streams, each with its own hold: one stream would grant the
        funds once for each."""
        rg = "" if self.rating_group is None else str(self.rating_group)
        key = f"{self.service.value}|{rg}|{self.access_code}|{self.destination or ''}"
        if self.service_identifier is not None:
            key += f"|{self.service_identifier}"
        return key


@dataclass(frozen=True, slots=True)
class FinalUnitIndication:
    """These are the last units: what the network does when they are used."""

    action: ExhaustionAction
    redirect_url: str | None = None
    throttle_download_kbps: int | None = None
    throttle_upload_kbps: int | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    key: str
    rating_group: int | None
    service_identifier: int | None
    unit: Unit
    units: int
    validity_seconds: int
    threshold: int
    final: FinalUnitIndication | None = None
    free: bool = False
    # when the stream's rate changes within the grant's validity (Tariff-Time-Change)
    tariff_change_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Denial:
    """No units for this stream. ``reason`` is a DomainError code
    (insufficient_funds, rating_failed, account_blocked, ...)."""

    key: str
    rating_group: int | None
    service_identifier: int | None
    reason: str
    message: str
    final: FinalUnitIndication | None = None


@dataclass(frozen=True, slots=True)
class XdrLine:
    """What one stream of a session used and cost."""

    service: Service
    unit: Unit
    access_code: str
    destination: str | None
    rating_group: int | None
    destination_group: str | None
    ledger_code: str | None
    units: int
    money_units: int
    bucket_units: tuple[tuple[str, Decimal], ...]
    charge: Money  # record-rounded total cost of the line
    paid_by_service_wallets: Money  # part of ``charge`` paid by money buckets


@dataclass(frozen=True, slots=True)
class Xdr:
    """The one usage record of a session."""

    id: str
    session_id: str
    account_id: str
    customer_id: str
    started_at: datetime
    ended_at: datetime
    lines: tuple[XdrLine, ...]
    charge: Money
    sub_sessions: tuple[str, ...] = ()
    cause: str = "normal"

    @property
    def balance_charge(self) -> Money:
        """What the balance paid (the charge less what service wallets paid)."""
        total = Money.zero(self.charge.currency)
        for line in self.lines:
            total = total + line.charge - line.paid_by_service_wallets
        return total


@dataclass(frozen=True, slots=True)
class Answer:
    request_number: int
    kind: RequestKind
    results: tuple[Grant | Denial, ...]
    xdr: Xdr | None = None
    translated_number: str | None = None
    # the account's policy on a failing stream's code (None: the node's setting)
    raise_mscc_result_code: bool | None = None

    @property
    def granted(self) -> bool:
        return bool(self.results) and all(isinstance(r, Grant) for r in self.results)

    def first_denial(self) -> Denial | None:
        return next((r for r in self.results if isinstance(r, Denial)), None)


class Rater:
    """Finds the rate of a usage: the access code's tariff from the account's
    products (add-ons by precedence, then the main product), the destination
    translated by the dialing plan."""

    def __init__(
        self,
        products: Sequence[Product],
        tariffs: Mapping[str, Tariff],
        dialing: DialingPlan | None = None,
    ) -> None:
        self._products = sorted(products, key=lambda p: -p.precedence)
        self._tariffs = tariffs
        self._dialing = dialing

    def translate(self, number: str) -> str:
        return self._dialing.translate(number) if self._dialing else number

    def rate(self, request: UsageRequest) -> RatedDestination:
        code = next(
            (c for p in self._products if (c := p.tariff_for(request.access_code)) is not None),
            None,
        )
        if code is None:
            raise RatingFailed(f"no tariff for access code {request.access_code}")
        tariff = self._tariffs.get(code)
        if tariff is None:
            raise RatingFailed(f"tariff {code} is not in the catalogue")
        if request.destination and request.service in (Service.VOICE, Service.SMS):
            return tariff.rate_for(self.translate(request.destination))
        return tariff.rate_for(request.destination or request.access_code)


@dataclass(slots=True)
class ChargingContext:
    """What a credit-control call needs, loaded by the use case: the account,
    its customer (whose wallet is charged), its quota buckets, the rater and
    the effective policy. Events raised by the call are appended to
    ``events``."""

    account: Account
    customer: Customer
    buckets: list[QuotaBucket]
    rater: Rater
    policy: ServicePolicy
    location_policy: LocationPolicy
    config: ChargingConfig = field(default_factory=ChargingConfig)
    events: list[events.DomainEvent] = field(default_factory=list)

    def bucket(self, bucket_id: str) -> QuotaBucket | None:
        return next((b for b in self.buckets if b.id == bucket_id), None)


@dataclass(slots=True)
class Hold:
    """What a stream's current grant holds."""

    buckets: list[tuple[str, Decimal]]
    money_units: int
    money_buckets: list[tuple[str, Decimal]]
    money: Money  # held in the customer's wallet
    # usage of this grant is rated at the rate in force at ``granted_at``,
    # what is reported as after the change at the rate from ``tariff_change_at``
    granted_at: datetime | None = None
    tariff_change_at: datetime | None = None

    @property
    def bucket_units(self) -> int:
        return int(sum((u for _, u in self.buckets), Decimal(0)))


@dataclass(slots=True)
class Stream:
    """The state of one stream of a session."""

    request: UsageRequest
    rated: RatedDestination | None
    free: bool
    used_units: int = 0
    money_units: int = 0
    cost: Money | None = None  # exact rated cost of the money units so far
    paid_by_buckets: Money | None = None  # part of ``cost`` paid by service wallets
    bucket_units: dict[str, Decimal] = field(default_factory=dict)
    hold: Hold | None = None  # the grant of the sub-session ``holder``
    closed: bool = False
    # Sub-sessions live at once on one stream (a PDSN hand-off) each have a
    # grant out, so each keeps its hold: ``hold`` is the one of the
    # sub-session last heard from, the others wait here by sub-session.
    holder: str = ""
    parked: dict[str, Hold] = field(default_factory=dict)

    def holding_for(self, sub_session: str, known: Container[str]) -> None:
        """Make ``hold`` the hold of ``sub_session`` (none if it holds
        nothing), parking the one it was. ``known``: the session's
        sub-sessions; a holder among none of them is a row written before
        holds were kept per sub-session, whose one hold was the last asker's."""
        if self.holder not in known:
            self.holder = sub_session
        if sub_session == self.holder:
            return
        if self.hold is not None:
            self.parked[self.holder] = self.hold
        self.hold = self.parked.pop(sub_session, None)
        self.holder = sub_session

    def holds(self) -> list[Hold]:
        """Every hold of the stream, its sub-sessions' included."""
        current = [] if self.hold is None else [self.hold]
        return current + list(self.parked.values())


class _Orders:
    """The buckets a stream draws on now, per unit, in consumption order
    (``consumption_order``): computed once per request for its commit and its
    grant. What is chosen and its order depend on the buckets' scope, unit,
    validity, precedence and id and on ``now``, none of which a charging call
    changes; the units they hold or have used are read afresh from the
    buckets themselves."""

    __slots__ = ("_buckets", "_group", "_now", "_orders", "_request")

    def __init__(
        self, ctx: ChargingContext, stream: Stream, group: str | None, now: datetime
    ) -> None:
        self._buckets = ctx.buckets
        self._request = stream.request
        self._group = group
        self._now = now
        self._orders: dict[Unit, list[QuotaBucket]] = {}

    def of(self, unit: Unit) -> list[QuotaBucket]:
        """The active buckets of ``unit`` covering the stream, in the order they
        are drawn (callers only read the list)."""
        order = self._orders.get(unit)
        if order is None:
            r = self._request
            order = self._orders[unit] = consumption_order(
                self._buckets, r.service, self._group, r.rating_group, self._now, unit
            )
        return order


class SessionState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


#: The cause on the xDR of a session released by Tcc supervision (its
#: network element fell silent), not ended by a request of its own.
IDLE_TIMEOUT = "idle timeout"

#: The request number under which Tcc supervision ends a session: one above
#: the largest CC-Request-Number (Unsigned32), so that no request of the
#: network takes it. The gateway's late TERMINATE (or a RADIUS report) is then
#: no retransmission of the release: it is told the session has ended
#: (``SessionClosed``), and its usage is not acknowledged as if charged.
RELEASE_REQUEST_NUMBER = 2**32


@dataclass(slots=True)
class CreditControlSession:
    """One network session (possibly several sub-sessions) and its streams."""

    id: str
    account_id: str
    customer_id: str
    currency: str
    started_at: datetime
    last_activity: datetime
    state: SessionState = SessionState.OPEN
    streams: dict[str, Stream] = field(default_factory=dict)
    answers: dict[tuple[str, int], Answer] = field(default_factory=dict)
    last_request: dict[str, int] = field(default_factory=dict)
    sub_sessions: dict[str, bool] = field(default_factory=dict)  # id -> still active
    xdr: Xdr | None = None

    @classmethod
    def open(
        cls, id: str, account: Account, customer: Customer, now: datetime
    ) -> CreditControlSession:
        return cls(
            id=id,
            account_id=account.id,
            customer_id=customer.id,
            currency=customer.currency,
            started_at=now,
            last_activity=now,
        )

    # -- the public calls ---------------------------------------------------------

    def reserve(
        self,
        ctx: ChargingContext,
        number: int,
        requests: Sequence[UsageRequest],
        now: datetime,
        sub_session: str = "",
    ) -> Answer:
        """INITIAL: authorize and hold the first grants."""
        return self._handle(ctx, RequestKind.INITIAL, number, requests, now, sub_session)

    def report(
        self,
        ctx: ChargingContext,
        number: int,
        requests: Sequence[UsageRequest],
        now: datetime,
        sub_session: str = "",
    ) -> Answer:
        """UPDATE: commit used units, release the rest, grant again."""
        return self._handle(ctx, RequestKind.UPDATE, number, requests, now, sub_session)

    def terminate(
        self,
        ctx: ChargingContext,
        number: int,
        requests: Sequence[UsageRequest],
        now: datetime,
        sub_session: str = "",
        cause: str = "normal",
        xdr_id: str | None = None,
    ) -> Answer:
        """TERMINATE: commit the last usage; the last sub-session to end closes
        the session and produces its xDR."""
        return self._handle(
            ctx,
            RequestKind.TERMINATE,
            number,
            requests,
            now,
            sub_session,
            cause=cause,
            xdr_id=xdr_id,
        )

    def debit_event(
        self,
        ctx: ChargingContext,
        number: int,
        request: UsageRequest,
        now: datetime,
        xdr_id: str | None = None,
    ) -> Answer:
        """EVENT with direct debiting (an SMS): charge at once and close."""
        return self._handle(ctx, RequestKind.EVENT, number, [request], now, "", xdr_id=xdr_id)

    def stored_answer(self, number: int, sub_session: str = "") -> Answer | None:
        return self.answers.get((sub_session, number))

    # -- the machinery ------------------------------------------------------------

    def _handle(
        self,
        ctx: ChargingContext,
        kind: RequestKind,
        number: int,
        requests: Sequence[UsageRequest],
        now: datetime,
        sub_session: str,
        cause: str = "normal",
        xdr_id: str | None = None,
    ) -> Answer:
        stored = self.answers.get((sub_session, number))
        if stored is not None:
            return stored  # a retransmission: same answer, nothing charged again
        if self.state is SessionState.CLOSED:
            raise SessionClosed(f"session {self.id} has ended")
        last = self.last_request.get(sub_session)
        if last is not None and number < last:
            raise OutOfOrderRequest(f"request {number} after {last} in session {self.id}")
        if ctx.customer.currency != self.currency:
            raise DomainError("the session's currency is the customer's")
        self.sub_sessions.setdefault(sub_session, True)
        self.last_activity = now
        ending = kind in (RequestKind.TERMINATE, RequestKind.EVENT)
        results: list[Grant | Denial] = []
        translated: str | None = None
        if kind is RequestKind.EVENT:
            results = [self._direct_debit(ctx, self._stream(ctx, r), r, now) for r in requests]
        else:
            for request in requests:
                stream = self._stream(ctx, request)
                stream.holding_for(sub_session, self.sub_sessions)  # its own grant only
                # the commit and the grant draw on the same buckets in the same order
                orders = _Orders(ctx, stream, self._group(stream), now)
                self._commit(ctx, stream, request.used, now, request.used_after_change, orders)
                if ending or request.final:
                    # the hold was settled by the commit; a stream ends with its last sub-session
                    stream.closed = ending and not self._others_active(sub_session)
                    continue
                if kind is RequestKind.INITIAL:
                    translated = translated or self._translation(ctx, request)
                results.append(self._grant(ctx, stream, request, now, orders))
        xdr = None
        if ending:
            self.sub_sessions[sub_session] = False
            if not any(self.sub_sessions.values()):
                xdr = self._close(ctx, now, cause, xdr_id or f"{self.id}:xdr")
        answer = Answer(
            number, kind, tuple(results), xdr, translated, ctx.policy.raise_mscc_result_code
        )
        self.answers[(sub_session, number)] = answer
        self.last_request[sub_session] = number
        return answer

    def _others_active(self, sub_session: str) -> bool:
        return any(active for sid, active in self.sub_sessions.items() if sid != sub_session)

    def _translation(self, ctx: ChargingContext, request: UsageRequest) -> str | None:
        if not ctx.policy.provision_translated_number or request.destination is None:
            return None
        translated = ctx.rater.translate(request.destination)
        return translated if translated != request.destination else None

    def _stream(self, ctx: ChargingContext, request: UsageRequest) -> Stream:
        stream = self.streams.get(request.key)
        if stream is not None:
            return stream
        if request.destination is None:
            # Many voice gateways name the called party in the INITIAL only:
            # a later request without one reports on the call's stream.
            calls = [
                s
                for s in self.streams.values()
                if not s.closed
                and s.request.destination is not None
                and s.request.service is request.service
                and s.request.rating_group == request.rating_group
                and s.request.access_code == request.access_code
                and s.request.service_identifier == request.service_identifier
            ]
            if len(calls) == 1:
                return calls[0]
        free = request.rating_group is not None and request.rating_group in (
            ctx.policy.free_rating_groups or frozenset()
        )
        rated: RatedDestination | None = None
        if not free:
            try:
                rated = ctx.rater.rate(request)
            except RatingFailed:
                rated = None  # quota may still cover it; money cannot
        zero = Money.zero(self.currency)
        stream = Stream(request=request, rated=rated, free=free, cost=zero, paid_by_buckets=zero)
        self.streams[request.key] = stream
        return stream

    def _group(self, stream: Stream) -> str | None:
        if stream.rated is None or stream.rated.group is None:
            return None
        return stream.rated.group.code

    def _buckets_for(
        self, ctx: ChargingContext, stream: Stream, unit: Unit, now: datetime
    ) -> list[QuotaBucket]:
        r = stream.request
        return consumption_order(
            ctx.buckets, r.service, self._group(stream), r.rating_group, now, unit
        )

    def _money_cost(
        self,
        stream: Stream,
        more: int,
        hold: Hold | None = None,
        now: datetime | None = None,
        after_change: int = 0,
    ) -> Money:
        """What ``more`` money units cost: the units before the tariff change
        at the rate of the grant's start, the last ``after_change`` of them at
        the rate after it, both continuing the stream's cumulative count."""
        if stream.free or more == 0:
            return Money.zero(self.currency)
        rated = stream.rated
        if rated is None:
            raise RatingFailed(f"no rate for {stream.request.access_code}")
        if not rated.periods or now is None:
            return rated.rate.increment(stream.money_units, more)
        start = hold.granted_at if hold is not None and hold.granted_at is not None else now
        change = hold.tariff_change_at if hold is not None else None
        after = min(after_change, more)
        before = more - after
        cost = rated.rate_at(start).increment(stream.money_units, before)
        if after:
            later = rated.rate_at(change if change is not None else now)
            cost = cost + later.increment(stream.money_units + before, after)
        return cost

    def _commit(
        self,
        ctx: ChargingContext,
        stream: Stream,
        used: int,
        now: datetime,
        after_change: int,
        orders: _Orders,
    ) -> None:
        """Consume ``used`` units: from the held buckets, then from buckets with
        free units, then money (held first); release whatever is left held.
        The last ``after_change`` of them came after the grant's tariff change."""
        hold = stream.hold
        stream.hold = None
        if stream.free:
            # a free rating group (the self-care portal) uses no quota and no money
            stream.used_units += used
            return
        before = {b.id: b.is_exhausted() for b in ctx.buckets}
        touched: list[QuotaBucket] = []
        remaining = Decimal(used)
        if hold is not None:
            for bucket_id, held in hold.buckets:
                bucket = ctx.bucket(bucket_id)
                if bucket is None:
                    continue  # gone with its add-on: other buckets or money pay
                take = min(remaining, held)
                bucket.settle(held, take)
                touched.append(bucket)
                self._count_bucket(stream, bucket_id, take)
                remaining -= take
        if remaining > 0:
            for bucket in orders.of(stream.request.unit):
                take = bucket.draw(remaining)
                if take:
                    touched.append(bucket)
                    self._count_bucket(stream, bucket.id, take)
                    remaining -= take
                if remaining <= 0:
                    break
        money_units = int(remaining)
        # quota is drawn in time order, so money pays for the latest units:
        # those after the tariff change first
        cost = (
            self._money_cost(stream, money_units, hold, now, after_change)
            if money_units
            else Money.zero(self.currency)
        )
        self._pay(ctx, stream, hold, cost, now, orders)
        stream.money_units += money_units
        stream.used_units += used
        stream.cost = (stream.cost or Money.zero(self.currency)) + cost
        self._notify_exhausted(ctx, touched, before, now)

    def _pay(
        self,
        ctx: ChargingContext,
        stream: Stream,
        hold: Hold | None,
        cost: Money,
        now: datetime,
        orders: _Orders,
    ) -> None:
        """Pay ``cost`` from the held service wallets, then the balance (the held
        money is released in the same step)."""
        remaining = cost
        if hold is not None:
            for bucket_id, held in hold.money_buckets:
                bucket = ctx.bucket(bucket_id)
                if bucket is None:
                    continue  # gone with its add-on: the balance pays
                take = min(remaining.amount, held)
                bucket.settle(held, take)
                stream.paid_by_buckets = (
                    stream.paid_by_buckets or Money.zero(self.currency)
                ) + Money(take, self.currency)
                remaining = remaining - Money(take, self.currency)
        held_money = hold.money if hold is not None else Money.zero(self.currency)
        if remaining.is_positive():
            # usage past what was held (overuse, or a grant the wallets could
            # not back then): service wallets with free money first
            remaining = self._from_wallets(stream, orders.of(Unit.MONEY), remaining)
        ctx.customer.wallet.settle(held_money, remaining)
        self._charged(ctx, cost, now)

    def _from_wallets(self, stream: Stream, wallets: Sequence[QuotaBucket], cost: Money) -> Money:
        """Draw ``cost`` from the free money of ``wallets`` in their order; what
        they could not pay (for the balance)."""
        remaining = cost
        for wallet in wallets:
            take = wallet.draw(remaining.amount)
            stream.paid_by_buckets = (stream.paid_by_buckets or Money.zero(self.currency)) + Money(
                take, self.currency
            )
            remaining = remaining - Money(take, self.currency)
        return remaining

    def _charged(self, ctx: ChargingContext, cost: Money, now: datetime) -> None:
        if not cost.is_zero():
            ctx.events.append(
                events.SessionCharged(
                    occurred_at=now,
                    session_id=self.id,
                    account_id=self.account_id,
                    customer_id=self.customer_id,
                    amount=cost,
                )
            )

    def _notify_exhausted(
        self,
        ctx: ChargingContext,
        touched: Sequence[QuotaBucket],
        before: dict[str, bool],
        now: datetime,
    ) -> None:
        """QuotaExhausted for each scope whose last bucket this change used up."""
        for scope, same in newly_exhausted_scopes(ctx.buckets, touched, now, before):
            ctx.events.append(
                events.QuotaExhausted(
                    occurred_at=now,
                    account_id=self.account_id,
                    customer_id=self.customer_id,
                    service=scope.service.value,
                    destination_group=scope.destination_group,
                    rating_group=scope.rating_group,
                    bucket_ids=tuple(b.id for b in same),
                )
            )

    def _count_bucket(self, stream: Stream, bucket_id: str, units: Decimal) -> None:
        if units:
            stream.bucket_units[bucket_id] = stream.bucket_units.get(bucket_id, Decimal(0)) + units

    def _release(self, ctx: ChargingContext, stream: Stream) -> None:
        """Release every hold of ``stream``, its sub-sessions' too."""
        holds = stream.holds()
        stream.hold = None
        stream.parked.clear()
        for hold in holds:
            for bucket_id, held in hold.buckets + hold.money_buckets:
                bucket = ctx.bucket(bucket_id)
                if bucket is not None:
                    bucket.settle(held, Decimal(0))
            ctx.customer.wallet.release(hold.money)

    def _final(self, ctx: ChargingContext, service: Service) -> FinalUnitIndication:
        policy = ctx.policy
        action = _exhaustion(policy, service)
        if action is ExhaustionAction.REDIRECT and not policy.hotline_url:
            action = ExhaustionAction.TERMINATE  # nowhere to redirect to
        return FinalUnitIndication(
            action=action,
            redirect_url=policy.hotline_url if action is ExhaustionAction.REDIRECT else None,
            throttle_download_kbps=policy.throttle_download_kbps
            if action is ExhaustionAction.THROTTLE
            else None,
            throttle_upload_kbps=policy.throttle_upload_kbps
            if action is ExhaustionAction.THROTTLE
            else None,
        )

    def _deny(
        self, request: UsageRequest, error: DomainError, final: FinalUnitIndication | None = None
    ) -> Denial:
        return Denial(
            request.key,
            request.rating_group,
            request.service_identifier,
            error.code,
            str(error),
            final,
        )

    def _grant(
        self,
        ctx: ChargingContext,
        stream: Stream,
        request: UsageRequest,
        now: datetime,
        orders: _Orders,
    ) -> Grant | Denial:
        """Hold the next grant: buckets in consumption order, then money."""
        try:
            ctx.account.check_can_use(ctx.customer, request.service.value, ctx.location_policy)
        except DomainError as error:
            return self._deny(request, error)
        wanted = ctx.config.grant_size(request.unit, request.requested)
        change_at, validity = _tariff_change(stream, now, ctx.config.validity_seconds)
        if request.unit is Unit.SECONDS:
            wanted = min(wanted, validity)  # no seconds past a second change
        if stream.free:
            return Grant(
                request.key,
                request.rating_group,
                request.service_identifier,
                request.unit,
                wanted,
                validity,
                self._threshold(ctx, wanted),
                None,
                free=True,
            )
        held: list[tuple[str, Decimal]] = []
        remaining = Decimal(wanted)
        for bucket in orders.of(request.unit):
            if remaining <= 0:
                break
            taken = bucket.hold(remaining)
            if taken:
                held.append((bucket.id, taken))
                remaining -= taken
                if bucket.expires_at is not None:
                    # come back when the add-on (and its quota) ends
                    validity = min(validity, max(1, int((bucket.expires_at - now).total_seconds())))
        money_units = 0
        money_buckets: list[tuple[str, Decimal]] = []
        money = Money.zero(self.currency)
        charge_beyond = _exhaustion(ctx.policy, request.service) not in (
            ExhaustionAction.THROTTLE,
            ExhaustionAction.REDIRECT,
        ) or not self._has_quota(ctx, stream)
        if remaining > 0 and charge_beyond and stream.rated is not None:
            wallets = orders.of(Unit.MONEY)
            funds = ctx.customer.wallet.available() + Money(
                sum((b.free for b in wallets), Decimal(0)), self.currency
            )
            funds = funds.max(Money.zero(self.currency))
            money_units, cost = self._affordable(stream, funds, int(remaining), now, change_at)
            left = cost.stored()
            for bucket in wallets:
                if not left.is_positive():
                    break
                taken = bucket.hold(left.amount)
                if taken:
                    money_buckets.append((bucket.id, taken))
                    left = left - Money(taken, self.currency)
            ctx.customer.wallet.reserve(left)
            money = left
            remaining -= money_units
        granted = wanted - int(remaining)
        stream.hold = Hold(
            held, money_units, money_buckets, money, self._banded_start(stream, now), change_at
        )
        if (
            remaining == 0
            and granted > 0
            and not self._more_available(ctx, stream, charge_beyond, now, orders)
        ):
            remaining = Decimal(1)  # these are the last units: say so with the grant
        if granted == 0 and wanted > 0:
            final = self._final(ctx, request.service)
            self._exhausted(ctx, final, now)
            refusal: DomainError = (
                RatingFailed(f"no rate for {request.access_code}")
                if stream.rated is None and not held
                else InsufficientFunds("no quota or funds left for this service")
            )
            return self._deny(request, refusal, final)
        final_units = None
        if remaining > 0:
            final_units = self._final(ctx, request.service)
            self._exhausted(ctx, final_units, now)
        return Grant(
            request.key,
            request.rating_group,
            request.service_identifier,
            request.unit,
            granted,
            validity,
            self._threshold(ctx, granted),
            final_units,
            tariff_change_at=change_at if granted and change_at is not None else None,
        )

    @staticmethod
    def _banded_start(stream: Stream, now: datetime) -> datetime | None:
        """When the grant starts, kept only where the rate changes with the time of day."""
        return now if stream.rated is not None and stream.rated.periods else None

    @staticmethod
    def _affordable(
        stream: Stream, funds: Money, wanted: int, now: datetime, change_at: datetime | None
    ) -> tuple[int, Money]:
        """The money units ``funds`` pay for and what they cost. The network
        may use them on either side of a tariff change: grant what the dearer
        side affords, and hold what they cost on the dearer side."""
        assert stream.rated is not None
        rates: tuple[Rate, ...] = (stream.rated.rate_at(now),)
        if change_at is not None:
            rates += (stream.rated.rate_at(change_at),)
        # after what the stream used and what its other sub-sessions hold: their
        # grants take the free and cheap first units, not this one too
        start = stream.money_units + sum(hold.money_units for hold in stream.holds())
        units = min(rate.units_affordable(start, funds, wanted) for rate in rates)
        costs = [rate.increment(start, units) for rate in rates]
        return units, max(costs, key=lambda m: m.amount)

    def _more_available(
        self,
        ctx: ChargingContext,
        stream: Stream,
        charge_beyond: bool,
        now: datetime,
        orders: _Orders,
    ) -> bool:
        """Whether anything (quota or money) is left for the stream after this grant."""
        if any(b.free > 0 for b in orders.of(stream.request.unit)):
            return True
        if not charge_beyond or stream.rated is None:
            return False
        after = stream.money_units + sum(h.money_units for h in stream.holds())
        wallets = orders.of(Unit.MONEY)
        funds = ctx.customer.wallet.available() + Money(
            sum((b.free for b in wallets), Decimal(0)), self.currency
        )
        rate = stream.rated.rate_at(now)
        return funds.is_positive() and rate.units_affordable(after, funds, 1) == 1

    def _has_quota(self, ctx: ChargingContext, stream: Stream) -> bool:
        r = stream.request
        return any(
            b.scope.covers(r.service, self._group(stream), r.rating_group) for b in ctx.buckets
        )

    def _exhausted(self, ctx: ChargingContext, final: FinalUnitIndication, now: datetime) -> None:
        ctx.events.append(
            events.FundsExhausted(
                occurred_at=now,
                session_id=self.id,
                account_id=self.account_id,
                customer_id=self.customer_id,
                action=final.action.value,
                redirect_url=final.redirect_url,
            )
        )

    def _threshold(self, ctx: ChargingContext, units: int) -> int:
        return int(Decimal(units) * ctx.config.threshold_ratio)

    def _direct_debit(
        self, ctx: ChargingContext, stream: Stream, request: UsageRequest, now: datetime
    ) -> Grant | Denial:
        """Charge an event at once: buckets, then money, all or nothing."""
        try:
            ctx.account.check_can_use(ctx.customer, request.service.value, ctx.location_policy)
        except DomainError as error:
            return self._deny(request, error)
        units = request.requested if request.requested is not None else 1
        # a free rating group (a self-care portal) draws on nothing
        buckets = [] if stream.free else self._buckets_for(ctx, stream, request.unit, now)
        covered = min(Decimal(units), sum((b.free for b in buckets), Decimal(0)))
        money_units = units - int(covered)
        cost = Money.zero(self.currency)
        wallets: list[QuotaBucket] = []
        if money_units and not stream.free:
            if stream.rated is None:
                return self._deny(request, RatingFailed(f"no rate for {request.access_code}"))
            # each event one interval (a one-step USSD request is 0.2 however
            # short, and three are 0.6), not seconds of a session
            cost = stream.rated.rate_at(now).event_cost(money_units)
            wallets = self._buckets_for(ctx, stream, Unit.MONEY, now)
            in_wallets = min(cost.amount, sum((b.free for b in wallets), Decimal(0)))
            from_balance = cost - Money(in_wallets, self.currency)
            if not ctx.customer.wallet.can_reserve(from_balance):
                return self._deny(
                    request,
                    InsufficientFunds("not enough funds for this event"),
                    self._final(ctx, request.service),
                )
        stream.hold = None
        before = {b.id: b.is_exhausted() for b in ctx.buckets}
        touched = []
        remaining = covered
        for bucket in buckets:
            take = bucket.draw(remaining)
            if take:
                touched.append(bucket)
                self._count_bucket(stream, bucket.id, take)
                remaining -= take
        if cost.is_positive():
            # service wallets first (an SMS wallet pays an SMS), then the balance
            ctx.customer.wallet.debit(self._from_wallets(stream, wallets, cost))
        stream.money_units += money_units
        stream.used_units += units
        stream.cost = (stream.cost or Money.zero(self.currency)) + cost
        stream.closed = True
        self._charged(ctx, cost, now)
        self._notify_exhausted(ctx, touched, before, now)
        return Grant(
            request.key,
            request.rating_group,
            request.service_identifier,
            request.unit,
            units,
            0,
            0,
            None,
            free=stream.free,
        )

    def _close(self, ctx: ChargingContext, now: datetime, cause: str, xdr_id: str) -> Xdr:
        """Release every hold, round each line for the record, settle the
        rounding difference on the balance and produce the one xDR."""
        lines: list[XdrLine] = []
        total = Money.zero(self.currency)
        rounding_delta = Money.zero(self.currency)
        for stream in self.streams.values():
            self._release(ctx, stream)
            stream.closed = True
            exact = stream.cost or Money.zero(self.currency)
            by_buckets = stream.paid_by_buckets or Money.zero(self.currency)
            rounded = exact.for_record(dict(ctx.config.rounding_overrides))
            rounding_delta = rounding_delta + (rounded - exact)
            group = stream.rated.group if stream.rated else None
            r = stream.request
            lines.append(
                XdrLine(
                    service=r.service,
                    unit=r.unit,
                    access_code=r.access_code,
                    destination=r.destination,
                    rating_group=r.rating_group,
                    destination_group=group.code if group else None,
                    ledger_code=group.ledger_code if group else None,
                    units=stream.used_units,
                    money_units=stream.money_units,
                    bucket_units=tuple(sorted(stream.bucket_units.items())),
                    charge=rounded,
                    paid_by_service_wallets=by_buckets,
                )
            )
            total = total + rounded
        if not rounding_delta.is_zero():
            ctx.customer.wallet.adjust(-rounding_delta)
        self.state = SessionState.CLOSED
        self.xdr = Xdr(
            id=xdr_id,
            session_id=self.id,
            account_id=self.account_id,
            customer_id=self.customer_id,
            started_at=self.started_at,
            ended_at=now,
            lines=tuple(lines),
            charge=total,
            sub_sessions=tuple(s for s in self.sub_sessions if s),
            cause=cause,
        )
        ctx.events.append(
            events.XdrProduced(
                occurred_at=now,
                session_id=self.id,
                account_id=self.account_id,
                customer_id=self.customer_id,
                xdr_id=xdr_id,
                charge=total,
                cause=cause,
            )
        )
        return self.xdr

    # -- enquiries -------------------------------------------------------------------

    def held_money(self) -> Money:
        total = Money.zero(self.currency)
        for stream in self.streams.values():
            for hold in stream.holds():
                total = total + hold.money
        return total


def price_enquiry(
    ctx: ChargingContext, request: UsageRequest, now: datetime | None = None
) -> Money:
    """What ``request.requested`` units would cost at the tariff (no quota, no
    change): Diameter PRICE_ENQUIRY. ``now``: the rate in force then (by
    default the destination's rate outside any time-of-day period)."""
    rated = ctx.rater.rate(request)
    units = request.requested if request.requested is not None else 1
    rate = rated.rate if now is None else rated.rate_at(now)
    return rate.cost(units)


def _tariff_change(stream: Stream, now: datetime, validity: int) -> tuple[datetime | None, int]:
    """The Tariff-Time-Change a grant made ``now`` announces, and its validity.
    A grant announces one change: the usage after it is rated at the rate from
    then on. A second change within the grant (a short band) ends the grant's
    validity there, so that the usage after it is reported, and rated, anew."""
    if stream.rated is None or stream.free:
        return None, validity
    until = now + timedelta(seconds=validity)
    change_at = stream.rated.next_change(now, until)
    if change_at is None:
        return None, validity
    second = stream.rated.next_change(change_at, until)
    if second is not None:
        validity = max(1, int((second - now).total_seconds()))
    return change_at, validity


def _exhaustion(policy: ServicePolicy, service: Service) -> ExhaustionAction:
    """What ends ``service`` when its quota and money run out. The policy's
    action (a redirect to the hotline page, a throttle, restricted access)
    is data's; a call, an SMS or a USSD dialogue cannot be sent to a web
    page or slowed down: it ends."""
    if service is not Service.DATA:
        return ExhaustionAction.TERMINATE
    return policy.on_exhaustion or ExhaustionAction.TERMINATE


#: More units than any session uses: what "as many as wanted" is counted as.
UNBOUNDED_UNITS: Final = 2**62


def units_covered(ctx: ChargingContext, request: UsageRequest, now: datetime) -> int | None:
    """How many units of ``request``'s service quota and funds pay for now
    (service wallets and the balance within the credit limit, at the rate in
    force), changing nothing; ``None`` when nothing bounds them (a free
    rate). What bounds the Session-Timeout of a NAS that takes no CoA or
    Disconnect, which cannot be stopped when the money runs out."""
    group: str | None = None
    try:
        rated: RatedDestination | None = ctx.rater.rate(request)
    except RatingFailed:
        rated = None
    if rated is not None and rated.group is not None:
        group = rated.group.code
    buckets = consumption_order(
        ctx.buckets, request.service, group, request.rating_group, now, request.unit
    )
    covered = int(sum((b.free for b in buckets), Decimal(0)))
    if rated is None:
        return covered
    wallets = consumption_order(
        ctx.buckets, request.service, group, request.rating_group, now, Unit.MONEY
    )
    funds = ctx.customer.wallet.available() + Money(
        sum((b.free for b in wallets), Decimal(0)), ctx.customer.currency
    )
    paid = rated.rate_at(now).units_affordable(0, funds, UNBOUNDED_UNITS)
    return None if paid >= UNBOUNDED_UNITS else covered + paid


def check_balance(ctx: ChargingContext, request: UsageRequest, now: datetime) -> bool:
    """Whether quota or funds cover ``request.requested`` units now, changing
    nothing: Diameter CHECK_BALANCE."""
    covered = units_covered(ctx, request, now)
    return covered is None or covered >= (request.requested if request.requested is not None else 1)
