"""Throttling of failed attempts: too many failed logins for one login name,
or from one client address, or too many unusable voucher codes from one
customer, within a window, and further attempts are refused until the
oldest failure leaves the window.

The count is kept in this process's memory (per node): a restart forgets it
and several nodes each count on their own, so an attacker spread over N
nodes gets N times the attempts. That is enough to make password guessing
slow; a shared counter would need a store round trip on every attempt.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, TypeVar

from ratel.domain.errors import DomainError
from ratel.domain.staff import AuthenticationFailed, LoginNotAllowed
from ratel.domain.voucher import VoucherUnusable
from ratel.ports.system import Clock

log = logging.getLogger("ratel.auth")

T = TypeVar("T")

#: Keys remembered at most; past it the least recently failed are forgotten
#: (an attacker inventing logins must not exhaust the memory).
MAX_TRACKED: Final = 100_000


class TooManyAttempts(DomainError):
    """Too many failed logins for this login or from this address lately;
    ``retry_after`` says when the next attempt will be considered."""

    code = "too_many_attempts"

    def __init__(self, retry_after: timedelta) -> None:
        self.retry_after = retry_after
        seconds = max(1, int(retry_after.total_seconds() + 0.999))
        super().__init__(f"too many failed attempts; try again in {seconds} seconds")


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failures a login name and a client address may have within
    ``window`` (an address has more: many people may share one NAT)."""

    per_login: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.per_login < 1 or self.per_address < 1:
            raise ValueError("a throttle allows at least one failure")
        if self.window <= timedelta(0):
            raise ValueError("a throttle window is a positive time")


#: What a client is told to wait when the attempts still being checked for a
#: login or an address already reach its limit.
IN_FLIGHT_WAIT: Final = timedelta(seconds=1)


class FailureThrottle:
    """Counts failed attempts per key (a login name, a customer) and per
    client address.

    ``check`` before trying (``TooManyAttempts`` when the key or the address
    is over its limit), ``failed`` after a refusal. ``attempt`` does both
    around a call: the exceptions in ``COUNTED`` (and not in ``EXCUSED``)
    are failures, and attempts still running count as failures, so that a
    burst sent at once is throttled.
    """

    WHAT: str = "attempt"  # what the log says was throttled
    COUNTED: tuple[type[Exception], ...] = ()
    EXCUSED: tuple[type[Exception], ...] = ()
    #: a success forgets the key's failures
    FORGIVING: bool = False

    def __init__(self, clock: Clock, policy: ThrottlePolicy | None = None) -> None:
        self._clock = clock
        self.policy = policy or ThrottlePolicy()
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        # More failures than the larger limit tell nothing more.
        self._cap = max(self.policy.per_login, self.policy.per_address)
        # Attempts being checked, per key: they count as failures until they
        # end, so a burst sent at once is throttled.
        self._checking: dict[str, int] = {}

    async def attempt(self, login: str, address: str | None, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` unless throttled; count it if it fails as ``COUNTED``."""
        self.check(login, address)
        keys = [key for key, _ in self._keys(login, address)]
        for key in keys:
            self._checking[key] = self._checking.get(key, 0) + 1
        try:
            result = await call()
        except self.EXCUSED:
            raise
        except self.COUNTED:
            self.failed(login, address)
            raise
        finally:
            for key in keys:
                left = self._checking[key] - 1
                if left:
                    self._checking[key] = left
                else:
                    del self._checking[key]
        if self.FORGIVING:
            self.succeeded(login)
        return result

    def check(self, login: str, address: str | None) -> None:
        """Refuse (``TooManyAttempts``) while the login or the address is throttled."""
        now = self._clock.now()
        waits = [self._wait(key, limit, now) for key, limit in self._keys(login, address)]
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            log.warning(
                f"{self.WHAT} throttled",
                extra={"login": login[:128], "client": address or "", "retry_after": str(wait)},
            )
            raise TooManyAttempts(wait)

    def failed(self, login: str, address: str | None) -> None:
        """Count a refused attempt against the login and the address."""
        now = self._clock.now()
        for key, _ in self._keys(login, address):
            times = self._failures.pop(key, None) or deque(maxlen=self._cap)
            self._expire(times, now)
            times.append(now)
            self._failures[key] = times  # most recently failed last
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)

    def succeeded(self, login: str) -> None:
        """A login went through: its failures are forgotten."""
        self._failures.pop(self._login_key(login), None)

    # -- internals

    def _keys(self, login: str, address: str | None) -> list[tuple[str, int]]:
        keys = [(self._login_key(login), self.policy.per_login)]
        if address:
            keys.append((f"address:{address}", self.policy.per_address))
        return keys

    @staticmethod
    def _login_key(login: str) -> str:
        # Logins compare case-insensitively: "Admin" and "admin" share a count.
        return f"login:{login.strip().lower()}"

    def _expire(self, times: deque[datetime], now: datetime) -> None:
        while times and times[0] <= now - self.policy.window:
            times.popleft()

    def _wait(self, key: str, limit: int, now: datetime) -> timedelta | None:
        checking = self._checking.get(key, 0)
        times = self._failures.get(key)
        if not times:
            return IN_FLIGHT_WAIT if checking >= limit else None
        self._expire(times, now)
        if len(times) + checking < limit:
            if not times:
                del self._failures[key]
            return None
        if len(times) < limit:
            return IN_FLIGHT_WAIT  # the attempts being checked may still succeed
        # Free again once enough failures have left the window.
        return times[len(times) - limit] + self.policy.window - now


class LoginThrottle(FailureThrottle):
    """Failed logins per login name and per client address. A refusal after
    the password was proven (blocked user), or an unavailable directory,
    counts nothing. A login forgets its name's failures; the address's
    stay, or one good account would reset an address that is guessing
    others."""

    WHAT = "login"
    COUNTED = (AuthenticationFailed,)
    EXCUSED = (LoginNotAllowed,)
    FORGIVING = True


#: Voucher guesses: five wrong codes per customer in an hour. A code has 14
#: digits, so at this pace guessing one of a million live vouchers takes
#: about 20,000 years per customer.
VOUCHER_GUESSES: Final = ThrottlePolicy(per_login=5, per_address=5, window=timedelta(hours=1))


class VoucherThrottle(FailureThrottle):
    """Unusable voucher codes per customer (the key): a redemption that
    succeeds forgets nothing, or one real voucher would buy five more
    guesses."""

    WHAT = "voucher redemption"
    COUNTED = (VoucherUnusable,)

    def __init__(self, clock: Clock, policy: ThrottlePolicy = VOUCHER_GUESSES) -> None:
        super().__init__(clock, policy)
