"""Rating: what usage costs.

A ``Tariff`` holds rates per destination: longest-prefix match on E.164
numbers (a ``PrefixTrie``) and exact custom destinations such as USSD codes
(``*101#``), CAMEL access codes (``OUTGOING.SI120``) or data rating-group keys
(``DATA``). A ``Rate`` prices a session in units (seconds, bytes or events)
with a first interval, a next interval, an optional connection fee and free
units. A destination may have time-of-day ``RatePeriod``s (peak, off-peak):
the rate then changes at known instants of the tariff's local time, which
credit control announces as a Tariff-Time-Change. ``DialingPlan`` translates
dialed numbers before rating.

Rating never rounds: costs keep full Decimal precision and are rounded only
where a record is written (``Money.for_record``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ratel.domain.errors import CurrencyMismatch, InvalidCatalogue, InvalidMoney, RatingFailed
from ratel.domain.money import Money

V = TypeVar("V")

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class DestinationGroup:
    """A set of destinations reported and booked together, for example local
    calls on ledger 400000001 or international calls on 400000002."""

    code: str
    name: str
    ledger_code: str

    def __post_init__(self) -> None:
        if not self.code:
            raise InvalidCatalogue("a destination group needs a code")


def _check_units(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must not be negative: {value}")


@dataclass(frozen=True, slots=True)
class Rate:
    """The price of usage in one session.

    Units are whatever the service counts: seconds, bytes or events. The first
    ``free_units`` of a session are deducted; the rest is charged as one first
    interval, then whole next intervals (a started interval is a whole one).
    The connection fee is charged once per session, as soon as anything is
    charged at all.
    """

    price_first: Money
    first_interval: int
    next_interval: int
    price_next: Money
    connection_fee: Money
    free_units: int = 0

    def __post_init__(self) -> None:
        prices = (self.price_first, self.price_next, self.connection_fee)
        for price in prices:
            if not isinstance(price, Money):
                raise InvalidCatalogue(f"a rate price must be Money, not {price!r}")
        currencies = {price.currency for price in prices}
        if len(currencies) != 1:
            raise InvalidCatalogue(f"a rate has one currency, not {sorted(currencies)}")
        if any(price.is_negative() for price in prices):
            raise InvalidCatalogue("rate prices must not be negative")
        for name, value in (
            ("first_interval", self.first_interval),
            ("next_interval", self.next_interval),
        ):
            # bool is an int subclass; True as an interval is a data error, not 1.
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidCatalogue(f"{name} must be a whole number >= 1, not {value!r}")
        free = self.free_units
        if not isinstance(free, int) or isinstance(free, bool) or free < 0:
            raise InvalidCatalogue(f"free_units must be a whole number >= 0, not {free!r}")

    @property
    def currency(self) -> str:
        return self.price_first.currency

    @classmethod
    def per_interval(
        cls,
        price: Money,
        interval: int,
        *,
        first_interval: int | None = None,
        connection_fee: Money | None = None,
        free_units: int = 0,
    ) -> Rate:
        """The same ``price`` for the first and each next interval."""
        return cls(
            price_first=price,
            first_interval=interval if first_interval is None else first_interval,
            next_interval=interval,
            price_next=price,
            connection_fee=Money.zero(price.currency) if connection_fee is None else connection_fee,
            free_units=free_units,
        )

    def _cost_amount(self, units: int) -> Decimal:
        if units <= self.free_units:
            return _ZERO
        beyond_first = units - self.free_units - self.first_interval
        # Ceiling division: a started next interval is charged whole.
        next_intervals = -(-beyond_first // self.next_interval) if beyond_first > 0 else 0
        return (
            self.connection_fee.amount
            + self.price_first.amount
            + self.price_next.amount * next_intervals
        )

    def cost(self, units: int) -> Money:
        """The cumulative cost of ``units`` used in one session, unrounded.

        Zero when ``units`` does not exceed the free units (no connection fee
        either: nothing was charged).
        """
        _check_units("units", units)
        return Money(self._cost_amount(units), self.currency)

    def increment(self, already_used: int, more: int) -> Money:
        """What ``more`` units cost in a session that already used
        ``already_used``: how interim reports are charged, so that the sum of
        the increments is the cost of the whole session and the connection
        fee is charged exactly once."""
        _check_units("already_used", already_used)
        _check_units("more", more)
        return Money(
            self._cost_amount(already_used + more) - self._cost_amount(already_used),
            self.currency,
        )

    def units_affordable(self, already_used: int, funds: Money, requested: int) -> int:
        """The largest ``u`` in ``[0, requested]`` with
        ``increment(already_used, u) <= funds``; 0 when not even that holds
        (negative funds).

        Computed in O(1): the cumulative cost is a step function, so we find
        the last unit of the last interval the budget ``cost(already_used) +
        funds`` pays for.
        """
        _check_units("already_used", already_used)
        _check_units("requested", requested)
        if funds.currency != self.currency:
            raise CurrencyMismatch(f"funds in {funds.currency} for a rate in {self.currency}")
        if funds.amount < 0:
            return 0
        budget = self._cost_amount(already_used) + funds.amount
        if self._cost_amount(already_used + requested) <= budget:
            return requested
        opening = self.connection_fee.amount + self.price_first.amount
        free_end = self.free_units
        if budget < opening:
            # Only the free units are affordable. already_used <= free_end here:
            # beyond the free units the session already cost `opening`.
            last_unit = free_end
        else:
            # price_next > 0: with a zero next price every total would be
            # affordable and we would have returned `requested` above.
            # Decimal // is exact (it refuses rather than rounds), so no
            # floating error can grant one interval too many.
            next_intervals = int((budget - opening) // self.price_next.amount)
            last_unit = free_end + self.first_interval + next_intervals * self.next_interval
        return max(0, min(requested, last_unit - already_used))

    def event_cost(self, events: int = 1) -> Money:
        """The cost of ``events`` one-step events, each charged one interval:
        the connection fee once, the first price, then the next price for each
        further event. A one-step USSD request is one interval.

        Free units do not apply: they are a session's free seconds or bytes,
        not free events (free events are a quota bucket, not a rate).
        """
        _check_units("events", events)
        if events == 0:
            return Money.zero(self.currency)
        amount = (
            self.connection_fee.amount
            + self.price_first.amount
            + self.price_next.amount * (events - 1)
        )
        return Money(amount, self.currency)


class _Node(dict[str, "_Node[V]"], Generic[V]):
    """A trie node: its children keyed by one character. Subclassing dict keeps
    the per-character step a C-level ``dict.get``."""

    __slots__ = ("terminal", "value")

    # Set only on terminal nodes (the end of a stored prefix).
    value: V

    def __init__(self) -> None:
        super().__init__()
        self.terminal = False


class PrefixTrie(Generic[V]):
    """Longest-prefix match over strings, one trie level per character.

    A lookup walks the key once and stops at the first character with no
    child, so it costs O(key length) whatever the number of prefixes.
    ``insert`` replaces the value of an existing prefix.
    """

    __slots__ = ("_root", "_size")

    def __init__(self) -> None:
        self._root: _Node[V] = _Node()
        self._size = 0

    def insert(self, prefix: str, value: V) -> None:
        node = self._root
        for char in prefix:
            child = node.get(char)
            if child is None:
                child = _Node()
                node[char] = child
            node = child
        if not node.terminal:
            self._size += 1
        node.terminal = True
        node.value = value

    def longest_match(self, key: str) -> tuple[str, V] | None:
        """The longest stored prefix of ``key`` and its value, or None."""
        node = self._root
        best = node if node.terminal else None
        depth = 0
        for position, char in enumerate(key, 1):
            child = node.get(char)
            if child is None:
                break
            node = child
            if node.terminal:
                best = node
                depth = position
        if best is None:
            return None
        return key[:depth], best.value

    def _find(self, prefix: str) -> _Node[V] | None:
        node = self._root
        for char in prefix:
            child = node.get(char)
            if child is None:
                return None
            node = child
        return node if node.terminal else None

    def get(self, prefix: str) -> V | None:
        """The value stored for exactly ``prefix``, or None."""
        node = self._find(prefix)
        return None if node is None else node.value

    def __contains__(self, prefix: object) -> bool:
        return isinstance(prefix, str) and self._find(prefix) is not None

    def __len__(self) -> int:
        return self._size

    def items(self) -> Iterator[tuple[str, V]]:
        """Every (prefix, value), in lexicographic order of the prefixes."""
        stack: list[tuple[str, _Node[V]]] = [("", self._root)]
        while stack:
            path, node = stack.pop()
            if node.terminal:
                yield path, node.value
            # Reverse so the smallest character is popped first.
            for char in sorted(node, reverse=True):
                stack.append((path + char, node[char]))


@dataclass(frozen=True, slots=True)
class RatePeriod:
    """A rate in force every day from ``start`` (included) to ``end``
    (excluded), in the tariff's local time; an ``end`` at or before ``start``
    runs past midnight (22:00 to 07:00 is the night)."""

    start: time
    end: time
    rate: Rate

    def __post_init__(self) -> None:
        if not isinstance(self.rate, Rate):
            raise InvalidCatalogue(f"a rate period needs a Rate, not {self.rate!r}")
        for moment in (self.start, self.end):
            if not isinstance(moment, time) or moment.tzinfo is not None:
                raise InvalidCatalogue(f"a rate period is in local time, not {moment!r}")
        if self.start == self.end:
            # a period of the whole day is the destination's rate itself
            raise InvalidCatalogue(f"a rate period needs start != end ({self.start})")

    def covers(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def _check_periods(periods: Sequence[RatePeriod]) -> None:
    for index, period in enumerate(periods):
        for other in periods[index + 1 :]:
            # two daily arcs overlap exactly when one starts inside the other
            if other.covers(period.start) or period.covers(other.start):
                raise InvalidCatalogue(
                    f"rate periods {period.start}-{period.end} and "
                    f"{other.start}-{other.end} overlap"
                )


# How far ahead a tariff change is looked for: a grant's validity is hours at most.
_CHANGE_HORIZON = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class RatedDestination:
    """The rate that applies to a destination, and the destination as matched:
    the prefix for a number, the code itself for a custom destination.

    ``rate`` is in force outside the ``periods``; within a period (in the
    local time of ``time_zone``) that period's rate is. Without periods the
    rate never changes.
    """

    destination: str
    rate: Rate
    group: DestinationGroup | None
    periods: tuple[RatePeriod, ...] = ()
    time_zone: str = "UTC"

    def rate_at(self, moment: datetime) -> Rate:
        """The rate in force at ``moment`` (an aware datetime)."""
        if not self.periods:
            return self.rate
        local = moment.astimezone(ZoneInfo(self.time_zone)).time().replace(tzinfo=None)
        for period in self.periods:
            if period.covers(local):
                return period.rate
        return self.rate

    def next_change(self, after: datetime, until: datetime) -> datetime | None:
        """The first instant in ``(after, until]`` at which the rate in force
        differs from the one at ``after`` (RFC 4006 Tariff-Time-Change), or
        None when it stays the same."""
        if not self.periods or until <= after:
            return None
        zone = ZoneInfo(self.time_zone)
        current = self.rate_at(after)
        until = min(until, after + _CHANGE_HORIZON)
        first_day = after.astimezone(zone).date() - timedelta(days=1)
        last_day = until.astimezone(zone).date() + timedelta(days=1)
        boundaries: set[datetime] = set()
        day = first_day
        while day <= last_day:
            for period in self.periods:
                for edge in (period.start, period.end):
                    boundaries.add(datetime.combine(day, edge, zone))
            day += timedelta(days=1)
        for boundary in sorted(b for b in boundaries if after < b <= until):
            if self.rate_at(boundary) != current:
                return boundary.astimezone(after.tzinfo)
        return None


# Characters people and switches put in numbers that are not part of them.
_NUMBER_NOISE = str.maketrans("", "", "+ -")


def normalize_number(number: str) -> str:
    """``number`` without '+', spaces and dashes. An international "00" is
    kept: turning it into E.164 is the dialing plan's job."""
    return number.translate(_NUMBER_NOISE)


