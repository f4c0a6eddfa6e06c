"""Password hashing with argon2id (argon2-cffi).

Hashing and verifying are deliberately slow (tens of milliseconds of CPU
and tens of MiB of memory with the default parameters); they run in a
worker thread so the event loop keeps answering credit-control requests
meanwhile. argon2-cffi releases the GIL while it hashes.
"""

from __future__ import annotations

import asyncio

from argon2 import DEFAULT_MEMORY_COST, DEFAULT_PARALLELISM, DEFAULT_TIME_COST
from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2Hasher:
    """The ``PasswordHasher`` port on argon2id. Without arguments it uses
    argon2-cffi's defaults (RFC 9106's low-memory profile); tests pass cheaper
    costs."""

    def __init__(
        self,
        *,
        time_cost: int = DEFAULT_TIME_COST,
        memory_cost: int = DEFAULT_MEMORY_COST,
        parallelism: int = DEFAULT_PARALLELISM,
    ) -> None:
        self._argon2 = Argon2(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify_now, password_hash, password)

    def verify_now(self, password_hash: str, password: str) -> bool:
        """``verify`` on the calling thread."""
        try:
            return self._argon2.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            # a mismatch, or a hash that is not argon2 (or corrupt): both "no"
            return False
        except (TypeError, ValueError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except (InvalidHashError, TypeError, ValueError):
            return True
