"""The local directory: staff users kept in ratel's own staff table with
argon2 password hashes.

It serves development, tests and a bootstrap administrator until (or
besides) Active Directory. It answers only for local users: a user mirrored
from a real directory has no password here and is never authenticated by it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ratel.domain.staff import StaffSource, StaffStatus, StaffUser
from ratel.ports.identity import DirectoryUser, PasswordHasher
from ratel.ports.store import UnitOfWorkFactory


def _entry(user: StaffUser) -> DirectoryUser:
    return DirectoryUser(
        login=user.login,
        name=user.name,
        email=user.email,
        country=user.country,
        company=user.company,
        roles=user.roles,
        disabled=user.status is StaffStatus.BLOCKED,
        expires_at=user.expires_at,
        source=StaffSource.LOCAL,
    )


class LocalDirectory:
    """The ``Directory`` port on the ``staff_users`` table."""

    def __init__(self, uow: UnitOfWorkFactory, passwords: PasswordHasher) -> None:
        self._uow = uow
        self._passwords = passwords
        self._dummy: str | None = None

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self._passwords.hash("ratel-local-directory-dummy")
        return self._dummy

    async def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        if not password:
            return None
        async with self._uow() as uow:
            user = await uow.staff.by_login(login)
        hashed = None
        if user is not None and user.source is StaffSource.LOCAL:
            hashed = user.password_hash
        if user is None or hashed is None:
            # Verify against a dummy hash anyway: an unknown login takes as
            # long to refuse as a wrong password, so timing tells no logins.
            await self._passwords.verify(await self._dummy_hash(), password)
            return None
        if not await self._passwords.verify(hashed, password):
            return None
        if self._passwords.needs_rehash(hashed):
            await self._rehash(user.id, password)
        return _entry(user)

    async def _rehash(self, staff_id: str, password: str) -> None:
        """Store a hash made with today's parameters (they were raised since)."""
        new_hash = await self._passwords.hash(password)
        async with self._uow() as uow:
            user = await uow.staff.get(staff_id, lock=True)
            if user is None or user.source is not StaffSource.LOCAL:
                return
            user.set_password_hash(new_hash)
            await uow.staff.save(user)
            await uow.commit()

    async def users(self) -> Sequence[DirectoryUser]:
        async with self._uow() as uow:
            staff = await uow.staff.all(limit=1_000_000)
        return [_entry(user) for user in staff if user.source is StaffSource.LOCAL]
