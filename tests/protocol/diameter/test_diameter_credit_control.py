"""CCR/CCA over real TCP with a python-diameter gateway: Gy data sessions
with several rating groups, Ro voice, SMS events, USSD from a CAMEL gateway,
the result codes, and retransmissions answered from the store."""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

from diameter.message import Message
from gateway import (
    SMS,
    USSD_CONTEXT,
    VOICE,
    Gateway,
    avp,
    by_rating_group,
    find,
    granted,
    ims,
    mscc,
    msccs,
    result_code,
    sms_recipient,
    subscription,
    units,
)

from ratel.adapters.diameter import codec
from ratel.container import Container
from ratel.domain.identifiers import Identifiers, Imsi, Msisdn
from ratel.domain.money import Money
from ratel.ports.store import IdentifierKind

ALICE = "12055550100"
ALICE_IMSI = "310150123456700"
MIB = 1024 * 1024
GIB = 1024 * MIB
_numbers = itertools.count(1)


async def balance(ocs: Container, msisdn: str) -> Decimal:
    view = await ocs.balance_enquiry()(IdentifierKind.MSISDN, msisdn)
    return view.balance.amount


async def new_subscriber(ocs: Container, product: str, funds: str) -> str:
    """A fresh customer with one account on ``product``: its MSISDN."""
    n = next(_numbers)
    msisdn = f"1205566{n:04d}"
    customer = await ocs.open_customer()(f"Test {n}", "USD")
    await ocs.create_account()(
        customer.id,
        product,
        identifiers=Identifiers(msisdn=Msisdn(msisdn), imsi=Imsi(f"00101990{n:07d}")),
    )
    if Decimal(funds):
        await ocs.top_up()(customer.id, Money.of(funds, "USD"))
    return msisdn


def ids(answer: Message) -> tuple[str | None, int | None, int | None]:
    return (
        codec.text(answer.avps, codec.SESSION_ID),
        codec.integer(answer.avps, codec.CC_REQUEST_TYPE),
        codec.integer(answer.avps, codec.CC_REQUEST_NUMBER),
    )


async def test_data_session_with_a_free_and_a_paid_rating_group(
    ocs: Container, gw1: Gateway
) -> None:
    session = gw1.new_session()
    initial = await gw1.send(
        gw1.ccr(
            session,
            codec.INITIAL,
            0,
            *subscription(ALICE),
            mscc(1),
            mscc(10, requested=units(codec.REQUESTED_SERVICE_UNIT, total=50 * MIB)),
        )
    )
    assert result_code(initial) == codec.SUCCESS
    assert ids(initial) == (session, codec.INITIAL, 0)
    assert codec.integer(initial.avps, codec.AUTH_APPLICATION_ID) == 4
    groups = by_rating_group(initial)
    free, paid = groups[1], groups[10]
    assert codec.integer(free, codec.RESULT_CODE) == codec.SUCCESS
    assert granted(free) == {"total": 10 * MIB}  # the default grant
    assert find(free, codec.VOLUME_QUOTA_THRESHOLD, codec.TGPP) is None  # free: nothing to warn
    assert codec.integer(free, codec.VALIDITY_TIME) == 600
    assert codec.integer(paid, codec.RESULT_CODE) == codec.SUCCESS
    assert granted(paid) == {"total": 50 * MIB}
    assert codec.integer(paid, codec.VALIDITY_TIME) is not None
    assert codec.integer(paid, codec.VOLUME_QUOTA_THRESHOLD, codec.TGPP) == 10 * MIB
    assert find(paid, codec.FINAL_UNIT_INDICATION) is None

    # usage reported as input + output octets: CC-Output-Octets is counted
    update = await gw1.send(
        gw1.ccr(
            session,
            codec.UPDATE,
            1,
            mscc(1, used=units(codec.USED_SERVICE_UNIT, input=3 * MIB, output=5 * MIB)),
            mscc(10, used=units(codec.USED_SERVICE_UNIT, input=10 * MIB, output=30 * MIB)),
        )
    )
    assert result_code(update) == codec.SUCCESS
    assert ids(update) == (session, codec.UPDATE, 1)
    assert set(by_rating_group(update)) == {1, 10}

    end = await gw1.send(
        gw1.ccr(
            session,
            codec.TERMINATE,
            2,
            mscc(10, requested=None, used=units(codec.USED_SERVICE_UNIT, total=2 * MIB)),
        )
    )
    assert result_code(end) == codec.SUCCESS
    assert msccs(end) == []  # nothing granted at the end
    xdrs = await ocs.account_xdrs()("acc_demo_alice")
    xdr = next(x for x in xdrs if x.session_id == session)
    lines = {line.rating_group: line for line in xdr.lines}
    assert lines[1].units == 8 * MIB and lines[1].charge.is_zero()
    assert lines[10].units == 42 * MIB
    # the high-precedence add-on (Turbo) paid the paid group's bytes
    assert [b for b, _ in lines[10].bucket_units] and lines[10].charge.is_zero()


