"""`ratel staff` and `ratel apikey` as an operator runs them, on a temporary
SQLite file; what they made is then used through the container as the API
will (logins, bearer tokens, API keys)."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ratel.application.identity import CallerKind, Permission
from ratel.config import Settings
from ratel.container import build_container, dispose
from ratel.domain.staff import AuthenticationFailed

PASSWORD = "bootstrap-passphrase"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ratel-cli-identity")


@pytest.fixture(scope="module")
def env(workdir: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("RATEL_")}
    values.update(
        RATEL_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'ratel.db'}",
        RATEL_LOG_FORMAT="json",
        COLUMNS="200",
    )
    return values


def ratel(
    env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratel.cli", *args],
        env=env,
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def migrated(env: dict[str, str], workdir: Path) -> str:
    done = ratel(env, workdir, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    return env["RATEL_DATABASE_URL"]


def use(url: str, work: Any) -> Any:
    """Run ``work(container)`` on the CLI's database, as the server would."""

    async def body() -> Any:
        container = build_container(Settings(database_url=url))
        try:
            return await work(container)
        finally:
            await dispose(container)

    return asyncio.run(body())


def test_staff_add_with_the_password_on_stdin_then_log_in(
    env: dict[str, str], workdir: Path, migrated: str
) -> None:
    added = ratel(
        env,
        workdir,
        "staff",
        "add",
        "Root",
        "--name",
        "Bootstrap Admin",
        "--role",
        "administrator",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert "staff user root created (administrator)" in added.stdout
    assert PASSWORD not in added.stdout + added.stderr

    listed = ratel(env, workdir, "staff", "list")
    assert listed.returncode == 0, listed.stderr
    row = r"^root\s+active\s+local\s+administrator\s+Bootstrap Admin"
    assert re.search(row, listed.stdout, re.MULTILINE)

    async def login(container: Any) -> Any:
        session = await container.staff_login()("root", PASSWORD)
        return await container.authenticate_caller()(session.token)

    principal = use(migrated, login)
    assert principal.kind is CallerKind.STAFF and principal.may(Permission.API_KEYS_MANAGE)

    again = ratel(
        env,
        workdir,
        "staff",
        "add",
        "ROOT",
        "--name",
        "X",
        "--role",
        "helpdesk",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert again.returncode == 1 and "exists" in again.stderr


def test_staff_add_refuses_what_it_cannot_use(
    env: dict[str, str], workdir: Path, migrated: str
) -> None:
    no_terminal = ratel(env, workdir, "staff", "add", "bob", "--name", "Bob", "--role", "helpdesk")
    assert no_terminal.returncode == 2
    assert "--password-stdin" in no_terminal.stderr
    weak = ratel(
        env,
        workdir,
        "staff",
        "add",
        "bob",
        "--name",
        "Bob",
        "--role",
        "helpdesk",
        "--password-stdin",
        stdin="short\n",
    )
    assert weak.returncode == 1 and "at least 8 characters" in weak.stderr
    bad_role = ratel(
        env,
        workdir,
        "staff",
        "add",
        "bob",
        "--name",
        "Bob",
        "--role",
        "root",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert bad_role.returncode == 1 and "unknown role root" in bad_role.stderr


class Terminal:
    """The parent's side of a pseudo-terminal: waits for prompts, answers."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.transcript = bytearray()
        self._unread = bytearray()

    def expect(self, pattern: bytes, seconds: float = 60) -> None:
        """Wait until ``pattern`` appears in output not matched before."""
        deadline = time.monotonic() + seconds
        while pattern not in self._unread:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"never saw {pattern!r}: {bytes(self.transcript)!r}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"it ended before {pattern!r}: {bytes(self.transcript)!r}"
                self.transcript.extend(chunk)
                self._unread.extend(chunk)
        # getpass flushes typed-ahead input, so answer only after each prompt
        del self._unread[: self._unread.index(pattern) + len(pattern)]

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")


def test_staff_add_asks_twice_at_a_terminal(
    env: dict[str, str], workdir: Path, migrated: str
) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: ratel on a terminal of its own
        try:
            os.chdir(workdir)
            os.execve(
                sys.executable,
                [
                    sys.executable,
                    "-m",
                    "ratel.cli",
                    "staff",
                    "add",
                    "carol",
                    "--name",
                    "Carol",
                    "--role",
                    "helpdesk",
                ],
                env,
            )
        finally:
            os._exit(127)  # never go on running the test suite in the child
    terminal = Terminal(fd)
    try:
        terminal.expect(b"Password:")
        terminal.type("first-passphrase")
        terminal.expect(b"Repeat for confirmation:")
        terminal.type("other-passphrase")  # a typo: asked again
        terminal.expect(b"Error: The two entered values do not match.")
        terminal.expect(b"Password:")
        terminal.type("first-passphrase")
        terminal.expect(b"Repeat for confirmation:")
        terminal.type("first-passphrase")
        terminal.expect(b"staff user carol created")
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, bytes(terminal.transcript)
    assert b"passphrase" not in terminal.transcript  # hidden input: never echoed

    async def login(container: Any) -> Any:
        return (await container.staff_login()("carol", "first-passphrase")).principal

    assert use(migrated, login).roles == {"helpdesk"}


def test_apikey_create_prints_the_key_once_and_revoke_ends_it(
    env: dict[str, str], workdir: Path, migrated: str
) -> None:
    created = ratel(
        env, workdir, "apikey", "create", "USSD gateway 1", "--scope", "ussd", "--scope", "crm:read"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert re.fullmatch(r"rk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key), created.stdout
    assert "shown this once" in created.stderr

    listed = ratel(env, workdir, "apikey", "list")
    assert listed.returncode == 0, listed.stderr
    assert key not in listed.stdout  # the secret is never shown again
    prefix = key.split("_")[1]
    [line] = [row for row in listed.stdout.splitlines() if prefix in row]
    key_id = line.split()[0]
    assert "active" in line and "crm:read,ussd" in line

    async def authenticate(container: Any) -> Any:
        return await container.authenticate_caller()(key)

    principal = use(migrated, authenticate)
    assert principal.kind is CallerKind.API_CLIENT
    assert principal.scopes == {"ussd", "crm:read"} and principal.subject == key_id

    revoked = ratel(env, workdir, "apikey", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert f"API key {key_id} (USSD gateway 1) revoked" in revoked.stdout
    with pytest.raises(AuthenticationFailed):
        use(migrated, authenticate)

    unknown_scope = ratel(env, workdir, "apikey", "create", "x", "--scope", "admin")
    assert unknown_scope.returncode == 1 and "unknown scope admin" in unknown_scope.stderr
    unknown_key = ratel(env, workdir, "apikey", "revoke", "key_nobody")
    assert unknown_key.returncode == 1 and "does not exist" in unknown_key.stderr
