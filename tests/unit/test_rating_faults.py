"""Rating and charging arithmetic where money leaked: a grant across two
tariff changes, events rated as seconds, service wallets that events and
overuse ignored, a wallet or bucket removed mid-session, a free rating
group's events. Each test failed before its fix."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

from rating_support import (
    LOCAL,
    NOW,
    World,
    call,
    default_tariffs,
    grant_of,
    sms,
    unit_bucket,
    usd,
    wallet_bucket,
)

from ratel.domain.catalogue import Service, ServicePolicy, Unit
from ratel.domain.charging import Denial, Grant
from ratel.domain.rating import Rate, RatePeriod, Tariff

# -- F1: xDR rounding of a line paid by a service wallet lands on the balance ----------


def per_second_tariffs() -> dict[str, Tariff]:
    tariffs = default_tariffs()
    voice = Tariff("VOICE-STD", "USD")
    # 0.0015 a second, per-second billing
    voice.add_prefix("1", Rate.per_interval(usd("0.0015"), 1), LOCAL)
    tariffs["VOICE-STD"] = voice
    return tariffs


# -- F2: direct debit (CCR EVENT) ignores service wallets ------------------------------


def test_direct_debit_sms_is_paid_by_the_sms_service_wallet() -> None:
    """An SMS wallet with 1.00 and a zero balance: the session path charges the
    wallet, and so does the direct-debit path."""
    wallet = wallet_bucket("sms-wallet", Service.SMS, "1.00")
    w = World(balance="0", buckets=[wallet])
    s = w.session()
    answer = s.debit_event(w.ctx(), 0, sms(), NOW)
    assert isinstance(answer.results[0], Grant), answer.results[0]
    assert wallet.used == Decimal("0.05")
    assert w.balance == usd(0)


def test_direct_debit_sms_with_wallet_does_not_charge_the_balance() -> None:
    wallet = wallet_bucket("sms-wallet", Service.SMS, "1.00")
    w = World(balance="10", buckets=[wallet])
    s = w.session()
    answer = s.debit_event(w.ctx(), 0, sms(), NOW)
    assert isinstance(answer.results[0], Grant)
    assert answer.xdr is not None and answer.xdr.charge == usd("0.05")
    assert w.balance == usd(10), f"balance {w.balance}: the wallet should have paid"
    assert answer.xdr.lines[0].paid_by_service_wallets == usd("0.05")


def test_session_sms_is_paid_by_the_sms_service_wallet_for_comparison() -> None:
    """Control: the same SMS through INITIAL/TERMINATE is paid by the wallet."""
    wallet = wallet_bucket("sms-wallet", Service.SMS, "1.00")
    w = World(balance="10", buckets=[wallet])
    s = w.session()
    grant_of(s.reserve(w.ctx(), 0, [sms()], NOW))
    from ratel.domain.charging import UsageRequest

    end = s.terminate(
        w.ctx(), 1, [UsageRequest(Service.SMS, Unit.MESSAGES, "SMS", "12025550100", used=1)], NOW
    )
    assert end.xdr is not None and end.xdr.charge == usd("0.05")
    assert w.balance == usd(10)
    assert wallet.used == Decimal("0.05")


def test_direct_debit_in_a_free_rating_group_uses_no_quota() -> None:
    """A free rating group uses no quota and no money, in a session and in a
    direct debit alike."""
    policy = ServicePolicy(free_rating_groups=frozenset({5}))
    bucket = unit_bucket("sms100", Service.SMS, Unit.MESSAGES, 100)
    w = World(balance="10", policy=policy, buckets=[bucket])
    s = w.session()
    answer = s.debit_event(w.ctx(), 0, sms(rg=5), NOW)
    grant = answer.results[0]
    assert isinstance(grant, Grant) and grant.free
    assert bucket.used == 0, f"free rating group drew {bucket.used} SMS from the quota"
    assert w.balance == usd(10)


# -- F3: overlapping sub-sessions on one stream grant the same funds twice -------------


# -- F4: the hold for a grant spanning a tariff change is below the mixed cost ---------

# off-peak 20:00-08:00 UTC: first minute 1.00 then 0.05 a minute
# peak: first minute 0.10 then 0.20 a minute
PEAK_CHEAP_FIRST = Rate(usd("0.10"), 60, 60, usd("0.20"), usd(0))
NIGHT_DEAR_FIRST = Rate(usd("1.00"), 60, 60, usd("0.05"), usd(0))


def crossing_tariffs() -> dict[str, Tariff]:
    tariffs = default_tariffs()
    voice = Tariff("VOICE-STD", "USD", time_zone="UTC")
    voice.add_prefix(
        "1", PEAK_CHEAP_FIRST, LOCAL, periods=[RatePeriod(time(20), time(8), NIGHT_DEAR_FIRST)]
    )
    tariffs["VOICE-STD"] = voice
    return tariffs


# -- F8: usage beyond a wallet-backed grant charges the balance, not the wallet --------


def test_usage_beyond_a_wallet_backed_grant_is_paid_by_the_wallet() -> None:
    """Voice wallet 1.00. A 60 s grant is held on the wallet (0.15); the
    network uses 180 s (0.35). The wallet still has 0.85 free, so it pays
    the overuse too, not the balance."""
    wallet = wallet_bucket("voice-wallet", Service.VOICE, "1.00")
    w = World(balance="10", buckets=[wallet])
    s = w.session()
    grant_of(s.reserve(w.ctx(), 0, [call(requested=60)], NOW))
    end = s.terminate(w.ctx(), 1, [call(used=180)], NOW + timedelta(seconds=180))
    assert end.xdr is not None and end.xdr.charge == usd("0.35")
    assert wallet.used == Decimal("0.35"), f"wallet paid {wallet.used}"
    assert w.balance == usd(10), f"balance paid {usd(10) - w.balance}"


def test_usage_reported_after_a_zero_grant_is_paid_by_the_wallet() -> None:
    """Usage after a grant of 0 units (requested=0) is overuse, paid by the
    service wallet first (an empty hold is still a hold)."""
    wallet = wallet_bucket("voice-wallet", Service.VOICE, "1.00")
    w = World(balance="10", buckets=[wallet])
    s = w.session()
    s.reserve(w.ctx(), 0, [call(requested=0)], NOW)
    end = s.terminate(w.ctx(), 1, [call(used=180)], NOW + timedelta(seconds=180))
    assert end.xdr is not None and end.xdr.charge == usd("0.35")
    assert wallet.used == Decimal("0.35")
    assert w.balance == usd(10)


_ = Denial  # re-exported for readers


# -- F6: a one-step event (direct debit) is rated as seconds of a session --------------


def ussd_tariffs(rate: Rate) -> dict[str, Tariff]:
    from rating_support import USSD

    tariffs = default_tariffs()
    ussd = Tariff("USSD-STD", "USD")
    ussd.add_custom("OUTGOING.SI120", rate, USSD)
    tariffs["USSD-STD"] = ussd
    return tariffs


def ussd_event(requested: int = 1):  # type: ignore[no-untyped-def]
    from ratel.domain.catalogue import UsageCharge
    from ratel.domain.charging import UsageRequest

    return UsageRequest(
        Service.USSD,
        Unit.SECONDS,
        UsageCharge.ussd_access_code(120),
        service_identifier=120,
        requested=requested,
    )


def test_one_step_ussd_request_costs_one_interval_even_with_free_seconds() -> None:
    """A one-step USSD request is one interval, and free units (a session's
    free seconds) do not apply to events: the 10 free seconds do not make
    the request free."""
    rate = Rate.per_interval(usd("0.2"), 20, free_units=10)
    w = World(balance="10", tariffs=ussd_tariffs(rate))
    answer = w.session().debit_event(w.ctx(), 0, ussd_event(), NOW)
    assert answer.xdr is not None
    assert answer.xdr.charge == rate.event_cost(1) == usd("0.2"), answer.xdr.charge


def test_three_events_in_one_direct_debit_cost_three_intervals() -> None:
    """Requested-Service-Unit 3 on a 20-unit interval rate: three requests,
    three intervals (not three seconds of one)."""
    rate = Rate.per_interval(usd("0.2"), 20)
    w = World(balance="10", tariffs=ussd_tariffs(rate))
    answer = w.session().debit_event(w.ctx(), 0, ussd_event(3), NOW)
    assert answer.xdr is not None
    assert answer.xdr.charge == rate.event_cost(3) == usd("0.6"), answer.xdr.charge


# -- F7: a grant spanning two tariff changes is rated at the middle band ---------------


def two_change_tariffs() -> dict[str, Tariff]:
    tariffs = default_tariffs()
    voice = Tariff("VOICE-STD", "USD", time_zone="UTC")
    # 1.00 a minute, except a 10:00-10:30 discount band at 0.10 a minute
    voice.add_prefix(
        "1",
        Rate.per_interval(usd("1.00"), 60),
        LOCAL,
        periods=[RatePeriod(time(10), time(10, 30), Rate.per_interval(usd("0.10"), 60))],
    )
    tariffs["VOICE-STD"] = voice
    return tariffs


def test_usage_after_the_second_change_of_one_grant_is_at_the_full_rate() -> None:
    """Granted 09:50 for 60 min (validity 3600 s): the rate changes at 10:00 and
    again at 10:30. RFC 4006 announces one Tariff-Time-Change per grant, so the
    grant ends at the second change (else 20 minutes after 10:30 would be
    rated at the 10:00 discount rate)."""
    start = NOW.replace(hour=9, minute=50)
    w = World(balance="100", tariffs=two_change_tariffs())
    s = w.session(now=start)
    grant = grant_of(s.reserve(w.ctx(), 0, [call(requested=3600)], start))
    assert grant.tariff_change_at == NOW.replace(hour=10)
    if grant.validity_seconds <= 40 * 60 and grant.units <= 40 * 60:
        return  # the grant stops at the second change: nothing to rate wrongly
    # 10 min before, 30 min in the band, 20 min after the band
    end = s.terminate(w.ctx(), 1, [call(used=3600, after=3000)], start + timedelta(minutes=60))
    assert end.xdr is not None
    expected = usd("10.00") + usd("3.00") + usd("20.00")
    assert end.xdr.charge == expected, (
        f"charged {end.xdr.charge}; grant of {grant.units} s / {grant.validity_seconds} s "
        "crossed two changes"
    )


# -- F9: money held on a service wallet that is removed mid-session is never paid ------


def test_usage_held_on_a_removed_wallet_is_still_charged() -> None:
    """A 60 s grant is held on a voice wallet; the add-on (and its wallet) is
    removed (``remove_for_assignment``) before the TERMINATE: the balance
    pays the call, not the wallet that is gone."""
    wallet = wallet_bucket("voice-wallet", Service.VOICE, "1.00")
    w = World(balance="10", buckets=[wallet])
    s = w.session()
    grant_of(s.reserve(w.ctx(), 0, [call(requested=60)], NOW))
    w.buckets.remove(wallet)  # the add-on assignment was removed
    end = s.terminate(w.ctx(), 1, [call(used=60)], NOW + timedelta(seconds=60))
    assert end.xdr is not None and end.xdr.charge == usd("0.15")
    assert w.balance == usd("9.85"), (
        f"balance {w.balance}; xDR says the vanished wallet paid "
        f"{end.xdr.lines[0].paid_by_service_wallets}"
    )


def test_check_balance_counts_the_service_wallet() -> None:
    """CHECK_BALANCE says no for an SMS the SMS wallet would pay (the session
    path grants it), as a direct debit would pay it."""
    from ratel.domain.charging import check_balance

    wallet = wallet_bucket("sms-wallet", Service.SMS, "1.00")
    w = World(balance="0", buckets=[wallet])
    assert grant_of(w.session().reserve(w.ctx(), 0, [sms()], NOW)).units == 1
    assert check_balance(w.ctx(), sms(), NOW) is True