async def test_imsi_finds_the_account(gw1: Gateway) -> None:
    session = gw1.new_session()
    answer = await gw1.send(
        gw1.ccr(session, codec.INITIAL, 0, *subscription(imsi=ALICE_IMSI), mscc(10))
    )
    assert result_code(answer) == codec.SUCCESS
    await gw1.send(gw1.ccr(session, codec.TERMINATE, 1, mscc(10, requested=None)))


async def test_unknown_blocked_and_suspended_users(gw1: Gateway) -> None:
    unknown = await gw1.send(
        gw1.ccr(gw1.new_session(), codec.INITIAL, 0, *subscription("19999999999"), mscc(10))
    )
    assert result_code(unknown) == codec.USER_UNKNOWN
    for msisdn in ("12055550105", "12055550106"):  # Eve suspended, Frank blocked
        answer = await gw1.send(
            gw1.ccr(gw1.new_session(), codec.INITIAL, 0, *subscription(msisdn), mscc(10))
        )
        assert result_code(answer) == codec.END_USER_SERVICE_DENIED
        assert [codec.integer(m, codec.RESULT_CODE) for m in msccs(answer)] == [4010]


async def test_no_funds_gives_4012_and_the_last_quota_redirects_to_the_hotline(
    ocs: Container, gw1: Gateway
) -> None:
    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "0")
    session = gw1.new_session()
    initial = await gw1.send(
        gw1.ccr(
            session,
            codec.INITIAL,
            0,
            *subscription(msisdn),
            mscc(10, requested=units(codec.REQUESTED_SERVICE_UNIT, total=2 * GIB)),
        )
    )
    paid = by_rating_group(initial)[10]
    assert codec.integer(paid, codec.RESULT_CODE) == codec.SUCCESS
    assert granted(paid) == {"total": GIB}  # the 1 GB quota, and nothing more
    fui = codec.group(find(paid, codec.FINAL_UNIT_INDICATION))
    assert codec.integer(fui, codec.FINAL_UNIT_ACTION) == codec.FUA_REDIRECT
    server = codec.group(find(fui, codec.REDIRECT_SERVER))
    assert codec.integer(server, codec.REDIRECT_ADDRESS_TYPE) == codec.REDIRECT_URL
    assert codec.text(server, codec.REDIRECT_SERVER_ADDRESS) == "https://topup.ratel.example/"

    again = await gw1.send(
        gw1.ccr(
            session,
            codec.UPDATE,
            1,
            mscc(10, used=units(codec.USED_SERVICE_UNIT, total=GIB)),
        )
    )
    assert result_code(again) == codec.CREDIT_LIMIT_REACHED  # every stream failed
    denied = by_rating_group(again)[10]
    assert codec.integer(denied, codec.RESULT_CODE) == codec.CREDIT_LIMIT_REACHED
    assert find(denied, codec.GRANTED_SERVICE_UNIT) is None
    fui = codec.group(find(denied, codec.FINAL_UNIT_INDICATION))
    assert codec.integer(fui, codec.FINAL_UNIT_ACTION) == codec.FUA_REDIRECT
    assert codec.integer(denied, codec.VALIDITY_TIME) == 600

    broke = await new_subscriber(ocs, "IOT_M2M", "0")  # terminate policy, no quota left
    iot = gw1.new_session()
    await gw1.send(
        gw1.ccr(
            iot,
            codec.INITIAL,
            0,
            *subscription(broke),
            mscc(10, requested=units(codec.REQUESTED_SERVICE_UNIT, total=10 * MIB)),
        )
    )
    last = await gw1.send(
        gw1.ccr(iot, codec.UPDATE, 1, mscc(10, used=units(codec.USED_SERVICE_UNIT, total=10 * MIB)))
    )
    assert result_code(last) == codec.CREDIT_LIMIT_REACHED
    assert find(by_rating_group(last)[10], codec.FINAL_UNIT_INDICATION) is None


