"""Which network sessions an account or a customer has open: what a protocol
adapter asks before it tells the network that something changed (a Diameter
RAR or ASR, a RADIUS CoA or Disconnect)."""

from __future__ import annotations

from ratel.application.base import UseCase


class OpenSessions(UseCase):
    """Ids of the open credit-control sessions of an account or a customer."""

    async def of_account(self, account_id: str) -> list[str]:
        """The account's open sessions."""
        async with self.deps.uow() as uow:
            return await uow.sessions.open_for_account(account_id)

    async def of_customer(self, customer_id: str) -> list[str]:
        """The open sessions of every account of the customer."""
        async with self.deps.uow() as uow:
            return await uow.sessions.open_for_customer(customer_id)
