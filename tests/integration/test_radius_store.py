"""The RADIUS store (NAS registry, accounting sessions, CHAP secrets) on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import NOW, account, customer
from store_databases import statements

from ratel.adapters.db.radius import SqlRadiusStoreFactory
from ratel.adapters.db.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from ratel.domain.events import AccountBlocked
from ratel.domain.nas import (
    DuplicateNas,
    DuplicateRadiusSession,
    InvalidNas,
    Nas,
    NasVendor,
    RadiusSession,
    RadiusSessionState,
    Restriction,
)


@pytest.fixture
def store(engine: AsyncEngine) -> SqlRadiusStoreFactory:
    return SqlRadiusStoreFactory(engine)


def nas(id: str = "nas_1", address: str = "192.0.2.1", **fields: object) -> Nas:
    return Nas(id=id, name=f"bras {id}", address=address, secret="s3cret", **fields)  # type: ignore[arg-type]


def session(acct_id: str, **fields: object) -> RadiusSession:
    values: dict[str, object] = {
        "nas_address": "192.0.2.1",
        "acct_session_id": acct_id,
        "charging_session_id": f"radius:192.0.2.1:{acct_id}",
        "sub_session": "",
        "account_id": "acc_1",
        "customer_id": "cus_1",
        "user_name": "alice@isp",
        "started_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return RadiusSession(**values)  # type: ignore[arg-type]


async def test_nas_entries_round_trip_and_addresses_are_unique(
    store: SqlRadiusStoreFactory,
) -> None:
    huawei = nas(vendor=NasVendor.HUAWEI, accepts_coa=True, dae_port=1700)
    async with store() as work:
        await work.nas.add(huawei)
        await work.nas.add(nas("nas_2", "2001:db8::1"))
        with pytest.raises(DuplicateNas):
            await work.nas.add(nas("nas_3", "192.0.2.1"))
        await work.commit()
    async with store() as work:
        assert await work.nas.get("nas_1") == huawei
        assert await work.nas.by_address("192.0.2.1") == huawei
        assert [n.id for n in await work.nas.all()] == ["nas_1", "nas_2"]
        with pytest.raises(DuplicateNas):
            await work.nas.save(huawei.changed(id="nas_2", address="192.0.2.1"))
        await work.nas.save(huawei.changed(secret="rotated"))
        await work.commit()
    async with store() as work:
        assert (await work.nas.get("nas_1")).secret == "rotated"  # type: ignore[union-attr]
        assert await work.nas.remove("nas_1")
        assert not await work.nas.remove("nas_1")
        await work.commit()
    async with store() as work:
        assert await work.nas.by_address("192.0.2.1") is None


def test_a_nas_is_validated() -> None:
    with pytest.raises(InvalidNas):
        nas(address="bras.example")
    with pytest.raises(InvalidNas):
        nas(vendor=NasVendor.CISCO_ASR5700, accepts_disconnect=True)
    with pytest.raises(InvalidNas):
        nas(dae_port=70000)
    assert nas(address=" 2001:DB8::1 ").address == "2001:db8::1"


async def test_accounting_sessions_keep_their_counters(store: SqlRadiusStoreFactory) -> None:
    first = session("s-1", input_octets=2**40, output_octets=5)
    async with store() as work:
        await work.sessions.add(first)
        await work.sessions.add(session("s-2", customer_id="cus_2", account_id="acc_2"))
        with pytest.raises(DuplicateRadiusSession):
            await work.sessions.add(session("s-1"))
        await work.commit()
    async with store() as work:
        loaded = await work.sessions.get("192.0.2.1", "s-1", lock=True)
        assert loaded == first
        assert loaded is not None
        loaded.reports = 3
        loaded.state = RadiusSessionState.CLOSED
        loaded.last_dae = "coa hotline: ACK"
        loaded.updated_at = NOW + timedelta(minutes=5)
        await work.sessions.save(loaded)
        await work.commit()
    async with store() as work:
        assert [s.acct_session_id for s in await work.sessions.open_for_nas("192.0.2.1")] == ["s-2"]
        assert await work.sessions.open_for_account("acc_1") == []
        assert [s.acct_session_id for s in await work.sessions.open_for_customer("cus_2")] == [
            "s-2"
        ]
        [closed] = await work.sessions.for_charging_session("radius:192.0.2.1:s-1")
        assert (closed.reports, closed.last_dae) == (3, "coa hotline: ACK")


async def test_chap_secrets_are_set_and_replaced(
    store: SqlRadiusStoreFactory, uow: SqlUnitOfWorkFactory
) -> None:
    owner = customer()
    line = account(owner)
    async with uow() as work:
        await work.customers.add(owner)
        await work.accounts.add(line)
        await work.commit()
    async with store() as work:
        assert await work.chap_secrets.get(line.id) is None
        await work.chap_secrets.set(line.id, "first", NOW)
        await work.commit()
    async with store() as work:
        await work.chap_secrets.set(line.id, "second", NOW)
        await work.commit()
    async with store() as work:
        assert await work.chap_secrets.get(line.id) == "second"


async def test_saving_usage_leaves_the_dae_outcome_alone(store: SqlRadiusStoreFactory) -> None:
    async with store() as work:
        await work.sessions.add(session("u-1"))
        await work.commit()
    async with store() as work:
        charged = await work.sessions.get("192.0.2.1", "u-1")
    async with store() as work:  # a CoA answered while the report was being charged
        hotlined = await work.sessions.get("192.0.2.1", "u-1", lock=True)
        assert hotlined is not None
        hotlined.restriction, hotlined.last_dae = Restriction.HOTLINE, "coa hotline: ACK"
        await work.sessions.save(hotlined)
        await work.commit()
    assert charged is not None
    charged.output_octets, charged.reports = 10 * 2**20, 1
    async with store() as work:
        await work.sessions.save_usage(charged)
        await work.commit()
    async with store() as work:
        final = await work.sessions.get("192.0.2.1", "u-1")
    assert final is not None
    assert (final.output_octets, final.reports) == (10 * 2**20, 1)
    assert (final.restriction, final.last_dae) == (Restriction.HOTLINE, "coa hotline: ACK")


async def test_usage_of_many_sessions_is_written_in_the_unit_of_work_and_never_goes_back(
    store: SqlRadiusStoreFactory, engine: AsyncEngine
) -> None:
    async with store() as work:
        for name in ("m-1", "m-2", "m-3"):
            await work.sessions.add(session(name, reports=2))
        await work.commit()
    ahead = session("m-1", reports=3, output_octets=300)
    behind = session("m-2", reports=2, output_octets=999)  # not newer than what is stored
    closed = session("m-3", reports=3, output_octets=30, state=RadiusSessionState.CLOSED)
    async with SqlUnitOfWork(engine) as uow:
        await store.joining(uow).save_usage_many([ahead, behind, closed], lambda _: None)
    async with store() as work:  # the unit of work was not committed: nothing changed
        rows = [await work.sessions.get("192.0.2.1", name) for name in ("m-1", "m-2", "m-3")]
    assert [(r.reports, r.output_octets) for r in rows if r] == [(2, 0)] * 3
    gone = session("m-4", reports=1)  # never stored (or deleted meanwhile)
    left: list[RadiusSession] = []
    async with SqlUnitOfWork(engine) as uow:
        await store.joining(uow).save_usage_many([ahead, behind, closed, gone], left.extend)
        await uow.commit()
    # what was not written is named: the caller's idea of those sessions was old
    assert [s.acct_session_id for s in left] == ["m-2", "m-4"]
    async with store() as work:
        rows = [await work.sessions.get("192.0.2.1", name) for name in ("m-1", "m-2", "m-3")]
    assert [(r.reports, r.output_octets, r.state) for r in rows if r] == [
        (3, 300, RadiusSessionState.OPEN),
        (2, 0, RadiusSessionState.OPEN),
        (3, 30, RadiusSessionState.CLOSED),
    ]
    # inside a together() block, with the charge's writes: named when they go
    later = session("m-1", reports=4, output_octets=400)
    named: list[RadiusSession] = []
    postgresql = engine.dialect.name == "postgresql"
    with statements(engine) as seen:
        async with SqlUnitOfWork(engine) as uow:
            async with uow.together():
                # with another write of the block: PostgreSQL sends both as one statement
                blocked = AccountBlocked(
                    occurred_at=NOW, account_id="a", customer_id="c", reason="x"
                )
                await uow.outbox.add([blocked])
                await store.joining(uow).save_usage_many([later, behind], named.extend)
                assert named == ([] if postgresql else [behind])  # PostgreSQL: not sent yet
            await uow.commit()
    assert [s.acct_session_id for s in named] == ["m-2"]
    # PostgreSQL: the one write; SQLite: BEGIN IMMEDIATE, the outbox insert, the reports
    # read, the update
    assert len(seen) == (1 if postgresql else 4)


async def test_sessions_are_inserted_together_and_the_taken_ones_named(
    store: SqlRadiusStoreFactory, engine: AsyncEngine
) -> None:
    async with store() as work:
        await work.sessions.add(session("t-1", output_octets=5))
        await work.commit()
    fresh = [session("t-2"), session("t-3")]
    taken = session("t-1", output_octets=999)
    async with SqlUnitOfWork(engine) as uow:
        left = await store.joining(uow).add_many([fresh[0], taken, fresh[1]])
        await uow.commit()
    assert [s.acct_session_id for s in left] == ["t-1"]
    async with store() as work:
        rows = [await work.sessions.get("192.0.2.1", name) for name in ("t-1", "t-2", "t-3")]
    assert [(r.acct_session_id, r.output_octets) for r in rows if r] == [
        ("t-1", 5),  # the first one stays
        ("t-2", 0),
        ("t-3", 0),
    ]


async def test_a_dae_reaction_is_claimed_once_even_by_racing_nodes(
    store: SqlRadiusStoreFactory,
) -> None:
    async def claim(reaction: str, acct_id: str, at: timedelta = timedelta(0)) -> bool:
        async with store() as work:
            won = await work.dae_claims.claim(reaction, "192.0.2.1", acct_id, NOW + at)
            await work.commit()
        return won

    # four nodes react to event 7 on d-1 at once: one wins
    assert sorted(await asyncio.gather(*(claim("event:7", "d-1") for _ in range(4)))) == [
        False,
        False,
        False,
        True,
    ]
    assert not await claim("event:7", "d-1")
    assert await claim("event:7", "d-2")  # another session of the same event
    assert await claim("restore:8", "d-1")  # another reaction on the same session
    async with store() as work:
        # a claim rolled back is no claim
        assert await work.dae_claims.claim("event:9", "192.0.2.1", "d-1", NOW)
    assert await claim("event:9", "d-1", timedelta(days=2))
    async with store() as work:
        assert await work.dae_claims.forget_before(NOW + timedelta(days=1)) == 3
        await work.commit()
    assert await claim("event:7", "d-1", timedelta(days=2))  # forgotten: claimable again
