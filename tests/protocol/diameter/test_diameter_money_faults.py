"""Diameter credit control where money leaks easily: repeated refunds, two
MSCCs of one rating group, a gateway's late CCR-T after Tcc supervision, and
voice calls whose called party is named in the CCR-I only. Each test failed
before its fix."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from diameter.message import Message
from gateway import (
    SMS,
    VOICE,
    Gateway,
    avp,
    granted,
    ims,
    mscc,
    msccs,
    result_code,
    sms_recipient,
    subscription,
    units,
)
from test_diameter_credit_control import balance, new_subscriber

from ratel.adapters.diameter import codec
from ratel.application.housekeeping import Housekeeping
from ratel.container import Container
from ratel.ports.store import IdentifierKind

MIB = 1024 * 1024


class Later:
    """The system clock, moved on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.seconds)


async def sms_quota_used(ocs: Container, msisdn: str) -> Decimal:
    async with ocs.deps().uow() as uow:
        account = await uow.accounts.by_identifier(IdentifierKind.MSISDN, msisdn)
        assert account is not None
        buckets = await uow.quotas.for_account(account.id)
    return sum((b.used for b in buckets if b.quota_code == "SMS_100"), Decimal(0))


def sms_event(gw: Gateway, session: str, msisdn: str, action: int) -> Message:
    return gw.ccr(
        session,
        codec.EVENT,
        0,
        *subscription(msisdn),
        sms_recipient(),
        avp(codec.REQUESTED_SERVICE_UNIT, [avp(codec.CC_SERVICE_SPECIFIC_UNITS, 1)]),
        avp(codec.REQUESTED_ACTION, action),
        context=SMS,
    )


async def test_refund_of_a_quota_paid_sms_gives_the_units_back_once(
    ocs: Container, gw1: Gateway
) -> None:
    """A refund of an SMS paid by quota moves no balance, yet it is written:
    two SMS sent, one refunded three times, one unit given back."""
    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "1")
    first, second = gw1.new_session(), gw1.new_session()
    for session in (first, second):
        debit = await gw1.send(sms_event(gw1, session, msisdn, codec.DIRECT_DEBITING))
        assert result_code(debit) == codec.SUCCESS
    assert await sms_quota_used(ocs, msisdn) == 2
    assert await balance(ocs, msisdn) == Decimal("1.00")  # the quota paid both

    for _ in range(3):
        refund = await gw1.send(sms_event(gw1, first, msisdn, codec.REFUND_ACCOUNT))
        assert result_code(refund) == codec.SUCCESS
    # one SMS was refunded (once); the other is still used
    assert await sms_quota_used(ocs, msisdn) == 1


async def test_two_mscc_of_one_rating_group_are_granted_the_funds_once(
    ocs: Container, gw1: Gateway
) -> None:
    """Two MSCCs of one rating group (two Service-Identifiers sharing RG 10, a
    common Gy layout) are two streams, each with its own hold: the funds are
    granted once, not once for each."""
    msisdn = await new_subscriber(ocs, "IOT_M2M", "1")  # 10 MiB quota, then 0.01/MiB
    session = gw1.new_session()
    want = units(codec.REQUESTED_SERVICE_UNIT, total=110 * MIB)  # all the funds cover
    initial = await gw1.send(
        gw1.ccr(
            session,
            codec.INITIAL,
            0,
            *subscription(msisdn),
            mscc(10, requested=want, service_identifier=1),
            mscc(10, requested=want, service_identifier=2),
        )
    )
    assert result_code(initial) == codec.SUCCESS
    total = sum(granted(m).get("total", 0) for m in msccs(initial))
    # what one reservation of 1.00 (plus the 10 MiB quota) covers, at most
    assert total <= 110 * MIB, f"granted {total // MIB} MiB against 110 MiB of funds"
    # the same Rating-Group and Service-Identifier twice is refused
    again = await gw1.send(
        gw1.ccr(
            gw1.new_session(),
            codec.INITIAL,
            0,
            *subscription(msisdn),
            mscc(10, requested=want, service_identifier=1),
            mscc(10, requested=want, service_identifier=1),
        )
    )
    assert result_code(again) == codec.INVALID_AVP_VALUE


