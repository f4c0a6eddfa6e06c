"""Clock, identifiers and secret hashing for production."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from datetime import UTC, datetime


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class TimeOrderedIds:
    """Ids that sort by creation time (48-bit milliseconds then 80 random
    bits, like UUIDv7), so indexes on them stay append-mostly."""

    def new(self, prefix: str) -> str:
        millis = time.time_ns() // 1_000_000
        return f"{prefix}_{millis:012x}{os.urandom(10).hex()}"


class HmacHasher:
    """HMAC-SHA256 with a server secret: voucher codes can be found by value
    but not recovered from a stolen database."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the hashing secret must not be empty")
        self._key = secret.encode()

    def digest(self, secret: str) -> str:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).hexdigest()
