"""Time and identifiers: injected so that use cases and tests control them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the time (timezone-aware UTC)."""

    def now(self) -> datetime:
        """The current time."""
        ...


class IdGenerator(Protocol):
    """Makes unique identifiers."""

    def new(self, prefix: str) -> str:
        """A new unique id starting with ``prefix`` (for example ``cus_...``)."""
        ...


class SecretHasher(Protocol):
    """Hashes secrets that must be found again by value (voucher codes)."""

    def digest(self, secret: str) -> str:
        """A stable keyed hash of ``secret``."""
        ...
