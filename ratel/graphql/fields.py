"""How a root field is declared and how a mutation reports a business refusal;
shared by the schema's modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from strawberry.types.field import StrawberryField

from ratel.domain.errors import DomainError, NotFound
from ratel.graphql.permissions import Guard
from ratel.graphql.types import Info, UserError

T = TypeVar("T")


def guarded(description: str | None = None) -> StrawberryField:
    """A root query field checked against the permission matrix."""
    return strawberry.field(description=description, extensions=[Guard()])


def guarded_mutation(description: str | None = None) -> StrawberryField:
    """A mutation checked against the permission matrix."""
    return strawberry.mutation(description=description, extensions=[Guard()])


def guarded_subscription(description: str | None = None) -> StrawberryField:
    """A subscription checked against the permission matrix."""
    return strawberry.subscription(description=description, extensions=[Guard()])


async def attempt(call: Callable[[], Awaitable[T]]) -> tuple[T | None, list[UserError]]:
    """Run a use case; a business refusal or bad input becomes a user error."""
    try:
        return await call(), []
    except (DomainError, ValueError) as error:  # domain errors, and bad values of inputs
        return None, [UserError.of(error)]


def own_account(info: Info) -> tuple[str, str]:
    """The account and customer of the calling account holder."""
    principal = info.context.principal
    if principal.account_id is None or principal.customer_id is None:
        raise NotFound("the caller holds no account")
    return principal.account_id, principal.customer_id
