"""Subscriptions: an account's balance and quotas, pushed when they change.

``AccountFeed`` is subscribed to the process's ``EventRelay``; each GraphQL
subscription registers a ``Watch`` on its account. When an event concerns
the account (its customer's balance moved, its quota was used, renewed,
added or removed), the watch is woken and the subscription reads the fresh
view through the enquiry use cases and sends it. Wake-ups are coalesced:
a burst of events gives one read, and a slow client never makes the relay
wait (the relay only sets a flag).

Subscribers are in this process's memory, as their websockets are: every
``ratel`` node tails the outbox itself, so a change made on one node reaches
subscribers on every node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Final

import strawberry
from graphql import GraphQLError

from ratel.application.relay import EventRelay
from ratel.domain.errors import NotFound
from ratel.graphql.context import Unauthenticated
from ratel.graphql.fields import guarded_subscription
from ratel.graphql.permissions import Forbidden, allowed
from ratel.graphql.types import Balance, Info, Quota
from ratel.ports.store import IdentifierKind, OutboxEntry

log = logging.getLogger("ratel.graphql")


class Topic(StrEnum):
    BALANCE = "balance"
    QUOTAS = "quotas"


#: Events that may change what a customer may spend (by ``customer_id``).
BALANCE_EVENTS: Final = frozenset(
    {"BalanceChanged", "CreditLimitChanged", "SessionCharged", "FundsExhausted", "XdrProduced"}
)
#: Events that may change an account's quota buckets (by ``account_id``).
QUOTA_EVENTS: Final = frozenset(
    {
        "QuotaExhausted",
        "QuotaRenewed",
        "SessionCharged",
        "XdrProduced",
        "AddOnAdded",
        "AddOnRemoved",
        "ProductChanged",
    }
)

#: Subscriptions one process holds at most (each is a websocket operation
#: and a little memory); past it a new one is refused.
MAX_WATCHES: Final = 10_000


class TooManySubscriptions(GraphQLError):
    def __init__(self) -> None:
        super().__init__(
            "this server holds too many subscriptions; try again later",
            extensions={"code": "TOO_MANY_SUBSCRIPTIONS"},
        )


class Watch:
    """One subscription's interest in one account."""

    def __init__(self, account_id: str, customer_id: str, topic: Topic) -> None:
        self.account_id = account_id
        self.customer_id = customer_id
        self.topic = topic
        self._changed = asyncio.Event()

    def wake(self) -> None:
        self._changed.set()

    async def changed(self) -> None:
        """Wait for the next change (changes since the last call count once)."""
        await self._changed.wait()
        self._changed.clear()


class AccountFeed:
    """Wakes the watches of the accounts an outbox event concerns."""

    def __init__(self, relay: EventRelay, max_watches: int = MAX_WATCHES) -> None:
        self._max_watches = max_watches
        self._watches: set[Watch] = set()
        self._by_customer: dict[str, set[Watch]] = {}
        self._by_account: dict[str, set[Watch]] = {}
        relay.subscribe(self.on_event, *(BALANCE_EVENTS | QUOTA_EVENTS))

    @property
    def watching(self) -> int:
        return len(self._watches)

    @contextmanager
    def watch(self, account_id: str, customer_id: str, topic: Topic) -> Iterator[Watch]:
        """A watch for the block's duration (the subscription's life)."""
        if len(self._watches) >= self._max_watches:
            log.warning("subscription refused: too many", extra={"account_id": account_id})
            raise TooManySubscriptions()
        watch = Watch(account_id, customer_id, topic)
        index = self._by_customer if topic is Topic.BALANCE else self._by_account
        key = customer_id if topic is Topic.BALANCE else account_id
        self._watches.add(watch)
        index.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            self._watches.discard(watch)
            watches = index.get(key)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del index[key]

    async def on_event(self, entry: OutboxEntry) -> None:
        """The relay's handler: wake whoever the event concerns (never waits)."""
        payload = entry.payload
        if entry.event_type in BALANCE_EVENTS:
            customer_id = payload.get("customer_id")
            if isinstance(customer_id, str):
                for watch in self._by_customer.get(customer_id, ()):
                    watch.wake()
        if entry.event_type in QUOTA_EVENTS:
            account_id = payload.get("account_id")
            if isinstance(account_id, str):
                for watch in self._by_account.get(account_id, ()):
                    watch.wake()


async def _still_allowed(info: Info, key: str, account_id: str) -> None:
    """Check the caller again before a push: a revoked token, a blocked user
    or a terminated account ends the subscription with an error."""
    try:
        principal = await info.context.current_principal()
    except Unauthenticated:
        raise GraphQLError(
            "authentication failed: log in again", extensions={"code": "UNAUTHENTICATED"}
        ) from None
    if not allowed(principal, key, {"accountId": account_id}):
        raise Forbidden(principal, key)


def _refused_unknown(account_id: str) -> GraphQLError:
    return GraphQLError(f"account {account_id} does not exist", extensions={"code": "NOT_FOUND"})


@strawberry.type
class Subscription:
    @guarded_subscription(
        "The account's balance now, then again each time it changes (self-care: own account)."
    )
    async def account_balance(self, info: Info, account_id: str) -> AsyncGenerator[Balance, None]:
        use_cases = info.context.use_cases
        try:
            first = await use_cases.balance_enquiry(IdentifierKind.ACCOUNT_ID, account_id)
        except NotFound:
            raise _refused_unknown(account_id) from None
        # Watch before reading again: a change between the read and the
        # registration would otherwise be missed.
        with use_cases.account_feed.watch(account_id, first.customer_id, Topic.BALANCE) as watch:
            view = await use_cases.balance_enquiry(IdentifierKind.ACCOUNT_ID, account_id)
            yield Balance.of(view)
            while True:
                await watch.changed()
                await _still_allowed(info, "Subscription.accountBalance", account_id)
                view = await use_cases.balance_enquiry(IdentifierKind.ACCOUNT_ID, account_id)
                yield Balance.of(view)

    @guarded_subscription(
        "The account's active quotas now, then again each time they change "
        "(self-care: own account)."
    )
    async def account_quotas(
        self, info: Info, account_id: str
    ) -> AsyncGenerator[list[Quota], None]:
        use_cases = info.context.use_cases
        try:
            first = await use_cases.balance_enquiry(IdentifierKind.ACCOUNT_ID, account_id)
        except NotFound:
            raise _refused_unknown(account_id) from None
        with use_cases.account_feed.watch(account_id, first.customer_id, Topic.QUOTAS) as watch:
            while True:
                yield [Quota.of(v) for v in await use_cases.quota_enquiry(account_id)]
                await watch.changed()
                await _still_allowed(info, "Subscription.accountQuotas", account_id)