def _is_digits(text: str) -> bool:
    # str.isdigit alone would accept other scripts' digits and superscripts.
    return text.isascii() and text.isdigit()


class Tariff:
    """Rates per destination in one currency: exact custom destinations
    (USSD codes, access codes, data keys) and E.164 number prefixes, matched
    longest first."""

    __slots__ = ("_code", "_currency", "_custom", "_name", "_prefixes", "_time_zone")

    def __init__(self, code: str, currency: str, name: str = "", time_zone: str = "UTC") -> None:
        if not code:
            raise InvalidCatalogue("a tariff needs a code")
        try:
            Money.zero(currency)
        except InvalidMoney as exc:
            raise InvalidCatalogue(f"tariff {code}: {exc}") from exc
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidCatalogue(f"tariff {code}: unknown time zone {time_zone!r}") from exc
        self._time_zone = time_zone
        self._code = code
        self._currency = currency
        self._name = name
        self._custom: dict[str, RatedDestination] = {}
        self._prefixes: PrefixTrie[RatedDestination] = PrefixTrie()

    @property
    def code(self) -> str:
        return self._code

    @property
    def currency(self) -> str:
        return self._currency

    @property
    def name(self) -> str:
        return self._name

    @property
    def time_zone(self) -> str:
        """The IANA zone the rate periods' times of day are in."""
        return self._time_zone

    def _check_rate(
        self, destination: str, rate: Rate, periods: Sequence[RatePeriod] = ()
    ) -> tuple[RatePeriod, ...]:
        for each in (rate, *(p.rate for p in periods)):
            if each.currency != self._currency:
                raise InvalidCatalogue(
                    f"tariff {self._code} is in {self._currency}, "
                    f"a rate for {destination!r} in {each.currency}"
                )
        _check_periods(periods)
        return tuple(periods)

    def add_prefix(
        self,
        prefix: str,
        rate: Rate,
        group: DestinationGroup | None = None,
        periods: Sequence[RatePeriod] = (),
    ) -> None:
        """Rate numbers starting with ``prefix`` (E.164 digits; a leading '+'
        is dropped), at ``rate`` outside the ``periods``. A prefix is defined
        once per tariff."""
        digits = prefix.removeprefix("+")
        if not _is_digits(digits):
            raise InvalidCatalogue(f"a prefix is digits only, not {prefix!r}")
        bands = self._check_rate(prefix, rate, periods)
        if digits in self._prefixes:
            raise InvalidCatalogue(f"prefix {digits} is already in tariff {self._code}")
        self._prefixes.insert(digits, RatedDestination(digits, rate, group, bands, self._time_zone))

    def add_custom(
        self,
        destination: str,
        rate: Rate,
        group: DestinationGroup | None = None,
        periods: Sequence[RatePeriod] = (),
    ) -> None:
        """Rate exactly ``destination``: a USSD code ("*101#"), an access code
        ("OUTGOING.SI120") or a data key ("DATA"), at ``rate`` outside the
        ``periods``. Defined once per tariff."""
        if not destination or destination != destination.strip():
            raise InvalidCatalogue(f"not a custom destination: {destination!r}")
        bands = self._check_rate(destination, rate, periods)
        if destination in self._custom:
            raise InvalidCatalogue(f"destination {destination!r} is already in tariff {self._code}")
        self._custom[destination] = RatedDestination(
            destination, rate, group, bands, self._time_zone
        )

    def rate_for(self, destination: str) -> RatedDestination:
        """The custom destination equal to ``destination``, else the longest
        prefix of the number; RatingFailed when nothing matches."""
        custom = self._custom.get(destination)
        if custom is not None:
            return custom
        number = destination if _is_digits(destination) else normalize_number(destination)
        if _is_digits(number):
            match = self._prefixes.longest_match(number)
            if match is not None:
                return match[1]
        raise RatingFailed(f"tariff {self._code} has no rate for {destination!r}")

    def custom_entries(self) -> list[RatedDestination]:
        """The exact-match destinations, in the order they were added."""
        return list(self._custom.values())

    def prefix_entries(self) -> list[RatedDestination]:
        """The prefix destinations, in lexicographic order."""
        return [entry for _, entry in self._prefixes.items()]

    def entries(self) -> list[RatedDestination]:
        """Every destination (custom ones first) for persistence; use
        ``custom_entries``/``prefix_entries`` to tell the kinds apart."""
        return self.custom_entries() + self.prefix_entries()

    def __len__(self) -> int:
        return len(self._custom) + len(self._prefixes)

    def __repr__(self) -> str:
        return f"Tariff({self._code!r}, {self._currency!r}, {len(self)} destinations)"


