"""The demo operator, loaded through the use cases on a migrated database."""

from __future__ import annotations

import pytest

from ratel.container import Container
from ratel.demo import GROUPS, bulk_identifiers, load_demo
from ratel.domain.account import AccountStatus
from ratel.domain.customer import CustomerStatus
from ratel.domain.errors import DuplicateIdentifier
from ratel.domain.identifiers import Identifiers
from ratel.domain.money import Money
from ratel.ports.store import IdentifierKind


async def test_the_demo_operator(container: Container) -> None:
    report = await load_demo(container)
    assert report.loaded
    assert report.total_customers == 7

    balance = await container.balance_enquiry()(IdentifierKind.MSISDN, "12055550100")
    assert balance.text == "Your current balance is 43.25 USD"

    # Turbo (high) first, then Regular (medium), then the bundle's own quota.
    quotas = await container.quota_enquiry()("acc_demo_alice")
    data = [q.product_code for q in quotas if q.service == "data"]
    assert data == ["TURBO", "REGULAR", "MOBILE_PREPAID"]

    async with container.uow()() as uow:
        groups = {g.code: g.ledger_code for g in await uow.catalogue.destination_groups()}
        assert groups == {g.code: g.ledger_code for g in GROUPS}
        assert groups["LOCAL"] == "400000001"
        assert (await uow.catalogue.dialing_plan()).translate("411") == "12055576061"
        ussd = await uow.catalogue.get_tariff("USSD")
        assert ussd is not None
        # USSD by time: 45 seconds are three 20-second intervals at 0.2
        assert ussd.rate_for("OUTGOING.SI120").rate.cost(45) == Money.of("0.6", "USD")

        fibre = await uow.accounts.by_identifier(IdentifierKind.CPE_SERIAL, "CXNK0012AB34")
        assert fibre is not None and fibre.identifiers.cpe is not None
        assert fibre.identifiers.cpe.all_ports
        assert str(fibre.identifiers.static_ip) == "203.0.113.10/29"
        modem = await uow.accounts.by_identifier(IdentifierKind.ALIAS, "MODEM-00A1B2C3")
        assert modem is not None and modem.id == "acc_demo_carol"
        eve = await uow.customers.get("cus_demo_eve")
        assert eve is not None and eve.status is CustomerStatus.SUSPENDED
        frank = await uow.accounts.get("acc_demo_frank")
        assert frank is not None and frank.status is AccountStatus.BLOCKED
        grace = await uow.accounts.get("acc_demo_grace")
        assert grace is not None and grace.location == "MARITIME"


async def test_loading_twice_changes_nothing(container: Container) -> None:
    assert (await load_demo(container)).loaded
    again = await load_demo(container)
    assert not again.loaded
    assert again.total_customers == 7
    assert again.logins


async def test_bulk_customers_get_unique_valid_identifiers(container: Container) -> None:
    seen: list[tuple[int, int]] = []
    report = await load_demo(
        container, customers=25, progress=lambda d, t: seen.append((d, t)), batch_size=10
    )
    assert report.imported_customers == 25
    assert report.total_customers == 32
    assert seen == [(0, 25), (10, 25), (20, 25), (25, 25)]
    # a second bulk load continues the numbering
    assert (await load_demo(container, customers=5)).total_customers == 37
    ids = [bulk_identifiers(n) for n in range(1000)]
    assert len({str(i.msisdn) for i in ids}) == len({str(i.iccid) for i in ids}) == 1000


async def test_a_refused_bulk_batch_stops_the_load(container: Container) -> None:
    """A batch is all or nothing: a refused one ends the load with its own
    error, the batches before it stay and none after it is written, so the
    next load's numbering (it counts customers) stays free of gaps."""
    await load_demo(container)
    squatter = await container.open_customer()("Squatter", "USD")
    # numbering starts at the 8 customers there: the second batch wants n = 19
    await container.create_account()(
        squatter.id,
        "MOBILE_PREPAID",
        identifiers=Identifiers(msisdn=bulk_identifiers(19).msisdn),
    )
    seen: list[tuple[int, int]] = []
    with pytest.raises(DuplicateIdentifier):
        await load_demo(
            container, customers=30, progress=lambda d, t: seen.append((d, t)), batch_size=10
        )
    assert seen == [(0, 30), (10, 30)]
    async with container.uow()() as uow:
        assert await uow.customers.count() == 8 + 10