async def test_unknown_session_and_rating_failure(gw1: Gateway) -> None:
    unknown = await gw1.send(gw1.ccr("gw1.test;never;started", codec.UPDATE, 1, mscc(10)))
    assert result_code(unknown) == codec.UNKNOWN_SESSION_ID
    # USSD service 999 has no tariff
    answer = await gw1.send(
        gw1.ccr(
            gw1.new_session(),
            codec.INITIAL,
            0,
            *subscription(ALICE),
            mscc(service_identifier=999, requested=units(codec.REQUESTED_SERVICE_UNIT, time=20)),
            context=USSD_CONTEXT,
        )
    )
    assert result_code(answer) == codec.RATING_FAILED
    assert codec.integer(msccs(answer)[0], codec.SERVICE_IDENTIFIER) == 999


async def test_the_products_raise_mscc_result_code_puts_a_failing_streams_code_on_top(
    ocs: Container, gw1: Gateway
) -> None:
    """The policy's "raise MSCC result code" (set per product in the
    catalogue and GraphQL) copies a failing MSCC's code to the top level for
    gateways that look only there. It was never read: only the node's
    setting (off here) counted, so the product's option did nothing."""
    (prepaid,) = [p for p in await ocs.list_products()() if p.code == "MOBILE_PREPAID"]
    for code, raised in (("MOBILE_RAISES", True), ("MOBILE_KEEPS", False)):
        policy = replace(prepaid.policy, raise_mscc_result_code=raised)
        await ocs.define_product()(replace(prepaid, code=code, name=code, policy=policy))
    requested = units(codec.REQUESTED_SERVICE_UNIT, time=20)
    for code, top in (("MOBILE_RAISES", codec.RATING_FAILED), ("MOBILE_KEEPS", codec.SUCCESS)):
        msisdn = await new_subscriber(ocs, code, "5")
        answer = await gw1.send(
            gw1.ccr(
                gw1.new_session(),
                codec.INITIAL,
                0,
                *subscription(msisdn),
                mscc(service_identifier=120, requested=requested),
                mscc(service_identifier=999, requested=requested),  # no tariff: 5031
                context=USSD_CONTEXT,
            )
        )
        assert result_code(answer) == top, code
        inner = [codec.integer(m, codec.RESULT_CODE) for m in msccs(answer)]
        assert inner == [codec.SUCCESS, codec.RATING_FAILED]


async def test_a_retransmitted_update_gets_the_stored_answer_and_charges_nothing(
    ocs: Container, gw1: Gateway
) -> None:
    msisdn = await new_subscriber(ocs, "IOT_M2M", "10")
    session = gw1.new_session()
    await gw1.send(
        gw1.ccr(
            session,
            codec.INITIAL,
            0,
            *subscription(msisdn),
            mscc(10, requested=units(codec.REQUESTED_SERVICE_UNIT, total=20 * MIB)),
        )
    )
    first = await gw1.send(
        gw1.ccr(
            session, codec.UPDATE, 1, mscc(10, used=units(codec.USED_SERVICE_UNIT, total=20 * MIB))
        )
    )
    after_first = await balance(ocs, msisdn)
    again = gw1.ccr(
        session, codec.UPDATE, 1, mscc(10, used=units(codec.USED_SERVICE_UNIT, total=20 * MIB))
    )
    again.header.is_retransmit = True
    second = await gw1.send(again)
    assert result_code(second) == result_code(first) == codec.SUCCESS
    assert granted(by_rating_group(second)[10]) == granted(by_rating_group(first)[10])
    assert await balance(ocs, msisdn) == after_first
    assert after_first == Decimal("9.90")  # 10 MiB of quota, then 10 MiB at 0.01


async def test_ro_voice_call_with_number_translation(ocs: Container, gw1: Gateway) -> None:
    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "5")
    session = gw1.new_session()
    initial = await gw1.send(
        gw1.ccr(
            session,
            codec.INITIAL,
            0,
            *subscription(msisdn),
            ims(msisdn, "411"),
            avp(codec.REQUESTED_SERVICE_UNIT, [avp(codec.CC_TIME, 60)]),
            context=VOICE,
        )
    )
    assert result_code(initial) == codec.SUCCESS
    assert granted(initial.avps) == {"time": 60}
    assert codec.integer(initial.avps, codec.TIME_QUOTA_THRESHOLD, codec.TGPP) == 12
    information = codec.group(find(initial.avps, codec.SERVICE_INFORMATION, codec.TGPP))
    ims_answer = codec.group(find(information, codec.IMS_INFORMATION, codec.TGPP))
    called = codec.text(ims_answer, codec.CALLED_PARTY_ADDRESS, codec.TGPP)
    assert called == "tel:+12055576061"
    update = await gw1.send(
        gw1.ccr(
            session,
            codec.UPDATE,
            1,
            ims(msisdn, "411"),
            avp(codec.USED_SERVICE_UNIT, [avp(codec.CC_TIME, 60)]),
            avp(codec.REQUESTED_SERVICE_UNIT, [avp(codec.CC_TIME, 60)]),
            context=VOICE,
        )
    )
    assert granted(update.avps) == {"time": 60}
    end = await gw1.send(
        gw1.ccr(
            session,
            codec.TERMINATE,
            2,
            ims(msisdn, "411"),
            avp(codec.USED_SERVICE_UNIT, [avp(codec.CC_TIME, 65)]),
            context=VOICE,
        )
    )
    assert result_code(end) == codec.SUCCESS
    # 125 s local: 0.05 connection + 3 started minutes at 0.10
    assert await balance(ocs, msisdn) == Decimal("4.65")


