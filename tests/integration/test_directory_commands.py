"""The directory sync as an operator runs it: `ratel staff sync` and
`ratel serve` (a run at start-up, then every interval) as real processes,
configured by RATEL_DIRECTORY_* variables, against the real Samba AD DC."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from directory_servers import SERVICE_PASSWORD, Samba, closed_port_url, samba

from ratel.adapters.db.migrations import upgrade
from tests.serving import LogLines, ratel, ratel_env, serve

__all__ = ["samba"]  # session fixture


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database, made once and copied per test (a `ratel db
    upgrade` process per test would cost seconds each on a busy machine)."""
    path = tmp_path_factory.mktemp("directory-commands") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def env(samba: Samba, template: Path, tmp_path: Path) -> dict[str, str]:
    password_file = tmp_path / "service-password"
    password_file.write_text(SERVICE_PASSWORD + "\n")
    roles = ";".join(f"{role}={group}" for group, role in samba.role_groups)
    values = ratel_env(
        tmp_path / "ratel.db",
        RATEL_DIRECTORY="ldap",
        RATEL_DIRECTORY_URLS=f"{closed_port_url()},{samba.ldaps_url}",
        RATEL_DIRECTORY_BASE_DN=samba.base_dn,
        RATEL_DIRECTORY_BIND_DN=samba.service_upn,
        RATEL_DIRECTORY_BIND_PASSWORD_FILE=str(password_file),
        RATEL_DIRECTORY_ROLE_GROUPS=roles,
        RATEL_DIRECTORY_CA_FILE=samba.ca_file,
        RATEL_DIRECTORY_TLS_SERVER_NAME=samba.tls_server_name,
        RATEL_DIRECTORY_CONNECT_TIMEOUT="2",
        RATEL_DIRECTORY_RECEIVE_TIMEOUT="1",
    )
    shutil.copyfile(template, tmp_path / "ratel.db")
    return values


def test_staff_sync_prints_what_it_changed(env: dict[str, str], tmp_path: Path) -> None:
    first = ratel(env, tmp_path, "staff", "sync")
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout and "0 deleted" in first.stdout
    listed = ratel(env, tmp_path, "staff", "list")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "directory" in lines["alice"] and "administrator" in lines["alice"]
    assert "blocked" in lines["dave"]

    again = ratel(env, tmp_path, "staff", "sync")
    assert again.returncode == 0, again.stderr
    assert "0 created, 0 updated, 0 blocked, 0 deleted" in again.stdout


def test_staff_sync_with_no_server_answering_exits_1_and_changes_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert ratel(env, tmp_path, "staff", "sync").returncode == 0
    before = ratel(env, tmp_path, "staff", "list").stdout
    down = {**env, "RATEL_DIRECTORY_URLS": closed_port_url()}
    done = ratel(down, tmp_path, "staff", "sync")
    assert done.returncode == 1
    assert "did not answer, nothing changed" in done.stderr
    assert ratel(env, tmp_path, "staff", "list").stdout == before


def test_staff_sync_needs_an_ldap_directory(env: dict[str, str], tmp_path: Path) -> None:
    done = ratel({**env, "RATEL_DIRECTORY": "local"}, tmp_path, "staff", "sync")
    assert done.returncode == 2 and "nothing to sync" in done.stderr


def test_settings_show_the_directory_without_its_password(
    env: dict[str, str], tmp_path: Path
) -> None:
    shown = ratel({**env, "RATEL_DIRECTORY_BIND_PASSWORD": "hush-hush"}, tmp_path, "settings")
    assert shown.returncode == 0, shown.stderr
    assert "hush-hush" not in shown.stdout
    assert "RATEL_DIRECTORY_BIND_PASSWORD=***" in shown.stdout
    assert "RATEL_DIRECTORY_ROLE_GROUPS=administrator=CN=Ratel-Admins" in shown.stdout


def test_an_incomplete_directory_setting_stops_ratel(env: dict[str, str], tmp_path: Path) -> None:
    done = ratel({**env, "RATEL_DIRECTORY_BASE_DN": ""}, tmp_path, "staff", "sync")
    assert done.returncode == 2
    assert "RATEL_DIRECTORY_BASE_DN: required with RATEL_DIRECTORY=ldap" in done.stderr


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = serve(env, tmp_path)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_serve_runs_the_sync_at_start_and_reports_it_healthy(
    server: subprocess.Popen[str], env: dict[str, str], tmp_path: Path
) -> None:
    log = LogLines(server.stderr)
    url = str(log.wait_for("listening")["url"])
    done = log.wait_for("directory sync done")
    assert isinstance(done["users_created"], int) and done["users_created"] >= 3
    health = httpx.get(f"{url}/healthz", timeout=5).json()
    assert health["listeners"]["directory-sync"] == "up"

    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0
    listed = ratel(env, tmp_path, "staff", "list")
    assert "alice" in listed.stdout and "harry" in listed.stdout
