"""Products, tariffs, groups and the dialing plan round-trip; reads are
cached per process and a write anywhere invalidates the cache."""

from __future__ import annotations

from dataclasses import replace
from datetime import time

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from store_builders import DATA, INTL, LOCAL, NOW, USSD, add_on, main_product, tariffs, usd
from store_databases import statements
from test_session_store import Subscriber, store_subscriber

from ratel.adapters.db.engine import create_engine
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.domain.catalogue import ServicePolicy
from ratel.domain.charging import CreditControlSession
from ratel.domain.errors import InvalidCatalogue
from ratel.domain.rating import DestinationGroup, DialingRule, Rate, RatePeriod, Tariff
from ratel.ports.store import IdentifierKind


async def define_catalogue(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as work:
        for group in (LOCAL, INTL, DATA, USSD):
            await work.catalogue.add_destination_group(group)
        for tariff in tariffs():
            await work.catalogue.add_tariff(tariff)
        await work.catalogue.add_product(main_product())
        await work.catalogue.add_product(add_on())
        await work.catalogue.set_dialing_rules(
            [
                DialingRule("00", ""),
                DialingRule("0", "44"),
                DialingRule("411", "12055576061", exact=True),
            ]
        )
        await work.commit()


def same_tariff(a: Tariff | None, b: Tariff) -> None:
    assert a is not None
    assert (a.code, a.currency, a.name) == (b.code, b.currency, b.name)
    assert a.custom_entries() == b.custom_entries()
    assert a.prefix_entries() == b.prefix_entries()


async def test_catalogue_round_trip(uow: SqlUnitOfWorkFactory) -> None:
    await define_catalogue(uow)
    async with uow() as work:
        assert await work.catalogue.get_product("BASIC") == main_product()
        assert await work.catalogue.get_product("DATA-24H") == add_on()
        assert await work.catalogue.get_product("NONE") is None
        assert [p.code for p in await work.catalogue.products()] == ["BASIC", "DATA-24H"]
        assert await work.catalogue.destination_groups() == [DATA, INTL, LOCAL, USSD]
        assert await work.catalogue.tariff_codes() == ["DATA-STD", "USSD-STD", "VOICE-STD"]
        for expected in tariffs():
            same_tariff(await work.catalogue.get_tariff(expected.code), expected)
        assert await work.catalogue.get_tariff("NONE") is None
        plan = await work.catalogue.dialing_plan()
        assert plan.translate("00447700900123") == "447700900123"
        assert plan.translate("07700900123") == "447700900123"
        assert plan.translate("411") == "12055576061"
        voice = await work.catalogue.get_tariff("VOICE-STD")
        assert voice is not None
        assert voice.rate_for("447700900123").rate.price_first == usd("0.00015")


async def test_replacing_definitions(uow: SqlUnitOfWorkFactory) -> None:
    await define_catalogue(uow)
    cheaper = Tariff("VOICE-STD", "USD", "Cheaper voice")
    cheaper.add_prefix("1", Rate.per_interval(usd("0.05"), 60), LOCAL)
    renamed = DestinationGroup("LOCAL", "Local and national", "400000009")
    changed = replace(main_product(), name="Basic 2", quotas=main_product().quotas[:1])
    async with uow() as work:
        await work.catalogue.add_tariff(cheaper)
        await work.catalogue.add_destination_group(renamed)
        await work.catalogue.save_product(changed)
        await work.catalogue.set_dialing_rules([])
        await work.commit()
    async with uow() as work:
        loaded = await work.catalogue.get_tariff("VOICE-STD")
        assert loaded is not None and len(loaded) == 1
        assert loaded.rate_for("12025550100").group == renamed
        assert await work.catalogue.get_product("BASIC") == changed
        assert (await work.catalogue.dialing_plan()).rules == ()


async def test_a_product_code_is_new_once(uow: SqlUnitOfWorkFactory) -> None:
    await define_catalogue(uow)
    async with uow() as work:
        with pytest.raises(IntegrityError):
            await work.catalogue.add_product(main_product())


async def test_a_bad_dialing_plan_writes_nothing(uow: SqlUnitOfWorkFactory) -> None:
    await define_catalogue(uow)
    async with uow() as work:
        with pytest.raises(InvalidCatalogue):
            await work.catalogue.set_dialing_rules([DialingRule("0", "44"), DialingRule("0", "1")])
        assert len((await work.catalogue.dialing_plan()).rules) == 3


async def test_named_service_policies(uow: SqlUnitOfWorkFactory) -> None:
    gold = ServicePolicy(name="gold", download_kbps=100_000, apn_ids=("internet",))
    async with uow() as work:
        await work.catalogue.save_service_policy("GOLD", gold)
        await work.catalogue.save_service_policy("GOLD", gold)  # replaces, no error
        await work.commit()
    async with uow() as work:
        assert await work.catalogue.service_policy("GOLD") == gold
        assert await work.catalogue.service_policy("SILVER") is None
        assert await work.catalogue.service_policies() == {"GOLD": gold}


async def test_reads_are_cached_across_units_of_work(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    await define_catalogue(uow)
    async with uow() as work:  # warms the cache
        await work.catalogue.get_tariff("VOICE-STD")
        await work.catalogue.get_product("BASIC")
        await work.catalogue.dialing_plan()
    with statements(engine) as seen:
        async with uow() as work:
            for _ in range(3):
                assert await work.catalogue.get_tariff("VOICE-STD") is not None
                assert await work.catalogue.get_product("BASIC") is not None
                await work.catalogue.dialing_plan()
    queries = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 1 and "catalogue_version" in queries[0]


async def faster_data_from_another_process(database_url: str) -> None:
    """DATA-STD redefined (cheaper, and with a roaming rate) through an engine
    of its own, as another ratel process would."""
    other_process = create_engine(database_url)
    try:
        faster = Tariff("DATA-STD", "USD", "Data")
        faster.add_custom("DATA", Rate.per_interval(usd("0.005"), 1024 * 1024), DATA)
        faster.add_custom("DATA-ROAM", Rate.per_interval(usd("1"), 1024 * 1024), DATA)
        async with SqlUnitOfWorkFactory(other_process)() as work:
            await work.catalogue.add_tariff(faster)
            await work.commit()
    finally:
        await other_process.dispose()


async def test_a_write_by_another_process_is_seen_at_the_next_unit_of_work(
    database_url: str, uow: SqlUnitOfWorkFactory
) -> None:
    await define_catalogue(uow)
    async with uow() as work:
        before = await work.catalogue.get_tariff("DATA-STD")
        assert before is not None and len(before) == 1
    await faster_data_from_another_process(database_url)
    async with uow() as work:
        after = await work.catalogue.get_tariff("DATA-STD")
    assert after is not None and len(after) == 2
    assert after.rate_for("DATA").rate.price_first == usd("0.005")


async def test_an_uncommitted_write_is_seen_only_by_its_unit_of_work(
    uow: SqlUnitOfWorkFactory,
) -> None:
    await define_catalogue(uow)
    async with uow() as work:
        await work.catalogue.get_product("BASIC")  # cached
    async with uow() as work:
        await work.catalogue.add_product(add_on("NIGHT"))
        assert await work.catalogue.get_product("NIGHT") is not None
        await work.rollback()
    async with uow() as work:
        assert await work.catalogue.get_product("NIGHT") is None
        assert await work.catalogue.get_product("BASIC") is not None


async def test_a_large_tariff_is_stored_and_loaded_once(
    engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    big = Tariff("WORLD", "USD", "50,000 prefixes")
    rate = Rate(usd("0.0123"), 60, 60, usd("0.0123"), usd(0))
    for n in range(50_000):
        big.add_prefix(str(10_000 + n), rate, INTL)
    async with uow() as work:
        await work.catalogue.add_destination_group(INTL)
        await work.catalogue.add_tariff(big)
        await work.commit()
    async with uow() as work:
        loaded = await work.catalogue.get_tariff("WORLD")
    assert loaded is not None and len(loaded) == 50_000
    assert loaded.rate_for("5999912345").destination == "59999"
    with statements(engine) as seen:
        for _ in range(5):
            async with uow() as work:
                assert await work.catalogue.get_tariff("WORLD") is loaded
    assert not [s for s in seen if "rates" in s]


async def test_time_of_day_periods_and_the_time_zone_round_trip(
    uow: SqlUnitOfWorkFactory,
) -> None:
    night = Rate.per_interval(usd("0.04"), 60)
    lunch = Rate.per_interval(usd("0.07"), 60, connection_fee=usd("0.01"))
    banded = Tariff("VOICE-TOD", "USD", "peak and off-peak", "Europe/Paris")
    banded.add_prefix(
        "1",
        Rate.per_interval(usd("0.10"), 60),
        LOCAL,
        periods=[RatePeriod(time(20), time(8), night), RatePeriod(time(12), time(13), lunch)],
    )
    banded.add_prefix("44", Rate.per_interval(usd("0.30"), 60), INTL)  # no periods
    free_at_night = RatePeriod(time(0, 30), time(6, 15, 30), Rate.per_interval(usd("0"), 1024))
    banded.add_custom("DATA", Rate.per_interval(usd("0.01"), 1024), periods=[free_at_night])
    async with uow() as work:
        await work.catalogue.add_tariff(banded)
        await work.catalogue.add_tariff(Tariff("FLAT", "USD"))
        await work.commit()
    async with uow() as work:
        loaded = await work.catalogue.get_tariff("VOICE-TOD")
        plain = await work.catalogue.get_tariff("FLAT")
    same_tariff(loaded, banded)
    assert loaded is not None and loaded.time_zone == "Europe/Paris"
    assert loaded.rate_for("12025550100").periods[1].rate == lunch
    assert loaded.rate_for("447700900123").periods == ()
    assert plain is not None and plain.time_zone == "UTC"  # defined without a zone


async def test_a_batch_reads_the_catalogue_version_with_its_sessions(
    database_url: str, engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    """The version comes with the sessions' versions (no query of its own),
    and still tells a write by another process."""
    await define_catalogue(uow)
    sub = Subscriber("50")
    await store_subscriber(uow, sub)
    async with uow() as work:
        await work.sessions.add_many(
            [CreditControlSession.open("v-1", sub.account, sub.customer, NOW)]
        )
        assert await work.catalogue.get_tariff("DATA-STD") is not None  # cached
        await work.commit()
    with statements(engine) as seen:
        async with uow() as work:
            assert list(await work.sessions.get_many(["v-1"], lock=True)) == ["v-1"]
            tariff = await work.catalogue.get_tariff("DATA-STD")
            assert tariff is not None and len(tariff) == 1
    queries = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 1 and "catalogue_version" in queries[0]  # the sessions' query
    await faster_data_from_another_process(database_url)
    async with uow() as work:
        await work.sessions.get_many(["v-1"], lock=True)
        after = await work.catalogue.get_tariff("DATA-STD")
    assert after is not None and len(after) == 2
    # no session found: the catalogue reads its version itself
    with statements(engine) as seen:
        async with uow() as work:
            assert await work.sessions.get_many(["none"], lock=True) == {}
            assert await work.catalogue.get_tariff("DATA-STD") is not None
    queries = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 2 and queries[1].startswith("SELECT catalogue_version.version")


async def test_a_lookup_of_accounts_brings_the_catalogue_version(
    database_url: str, engine: AsyncEngine, uow: SqlUnitOfWorkFactory
) -> None:
    """A batch that opens sessions finds none stored: the lookup of its
    subscribers' accounts brings the version instead, which still tells a
    write by another process."""
    await define_catalogue(uow)
    sub = Subscriber("50")
    await store_subscriber(uow, sub)
    async with uow() as work:
        assert await work.catalogue.get_tariff("DATA-STD") is not None  # cached
    with statements(engine) as seen:
        async with uow() as work:
            found = await work.accounts.by_identifiers(IdentifierKind.ACCOUNT_ID, [sub.account.id])
            assert list(found) == [sub.account.id]
            tariff = await work.catalogue.get_tariff("DATA-STD")
            assert tariff is not None and len(tariff) == 1
    queries = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 1 and "catalogue_version" in queries[0]  # the accounts' query
    await faster_data_from_another_process(database_url)
    async with uow() as work:
        await work.accounts.by_identifiers(IdentifierKind.ACCOUNT_ID, [sub.account.id])
        after = await work.catalogue.get_tariff("DATA-STD")
    assert after is not None and len(after) == 2
