"""Duplicates and failures inside one charging batch (group commit),
driven through ChargingBatch directly so that the calls share one batch."""

from __future__ import annotations

import itertools
from decimal import Decimal

from test_diameter_credit_control import balance, new_subscriber

from ratel.application.charging_batch import CallKind, ChargingBatch, ChargingCall
from ratel.application.credit_control import Subscriber, UnknownSession
from ratel.container import Container
from ratel.domain.catalogue import Service, Unit
from ratel.domain.charging import Answer, UsageRequest
from ratel.ports.store import IdentifierKind

_n = itertools.count(1)


def voice(requested: int | None, used: int = 0) -> UsageRequest:
    return UsageRequest(
        service=Service.VOICE,
        unit=Unit.SECONDS,
        access_code="VOICE",
        destination="12055550123",
        requested=requested,
        used=used,
    )


def sms() -> UsageRequest:
    return UsageRequest(
        service=Service.SMS,
        unit=Unit.MESSAGES,
        access_code="SMS",
        destination="12055550199",
        requested=1,
    )


async def test_duplicates_in_one_batch_charge_once(ocs: Container) -> None:
    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "5")
    who = Subscriber(IdentifierKind.MSISDN, msisdn)
    sid = f"review-batch-{next(_n)}"
    start = ChargingCall(CallKind.START, sid, 0, (voice(60),), who)
    update = ChargingCall(CallKind.UPDATE, sid, 1, (voice(60, used=60),))
    end = ChargingCall(CallKind.TERMINATE, sid, 2, (voice(0, used=30),))
    late = ChargingCall(CallKind.UPDATE, sid, 3, (voice(60, used=60),))  # after the end
    unknown = ChargingCall(CallKind.UPDATE, f"{sid}-never", 1, (voice(60),))
    batch = ChargingBatch(ocs.charging_deps())
    outcomes = await batch([start, start, update, update, end, end, late, unknown])
    kinds = [type(o).__name__ for o in outcomes]
    assert isinstance(outcomes[0], Answer) and outcomes[0] == outcomes[1], kinds
    assert isinstance(outcomes[2], Answer) and outcomes[2] == outcomes[3], kinds
    assert isinstance(outcomes[4], Answer) and outcomes[4].xdr is not None, kinds
    assert outcomes[5] == outcomes[4], kinds
    assert type(outcomes[6]).__name__ == "SessionClosed", kinds
    assert isinstance(outcomes[7], UnknownSession), kinds
    # 90 s local: 0.05 connection + 2 started minutes at 0.10, once
    assert await balance(ocs, msisdn) == Decimal("4.75")
    xdrs = [x for x in await ocs.account_xdrs()(await _account(ocs, msisdn)) if x.session_id == sid]
    assert len(xdrs) == 1 and xdrs[0].charge.amount == Decimal("0.25")


async def test_a_direct_debit_twice_in_one_batch_charges_once(ocs: Container) -> None:
    msisdn = await new_subscriber(ocs, "IOT_M2M", "1")  # no SMS quota: money pays
    who = Subscriber(IdentifierKind.MSISDN, msisdn)
    sid = f"review-sms-{next(_n)}"
    call = ChargingCall(CallKind.DEBIT, sid, 0, (sms(),), who, xdr_id=f"xdr-{sid}")
    again = ChargingCall(CallKind.DEBIT, sid, 0, (sms(),), who, xdr_id=f"xdr-{sid}-b")
    outcomes = await ChargingBatch(ocs.charging_deps())([call, again])
    assert all(isinstance(o, Answer) for o in outcomes), outcomes
    assert await balance(ocs, msisdn) == Decimal("0.95")
    # and again in a later batch (a retransmission after the answer was lost)
    await ChargingBatch(ocs.charging_deps())([again])
    assert await balance(ocs, msisdn) == Decimal("0.95")


async def _account(ocs: Container, msisdn: str) -> str:
    view = await ocs.balance_enquiry()(IdentifierKind.MSISDN, msisdn)
    return view.account_id


async def test_retransmissions_after_a_restart_charge_nothing(
    ocs: Container, database_url: str
) -> None:
    """A long session (answers compacted as runs in the row), then a second
    process on the same database: the last UPDATE and the TERMINATE
    retransmitted find their stored answers; an old one is refused."""
    from ratel.config import Settings
    from ratel.container import build_container, dispose

    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "50")
    who = Subscriber(IdentifierKind.MSISDN, msisdn)
    sid = f"review-restart-{next(_n)}"
    batch = ChargingBatch(ocs.charging_deps())
    calls = [ChargingCall(CallKind.START, sid, 0, (voice(60),), who)]
    calls += [ChargingCall(CallKind.UPDATE, sid, n, (voice(60, used=60),)) for n in range(1, 21)]
    for call in calls:  # one batch each, as a gateway waits for each answer
        assert isinstance((await batch([call]))[0], Answer)
    charged = await balance(ocs, msisdn)
    assert charged == Decimal("47.95")  # 0.05 + 20 minutes
    other = build_container(Settings(database_url=database_url, diameter_port=0))
    try:
        fresh = ChargingBatch(other.charging_deps())
        again = await fresh([calls[20], calls[20], calls[19]])
        assert isinstance(again[0], Answer) and again[0].request_number == 20, again
        assert again[1] == again[0]
        assert isinstance(again[2], Answer) and again[2].request_number == 19, again
        assert await balance(ocs, msisdn) == charged
        end = ChargingCall(CallKind.TERMINATE, sid, 21, (voice(0, used=0),))
        first = (await fresh([end]))[0]
        assert isinstance(first, Answer) and first.xdr is not None
    finally:
        await dispose(other)
    again = await batch([end, calls[3]])  # the first process, its cache stale
    assert (
        isinstance(again[0], Answer)
        and again[0].xdr is not None
        and again[0].xdr.id == first.xdr.id
    )
    assert not isinstance(again[1], Answer) or again[1].request_number == 3
    assert await balance(ocs, msisdn) == charged