async def test_a_late_terminate_after_tcc_release_is_told_the_session_has_ended(
    ocs: Container, gw1: Gateway
) -> None:
    """Tcc supervision ends a silent session under a number no request takes:
    the gateway's late CCR-T is no retransmission of the release and gets
    5002, not a 2001 that says its usage was charged."""
    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "5")
    session = gw1.new_session()

    def call(kind: int, number: int, *more: object) -> Message:
        return gw1.ccr(session, kind, number, ims(msisdn, "12055550123"), *more, context=VOICE)

    initial = await gw1.send(
        call(
            codec.INITIAL,
            0,
            *subscription(msisdn),
            avp(codec.REQUESTED_SERVICE_UNIT, [avp(codec.CC_TIME, 60)]),
        )
    )
    assert result_code(initial) == codec.SUCCESS
    update = await gw1.send(
        call(
            codec.UPDATE,
            1,
            avp(codec.USED_SERVICE_UNIT, [avp(codec.CC_TIME, 60)]),
            avp(codec.REQUESTED_SERVICE_UNIT, [avp(codec.CC_TIME, 60)]),
        )
    )
    assert result_code(update) == codec.SUCCESS
    assert await balance(ocs, msisdn) == Decimal("4.85")  # 0.05 + one minute

    later = Housekeeping(replace(ocs.deps(), clock=Later(600 + 61)))
    assert await later.release_idle_sessions() >= 1

    # the gateway's TERMINATE, late, reporting 60 more seconds used
    late = await gw1.send(
        call(codec.TERMINATE, 2, avp(codec.USED_SERVICE_UNIT, [avp(codec.CC_TIME, 60)]))
    )
    after = await balance(ocs, msisdn)
    assert result_code(late) == codec.UNKNOWN_SESSION_ID
    assert after == Decimal("4.85")


async def test_two_mscc_of_one_rating_group_keep_usage_within_the_credit_limit(
    ocs: Container, gw1: Gateway
) -> None:
    """The money side: the gateway uses all it was granted on both MSCCs,
    and the customer with 1.00 and a credit limit of 0 stays within it."""
    msisdn = await new_subscriber(ocs, "IOT_M2M", "1")
    session = gw1.new_session()
    want = units(codec.REQUESTED_SERVICE_UNIT, total=110 * MIB)
    initial = await gw1.send(
        gw1.ccr(
            session,
            codec.INITIAL,
            0,
            *subscription(msisdn),
            mscc(10, requested=want, service_identifier=1),
            mscc(10, requested=want, service_identifier=2),
        )
    )
    grants = [granted(m).get("total", 0) for m in msccs(initial)]
    end = await gw1.send(
        gw1.ccr(
            session,
            codec.TERMINATE,
            1,
            *[
                mscc(
                    10,
                    requested=None,
                    used=units(codec.USED_SERVICE_UNIT, total=g),
                    service_identifier=i + 1,
                )
                for i, g in enumerate(grants)
            ],
        )
    )
    assert result_code(end) == codec.SUCCESS
    assert await balance(ocs, msisdn) >= 0, f"grants {[g // MIB for g in grants]} MiB"


async def test_a_refund_repeated_after_1000_later_transactions_pays_nothing(
    ocs: Container, gw1: Gateway
) -> None:
    """An earlier refund is found however many balance transactions came
    after it (it was looked for among the newest 1,000 only)."""
    msisdn = await new_subscriber(ocs, "IOT_M2M", "1")  # no SMS quota: money pays
    session = gw1.new_session()
    assert (
        result_code(await gw1.send(sms_event(gw1, session, msisdn, codec.DIRECT_DEBITING))) == 2001
    )
    assert await balance(ocs, msisdn) == Decimal("0.95")
    assert (
        result_code(await gw1.send(sms_event(gw1, session, msisdn, codec.REFUND_ACCOUNT))) == 2001
    )
    assert await balance(ocs, msisdn) == Decimal("1.00")
    view = await ocs.balance_enquiry()(IdentifierKind.MSISDN, msisdn)
    top_up = ocs.top_up()
    from ratel.domain.money import Money

    for _ in range(1000):
        await top_up(view.customer_id, Money.of("0.01", "USD"))
    assert await balance(ocs, msisdn) == Decimal("11.00")
    again = await gw1.send(sms_event(gw1, session, msisdn, codec.REFUND_ACCOUNT))
    assert result_code(again) == codec.SUCCESS
    assert await balance(ocs, msisdn) == Decimal("11.00"), "the SMS was refunded a second time"


