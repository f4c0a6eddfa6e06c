# ruff: noqa: F811  (pytest fixtures imported from test_radius_dae)
"""Acceptance tests for requirements of the RADIUS issue (#5) that an audit
found untested: Accounting-Off, Disconnect on suspension, the restoring CoA
of a new add-on, a hotline CoA-NAK shown on the session, and the wrap of
Acct-Input-Gigawords. Reuses the fixtures and helpers of the other RADIUS
protocol tests (the recording NAS stand-in of test_radius_dae.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from pyrad import packet as rp
from radius_support import MIB, POLICY, radclient, register_nas, subscriber
from test_radius_dae import (  # noqa: F401  (fixtures)
    THROTTLED,
    DaeListener,
    change_broadband,
    dae,
    listener,
    relay,
    session_of,
)
from test_radius_dae_faults import NakCoa, exhausted
from test_radius_server import acct, balance, ports

from ratel.adapters.radius.attributes import JUNIPER_HOTLINE_SERVICE
from ratel.adapters.radius.dae import DynamicAuthorization
from ratel.adapters.radius.server import RadiusServer
from ratel.container import Container
from ratel.domain.catalogue import (
    Precedence,
    Product,
    ProductKind,
    QuotaDefinition,
    Renewal,
    Service,
    Unit,
)
from ratel.domain.nas import NasVendor, Restriction

pytestmark = pytest.mark.asyncio


# -- 1. Accounting-Off ----------------------------------------------------------------


async def test_accounting_off_closes_the_open_sessions_of_the_nas(
    container: Container, server: RadiusServer
) -> None:
    """Accounting-Off from a NAS (it is going down) ends its open sessions as
    Accounting-On does: the NAS is answered, each session gets its xDR with
    the usage last reported and the cause ``nas_reboot`` (what
    ``Accounting.nas_restarted`` writes for both), and no session of the
    account is left open."""
    await register_nas(container)
    sub = await subscriber(container, "alice@isp", balance="5.00")
    acct_port = ports(server)[1]
    await radclient(acct_port, "acct", acct("Start", "off-1"))
    await radclient(acct_port, "acct", acct("Interim-Update", "off-1", Acct_Output_Octets=3 * MIB))
    await radclient(acct_port, "acct", acct("Start", "off-2"))
    assert len(await container.radius_sessions().open_for_account(sub.account_id)) == 2

    reply = await radclient(acct_port, "acct", "Acct-Status-Type = Accounting-Off")

    assert reply.code == "Accounting-Response", reply.output
    xdrs = await container.account_xdrs()(sub.account_id)
    assert len(xdrs) == 2
    assert [x.cause for x in xdrs] == ["nas_reboot", "nas_reboot"]
    assert sorted(sum(line.units for line in x.lines) for x in xdrs) == [0, 3 * MIB]
    assert sum((x.charge.amount for x in xdrs), Decimal(0)) == Decimal("0.03")
    assert await balance(container, sub) == Decimal("4.97")
    assert await container.radius_sessions().open_for_account(sub.account_id) == []


# -- 2. Disconnect on suspension -----------------------------------------------------------


async def test_suspending_the_customer_disconnects_its_open_session(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
) -> None:
    """Suspending the customer (CustomerSuspended) sends the NAS, which takes
    Disconnect, one Disconnect-Request naming the open session by its
    Acct-Session-Id and User-Name (and the NAS and framed address), and the
    NAS's ACK is kept on the session."""
    nas_listener, port = listener
    await register_nas(
        container, NasVendor.HUAWEI, accepts_coa=True, accepts_disconnect=True, dae_port=port
    )
    sub = await subscriber(container, "susan@isp", balance="5.00")
    acct_port = ports(server)[1]
    start = acct("Start", "sus-1", "susan@isp") + ", Framed-IP-Address = 100.64.0.9"
    assert (await radclient(acct_port, "acct", start)).code == "Accounting-Response"
    await relay(container, dae)  # the set-up's events (the initial top-up) pass
    assert nas_listener.received == []

    await container.suspend_customer()(sub.customer_id)
    await relay(container, dae)

    [disconnect] = nas_listener.received
    assert disconnect.code == rp.DisconnectRequest
    assert disconnect.attributes["Acct-Session-Id"] == ["sus-1"]
    assert disconnect.attributes["User-Name"] == ["susan@isp"]
    assert disconnect.attributes["NAS-IP-Address"] == ["127.0.0.1"]
    assert disconnect.attributes["Framed-IP-Address"] == ["100.64.0.9"]
    session = await session_of(container, sub)
    assert session.last_dae == "disconnect CustomerSuspended: ACK"


