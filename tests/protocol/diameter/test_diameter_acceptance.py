"""Acceptance tests on the wire for requirements of the Diameter issue that
had none: Final-Unit-Indication TERMINATE and RESTRICT_ACCESS, funds locked
per period of an Ro voice call, and Tcc supervision settling the units
reported."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from diameter.message import Message
from diameter.message.avp import Avp
from gateway import (
    VOICE,
    Gateway,
    avp,
    by_rating_group,
    find,
    granted,
    ims,
    mscc,
    result_code,
    subscription,
    units,
)
from test_diameter_credit_control import new_subscriber
from test_diameter_reauth import Later

from ratel.adapters.diameter import codec
from ratel.application.enquiry import BalanceView
from ratel.application.housekeeping import Housekeeping
from ratel.container import Container
from ratel.domain.catalogue import ExhaustionAction
from ratel.domain.charging import Xdr
from ratel.domain.money import Money
from ratel.ports.store import IdentifierKind

MIB = 1024 * 1024
#: RFC 4006 8.34: what names RESTRICT_ACCESS's filter
FILTER_ID = 11
#: a local (North American) number: VOICE tariff prefix "1", 0.05 connection
#: fee + 0.10 per started minute
CALLED = "12055550123"


async def view(ocs: Container, msisdn: str) -> BalanceView:
    return await ocs.balance_enquiry()(IdentifierKind.MSISDN, msisdn)


async def xdrs_of(ocs: Container, msisdn: str) -> list[Xdr]:
    return list(await ocs.account_xdrs()((await view(ocs, msisdn)).account_id))


def final_unit(holder: list[Avp]) -> list[Avp]:
    fui = find(holder, codec.FINAL_UNIT_INDICATION)
    assert fui is not None, "no Final-Unit-Indication"
    return codec.group(fui)


def shown(avps: list[Avp]) -> list[object]:
    """AVPs as (code, value), groups opened: readable in a failure."""
    return [
        (a.code, shown(codec.group(a)) if a.code == codec.REDIRECT_SERVER else a.value)
        for a in avps
    ]


def data_ccr_i(gw: Gateway, session: str, msisdn: str, wanted: int) -> Message:
    return gw.ccr(
        session,
        codec.INITIAL,
        0,
        *subscription(msisdn),
        mscc(10, requested=units(codec.REQUESTED_SERVICE_UNIT, total=wanted)),
    )


async def test_final_unit_terminate_grants_exactly_what_the_funds_pay_for_then_4012(
    ocs: Container, gw1: Gateway
) -> None:
    """IOT_M2M terminates on exhaustion. With its 10 MiB quota and 0.05 USD
    (5 MiB at 0.01 per started MiB), a CCR-I asking 100 MiB is granted
    exactly 15 MiB with Final-Unit-Action TERMINATE (0) and no
    Redirect-Server; the CCR-U reporting those 15 MiB gets 4012, at the top
    level and in the MSCC, with nothing granted and no Final-Unit-Indication
    (TERMINATE: the session ends, nothing to redirect or restrict to)."""
    msisdn = await new_subscriber(ocs, "IOT_M2M", "0.05")
    session = gw1.new_session()
    initial = await gw1.send(data_ccr_i(gw1, session, msisdn, 100 * MIB))
    assert result_code(initial) == codec.SUCCESS
    paid = by_rating_group(initial)[10]
    assert codec.integer(paid, codec.RESULT_CODE) == codec.SUCCESS
    assert granted(paid) == {"total": 15 * MIB}
    fui = final_unit(paid)
    assert codec.integer(fui, codec.FINAL_UNIT_ACTION) == codec.FUA_TERMINATE
    assert find(fui, codec.REDIRECT_SERVER) is None
    assert [a.code for a in fui] == [codec.FINAL_UNIT_ACTION]
    assert (await view(ocs, msisdn)).reserved.amount == Decimal("0.05")

    update = await gw1.send(
        gw1.ccr(
            session, codec.UPDATE, 1, mscc(10, used=units(codec.USED_SERVICE_UNIT, total=15 * MIB))
        )
    )
    assert result_code(update) == codec.CREDIT_LIMIT_REACHED
    denied = by_rating_group(update)[10]
    assert codec.integer(denied, codec.RESULT_CODE) == codec.CREDIT_LIMIT_REACHED
    assert find(denied, codec.GRANTED_SERVICE_UNIT) is None
    assert find(denied, codec.FINAL_UNIT_INDICATION) is None
    after = await view(ocs, msisdn)
    assert (after.balance.amount, after.reserved.amount) == (Decimal("0.00"), Decimal("0.00"))


def seconds(code: int, value: int) -> Avp:
    return avp(code, [avp(codec.CC_TIME, value)])


def voice_ccr(
    gw: Gateway, session: str, msisdn: str, kind: int, number: int, *more: Avp
) -> Message:
    return gw.ccr(session, kind, number, ims(msisdn, CALLED), *more, context=VOICE)


async def small_funds_call(ocs: Container, gw1: Gateway) -> tuple[str, str, Message]:
    """A MOBILE_PREPAID subscriber with 0.25 USD starts a call asking 300 s:
    its MSISDN, the session and the CCA-I."""
    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "0.25")
    session = gw1.new_session()
    initial = await gw1.send(
        voice_ccr(
            gw1,
            session,
            msisdn,
            codec.INITIAL,
            0,
            *subscription(msisdn),
            seconds(codec.REQUESTED_SERVICE_UNIT, 300),
        )
    )
    return msisdn, session, initial


async def test_ro_voice_with_small_funds_is_granted_what_they_pay_for_with_terminate(
    ocs: Container, gw1: Gateway
) -> None:
    """Ro voice on MOBILE_PREPAID (the demo's only voice product) to a local
    number with 0.25 USD: 0.05 connection + 0.10 first minute + 0.10 second
    minute pay for 120 s, so a CCR-I asking 300 s is granted CC-Time 120,
    the last units: the issue wants "the call ended by a final grant when
    funds run out", so Final-Unit-Action TERMINATE (0) and no
    Redirect-Server (a hotline web page is no end for a call)."""
    _, _, initial = await small_funds_call(ocs, gw1)
    assert result_code(initial) == codec.SUCCESS
    assert granted(initial.avps) == {"time": 120}
    fui = final_unit(initial.avps)
    sent = shown(fui)
    assert codec.integer(fui, codec.FINAL_UNIT_ACTION) == codec.FUA_TERMINATE, sent
    assert find(fui, codec.REDIRECT_SERVER) is None, sent


async def test_ro_voice_locks_the_funds_of_each_period_and_writes_one_xdr(
    ocs: Container, gw1: Gateway
) -> None:
    """Ro voice on MOBILE_PREPAID to a local number with 0.25 USD: the CCR-I
    asking 300 s is granted the 120 s the funds pay for, as the last units,
    and their price, 0.25, is reserved. After a 1.00 top-up, the CCR-U
    reporting 60 s (0.15 paid) is granted the 300 s asked, whose 5 minutes
    (0.50) are reserved: more than before. The CCR-T reporting 90 s releases
    every reservation and exactly one xDR exists for the account: 150 s to
    the called number, 0.05 + 3 minutes = 0.35."""
    msisdn, session, initial = await small_funds_call(ocs, gw1)
    assert result_code(initial) == codec.SUCCESS
    assert granted(initial.avps) == {"time": 120}
    assert find(initial.avps, codec.FINAL_UNIT_INDICATION) is not None
    assert (await view(ocs, msisdn)).reserved.amount == Decimal("0.25")

    await ocs.top_up()((await view(ocs, msisdn)).customer_id, Money.of("1.00", "USD"))
    update = await gw1.send(
        voice_ccr(
            gw1,
            session,
            msisdn,
            codec.UPDATE,
            1,
            seconds(codec.USED_SERVICE_UNIT, 60),
            seconds(codec.REQUESTED_SERVICE_UNIT, 300),
        )
    )
    assert result_code(update) == codec.SUCCESS
    assert granted(update.avps) == {"time": 300}
    assert find(update.avps, codec.FINAL_UNIT_INDICATION) is None  # 1.10 pays for more
    during = await view(ocs, msisdn)
    assert during.reserved.amount == Decimal("0.50")  # minutes 2 to 6
    assert during.balance.amount == Decimal("1.10")  # 1.25 - 0.15 for the first minute

    end = await gw1.send(
        voice_ccr(gw1, session, msisdn, codec.TERMINATE, 2, seconds(codec.USED_SERVICE_UNIT, 90))
    )
    assert result_code(end) == codec.SUCCESS
    after = await view(ocs, msisdn)
    assert (after.balance.amount, after.reserved.amount) == (Decimal("0.90"), Decimal("0.00"))
    xdrs = await xdrs_of(ocs, msisdn)
    assert len(xdrs) == 1
    (xdr,) = xdrs
    assert xdr.session_id == session
    assert [(line.destination, line.units) for line in xdr.lines] == [(CALLED, 150)]
    assert xdr.charge.amount == Decimal("0.35")


async def test_restrict_and_throttle_products_answer_restrict_access(
    ocs: Container, gw1: Gateway
) -> None:
    """ExhaustionAction RESTRICT, and THROTTLE ("throttling is restricting
    access as far as the gateway is told"), make ratel answer Final-Unit-
    Action RESTRICT_ACCESS (2). The demo has no RESTRICT product, so an
    IOT_M2M copy is defined with each. RESTRICT charges money beyond the
    quota: 10 MiB quota + 5 MiB for 0.05 = 15 MiB; THROTTLE does not charge
    money while the product has quota for the service: the 10 MiB quota
    only. The Final-Unit-Indication holds Final-Unit-Action and the
    Filter-Id of the restriction ("restrict" or "throttle", the names the
    gateway's filters are set up under): RFC 4006 5.6.3 has RESTRICT_ACCESS
    name its filters, and without one the gateway had nothing to apply. No
    Redirect-Server. When the units are used, the CCR-U gets 4012 with the
    Final-Unit-Indication again and a Validity-Time (restricted access
    goes on: come back later)."""
    (iot,) = [p for p in await ocs.list_products()() if p.code == "IOT_M2M"]
    cases = (
        (ExhaustionAction.RESTRICT, 15, "restrict"),
        (ExhaustionAction.THROTTLE, 10, "throttle"),
    )
    for action, grant, name in cases:
        code = f"IOT_{action.name}"
        policy = replace(iot.policy, on_exhaustion=action)
        await ocs.define_product()(replace(iot, code=code, name=code, policy=policy))
        msisdn = await new_subscriber(ocs, code, "0.05")
        session = gw1.new_session()
        initial = await gw1.send(data_ccr_i(gw1, session, msisdn, 100 * MIB))
        assert result_code(initial) == codec.SUCCESS, code
        paid = by_rating_group(initial)[10]
        assert granted(paid) == {"total": grant * MIB}, code
        fui = final_unit(paid)
        restricted = [(codec.FINAL_UNIT_ACTION, codec.FUA_RESTRICT_ACCESS), (FILTER_ID, name)]
        assert [(a.code, a.value) for a in fui] == restricted, code

        update = await gw1.send(
            gw1.ccr(
                session,
                codec.UPDATE,
                1,
                mscc(10, used=units(codec.USED_SERVICE_UNIT, total=grant * MIB)),
            )
        )
        assert result_code(update) == codec.CREDIT_LIMIT_REACHED, code
        denied = by_rating_group(update)[10]
        assert codec.integer(denied, codec.RESULT_CODE) == codec.CREDIT_LIMIT_REACHED
        assert find(denied, codec.GRANTED_SERVICE_UNIT) is None
        assert [(a.code, a.value) for a in final_unit(denied)] == restricted, code
        assert codec.integer(denied, codec.VALIDITY_TIME) == 600


async def test_tcc_supervision_settles_the_units_reported_before_the_silence(
    ocs: Container, gw1: Gateway
) -> None:
    """An IOT_M2M data session with 1.00 USD reports 15 MiB (the 10 MiB
    quota, then 5 MiB at 0.01) and asks for more, then goes silent. Tcc
    supervision (validity 600 s + 60 s grace) releases it: its xDR line has
    exactly the 15 MiB reported (10 from the quota, 5 paid), the balance
    went down by exactly their 0.05, and the grant held after the report is
    released, not charged."""
    msisdn = await new_subscriber(ocs, "IOT_M2M", "1")
    session = gw1.new_session()
    initial = await gw1.send(data_ccr_i(gw1, session, msisdn, 20 * MIB))
    assert granted(by_rating_group(initial)[10]) == {"total": 20 * MIB}
    update = await gw1.send(
        gw1.ccr(
            session,
            codec.UPDATE,
            1,
            mscc(
                10,
                requested=units(codec.REQUESTED_SERVICE_UNIT, total=20 * MIB),
                used=units(codec.USED_SERVICE_UNIT, total=15 * MIB),
            ),
        )
    )
    assert result_code(update) == codec.SUCCESS
    assert granted(by_rating_group(update)[10]) == {"total": 20 * MIB}
    assert (await view(ocs, msisdn)).reserved.amount == Decimal("0.20")

    later = Housekeeping(replace(ocs.deps(), clock=Later(600 + 61)))
    assert await later.release_idle_sessions() >= 1
    after = await view(ocs, msisdn)
    assert (after.balance.amount, after.reserved.amount) == (Decimal("0.95"), Decimal("0.00"))
    (xdr,) = [x for x in await xdrs_of(ocs, msisdn) if x.session_id == session]
    assert xdr.cause == "idle timeout"
    (line,) = xdr.lines
    assert (line.rating_group, line.units, line.money_units) == (10, 15 * MIB, 5 * MIB)
    assert sum(units for _, units in line.bucket_units) == 10 * MIB
    assert line.charge.amount == Decimal("0.05") == Decimal("1.00") - after.balance.amount
