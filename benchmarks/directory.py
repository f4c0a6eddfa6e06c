"""Directory login latency and sync throughput against a real OpenLDAP slapd.

Run with ``uv run python -m benchmarks.directory [--users N] [--logins M]``
(needs slapd: ``bash scripts/services`` installs it). Starts its own slapd on
a free port of 127.0.0.1 in a temporary directory, loads N users (half
administrators, half helpdesk), then measures:

1. baseline: a bare ldap3 simple bind as the user (connect, bind, unbind),
   M times: the least any directory login costs;
2. ``LdapDirectory.authenticate`` (service bind, escaped search, user bind,
   group mapping), M times one after another, and M with 8 at once;
3. ``SyncDirectory`` into a SQLite file: the first run (N created) and a
   second run (nothing changed), in users per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import ldap3

from ratel.adapters.db.migrations import upgrade
from ratel.adapters.directory.ldap import LdapConfig, LdapDirectory
from ratel.config import DirectoryKind, DirectoryTls, Settings
from ratel.container import build_container, dispose

BASE = "dc=bench,dc=test"
ROOT = f"cn=admin,{BASE}"
SECRET = "Bench-Passw0rd!"
ADMINS = f"cn=admins,ou=groups,{BASE}"
HELPDESK = f"cn=helpdesk,ou=groups,{BASE}"
CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {folder}/slapd.pid
database mdb
maxsize 268435456
suffix "{base}"
rootdn "{root}"
rootpw {secret}
directory {folder}/data
overlay memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_slapd(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    if shutil.which("slapd") is None:
        raise SystemExit("slapd is not installed: run `bash scripts/services`")
    (folder / "data").mkdir()
    (folder / "slapd.conf").write_text(
        CONF.format(folder=folder, base=BASE, root=ROOT, secret=SECRET)
    )
    port = _free_port()
    process = subprocess.Popen(
        ["slapd", "-f", str(folder / "slapd.conf"), "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit("slapd did not start")


def load_users(port: int, count: int) -> None:
    admin = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=port), ROOT, SECRET, auto_bind=True, raise_exceptions=True
    )
    admin.add(BASE, ["top", "dcObject", "organization"], {"o": "Bench", "dc": "bench"})
    for ou in ("people", "groups"):
        admin.add(f"ou={ou},{BASE}", ["top", "organizationalUnit"])
    members: dict[str, list[str]] = {ADMINS: [], HELPDESK: []}
    for index in range(count):
        uid = f"user{index:05d}"
        dn = f"uid={uid},ou=people,{BASE}"
        admin.add(
            dn,
            ["top", "inetOrgPerson"],
            {"uid": uid, "cn": f"User {index}", "sn": "Bench", "userPassword": SECRET},
        )
        members[ADMINS if index % 2 else HELPDESK].append(dn)
    for group, dns in members.items():
        admin.add(group, ["top", "groupOfNames"], {"member": dns})
    admin.unbind()


def bare_bind(port: int, uid: str) -> None:
    connection = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=port, get_info=ldap3.NONE),
        f"uid={uid},ou=people,{BASE}",
        SECRET,
        raise_exceptions=True,
    )
    connection.bind()
    connection.unbind()


def settings_for(port: int, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        directory=DirectoryKind.LDAP,
        directory_urls=(f"ldap://127.0.0.1:{port}",),
        directory_base_dn=BASE,
        directory_bind_dn=ROOT,
        directory_bind_password=SECRET,
        directory_role_groups=((ADMINS, "administrator"), (HELPDESK, "helpdesk")),
        directory_login_attribute="uid",
        directory_user_filter="(objectClass=inetOrgPerson)",
        directory_tls=DirectoryTls.PLAIN,
        directory_expiry_attribute="",
    )


async def measure(port: int, users: int, logins: int, folder: Path) -> None:
    uids = [f"user{i % users:05d}" for i in range(logins)]

    started = time.perf_counter()
    for uid in uids:
        await asyncio.to_thread(bare_bind, port, uid)
    baseline = (time.perf_counter() - started) / logins

    directory = LdapDirectory(
        LdapConfig(
            urls=(f"ldap://127.0.0.1:{port}",),
            base_dn=BASE,
            bind_dn=ROOT,
            bind_password=SECRET,
            role_groups=((ADMINS, "administrator"), (HELPDESK, "helpdesk")),
            login_attribute="uid",
            user_filter="(objectClass=inetOrgPerson)",
            starttls=False,
            expiry_attribute="",
        )
    )
    started = time.perf_counter()
    for uid in uids:
        assert await directory.authenticate(uid, SECRET) is not None
    sequential = (time.perf_counter() - started) / logins

    gate = asyncio.Semaphore(8)

    async def one(uid: str) -> None:
        async with gate:
            assert await directory.authenticate(uid, SECRET) is not None

    started = time.perf_counter()
    await asyncio.gather(*(one(uid) for uid in uids))
    concurrent = logins / (time.perf_counter() - started)
    directory.close()

    print(f"baseline bare bind:          {baseline * 1000:8.2f} ms per login")
    print(
        f"LdapDirectory.authenticate:  {sequential * 1000:8.2f} ms per login "
        f"({sequential / baseline:.2f}x the bare bind)"
    )
    print(f"8 logins at once:            {concurrent:8.1f} logins/s")

    url = f"sqlite+aiosqlite:///{folder / 'ratel.db'}"
    upgrade(url)
    container = build_container(settings_for(port, url))
    try:
        sync = container.sync_directory()
        started = time.perf_counter()
        first = await sync()
        first_seconds = time.perf_counter() - started
        started = time.perf_counter()
        second = await sync()
        second_seconds = time.perf_counter() - started
    finally:
        await dispose(container)
    assert first.created == users and first.error is None, first
    assert second.created == second.updated == second.deleted == 0, second
    print(
        f"sync, first run ({users} created): {first_seconds:6.2f} s, "
        f"{users / first_seconds:8.1f} users/s"
    )
    print(
        f"sync, second run (no change):   {second_seconds:6.2f} s, "
        f"{users / second_seconds:8.1f} users/s "
        f"({first_seconds / second_seconds:.2f}x faster than the first)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--logins", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ratel-bench-ldap-") as temp:
        folder = Path(temp)
        process, port = start_slapd(folder)
        try:
            load_users(port, args.users)
            asyncio.run(measure(port, args.users, args.logins, folder))
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)


if __name__ == "__main__":
    main()
