# ruff: noqa: F811  (the deps fixture imported from test_quota_periods)
"""housekeeping with a backlog larger than one batch (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from store_builders import MIB, add_on, usd
from test_quota_periods import data, deps  # noqa: F401  (tariffs, BASIC and PLAIN)
from use_case_support import START, Clock

from ratel.application import housekeeping as housekeeping_module
from ratel.application.accounts import CreateAccount, TerminateAccount
from ratel.application.add_ons import AddAddOn
from ratel.application.base import Dependencies
from ratel.application.catalogue import DefineProduct
from ratel.application.credit_control import CreditControl, Subscriber
from ratel.application.customers import OpenCustomer
from ratel.application.housekeeping import Housekeeping
from ratel.application.payments import TopUp
from ratel.domain.staff import AccessToken, TokenKind
from ratel.ports.store import IdentifierKind

SESSIONS = 520  # more than one batch of Tcc supervision (500)


async def test_one_housekeeping_pass_releases_every_idle_session_not_just_the_first_500(
    deps: Dependencies,
) -> None:
    """A gateway restart leaves 520 sessions silent. One Tcc supervision pass
    must release them all (in bounded transactions), as renew_quotas drains
    every due bucket; otherwise the money held by the rest stays reserved for
    another housekeeping interval per 500 sessions (10,000 sessions: 20 passes),
    and the customer is refused service for credit that is not really used."""
    customer = await OpenCustomer(deps)("Ada", "USD")
    await TopUp(deps)(customer.id, usd("100"), "card-1")
    account = await CreateAccount(deps)(customer.id, "PLAIN")
    cc = CreditControl(deps)
    who = Subscriber(IdentifierKind.ACCOUNT_ID, account.id)
    for n in range(SESSIONS):
        await cc.start(f"s{n:04d}", who, [data(MIB)])
    async with deps.uow() as uow:
        held = await uow.customers.get(customer.id)
    assert held is not None and held.wallet.reserved == usd("5.20")
    clock = deps.clock
    assert isinstance(clock, Clock)
    clock.at = START + timedelta(hours=3)
    report = await Housekeeping(deps)()
    async with deps.uow() as uow:
        after = await uow.customers.get(customer.id)
        still_open = await uow.sessions.idle_since(clock.at, limit=10_000)
    assert after is not None
    assert (report.sessions_released, len(still_open), after.wallet.reserved) == (
        SESSIONS,
        0,
        usd("0"),
    ), "one pass released only the first batch of idle sessions"


async def test_a_failing_step_does_not_keep_the_others_from_running(
    deps: Dependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renewal aborted by the database (a deadlock, a lost connection):
    idle sessions are still released in the same pass, and their money
    goes back."""
    customer = await OpenCustomer(deps)("Ada", "USD")
    await TopUp(deps)(customer.id, usd("10"), "card-1")
    account = await CreateAccount(deps)(customer.id, "PLAIN")
    await CreditControl(deps).start(
        "silent", Subscriber(IdentifierKind.ACCOUNT_ID, account.id), [data(MIB)]
    )
    clock = deps.clock
    assert isinstance(clock, Clock)
    clock.at = START + timedelta(hours=3)
    housekeeping = Housekeeping(deps)

    async def aborted() -> int:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(housekeeping, "renew_quotas", aborted)
    report = await housekeeping()
    assert (report.buckets_renewed, report.sessions_released) == (0, 1)


async def test_one_pass_expires_every_ended_add_on_and_purges_every_old_token_page_by_page(
    deps: Dependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of two accounts and two tokens: five accounts with an ended
    add-on (one terminated, skipped: it would otherwise come back at the
    head of every page) and five expired tokens are all done in one pass."""
    monkeypatch.setattr(housekeeping_module, "EXPIRED_AT_ONCE", 2)
    monkeypatch.setattr(housekeeping_module, "PURGED_AT_ONCE", 2)
    await DefineProduct(deps)(add_on())
    customer = await OpenCustomer(deps)("Ada", "USD")
    accounts = [await CreateAccount(deps)(customer.id, "PLAIN") for _ in range(6)]
    for account in accounts:
        await AddAddOn(deps)(account.id, "DATA-24H")
    await TerminateAccount(deps)(accounts[0].id)
    async with deps.uow() as uow:
        for n in range(5):
            issued = START - timedelta(days=3)
            await uow.tokens.add(
                AccessToken(
                    id=f"tok-{n}",
                    token_hash=f"hash-{n}",
                    kind=TokenKind.ACCOUNT_HOLDER,
                    subject=accounts[1].id,
                    issued_at=issued,
                    expires_at=issued + timedelta(hours=1),
                    account_id=accounts[1].id,
                    customer_id=customer.id,
                )
            )
        await uow.commit()
    clock = deps.clock
    assert isinstance(clock, Clock)
    clock.at = START + timedelta(days=2)
    report = await Housekeeping(deps)()
    assert (report.add_ons_expired, report.tokens_purged) == (5, 5)