# -- 3. A new add-on restores a restricted session ---------------------------------------------

#: An add-on that gives 1 GiB of data for 30 days (no price, no policy of its own).
DATA_ADD_ON = Product(
    "DATA-1G",
    "1 GiB data add-on",
    ProductKind.ADDON,
    frozenset({Service.DATA}),
    precedence=Precedence.LOW,
    validity=timedelta(days=30),
    quotas=(
        QuotaDefinition(
            "DATA-1G",
            Service.DATA,
            Unit.BYTES,
            Decimal(1024 * MIB),
            Renewal.ONCE,
            validity=timedelta(days=30),
        ),
    ),
)


@pytest.mark.parametrize(
    ("vendor", "throttled", "restriction", "restored"),
    [
        (
            NasVendor.HUAWEI,
            True,
            Restriction.THROTTLE,
            {
                "Huawei-Output-Average-Rate": [20_000_000],
                "Huawei-Output-Peak-Rate": [20_000_000],
                "Huawei-Input-Average-Rate": [5_000_000],
                "Huawei-Input-Peak-Rate": [5_000_000],
            },
        ),
        (
            NasVendor.JUNIPER,
            False,
            Restriction.HOTLINE,
            {
                "ERX-Service-Activate": ["rate-limit(20000000,5000000)"],
                "ERX-Qos-Profile-Name": [POLICY.name],
                "ERX-Service-Deactivate": [JUNIPER_HOTLINE_SERVICE],
            },
        ),
    ],
    ids=["huawei-throttled", "juniper-hotlined"],
)
async def test_a_new_add_on_sends_the_coa_restoring_the_policy(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
    listener: tuple[DaeListener, int],
    vendor: NasVendor,
    throttled: bool,
    restriction: Restriction,
    restored: dict[str, list[object]],
) -> None:
    """A session restricted for lack of funds (throttled on a Huawei, hotlined
    on a Juniper, whose CoA can lift the hotline service) is restored as soon
    as the account gets a data add-on (AddOnAdded): one CoA carrying the
    policy's full rates in the vendor's attributes, ACKed, and the session is
    no longer restricted."""
    if throttled:
        await change_broadband(container, policy=THROTTLED)
    await container.define_product()(DATA_ADD_ON)
    nas_listener, port = listener
    _customer, account = await exhausted(container, server, nas_listener, port, vendor)
    await relay(container, dae)  # the restriction's ACK is stored; the set-up's events pass
    [session] = await container.radius_sessions().open_for_account(account)
    assert session.restriction is restriction
    assert not await container.radius_sessions().can_use(account)
    assert len(nas_listener.received) == 1  # the restriction only

    await container.add_add_on()(account, "DATA-1G")
    await relay(container, dae)

    [restore] = nas_listener.received[1:]
    assert restore.code == rp.CoARequest
    assert restore.attributes["Acct-Session-Id"] == ["p-1"]
    assert restore.attributes["User-Name"] == ["dora@isp"]
    policy = {name: values for name, values in restore.attributes.items() if name in restored}
    assert policy == restored
    [session] = await container.radius_sessions().open_for_account(account)
    assert session.restriction is None
    assert not session.restricted
    assert session.last_dae == "coa AddOnAdded: ACK"


# -- 4. A hotline CoA-NAK is shown on the session ---------------------------------------------


