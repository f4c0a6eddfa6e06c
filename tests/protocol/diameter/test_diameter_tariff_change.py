"""Tariff-Time-Change over real TCP: a data tariff cheaper at night (20:00 to
08:00 in Paris); the CCA's Granted-Service-Unit says when the rate changes
within the grant (AVP 451), and Used-Service-Units marked before and after
the change (Tariff-Change-Usage, AVP 452) are charged at each rate.

The node runs on a clock the test sets, so the change is at a known instant.
The gateway here speaks raw bytes over TCP (CER, then the CCR) and reads the
CCA as received: python-diameter's typed answer parser drops
Tariff-Time-Change from the Granted-Service-Unit."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from decimal import Decimal

import pytest
from dependency_injector import providers
from diameter.message import Message
from diameter.message.avp import Avp
from gateway import (
    avp,
    by_rating_group,
    find,
    granted,
    mscc,
    result_code,
    subscription,
)
from test_diameter_node import cer

from ratel.adapters.diameter import codec
from ratel.config import Settings
from ratel.container import Container, build_container, dispose
from ratel.domain.catalogue import Product, ProductKind, Service, ServicePolicy, UsageCharge
from ratel.domain.identifiers import Identifiers, Msisdn
from ratel.domain.money import Money
from ratel.domain.rating import Rate, RatePeriod, Tariff
from ratel.ports.store import IdentifierKind

MIB = 1024 * 1024
# March 2026: Paris is UTC+1, so its 20:00 is 19:00 UTC
BEFORE = datetime(2026, 3, 2, 18, 58, tzinfo=UTC)
CHANGE = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)
AFTER = datetime(2026, 3, 2, 19, 5, tzinfo=UTC)


_ids = itertools.count(1)


class RawGateway:
    """A gateway registered as gw2.test: each CCR on a fresh connection after
    its CER, the answer parsed as a plain message (every AVP as received)."""

    origin_host = "gw2.test"

    def __init__(self, port: int) -> None:
        self.port = port

    def new_session(self) -> str:
        return f"{self.origin_host};ttc;{next(_ids)}"

    def ccr(self, session_id: str, request_type: int, number: int, *avps: Avp) -> Message:
        message = codec.request_message(
            codec.CREDIT_CONTROL,
            codec.CREDIT_CONTROL_APPLICATION,
            [
                avp(codec.SESSION_ID, session_id),
                avp(codec.ORIGIN_HOST, self.origin_host.encode()),
                avp(codec.ORIGIN_REALM, b"gw.test"),
                avp(codec.DESTINATION_REALM, b"ratel.local"),
                avp(codec.AUTH_APPLICATION_ID, codec.CREDIT_CONTROL_APPLICATION),
                avp(codec.SERVICE_CONTEXT_ID, "32251@3gpp.org"),
                avp(codec.CC_REQUEST_TYPE, request_type),
                avp(codec.CC_REQUEST_NUMBER, number),
                *avps,
            ],
        )
        message.header.hop_by_hop_identifier = next(_ids)
        message.header.end_to_end_identifier = next(_ids)
        return message

    async def send(self, request: Message) -> Message:
        # from a thread: the node answers on this test's loop
        return await asyncio.to_thread(self._exchange, request)

    def _exchange(self, request: Message) -> Message:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(cer(self.origin_host))
            assert _read_message(sock).header.command_code == 257  # the CEA
            sock.sendall(request.as_bytes())
            while True:
                message = _read_message(sock)
                if not message.header.is_request:
                    return message
                # a RAR (the relay reports a top-up late): agree, as a gateway does
                sock.sendall(
                    codec.answer_to(
                        message,
                        self.origin_host,
                        "gw.test",
                        [avp(codec.RESULT_CODE, codec.SUCCESS)],
                    ).as_bytes()
                )


def _read_message(sock: socket.socket) -> Message:
    """One whole message from ``sock``, every AVP as received."""
    data = b""
    length = 20
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        assert chunk, "the node closed the connection"
        data += chunk
        if len(data) >= 4:
            length = int.from_bytes(data[1:4], "big")
    return Message.from_bytes(data, plain_msg=True)


@pytest.fixture(scope="module")
def gateway(port: int) -> RawGateway:
    return RawGateway(port)


class SetClock:
    """The node's clock, at whatever instant the test sets."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


@pytest.fixture(scope="module")
def clock() -> SetClock:
    return SetClock(BEFORE)


@pytest.fixture(scope="module")
async def ocs(database_url: str, clock: SetClock) -> AsyncIterator[Container]:
    """A Diameter node with a peak / off-peak data tariff (overrides the
    demo node of conftest for this module)."""
    container = build_container(
        Settings(
            database_url=database_url,
            diameter_port=0,
            diameter_peers=(("gw2.test", ()),),  # the raw gateway below
            charging_validity_seconds=600,
        )
    )
    container.clock.override(providers.Object(clock))
    tariff = Tariff("DATA_TOD", "USD", "Data, cheaper at night", "Europe/Paris")
    night = RatePeriod(time(20), time(8), Rate.per_interval(Money.of("0.002", "USD"), MIB))
    tariff.add_custom("DATA", Rate.per_interval(Money.of("0.01", "USD"), MIB), periods=[night])
    await container.define_tariff()(tariff)
    await container.define_product()(
        Product(
            "DATA_NIGHT",
            "Data, cheaper at night",
            ProductKind.MAIN,
            frozenset({Service.DATA}),
            usage_charges=(UsageCharge("DATA", "DATA_TOD", Service.DATA),),
            policy=ServicePolicy(),
        )
    )
    components = list(container.components())
    for component in components:
        await component.start()
    yield container
    for component in reversed(components):
        await component.stop()
    await dispose(container)