def seconds(code: int, value: int):
    return avp(code, [avp(codec.CC_TIME, value)])


async def _xdrs(ocs: Container, msisdn: str, session: str):
    view = await ocs.balance_enquiry()(IdentifierKind.MSISDN, msisdn)
    return [x for x in await ocs.account_xdrs()(view.account_id) if x.session_id == session]


async def test_voice_call_with_the_called_party_only_in_the_initial_is_charged(
    ocs: Container, gw1: Gateway
) -> None:
    """IMS-Information (Called-Party-Address) is sent in the CCR-I only, as
    many Ro/CAMEL gateways do: the UPDATE and TERMINATE must still charge
    the call (the stream is the session's voice stream)."""
    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "5")
    session = gw1.new_session()

    def call(kind: int, number: int, *more: object) -> Message:
        return gw1.ccr(session, kind, number, *more, context=VOICE)

    initial = await gw1.send(
        call(
            codec.INITIAL,
            0,
            *subscription(msisdn),
            ims(msisdn, "12055550123"),
            seconds(codec.REQUESTED_SERVICE_UNIT, 60),
        )
    )
    assert result_code(initial) == codec.SUCCESS
    update = await gw1.send(
        call(
            codec.UPDATE,
            1,
            seconds(codec.USED_SERVICE_UNIT, 60),
            seconds(codec.REQUESTED_SERVICE_UNIT, 60),
        )
    )
    end = await gw1.send(call(codec.TERMINATE, 2, seconds(codec.USED_SERVICE_UNIT, 30)))
    after = await balance(ocs, msisdn)
    xdrs = await _xdrs(ocs, msisdn, session)
    summary = (
        f"CCA-U {result_code(update)}, CCA-T {result_code(end)}, balance {after}, "
        f"xDRs {[(x.charge, [(line.destination, line.units) for line in x.lines]) for x in xdrs]}"
    )
    assert result_code(update) == codec.SUCCESS, summary
    assert result_code(end) == codec.SUCCESS, summary
    # 90 s local: 0.05 connection + 2 started minutes at 0.10
    assert after == Decimal("4.75"), summary


async def test_terminate_reporting_more_than_granted_is_charged_in_full(
    ocs: Container, gw1: Gateway
) -> None:
    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "5")
    session = gw1.new_session()
    dest = ims(msisdn, "12055550123")
    initial = await gw1.send(
        gw1.ccr(
            session,
            codec.INITIAL,
            0,
            *subscription(msisdn),
            dest,
            seconds(codec.REQUESTED_SERVICE_UNIT, 60),
            context=VOICE,
        )
    )
    assert granted(initial.avps) == {"time": 60}
    end = await gw1.send(
        gw1.ccr(
            session, codec.TERMINATE, 1, dest, seconds(codec.USED_SERVICE_UNIT, 600), context=VOICE
        )
    )
    assert result_code(end) == codec.SUCCESS
    assert await balance(ocs, msisdn) == Decimal("3.95")  # 0.05 + 10 minutes
    # and the session is gone: UPDATE and TERMINATE with new numbers get 5002
    for kind in (codec.UPDATE, codec.TERMINATE):
        late = await gw1.send(
            gw1.ccr(session, kind, 2, dest, seconds(codec.USED_SERVICE_UNIT, 60), context=VOICE)
        )
        assert result_code(late) == codec.UNKNOWN_SESSION_ID
    unknown = await gw1.send(
        gw1.ccr("gw1.test;never;t", codec.TERMINATE, 1, mscc(10, requested=None))
    )
    assert result_code(unknown) == codec.UNKNOWN_SESSION_ID
    assert await balance(ocs, msisdn) == Decimal("3.95")
