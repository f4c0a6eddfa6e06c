"""Login throttling: a sliding window per login and per client address."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ratel.application import throttle as throttle_module
from ratel.application.throttle import LoginThrottle, ThrottlePolicy, TooManyAttempts
from ratel.domain.staff import AuthenticationFailed, LoginNotAllowed


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


def make(per_login: int = 3, per_address: int = 5) -> tuple[LoginThrottle, Clock]:
    clock = Clock()
    policy = ThrottlePolicy(per_login, per_address, timedelta(minutes=10))
    return LoginThrottle(clock, policy), clock


def test_the_limit_per_login_holds_until_the_oldest_failure_leaves_the_window() -> None:
    throttle, clock = make()
    for minute in (0, 2, 4):
        clock.at = datetime(2026, 1, 1, 0, minute, tzinfo=UTC)
        throttle.check("Admin", "192.0.2.1")
        throttle.failed("Admin", "192.0.2.1")
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check("admin", "198.51.100.1")  # the same login, any case, any address
    assert refused.value.retry_after == timedelta(minutes=6)
    assert refused.value.code == "too_many_attempts"
    clock.at = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)  # the first failure has left
    throttle.check("admin", "198.51.100.1")


def test_the_limit_per_address_spans_logins_and_a_success_does_not_reset_it() -> None:
    throttle, _ = make(per_login=10, per_address=3)
    for n in range(3):
        throttle.failed(f"user{n}", "192.0.2.1")
    throttle.succeeded("user0")
    with pytest.raises(TooManyAttempts):
        throttle.check("someone-else", "192.0.2.1")
    throttle.check("someone-else", "192.0.2.2")
    throttle.check("someone-else", None)


def test_a_success_forgets_the_logins_failures() -> None:
    throttle, _ = make(per_login=2, per_address=50)
    throttle.failed("admin", "192.0.2.1")
    throttle.succeeded("admin")
    throttle.failed("admin", "192.0.2.1")
    throttle.check("admin", "192.0.2.1")


async def test_attempt_counts_refused_credentials_only() -> None:
    throttle, _ = make(per_login=1, per_address=50)

    async def blocked() -> str:
        raise LoginNotAllowed("admin is blocked")

    async def wrong() -> str:
        raise AuthenticationFailed("invalid login or password")

    async def right() -> str:
        return "token"

    with pytest.raises(LoginNotAllowed):
        await throttle.attempt("admin", "192.0.2.1", blocked)
    assert await throttle.attempt("admin", "192.0.2.1", right) == "token"
    with pytest.raises(AuthenticationFailed):
        await throttle.attempt("admin", "192.0.2.1", wrong)
    with pytest.raises(TooManyAttempts):
        await throttle.attempt("admin", "192.0.2.1", right)


def test_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle_module, "MAX_TRACKED", 10)
    throttle, _ = make(per_login=1, per_address=1000)
    for n in range(50):
        throttle.failed(f"invented{n}", None)
    assert len(throttle._failures) == 10
    throttle.check("invented0", None)  # the oldest were forgotten
    with pytest.raises(TooManyAttempts):
        throttle.check("invented49", None)


def test_a_policy_must_allow_something() -> None:
    with pytest.raises(ValueError):
        ThrottlePolicy(per_login=0)
    with pytest.raises(ValueError):
        ThrottlePolicy(window=timedelta(0))


async def test_a_burst_of_parallel_guesses_is_throttled_while_they_are_checked() -> None:
    throttle = LoginThrottle(Clock(), ThrottlePolicy(5, 20, timedelta(minutes=15)))
    checked = 0

    async def wrong_password() -> str:
        nonlocal checked
        checked += 1
        await asyncio.sleep(0.01)  # the directory / password hash takes a moment
        raise AuthenticationFailed("invalid login or password")

    results = await asyncio.gather(
        *(throttle.attempt("admin", "192.0.2.1", wrong_password) for _ in range(200)),
        return_exceptions=True,
    )
    assert all(isinstance(r, (AuthenticationFailed, TooManyAttempts)) for r in results)
    # at most 5 guesses at the password of "admin" within the window
    assert checked <= 5, f"{checked} passwords were tried against one login"