async def subscriber(ocs: Container, msisdn: str) -> str:
    customer = await ocs.open_customer()(f"Night owl {msisdn}", "USD")
    await ocs.create_account()(
        customer.id, "DATA_NIGHT", identifiers=Identifiers(msisdn=Msisdn(msisdn))
    )
    await ocs.top_up()(customer.id, Money.of("5", "USD"))
    return customer.id


async def balance(ocs: Container, msisdn: str) -> Decimal:
    view = await ocs.balance_enquiry()(IdentifierKind.MSISDN, msisdn)
    return view.balance.amount


def used(total: int, tariff_change_usage: int | None = None) -> Avp:
    inner = [avp(codec.CC_TOTAL_OCTETS, total)]
    if tariff_change_usage is not None:
        inner.append(avp(codec.TARIFF_CHANGE_USAGE, tariff_change_usage))
    return avp(codec.USED_SERVICE_UNIT, inner)


def with_used(rating_group: int, *usus: Avp, requested: bool = True) -> Avp:
    """An MSCC with any number of Used-Service-Units (one per side of a change)."""
    base = mscc(rating_group, requested=requested)
    return avp(codec.MULTIPLE_SERVICES_CREDIT_CONTROL, [*codec.group(base), *usus])


def tariff_time_change(answer: Message, rating_group: int) -> datetime | None:
    gsu = find(by_rating_group(answer)[rating_group], codec.GRANTED_SERVICE_UNIT)
    assert gsu is not None
    change = find(codec.group(gsu), codec.TARIFF_TIME_CHANGE)
    if change is None:
        return None
    value: datetime = change.value
    # python-diameter reads Time as naive UTC
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def test_a_grant_across_the_change_carries_it_and_the_split_is_charged_at_each_rate(
    ocs: Container, gateway: RawGateway, clock: SetClock
) -> None:
    msisdn = "12055577001"
    customer_id = await subscriber(ocs, msisdn)
    clock.at = BEFORE
    session = gateway.new_session()
    initial = await gateway.send(
        gateway.ccr(session, codec.INITIAL, 0, *subscription(msisdn), mscc(10))
    )
    assert result_code(initial) == codec.SUCCESS
    # the grant lasts 600 s from 18:58 UTC: the rate changes inside it, at 19:00
    assert granted(by_rating_group(initial)[10])["total"] == 10 * MIB
    assert tariff_time_change(initial, 10) == CHANGE

    clock.at = AFTER
    update = await gateway.send(
        gateway.ccr(
            session,
            codec.UPDATE,
            1,
            with_used(
                10,
                used(3 * MIB, codec.UNIT_BEFORE_TARIFF_CHANGE),
                used(5 * MIB, codec.UNIT_AFTER_TARIFF_CHANGE),
            ),
        )
    )
    assert result_code(update) == codec.SUCCESS
    # 3 MiB at 0.01 and 5 MiB at the night's 0.002
    assert await balance(ocs, msisdn) == Decimal("5") - Decimal("0.04")
    # granted at 19:05: the next change (08:00 in Paris) is beyond this grant
    assert tariff_time_change(update, 10) is None

    end = await gateway.send(
        gateway.ccr(session, codec.TERMINATE, 2, with_used(10, used(10 * MIB), requested=False))
    )
    assert result_code(end) == codec.SUCCESS
    xdr = next(x for x in await ocs.customer_xdrs()(customer_id) if x.session_id == session)
    # + 10 MiB all at night: 0.02; the balance paid exactly the xDR
    assert xdr.charge == Money.of("0.06", "USD")
    assert await balance(ocs, msisdn) == Decimal("4.94")


async def test_usage_the_client_could_not_place_is_charged_at_the_grants_rate(
    ocs: Container, gateway: RawGateway, clock: SetClock
) -> None:
    msisdn = "12055577002"
    await subscriber(ocs, msisdn)
    clock.at = BEFORE
    session = gateway.new_session()
    await gateway.send(gateway.ccr(session, codec.INITIAL, 0, *subscription(msisdn), mscc(10)))
    clock.at = AFTER
    update = await gateway.send(
        gateway.ccr(
            session,
            codec.TERMINATE,
            1,
            with_used(10, used(4 * MIB, codec.UNIT_INDETERMINATE), requested=False),
        )
    )
    assert result_code(update) == codec.SUCCESS
    assert await balance(ocs, msisdn) == Decimal("4.96")  # 4 MiB at the day's 0.01


async def test_an_unknown_tariff_change_usage_is_refused_and_charges_nothing(
    ocs: Container, gateway: RawGateway, clock: SetClock
) -> None:
    msisdn = "12055577003"
    await subscriber(ocs, msisdn)
    clock.at = BEFORE
    session = gateway.new_session()
    await gateway.send(gateway.ccr(session, codec.INITIAL, 0, *subscription(msisdn), mscc(10)))
    answer = await gateway.send(
        gateway.ccr(
            session,
            codec.UPDATE,
            1,
            with_used(10, used(4 * MIB, 7)),
        )
    )
    assert result_code(answer) == codec.INVALID_AVP_VALUE
    failed = find(answer.avps, codec.FAILED_AVP)
    assert failed is not None
    assert find(codec.group(failed), codec.TARIFF_CHANGE_USAGE) is not None
    assert await balance(ocs, msisdn) == Decimal("5")
