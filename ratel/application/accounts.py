"""Account lifecycle: create, identifiers, block, unblock, terminate, product
change, SIM and number change, location.

The quotas a product gives become buckets of the account: the main
product's when the account is created or changes product, an add-on's when
it is added (see ``add_ons``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ratel.application.base import Dependencies, UseCase, found, record
from ratel.domain.account import Account
from ratel.domain.catalogue import Precedence, Product, QuotaDefinition
from ratel.domain.customer import Customer
from ratel.domain.errors import IllegalTransition, InvalidAccount
from ratel.domain.identifiers import Iccid, Identifiers, Imsi, Msisdn
from ratel.domain.quota import QuotaBucket
from ratel.ports.store import UnitOfWork


def buckets_for(
    deps: Dependencies,
    account: Account,
    product: Product,
    now: datetime,
    *,
    ends_at: datetime | None = None,
    assignment_id: str | None = None,
    precedence: int | None = None,
    definitions: Sequence[QuotaDefinition] | None = None,
) -> list[QuotaBucket]:
    """Fresh buckets for every quota a product gives the account (or for
    ``definitions``, some of them)."""
    return [
        QuotaBucket.grant(
            id=deps.ids.new("qb"),
            account_id=account.id,
            product_code=product.code,
            definition=definition,
            precedence=product.precedence if precedence is None else precedence,
            now=now,
            ends_at=ends_at,
            assignment_id=assignment_id,
        )
        for definition in (product.quotas if definitions is None else definitions)
    ]


async def _product(uow: UnitOfWork, code: str, *, main: bool) -> Product:
    product = found(await uow.catalogue.get_product(code), "product", code)
    if main and product.is_add_on:
        raise InvalidAccount(f"{code} is an add-on, not a main product")
    return product


async def _usable_customer(uow: UnitOfWork, customer_id: str) -> Customer:
    customer = found(await uow.customers.get(customer_id, lock=True), "customer", customer_id)
    if customer.status.value == "closed":
        raise IllegalTransition(f"customer {customer_id} is closed")
    return customer


class CreateAccount(UseCase):
    """A new account on a main product, with that product's quotas."""

    async def __call__(
        self,
        customer_id: str,
        product_code: str,
        *,
        identifiers: Identifiers | None = None,
        custom_fields: Mapping[str, str] | None = None,
        account_id: str | None = None,
    ) -> Account:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            await _usable_customer(uow, customer_id)
            product = await _product(uow, product_code, main=True)
            account = Account.create(
                account_id or self.deps.ids.new("acc"),
                customer_id,
                product_code,
                now,
                identifiers=identifiers,
                custom_fields=custom_fields,
            )
            await uow.accounts.add(account)
            await uow.quotas.add_many(buckets_for(self.deps, account, product, now))
            await record(uow, account)
            await uow.commit()
        return account


def _resumed(mains: list[QuotaBucket], product: Product, now: datetime) -> list[QuotaDefinition]:
    """Resume the account's buckets of ``product`` that a change away from it
    ended within their period (changing product and back gives no fresh
    allowance); the quotas left need fresh buckets."""
    fresh = []
    for definition in product.quotas:
        earlier = [
            b for b in mains if b.product_code == product.code and b.quota_code == definition.code
        ]
        latest = max(earlier, key=lambda b: (b.expires_at or now, b.valid_from), default=None)
        if latest is None or not latest.resume(definition, now):
            fresh.append(definition)
    return fresh


def _end(buckets: list[QuotaBucket], now: datetime) -> None:
    """End ``buckets`` at ``now``; one that ended before keeps its end (moving
    it later would make it due for renewal again)."""
    for bucket in buckets:
        if bucket.expires_at is None or bucket.expires_at > now:
            bucket.expires_at = now