async def test_a_nak_to_the_hotline_coa_is_shown_on_the_session_with_its_error_cause(
    container: Container,
    server: RadiusServer,
    dae: DynamicAuthorization,
) -> None:
    """The NAS NAKs the hotline CoA with Error-Cause 401 (and takes no
    Disconnect, so nothing else is sent to overwrite it): the session shows
    ``coa hotline: NAK Error-Cause=Unsupported-Attribute``, stays
    unrestricted, and the NAK is counted under its Error-Cause name."""
    loop = asyncio.get_running_loop()
    transport, nak = await loop.create_datagram_endpoint(NakCoa, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        await register_nas(
            container, NasVendor.HUAWEI, accepts_coa=True, accepts_disconnect=False, dae_port=port
        )
        sub = await subscriber(container, "nora@isp", balance="0.05")
        acct_port = ports(server)[1]
        await radclient(acct_port, "acct", acct("Start", "nak-1", "nora@isp"))
        interim = acct("Interim-Update", "nak-1", "nora@isp", Acct_Output_Octets=5 * MIB)
        assert (await radclient(acct_port, "acct", interim)).code == "Accounting-Response"
        await dae.stop()

        [hotline] = nak.received
        assert hotline.code == rp.CoARequest
        assert hotline.attributes["Huawei-PortalURL"] == ["https://topup.example/"]
        session = await session_of(container, sub)
        assert session.last_dae == "coa hotline: NAK Error-Cause=Unsupported-Attribute"
        assert session.restriction is None
        errors = container.telemetry().registry.get_sample_value(
            "ratel_errors_total",
            {
                "protocol": "radius_dae",
                "operation": "coa",
                "outcome": "rejected",
                "code": "Unsupported-Attribute",
            },
        )
        assert errors == 1
    finally:
        transport.close()


# -- 5. Acct-Input-Gigawords ----------------------------------------------------------------


async def test_input_gigawords_count_the_octets_past_4_gib(
    container: Container, server: RadiusServer
) -> None:
    """Acct-Input-Gigawords is folded into the input counter as
    Acct-Output-Gigawords is into the output one: across the upload counter's
    wrap the session is charged 4097 MiB in all; a report a whole 4 GiB later
    (the same octets, one gigaword more: a wrap only Gigawords can tell) is
    charged its 4096 MiB; the Stop's xDR has them all."""
    await register_nas(container)
    sub = await subscriber(container, "up@isp", balance="100.00")
    acct_port = ports(server)[1]
    await radclient(acct_port, "acct", acct("Start", "gi-1", "up@isp"))
    # 4 GiB - 1 MiB, then the counter wraps: gigawords 1 and 1 MiB = 4 GiB + 1 MiB
    before = acct("Interim-Update", "gi-1", "up@isp", Acct_Input_Octets=2**32 - MIB)
    wrapped = acct(
        "Interim-Update", "gi-1", "up@isp", Acct_Input_Octets=MIB, Acct_Input_Gigawords=1
    )
    assert (await radclient(acct_port, "acct", before)).code == "Accounting-Response"
    assert (await radclient(acct_port, "acct", wrapped)).code == "Accounting-Response"
    charged = Decimal("100.00") - await balance(container, sub)
    assert charged == Decimal("40.97")  # 4097 MiB at 0.01: 2 MiB after the wrap, not -4 GiB
    # 4 GiB later: gigawords 2 and 1 MiB = 8 GiB + 1 MiB (the octets alone look unchanged)
    again = acct("Interim-Update", "gi-1", "up@isp", Acct_Input_Octets=MIB, Acct_Input_Gigawords=2)
    assert (await radclient(acct_port, "acct", again)).code == "Accounting-Response"
    assert await balance(container, sub) == Decimal("18.07")  # 40.97 + 40.96 charged
    stop = acct("Stop", "gi-1", "up@isp", Acct_Input_Octets=MIB, Acct_Input_Gigawords=2)
    assert (await radclient(acct_port, "acct", stop)).code == "Accounting-Response"
    [xdr] = await container.account_xdrs()(sub.account_id)
    assert xdr.lines[0].units == 2**33 + MIB
    assert xdr.charge.amount == Decimal("81.93")
    assert await balance(container, sub) == Decimal("18.07")