@dataclass(frozen=True, slots=True)
class DialingRule:
    """Rewrite a dialed number: replace ``pattern`` at its start, or the whole
    number when ``exact``. ``DialingRule("411", "12055576061", exact=True)``,
    ``DialingRule("00", "")`` drops an international prefix,
    ``DialingRule("0", "44")`` turns a national number into E.164."""

    pattern: str
    replacement: str
    exact: bool = False

    def __post_init__(self) -> None:
        if not self.pattern:
            raise InvalidCatalogue("a dialing rule needs a pattern")


class DialingPlan:
    """Dialing rules applied before rating. Exact rules win, then the longest
    matching prefix rule. A number is rewritten at most once, so rules such as
    "0" -> "00" cannot loop."""

    __slots__ = ("_exact", "_prefix", "_rules")

    def __init__(self, rules: Iterable[DialingRule]) -> None:
        self._rules = tuple(rules)
        self._exact: dict[str, str] = {}
        self._prefix: PrefixTrie[str] = PrefixTrie()
        for rule in self._rules:
            if rule.exact:
                if rule.pattern in self._exact:
                    raise InvalidCatalogue(f"two exact dialing rules for {rule.pattern!r}")
                self._exact[rule.pattern] = rule.replacement
            else:
                if rule.pattern in self._prefix:
                    raise InvalidCatalogue(f"two prefix dialing rules for {rule.pattern!r}")
                self._prefix.insert(rule.pattern, rule.replacement)

    @property
    def rules(self) -> tuple[DialingRule, ...]:
        return self._rules

    def translate(self, number: str) -> str:
        """The number to rate (and to return to the network); unchanged when
        no rule matches."""
        exact = self._exact.get(number)
        if exact is not None:
            return exact
        match = self._prefix.longest_match(number)
        if match is None:
            return number
        pattern, replacement = match
        return replacement + number[len(pattern) :]
