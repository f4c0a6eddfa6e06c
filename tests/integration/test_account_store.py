"""Accounts round-trip with every identifier, and identifiers stay unique."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import NOW, account, customer, identifiers
from store_databases import statements

from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.domain.account import Account, AccountStatus
from ratel.domain.customer import Customer
from ratel.domain.errors import DuplicateIdentifier
from ratel.domain.identifiers import CpeDevice, Identifiers, Imsi, Msisdn, StaticIp
from ratel.domain.location import LocationPolicy
from ratel.ports.store import IdentifierKind


async def stored(uow: SqlUnitOfWorkFactory, owner: Customer, *accounts: Account) -> None:
    async with uow() as work:
        await work.customers.add(owner)
        for a in accounts:
            await work.accounts.add(a)
        await work.commit()


async def test_account_round_trip_with_everything(uow: SqlUnitOfWorkFactory) -> None:
    owner = customer()
    original = account(owner, ids=identifiers(7))
    original.add_add_on("as1", "DATA-24H", 300, NOW, duration=timedelta(hours=24))
    original.add_add_on("as2", "ROAM", 100, NOW)
    original.set_location("MARITIME", NOW, LocationPolicy())
    original.lift_location_block(NOW, LocationPolicy())
    original.block("fraud check", NOW)
    await stored(uow, owner, original)
    async with uow() as work:
        loaded = await work.accounts.get(original.id)
        assert await work.accounts.get("nothing") is None
    assert loaded == original
    assert loaded is not None
    assert loaded.status is AccountStatus.BLOCKED
    assert loaded.identifiers.cpe == CpeDevice("CXNK00000007", 2, "GE")


async def test_every_identifier_finds_the_account(uow: SqlUnitOfWorkFactory) -> None:
    owner = customer()
    target = account(owner, ids=identifiers(258))
    other = account(owner, ids=identifiers(259))
    await stored(uow, owner, target, other)
    ids = target.identifiers
    lookups = {
        IdentifierKind.ACCOUNT_ID: target.id,
        IdentifierKind.MSISDN: f"+{ids.msisdn}",
        IdentifierKind.IMSI: str(ids.imsi),
        IdentifierKind.ICCID: str(ids.iccid),
        IdentifierKind.IMEI: str(ids.imei),
        IdentifierKind.ALIAS: "modem-258",
        IdentifierKind.CPE_SERIAL: "cxnk00000102",
        IdentifierKind.STATIC_IP: "10.0.1.2",
    }
    assert set(lookups) == set(IdentifierKind)
    async with uow() as work:
        for kind, value in lookups.items():
            found = await work.accounts.by_identifier(kind, value)
            assert found is not None and found.id == target.id, kind
        by_port = await work.accounts.by_identifier(IdentifierKind.CPE_SERIAL, "CXNK00000102/2")
        assert by_port is not None and by_port.id == target.id
        assert (
            await work.accounts.by_identifier(IdentifierKind.CPE_SERIAL, "CXNK00000102/3") is None
        )
        with_mask = await work.accounts.by_identifier(IdentifierKind.STATIC_IP, "10.0.1.2/32")
        assert with_mask is not None and with_mask.id == target.id
        assert await work.accounts.by_identifier(IdentifierKind.MSISDN, "447700999999") is None
        assert await work.accounts.by_identifier(IdentifierKind.MSISDN, "not a number") is None
        assert await work.accounts.by_identifier(IdentifierKind.ALIAS, "modem-1") is None


@pytest.mark.parametrize(
    "taken",
    [
        lambda ids: Identifiers(msisdn=ids.msisdn),
        lambda ids: Identifiers(imsi=ids.imsi),
        lambda ids: Identifiers(iccid=ids.iccid),
        lambda ids: Identifiers(aliases=frozenset({"nms:300"})),
    ],
    ids=["msisdn", "imsi", "iccid", "alias"],
)
async def test_a_taken_identifier_is_refused(uow: SqlUnitOfWorkFactory, taken: object) -> None:
    owner = customer()
    first = account(owner, ids=identifiers(300))
    await stored(uow, owner, first)
    clash = taken(first.identifiers)  # type: ignore[operator]
    async with uow() as work:
        with pytest.raises(DuplicateIdentifier):
            await work.accounts.add(account(owner, ids=clash))
    # and by changing an existing account to it
    second = account(owner, ids=Identifiers())
    async with uow() as work:
        await work.accounts.add(second)
        await work.commit()
    async with uow() as work:
        loaded = await work.accounts.get(second.id, lock=True)
        assert loaded is not None
        loaded.identifiers = clash
        with pytest.raises(DuplicateIdentifier):
            await work.accounts.save(loaded)


async def test_an_account_id_is_not_reused(uow: SqlUnitOfWorkFactory) -> None:
    owner = customer()
    first = account(owner, id="acc-1")
    await stored(uow, owner, first)
    async with uow() as work:
        with pytest.raises(DuplicateIdentifier):
            await work.accounts.add(account(owner, id="acc-1"))


async def test_identifiers_move_between_accounts(uow: SqlUnitOfWorkFactory) -> None:
    """A number ported from one account to another in one transaction."""
    owner = customer()
    old = account(owner, ids=identifiers(400))
    new = account(owner, ids=Identifiers())
    await stored(uow, owner, old, new)
    number = old.identifiers.msisdn
    async with uow() as work:
        a = await work.accounts.get(old.id, lock=True)
        b = await work.accounts.get(new.id, lock=True)
        assert a is not None and b is not None
        a.change_number(None, NOW)
        await work.accounts.save(a)
        b.change_number(number, NOW)
        b.add_alias("nms:400-new", NOW)
        await work.accounts.save(b)
        await work.commit()
    async with uow() as work:
        found = await work.accounts.by_identifier(IdentifierKind.MSISDN, str(number))
        assert found is not None and found.id == new.id
        found = await work.accounts.by_identifier(IdentifierKind.ALIAS, "nms:400-new")
        assert found is not None and found.id == new.id


async def test_changes_are_saved(uow: SqlUnitOfWorkFactory) -> None:
    owner = customer()
    original = account(owner, ids=identifiers(500))
    original.add_add_on("as1", "DATA-24H", 300, NOW, duration=timedelta(hours=1))
    await stored(uow, owner, original)
    async with uow() as work:
        loaded = await work.accounts.get(original.id, lock=True)
        assert loaded is not None
        loaded.change_product("PREMIUM", NOW)
        loaded.change_sim(Imsi("234150000009999"), None, NOW)
        loaded.set_identifiers(NOW, static_ip=StaticIp.parse("2001:db8::5/64"), aliases=frozenset())
        loaded.update_custom_fields(NOW, {"installation": None, "floor": "3"})
        loaded.remove_add_on("as1", NOW)
        loaded.add_add_on("as2", "ROAM", 100, NOW)
        await work.accounts.save(loaded)
        await work.commit()
    async with uow() as work:
        again = await work.accounts.get(original.id)
        assert again == loaded
        assert await work.accounts.by_identifier(IdentifierKind.ALIAS, "modem-500") is None
        assert await work.accounts.by_identifier(IdentifierKind.STATIC_IP, "2001:DB8::5") == loaded


async def test_for_customer_and_add_ons_ending(uow: SqlUnitOfWorkFactory) -> None:
    owner = customer()
    ending = account(owner, id="a1", ids=Identifiers())
    ending.add_add_on("x", "DATA-24H", 300, NOW, duration=timedelta(hours=1))
    lasting = account(owner, id="a2", ids=Identifiers(msisdn=Msisdn("447700900001")))
    lasting.add_add_on("y", "DATA-24H", 300, NOW, duration=timedelta(days=30))
    gone = account(owner, id="a3", ids=Identifiers())
    gone.add_add_on("z", "DATA-24H", 300, NOW, duration=timedelta(hours=1))
    gone.terminate(NOW)
    await stored(uow, owner, lasting, gone, ending)
    async with uow() as work:
        assert [a.id for a in await work.accounts.for_customer(owner.id)] == ["a1", "a2", "a3"]
        assert await work.accounts.with_add_ons_ending(NOW + timedelta(minutes=30)) == []
        assert await work.accounts.with_add_ons_ending(NOW + timedelta(hours=1)) == ["a1"]
        assert await work.accounts.with_add_ons_ending(NOW + timedelta(days=31)) == ["a1", "a2"]
        assert await work.accounts.with_add_ons_ending(NOW + timedelta(days=31), limit=1) == ["a1"]


async def test_a_loaded_account_writes_only_what_changed(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    """Its row as loaded is kept as read and built only for a save: the same
    change is found either way."""
    owner = customer()
    original = account(owner, ids=identifiers(501))
    original.add_add_on("as1", "DATA-24H", 300, NOW, duration=timedelta(hours=1))
    await stored(uow, owner, original)
    async with uow() as work:
        (loaded,) = (await work.accounts.get_many([original.id])).values()
        with statements(engine) as seen:
            await work.accounts.save(loaded)  # unchanged
        assert seen == []
        loaded.update_custom_fields(NOW, {"floor": "4"})
        with statements(engine) as seen:
            await work.accounts.save(loaded)
            await work.accounts.save(loaded)  # saved already
        # the accounts row only: aliases and add-ons are as loaded
        assert len(seen) == 1 and seen[0].startswith("UPDATE accounts")
        await work.commit()
    async with uow() as work:
        again = await work.accounts.get(original.id)
    assert again == loaded and again.custom_fields["floor"] == "4"
