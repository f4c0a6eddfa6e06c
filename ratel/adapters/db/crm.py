"""Customers' links to CRM records, in ``crm_links``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ratel.adapters.db.statements import Repository
from ratel.adapters.db.tables import crm_links
from ratel.domain.crm import CrmRecordTaken


class SqlCrmLinkRepository(Repository):
    """One row per customer and system; UNIQUE (system, external_id)."""

    async def link(self, customer_id: str, system: str, external_id: str, now: datetime) -> None:
        c = crm_links.c
        holder = await self.customer_for(system, external_id)
        if holder is not None and holder != customer_id:
            raise CrmRecordTaken(f"{system} record {external_id} is linked to {holder}")
        if holder == customer_id:
            return
        statement = self._insert(crm_links).values(
            customer_id=customer_id, system=system, external_id=external_id, linked_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[c.customer_id, c.system],
            set_={"external_id": external_id, "linked_at": now},
        )
        try:
            await self._execute(statement)
        except IntegrityError as exc:  # linked by a concurrent transaction: it won
            raise CrmRecordTaken(f"{system} record {external_id} is linked meanwhile") from exc

    async def unlink(self, customer_id: str, system: str) -> bool:
        c = crm_links.c
        result = await self._execute(
            sa.delete(crm_links).where(c.customer_id == customer_id, c.system == system)
        )
        return bool(result.rowcount)

    async def for_customers(self, customer_ids: Sequence[str], system: str) -> dict[str, str]:
        if not customer_ids:
            return {}
        c = crm_links.c
        result = await self._execute(
            sa.select(c.customer_id, c.external_id).where(
                c.system == system, c.customer_id.in_(list(dict.fromkeys(customer_ids)))
            )
        )
        return {row.customer_id: row.external_id for row in result}

    async def customer_for(self, system: str, external_id: str) -> str | None:
        c = crm_links.c
        result = await self._execute(
            sa.select(c.customer_id).where(c.system == system, c.external_id == external_id)
        )
        found: str | None = result.scalar_one_or_none()
        return found