class _AccountChange(UseCase):
    """Load an account for update, change it, save it and its events."""

    async def _change(self, account_id: str, change: Any, *, end_quotas: bool = False) -> Account:
        """``end_quotas``: the account's quota buckets end now too."""
        async with self.deps.uow() as uow:
            account = found(await uow.accounts.get(account_id, lock=True), "account", account_id)
            now = self.deps.clock.now()
            change(account, now)
            if end_quotas:
                buckets = await uow.quotas.for_account(account_id, lock=True)
                _end(buckets, now)
                await uow.quotas.save(buckets)
            await uow.accounts.save(account)
            await record(uow, account)
            await uow.commit()
        return account


class BlockAccount(_AccountChange):
    """Block an account (credit limit reached, fraud, staff decision)."""

    async def __call__(self, account_id: str, reason: str = "blocked by staff") -> Account:
        return await self._change(account_id, lambda a, now: a.block(reason, now))


class UnblockAccount(_AccountChange):
    """Lift a block."""

    async def __call__(self, account_id: str) -> Account:
        return await self._change(account_id, lambda a, now: a.unblock(now))


class TerminateAccount(_AccountChange):
    """End an account for good, and its quotas (no more renewals)."""

    async def __call__(self, account_id: str) -> Account:
        return await self._change(account_id, lambda a, now: a.terminate(now), end_quotas=True)


class ChangeNumber(_AccountChange):
    """Give the account a new MSISDN."""

    async def __call__(self, account_id: str, msisdn: str | None) -> Account:
        number = Msisdn.parse(msisdn) if msisdn else None
        return await self._change(account_id, lambda a, now: a.change_number(number, now))


class ChangeSim(_AccountChange):
    """A SIM swap: new IMSI and ICCID."""

    async def __call__(self, account_id: str, imsi: str | None, iccid: str | None) -> Account:
        new_imsi = Imsi.parse(imsi) if imsi else None
        new_iccid = Iccid.parse(iccid) if iccid else None
        return await self._change(account_id, lambda a, now: a.change_sim(new_imsi, new_iccid, now))


class UpdateAccount(_AccountChange):
    """Change IMEI, aliases, CPE device, static IP and custom fields."""

    async def __call__(
        self,
        account_id: str,
        *,
        custom_fields: Mapping[str, str | None] | None = None,
        **identifiers: Any,
    ) -> Account:
        def change(account: Account, now: datetime) -> None:
            if identifiers:
                account.set_identifiers(now, **identifiers)
            if custom_fields:
                account.update_custom_fields(now, custom_fields)

        return await self._change(account_id, change)


class AddAlias(_AccountChange):
    """An identifier the network returned for the account (a satellite modem ID)."""

    async def __call__(self, account_id: str, alias: str) -> Account:
        return await self._change(account_id, lambda a, now: a.add_alias(alias, now))


class SetLocation(_AccountChange):
    """The network reports where the user is; restricted locations block data."""

    async def __call__(self, account_id: str, location: str) -> Account:
        policy = self.deps.location_policy
        return await self._change(account_id, lambda a, now: a.set_location(location, now, policy))


class LiftLocationBlock(_AccountChange):
    """The account holder chooses to keep data in a restricted location."""

    async def __call__(self, account_id: str) -> Account:
        policy = self.deps.location_policy
        return await self._change(account_id, lambda a, now: a.lift_location_block(now, policy))


class ChangeProduct(UseCase):
    """Move the account to another main product: the old product's quotas
    go, the new product's come (add-ons stay)."""

    async def __call__(self, account_id: str, product_code: str) -> Account:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            account = found(await uow.accounts.get(account_id, lock=True), "account", account_id)
            product = await _product(uow, product_code, main=True)
            old = account.product_code
            account.change_product(product_code, now)
            if old != product_code:
                buckets = await uow.quotas.for_account(account_id, lock=True)
                mains = [
                    b
                    for b in buckets
                    if b.assignment_id is None and b.precedence == Precedence.MAIN
                ]
                # ends the old product's allowance now; history stays
                _end(mains, now)
                fresh = _resumed(mains, product, now)
                await uow.quotas.save(buckets)
                await uow.quotas.add_many(
                    buckets_for(self.deps, account, product, now, definitions=fresh)
                )
            await uow.accounts.save(account)
            await record(uow, account)
            await uow.commit()
        return account
