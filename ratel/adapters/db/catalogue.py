"""The catalogue: products, destination groups, tariffs with their rates, the
dialing plan and named service policies, behind a per-process cache.

Every credit-control request needs the account's products and tariffs, and a
tariff may hold 50,000 prefixes: loading them per request is out of the
question. So reads come from a ``CatalogueCache`` shared by all units of work
of one engine, stamped with the ``catalogue_version`` it was built from.
Every catalogue write bumps that version in its own transaction; a unit of
work reads the version once, on its first catalogue read (one indexed
single-row query), and drops the cache when it moved. A change committed by
another process is therefore seen from the next unit of work on.

Cached objects are shared between units of work: treat them as read-only
(``Product`` is frozen; do not add rates to a ``Tariff`` you were given).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ratel.adapters.db.codec import periods_from_json, periods_to_json
from ratel.adapters.db.fast import fast
from ratel.adapters.db.statements import Repository
from ratel.adapters.db.tables import (
    catalogue_version,
    destination_groups,
    dialing_rules,
    product_quotas,
    product_subscriptions,
    product_usage_charges,
    products,
    rates,
    service_policies,
    tariffs,
)
from ratel.domain.catalogue import (
    Product,
    ProductKind,
    QuotaDefinition,
    Renewal,
    Service,
    ServicePolicy,
    Subscription,
    Unit,
    UsageCharge,
)
from ratel.domain.money import Money
from ratel.domain.rating import (
    DestinationGroup,
    DialingPlan,
    DialingRule,
    Rate,
    RatePeriod,
    Tariff,
)

_VERSION_ROW = 1
_VERSION = fast(
    sa.select(catalogue_version.c.version).where(catalogue_version.c.id == _VERSION_ROW)
)
#: The catalogue's version as a column of another statement (see
#: ``SqlCatalogueRepository.observe_version``).
CATALOGUE_VERSION = _VERSION.scalar_subquery()


@dataclass
class CatalogueCache:
    """What one process knows of the catalogue, valid for ``version``."""

    version: int | None = None
    products: dict[str, Product] | None = None
    groups: dict[str, DestinationGroup] | None = None
    tariff_codes: list[str] | None = None
    tariffs: dict[str, Tariff | None] = field(default_factory=dict)  # None: known not to exist
    dialing: DialingPlan | None = None

    def start(self, version: int) -> None:
        """Make the cache valid for ``version``, emptying it if it was built
        from another one."""
        if version != self.version:
            self.version = version
            self.products = None
            self.groups = None
            self.tariff_codes = None
            self.tariffs = {}
            self.dialing = None


_caches: weakref.WeakKeyDictionary[Engine, CatalogueCache] = weakref.WeakKeyDictionary()


def catalogue_cache_for(engine: AsyncEngine) -> CatalogueCache:
    """The one cache of ``engine`` (one database, this process)."""
    cache = _caches.get(engine.sync_engine)
    if cache is None:
        cache = _caches[engine.sync_engine] = CatalogueCache()
    return cache


# -- rows -----------------------------------------------------------------------------


def _product_rows(product: Product) -> dict[str, list[dict[str, Any]]]:
    code = product.code
    return {
        "products": [
            {
                "code": code,
                "name": product.name,
                "kind": product.kind.value,
                "precedence": product.precedence,
                "validity": product.validity,
                "price": product.price.amount if product.price else None,
                "price_currency": product.price.currency if product.price else None,
                "services": sorted(s.value for s in product.services),
                "policy": product.policy.to_dict(),
                "iptv_packages": list(product.iptv_packages),
                "ledger_code": product.ledger_code,
            }
        ],
        "product_subscriptions": [
            {
                "product_code": code,
                "position": position,
                "code": s.code,
                "name": s.name,
                "fee": s.fee.amount,
                "currency": s.fee.currency,
                "ledger_code": s.ledger_code,
                "period": s.period,
            }
            for position, s in enumerate(product.subscriptions)
        ],
        "product_usage_charges": [
            {
                "product_code": code,
                "position": position,
                "access_code": u.access_code,
                "tariff_code": u.tariff_code,
                "service": u.service.value if u.service else None,
            }
            for position, u in enumerate(product.usage_charges)
        ],
        "product_quotas": [
            {
                "product_code": code,
                "position": position,
                "code": q.code,
                "service": q.service.value,
                "unit": q.unit.value,
                "allowance": q.allowance,
                "renewal": q.renewal.value,
                "destination_group": q.destination_group,
                "rating_group": q.rating_group,
                "validity": q.validity,
                "currency": q.currency,
            }
            for position, q in enumerate(product.quotas)
        ],
    }


_PRODUCT_PARTS = {
    "products": products,
    "product_subscriptions": product_subscriptions,
    "product_usage_charges": product_usage_charges,
    "product_quotas": product_quotas,
}


def _product_from_rows(
    row: RowMapping,
    subscriptions: list[RowMapping],
    usage_charges: list[RowMapping],
    quotas: list[RowMapping],
) -> Product:
    price = Money(row["price"], row["price_currency"]) if row["price"] is not None else None
    return Product(
        code=row["code"],
        name=row["name"],
        kind=ProductKind(row["kind"]),
        services=frozenset(Service(s) for s in row["services"]),
        precedence=row["precedence"],
        validity=row["validity"],
        price=price,
        subscriptions=tuple(
            Subscription(
                s["code"], s["name"], Money(s["fee"], s["currency"]), s["ledger_code"], s["period"]
            )
            for s in subscriptions
        ),
        usage_charges=tuple(
            UsageCharge(
                u["access_code"], u["tariff_code"], Service(u["service"]) if u["service"] else None
            )
            for u in usage_charges
        ),
        quotas=tuple(
            QuotaDefinition(
                code=q["code"],
                service=Service(q["service"]),
                unit=Unit(q["unit"]),
                allowance=q["allowance"],
                renewal=Renewal(q["renewal"]),
                destination_group=q["destination_group"],
                rating_group=q["rating_group"],
                validity=q["validity"],
                currency=q["currency"],
            )
            for q in quotas
        ),
        policy=ServicePolicy.from_dict(dict(row["policy"])),
        iptv_packages=tuple(row["iptv_packages"]),
        ledger_code=row["ledger_code"],
    )


def _rate_row(
    tariff_code: str,
    kind: str,
    position: int,
    destination: str,
    entry_rate: Rate,
    group: DestinationGroup | None,
    periods: Sequence[RatePeriod] = (),
) -> dict[str, Any]:
    return {
        "tariff_code": tariff_code,
        "kind": kind,
        "destination": destination,
        "position": position,
        "price_first": entry_rate.price_first.amount,
        "first_interval": entry_rate.first_interval,
        "next_interval": entry_rate.next_interval,
        "price_next": entry_rate.price_next.amount,
        "connection_fee": entry_rate.connection_fee.amount,
        "free_units": entry_rate.free_units,
        "group_code": group.code if group else None,
        "periods": periods_to_json(periods) if periods else None,
    }


# -- the repository --------------------------------------------------------------------


class SqlCatalogueRepository(Repository):
    """The catalogue tables, read through the engine's ``CatalogueCache``.

    Within a unit of work that wrote to the catalogue, reads go to the
    database (they must see the uncommitted write, which other units of work
    must not), and nothing is put in the cache.
    """

    def __init__(self, connection: AsyncConnection, cache: CatalogueCache) -> None:
        super().__init__(connection)
        self._shared = cache
        self._version: int | None = None  # the version this unit of work read
        self._wrote = False

    def forget(self) -> None:
        """After a rollback: read the version again, nothing was written."""
        self._version = None
        self._wrote = False

    # -- the cache ----------------------------------------------------------------

    def observe_version(self, version: int | None) -> None:
        """The catalogue's version, read by another statement of this unit of
        work (a column ``CATALOGUE_VERSION``): the cache is checked against it
        as against its own query, which this saves (one round trip less per
        charging batch). The first version read counts, as in ``_cache``."""
        if self._version is None and not self._wrote:
            self._version = version or 0
            self._shared.start(self._version)

    async def _cache(self) -> CatalogueCache | None:
        """The shared cache if this unit of work may use it, else None."""
        if self._wrote:
            return None
        if self._version is None:
            result = await self._execute(_VERSION)
            self._version = result.scalar_one_or_none() or 0
            self._shared.start(self._version)
        # Another unit of work may have moved the cache on to a newer version
        # meanwhile; what this one reads then belongs to neither.
        return self._shared if self._shared.version == self._version else None

    async def _bump(self) -> None:
        """Mark the catalogue changed (once per transaction is enough: the
        new version becomes visible with the change itself)."""
        if self._wrote:
            return
        self._wrote = True
        c = catalogue_version.c
        result = await self._execute(
            sa.update(catalogue_version).where(c.id == _VERSION_ROW).values(version=c.version + 1)
        )
        if result.rowcount == 0:
            await self._execute(
                self._insert(catalogue_version)
                .values(id=_VERSION_ROW, version=1)
                .on_conflict_do_update(
                    index_elements=[c.id], set_={"version": catalogue_version.c.version + 1}
                )
            )

    # -- products -------------------------------------------------------------------

    async def _all_products(self) -> dict[str, Product]:
        cache = await self._cache()
        if cache is not None and cache.products is not None:
            return cache.products
        loaded = await self._load_products()
        if cache is not None and self._shared.version == self._version:
            cache.products = loaded
        return loaded

    async def _load_products(self) -> dict[str, Product]:
        parts: dict[str, dict[str, list[RowMapping]]] = {}
        for name in ("product_subscriptions", "product_usage_charges", "product_quotas"):
            table = _PRODUCT_PARTS[name]
            rows = await self._execute(
                sa.select(table).order_by(table.c.product_code, table.c.position)
            )
            grouped: dict[str, list[RowMapping]] = {}
            for row in rows.mappings().all():
                grouped.setdefault(row["product_code"], []).append(row)
            parts[name] = grouped
        result = await self._execute(sa.select(products).order_by(products.c.code))
        return {
            row["code"]: _product_from_rows(
                row,
                parts["product_subscriptions"].get(row["code"], []),
                parts["product_usage_charges"].get(row["code"], []),
                parts["product_quotas"].get(row["code"], []),
            )
            for row in result.mappings().all()
        }

    async def _write_product(self, product: Product) -> None:
        for name, rows in _product_rows(product).items():
            if rows:
                await self._execute(sa.insert(_PRODUCT_PARTS[name]), rows)

    async def add_product(self, product: Product) -> None:
        await self._bump()
        await self._write_product(product)

    async def save_product(self, product: Product) -> None:
        await self._bump()
        # The parts go with the product (ON DELETE CASCADE); write it anew.
        await self._execute(sa.delete(products).where(products.c.code == product.code))
        await self._write_product(product)

    async def get_product(self, code: str) -> Product | None:
        return (await self._all_products()).get(code)

    async def products(self) -> list[Product]:
        return list((await self._all_products()).values())

    # -- destination groups --------------------------------------------------------------

    async def _groups(self) -> dict[str, DestinationGroup]:
        cache = await self._cache()
        if cache is not None and cache.groups is not None:
            return cache.groups
        result = await self._execute(
            sa.select(destination_groups).order_by(destination_groups.c.code)
        )
        loaded = {
            row["code"]: DestinationGroup(row["code"], row["name"], row["ledger_code"])
            for row in result.mappings().all()
        }
        if cache is not None and self._shared.version == self._version:
            cache.groups = loaded
        return loaded

    async def add_destination_group(self, group: DestinationGroup) -> None:
        await self._bump()
        statement = self._insert(destination_groups).values(
            code=group.code, name=group.name, ledger_code=group.ledger_code
        )
        await self._execute(
            statement.on_conflict_do_update(
                index_elements=[destination_groups.c.code],
                set_={
                    "name": statement.excluded.name,
                    "ledger_code": statement.excluded.ledger_code,
                },
            )
        )

    async def destination_groups(self) -> list[DestinationGroup]:
        return list((await self._groups()).values())

    # -- tariffs --------------------------------------------------------------------------

    async def add_tariff(self, tariff: Tariff) -> None:
        await self._bump()
        await self._execute(sa.delete(tariffs).where(tariffs.c.code == tariff.code))
        await self._execute(
            sa.insert(tariffs).values(
                code=tariff.code,
                name=tariff.name,
                currency=tariff.currency,
                time_zone=tariff.time_zone,
            )
        )
        groups = {
            entry.group.code: entry.group for entry in tariff.entries() if entry.group is not None
        }
        if groups:
            # A rate names its group by code: make sure the group exists
            # (an existing definition is kept, not overwritten).
            await self._execute(
                self._insert(destination_groups).on_conflict_do_nothing(),
                [
                    {"code": g.code, "name": g.name, "ledger_code": g.ledger_code}
                    for g in groups.values()
                ],
            )
        rows = [
            _rate_row(
                tariff.code,
                "custom",
                position,
                entry.destination,
                entry.rate,
                entry.group,
                entry.periods,
            )
            for position, entry in enumerate(tariff.custom_entries())
        ]
        rows += [
            _rate_row(
                tariff.code, "prefix", 0, entry.destination, entry.rate, entry.group, entry.periods
            )
            for entry in tariff.prefix_entries()
        ]
        if rows:
            await self._execute(sa.insert(rates), rows)

    async def get_tariff(self, code: str) -> Tariff | None:
        cache = await self._cache()
        if cache is not None and code in cache.tariffs:
            return cache.tariffs[code]
        tariff = await self._load_tariff(code)
        if cache is not None and self._shared.version == self._version:
            cache.tariffs[code] = tariff
        return tariff

    async def _load_tariff(self, code: str) -> Tariff | None:
        head = (
            (await self._execute(sa.select(tariffs).where(tariffs.c.code == code)))
            .mappings()
            .first()
        )
        if head is None:
            return None
        tariff = Tariff(head["code"], head["currency"], head["name"], head["time_zone"])
        currency = head["currency"]
        groups = await self._groups()
        r = rates.c
        result = await self._execute(
            sa.select(
                r.kind,
                r.destination,
                r.group_code,
                r.periods,
                r.price_first,
                r.first_interval,
                r.next_interval,
                r.price_next,
                r.connection_fee,
                r.free_units,
            )
            .where(r.tariff_code == code)
            .order_by(r.kind, r.position, r.destination)
        )
        # A tariff of 50,000 prefixes has a few dozen distinct prices: build
        # each Rate once (it is frozen, so destinations may share it).
        distinct: dict[tuple[Any, ...], Rate] = {}
        for kind, destination, group_code, periods_json, *price in result.tuples().all():
            key = tuple(price)
            rate = distinct.get(key)
            if rate is None:
                first, first_interval, next_interval, next_price, fee, free_units = price
                rate = distinct[key] = Rate(
                    price_first=Money(first, currency),
                    first_interval=first_interval,
                    next_interval=next_interval,
                    price_next=Money(next_price, currency),
                    connection_fee=Money(fee, currency),
                    free_units=free_units,
                )
            group = groups.get(group_code) if group_code else None
            periods = periods_from_json(periods_json) if periods_json else ()
            if kind == "custom":
                tariff.add_custom(destination, rate, group, periods)
            else:
                tariff.add_prefix(destination, rate, group, periods)
        return tariff

    async def tariff_codes(self) -> list[str]:
        cache = await self._cache()
        if cache is not None and cache.tariff_codes is not None:
            return list(cache.tariff_codes)
        result = await self._execute(sa.select(tariffs.c.code).order_by(tariffs.c.code))
        codes = list(result.scalars().all())
        if cache is not None and self._shared.version == self._version:
            cache.tariff_codes = codes
        return list(codes)

    # -- dialing plan -----------------------------------------------------------------------

    async def set_dialing_rules(self, rules: Sequence[DialingRule]) -> None:
        DialingPlan(rules)  # refuse a plan the domain refuses, before writing anything
        await self._bump()
        await self._execute(sa.delete(dialing_rules))
        if rules:
            await self._execute(
                sa.insert(dialing_rules),
                [
                    {
                        "position": i,
                        "pattern": r.pattern,
                        "replacement": r.replacement,
                        "exact": r.exact,
                    }
                    for i, r in enumerate(rules)
                ],
            )

    async def dialing_plan(self) -> DialingPlan:
        cache = await self._cache()
        if cache is not None and cache.dialing is not None:
            return cache.dialing
        result = await self._execute(sa.select(dialing_rules).order_by(dialing_rules.c.position))
        plan = DialingPlan(
            DialingRule(row["pattern"], row["replacement"], row["exact"])
            for row in result.mappings().all()
        )
        if cache is not None and self._shared.version == self._version:
            cache.dialing = plan
        return plan

    # -- named service policies (not in the port yet) -------------------------------------

    async def save_service_policy(self, code: str, policy: ServicePolicy) -> None:
        """Insert or replace the named policy ``code``."""
        await self._bump()
        statement = self._insert(service_policies).values(code=code, policy=policy.to_dict())
        await self._execute(
            statement.on_conflict_do_update(
                index_elements=[service_policies.c.code], set_={"policy": statement.excluded.policy}
            )
        )

    async def service_policy(self, code: str) -> ServicePolicy | None:
        """The named policy, or None (read from the database: administration only)."""
        result = await self._execute(
            sa.select(service_policies.c.policy).where(service_policies.c.code == code)
        )
        data = result.scalar_one_or_none()
        return None if data is None else ServicePolicy.from_dict(dict(data))

    async def service_policies(self) -> dict[str, ServicePolicy]:
        """Every named policy by code, ordered by code."""
        result = await self._execute(sa.select(service_policies).order_by(service_policies.c.code))
        return {
            row["code"]: ServicePolicy.from_dict(dict(row["policy"]))
            for row in result.mappings().all()
        }
