"""Customers as the CRM apps see them: linked to a record of the CRM (the
Zendesk app links a customer to a Zendesk organization)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ratel.application.base import UseCase, found
from ratel.domain import events
from ratel.domain.crm import CrmSystem, InvalidCrmRecord, record_id
from ratel.domain.customer import Customer

log = logging.getLogger(__name__)


class LinkCrmRecord(UseCase):
    """Link a customer to its record in a CRM system (replacing an earlier
    link there). ``CrmRecordTaken`` when another customer holds the record;
    ``NotFound`` for an unknown customer. Records ``CustomerUpdated`` so that
    provisioning (the Zendesk adapter) learns of it."""

    async def __call__(self, customer_id: str, system: CrmSystem, external_id: str) -> Customer:
        external_id = record_id(external_id, system)
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            customer = found(await uow.customers.get(customer_id), "customer", customer_id)
            before = (await uow.crm_links.for_customers([customer.id], system.value)).get(
                customer.id
            )
            if before != external_id:
                await uow.crm_links.link(customer.id, system.value, external_id, now)
                await uow.outbox.add(
                    [
                        events.CustomerUpdated(
                            occurred_at=now,
                            customer_id=customer.id,
                            changed=(f"{system.value}_record",),
                        )
                    ]
                )
                await uow.commit()
        log.info(
            "CRM record linked",
            extra={"customer_id": customer.id, "system": system.value, "record": external_id},
        )
        return customer


class UnlinkCrmRecord(UseCase):
    """Remove a customer's link to its record in a CRM system; whether it had one."""

    async def __call__(self, customer_id: str, system: CrmSystem) -> bool:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            found(await uow.customers.get(customer_id), "customer", customer_id)
            removed = await uow.crm_links.unlink(customer_id, system.value)
            if removed:
                await uow.outbox.add(
                    [
                        events.CustomerUpdated(
                            occurred_at=now,
                            customer_id=customer_id,
                            changed=(f"{system.value}_record",),
                        )
                    ]
                )
                await uow.commit()
        return removed


class CrmRecordsOfCustomers(UseCase):
    """The CRM record of each of several customers that has one, in one
    query (a DataLoader batch)."""

    async def __call__(self, customer_ids: Sequence[str], system: CrmSystem) -> dict[str, str]:
        async with self.deps.uow() as uow:
            return await uow.crm_links.for_customers(customer_ids, system.value)


class CustomerByCrmRecord(UseCase):
    """The customer linked to a CRM record, or None."""

    async def __call__(self, system: CrmSystem, external_id: str) -> Customer | None:
        try:
            wanted = record_id(external_id, system)  # as links are stored
        except InvalidCrmRecord:
            return None  # no link has such an id
        async with self.deps.uow() as uow:
            customer_id = await uow.crm_links.customer_for(system.value, wanted)
            return await uow.customers.get(customer_id) if customer_id else None
