"""The identity part of the wiring: settings reach it, adapters serve it."""

from __future__ import annotations

from datetime import timedelta

from ratel.adapters.directory.local import LocalDirectory
from ratel.adapters.passwords import Argon2Hasher
from ratel.adapters.telemetry import Instrumented
from ratel.application.auth import Authenticate, StaffLogin
from ratel.config import Settings
from ratel.container import Container, build_container


def test_identity_is_wired_from_the_settings() -> None:
    container = build_container(
        Settings(database_url="sqlite+aiosqlite:///:memory:", token_ttl_seconds=600)
    )
    identity = container.identity()
    assert identity.token_lifetime == timedelta(minutes=10)
    assert isinstance(identity.directory, LocalDirectory)
    assert isinstance(identity.passwords, Argon2Hasher)
    login = container.staff_login()
    assert isinstance(login, Instrumented) and isinstance(login.wrapped, StaffLogin)
    assert login.wrapped.identity is identity
    assert isinstance(container.authenticate_caller().wrapped, Authenticate)  # type: ignore[attr-defined]


async def test_a_local_login_through_the_container(container: Container) -> None:
    await container.create_local_staff_user()("ada", "Ada", "correct horse", ["helpdesk"])
    session = await container.staff_login()("ada", "correct horse")
    principal = await container.authenticate_caller()(session.token)
    assert principal.subject == "ada" and principal.roles == {"helpdesk"}
    snapshot = container.telemetry().exposition().decode()
    assert 'operation="staff_login",outcome="ok"' in snapshot
