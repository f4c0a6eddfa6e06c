"""Catalogue administration: products, destination groups, tariffs, dialing rules."""

from __future__ import annotations

from collections.abc import Sequence

from ratel.application.base import UseCase
from ratel.domain.catalogue import Product, ServicePolicy
from ratel.domain.errors import InvalidCatalogue
from ratel.domain.rating import DestinationGroup, DialingRule, Tariff


class DefineProduct(UseCase):
    """Add a product, or replace its definition when ``replace`` is set.
    Every tariff its usage charges name must exist."""

    async def __call__(self, product: Product, *, replace: bool = False) -> Product:
        async with self.deps.uow() as uow:
            known = set(await uow.catalogue.tariff_codes())
            missing = sorted({c.tariff_code for c in product.usage_charges} - known)
            if missing:
                raise InvalidCatalogue(f"{product.code}: unknown tariffs {', '.join(missing)}")
            if await uow.catalogue.get_product(product.code) is None:
                await uow.catalogue.add_product(product)
            elif replace:
                await uow.catalogue.save_product(product)
            else:
                raise InvalidCatalogue(f"product {product.code} already exists")
            await uow.commit()
        return product


class DefineDestinationGroups(UseCase):
    """Add or replace destination groups (with their ledger codes)."""

    async def __call__(self, groups: Sequence[DestinationGroup]) -> None:
        async with self.deps.uow() as uow:
            for group in groups:
                await uow.catalogue.add_destination_group(group)
            await uow.commit()


class DefineTariff(UseCase):
    """Add or replace a tariff with all its rates."""

    async def __call__(self, tariff: Tariff) -> Tariff:
        async with self.deps.uow() as uow:
            known = {g.code for g in await uow.catalogue.destination_groups()}
            for entry in tariff.entries():
                if entry.group is not None and entry.group.code not in known:
                    raise InvalidCatalogue(
                        f"tariff {tariff.code}: destination group {entry.group.code} is not defined"
                    )
            await uow.catalogue.add_tariff(tariff)
            await uow.commit()
        return tariff


class SetDialingRules(UseCase):
    """Replace the dialing plan (number translation before rating)."""

    async def __call__(self, rules: Sequence[DialingRule]) -> None:
        async with self.deps.uow() as uow:
            await uow.catalogue.set_dialing_rules(rules)
            await uow.commit()


class DefineServicePolicy(UseCase):
    """Insert or replace a named service policy (a reusable set of what the
    network needs: speeds, hotline URL, profile ids)."""

    async def __call__(self, code: str, policy: ServicePolicy) -> ServicePolicy:
        code = code.strip().upper() if isinstance(code, str) else ""
        if not code:
            raise InvalidCatalogue("a service policy needs a code")
        async with self.deps.uow() as uow:
            await uow.catalogue.save_service_policy(code, policy)
            await uow.commit()
        return policy
