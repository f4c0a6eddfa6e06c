"""What every use case shares: its dependencies and the bookkeeping that goes
with every change (events to the outbox, balance movements to the journal)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from ratel.domain.charging import ChargingConfig
from ratel.domain.customer import Customer
from ratel.domain.errors import NotFound
from ratel.domain.events import DomainEvent
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.location import LocationPolicy
from ratel.domain.money import Money
from ratel.ports.store import UnitOfWork, UnitOfWorkFactory
from ratel.ports.system import Clock, IdGenerator, SecretHasher

T = TypeVar("T")


@dataclass(frozen=True)
class Dependencies:
    """Injected once by the container; every use case gets the same."""

    uow: UnitOfWorkFactory
    clock: Clock
    ids: IdGenerator
    hasher: SecretHasher
    charging: ChargingConfig = field(default_factory=ChargingConfig)
    location_policy: LocationPolicy = field(default_factory=LocationPolicy)


class UseCase:
    """Base of the use cases: holds the dependencies."""

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps


class HasEvents(Protocol):
    def pull_events(self) -> list[DomainEvent]: ...


def found(value: T | None, what: str, key: str) -> T:
    """``value``, or ``NotFound`` naming what was looked for."""
    if value is None:
        raise NotFound(f"{what} {key} does not exist")
    return value


async def record(uow: UnitOfWork, *sources: HasEvents, extra: Iterable[DomainEvent] = ()) -> None:
    """Move the events the aggregates raised (and ``extra``) to the outbox,
    inside the use case's transaction."""
    pending: list[DomainEvent] = []
    for source in sources:
        pending.extend(source.pull_events())
    pending.extend(extra)
    if pending:
        await uow.outbox.add(pending)


def balance_transaction(
    deps: Dependencies,
    customer: Customer,
    balance_before: Money,
    reason: TransactionReason,
    *,
    reference: str = "",
    ledger_code: str | None = None,
    account_id: str | None = None,
) -> BalanceTransaction | None:
    """The balance transaction of the change since ``balance_before`` (None
    if the balance did not move), not yet written."""
    delta = customer.wallet.balance - balance_before
    if delta.is_zero():
        return None
    return BalanceTransaction(
        id=deps.ids.new("txn"),
        customer_id=customer.id,
        amount=delta.stored(),
        balance_after=customer.wallet.balance.stored(),
        reason=reason,
        created_at=deps.clock.now(),
        reference=reference,
        ledger_code=ledger_code,
        account_id=account_id,
    )


async def journal(
    uow: UnitOfWork,
    deps: Dependencies,
    customer: Customer,
    balance_before: Money,
    reason: TransactionReason,
    *,
    reference: str = "",
    ledger_code: str | None = None,
    account_id: str | None = None,
) -> BalanceTransaction | None:
    """Write one balance transaction for the change since ``balance_before``."""
    transaction = balance_transaction(
        deps,
        customer,
        balance_before,
        reason,
        reference=reference,
        ledger_code=ledger_code,
        account_id=account_id,
    )
    if transaction is not None:
        await uow.transactions.add(transaction)
    return transaction