async def test_sms_events(ocs: Container, gw1: Gateway) -> None:
    msisdn = await new_subscriber(ocs, "IOT_M2M", "1")  # no SMS quota: money pays
    recipient = sms_recipient()
    one = avp(codec.REQUESTED_SERVICE_UNIT, [avp(codec.CC_SERVICE_SPECIFIC_UNITS, 1)])

    def event(session: str, action: int) -> Message:
        return gw1.ccr(
            session,
            codec.EVENT,
            0,
            *subscription(msisdn),
            recipient,
            one,
            avp(codec.REQUESTED_ACTION, action),
            context=SMS,
        )

    price = await gw1.send(event(gw1.new_session(), codec.PRICE_ENQUIRY))
    assert result_code(price) == codec.SUCCESS
    cost = codec.group(find(price.avps, codec.COST_INFORMATION))
    value = codec.group(find(cost, codec.UNIT_VALUE))
    assert (codec.integer(value, codec.VALUE_DIGITS), codec.integer(value, codec.EXPONENT)) == (
        5,
        -2,
    )
    assert codec.integer(cost, codec.CURRENCY_CODE) == 840
    check = await gw1.send(event(gw1.new_session(), codec.CHECK_BALANCE))
    assert codec.integer(check.avps, codec.CHECK_BALANCE_RESULT) == codec.ENOUGH_CREDIT
    assert await balance(ocs, msisdn) == Decimal("1.00")  # enquiries charge nothing

    sms = gw1.new_session()
    debit = await gw1.send(event(sms, codec.DIRECT_DEBITING))
    assert result_code(debit) == codec.SUCCESS
    assert codec.integer(debit.avps, codec.REQUESTED_ACTION) == codec.DIRECT_DEBITING
    assert granted(debit.avps) == {"specific": 1}
    assert await balance(ocs, msisdn) == Decimal("0.95")

    refund = await gw1.send(event(sms, codec.REFUND_ACCOUNT))
    assert result_code(refund) == codec.SUCCESS
    assert await balance(ocs, msisdn) == Decimal("1.00")


async def test_ussd_through_a_camel_gateway(ocs: Container, gw1: Gateway) -> None:
    msisdn = await new_subscriber(ocs, "MOBILE_PREPAID", "2")
    session = gw1.new_session()
    initial = await gw1.send(
        gw1.ccr(
            session,
            codec.INITIAL,
            0,
            *subscription(msisdn),
            mscc(service_identifier=120, requested=units(codec.REQUESTED_SERVICE_UNIT, time=60)),
            context=USSD_CONTEXT,
        )
    )
    assert result_code(initial) == codec.SUCCESS
    assert codec.integer(msccs(initial)[0], codec.SERVICE_IDENTIFIER) == 120
    end = await gw1.send(
        gw1.ccr(
            session,
            codec.TERMINATE,
            1,
            mscc(
                service_identifier=120, requested=None, used=units(codec.USED_SERVICE_UNIT, time=45)
            ),
            context=USSD_CONTEXT,
        )
    )
    assert result_code(end) == codec.SUCCESS
    assert await balance(ocs, msisdn) == Decimal("1.40")  # 45 s = 3 x 0.2
    # charged under the access code of its service, OUTGOING.SI<Service-Identifier>
    account = (await ocs.balance_enquiry()(IdentifierKind.MSISDN, msisdn)).account_id
    (line,) = [line for x in await ocs.account_xdrs()(account) for line in x.lines]
    assert (line.access_code, line.units, line.destination_group, line.charge.amount) == (
        "OUTGOING.SI120",
        45,
        "USSD",
        Decimal("0.60"),
    )
