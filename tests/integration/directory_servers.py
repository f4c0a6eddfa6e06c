"""Real directory servers for the directory tests, started once per test run.

* Samba as an Active Directory domain controller: provisioned in a temporary
  directory, serving LDAP (389, StartTLS) and LDAPS (636) with its own CA.
  Samba's LDAP ports are not configurable, so it listens on a loopback
  address of its own (127.x.y.z, added to ``lo`` for the run): other test
  runs on the machine keep 127.0.0.1:389/636 and their own addresses.
* OpenLDAP slapd with the memberof overlay (the uid/memberOf flavour), on a
  free port of 127.0.0.1, with its own configuration directory.

The packages come from ``scripts/services``. A missing package or a taken
port fails the fixture with what to do, never a skip. Tests that change the
directory work in an organizational unit of their own (``scratch_ou``), so
they do not see each other's users.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import ldap3
import pytest

SAMBA_REALM = "RATEL.TEST"
SAMBA_BASE = "DC=ratel,DC=test"
SAMBA_HOST_NAME = "DC1.ratel.test"  # the name in the certificate Samba makes
SAMBA_ADMIN_PASSWORD = "Adm1n-Passw0rd!"
SAMBA_USERS = f"CN=Users,{SAMBA_BASE}"
SAMBA_ADMINS = f"CN=Ratel-Admins,{SAMBA_USERS}"
SAMBA_HELPDESK = f"CN=Ratel-Helpdesk,{SAMBA_USERS}"
SAMBA_OTHERS = f"CN=Canteen,{SAMBA_USERS}"  # a group that maps to no role

SLAPD_BASE = "dc=ratel,dc=org"
SLAPD_ROOT = f"cn=admin,{SLAPD_BASE}"
SLAPD_ADMINS = f"cn=ratel-admins,ou=groups,{SLAPD_BASE}"
SLAPD_HELPDESK = f"cn=ratel-helpdesk,ou=groups,{SLAPD_BASE}"

#: Passwords of the users the servers start with.
PASSWORD = "Str0ng-Passw0rd!"
SERVICE_PASSWORD = "Serv1ce-Passw0rd!"

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def filetime(moment: datetime) -> str:
    """Active Directory's accountExpires form of ``moment``."""
    return str(int((moment - _FILETIME_EPOCH).total_seconds() * 10_000_000))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: the directory tests need Samba and OpenLDAP "
            "(run `bash scripts/services`, which scripts/test does)",
            pytrace=False,
        )


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args!r} exited ({process.returncode}): see {log}", False)
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.1)
    pytest.fail(f"nothing listens on {host}:{port} after 60 s: see {log}", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the server and everything it forked (its own process group)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _run(*command: str, log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        pytest.fail(f"{command[0]} {command[1:3]} failed ({done.returncode}): see {log}", False)


# -- Samba AD DC -----------------------------------------------------------------------


@dataclass
class Samba:
    """A running Samba AD DC and how to reach it."""

    address: str
    ca_file: str
    folder: Path
    base_dn: str = SAMBA_BASE
    service_upn: str = f"svc-ratel@{SAMBA_REALM.lower()}"
    tls_server_name: str = SAMBA_HOST_NAME
    role_groups: tuple[tuple[str, str], ...] = (
        (SAMBA_ADMINS, "administrator"),
        (SAMBA_HELPDESK, "helpdesk"),
    )
    _admin: ldap3.Connection | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.address}:636"

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.address}:389"

    def admin(self) -> ldap3.Connection:
        """A connection as the domain administrator (to change the directory)."""
        with self._lock:
            if self._admin is None or self._admin.closed:
                tls = ldap3.Tls(validate=ssl.CERT_NONE)
                server = ldap3.Server(self.address, port=636, use_ssl=True, tls=tls)
                self._admin = ldap3.Connection(
                    server,
                    user=f"Administrator@{SAMBA_REALM.lower()}",
                    password=SAMBA_ADMIN_PASSWORD,
                    auto_bind=ldap3.AUTO_BIND_NO_TLS,
                    raise_exceptions=True,
                )
            return self._admin

    def add_user(
        self,
        login: str,
        *,
        container: str = SAMBA_USERS,
        name: str | None = None,
        groups: tuple[str, ...] = (),
        password: str = PASSWORD,
        disabled: bool = False,
        expires: datetime | None = None,
        mail: str | None = None,
        country: str | None = None,
        company: str | None = None,
    ) -> str:
        """Add an enabled user (then disable or expire them as asked); its DN."""
        admin = self.admin()
        display = name or login.title()
        dn = f"CN={display},{container}"
        attributes: dict[str, object] = {
            "sAMAccountName": login,
            "userPrincipalName": f"{login}@{SAMBA_REALM.lower()}",
            "displayName": display,
            "unicodePwd": f'"{password}"'.encode("utf-16-le"),
        }
        for key, value in (("mail", mail), ("c", country), ("company", company)):
            if value:
                attributes[key] = value
        admin.add(dn, ["top", "person", "organizationalPerson", "user"], attributes)
        flags = 512 | (2 if disabled else 0)  # NORMAL_ACCOUNT, ACCOUNTDISABLE
        changes: dict[str, list[tuple[str, list[object]]]] = {
            "userAccountControl": [(ldap3.MODIFY_REPLACE, [str(flags)])]
        }
        if expires is not None:
            changes["accountExpires"] = [(ldap3.MODIFY_REPLACE, [filetime(expires)])]
        admin.modify(dn, changes)
        for group in groups:
            admin.modify(group, {"member": [(ldap3.MODIFY_ADD, [dn])]})
        return dn

    def modify(self, dn: str, **values: object) -> None:
        self.admin().modify(
            dn, {name: [(ldap3.MODIFY_REPLACE, [value])] for name, value in values.items()}
        )

    def disable(self, dn: str) -> None:
        self.modify(dn, userAccountControl="514")

    def add_to_group(self, dn: str, group: str) -> None:
        self.admin().modify(group, {"member": [(ldap3.MODIFY_ADD, [dn])]})

    def remove_from_group(self, dn: str, group: str) -> None:
        self.admin().modify(group, {"member": [(ldap3.MODIFY_DELETE, [dn])]})

    def delete(self, dn: str) -> None:
        self.admin().delete(dn)

    def scratch_ou(self) -> str:
        """A new, empty organizational unit for one test's users."""
        dn = f"OU=t{secrets.token_hex(4)},{self.base_dn}"
        self.admin().add(dn, ["top", "organizationalUnit"])
        return dn


def _loopback_address() -> tuple[str, bool]:
    """A loopback address of our own for Samba (added to ``lo``), or
    127.0.0.1 when addresses cannot be added (then 389 and 636 must be free)."""
    address = f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}.1"
    if shutil.which("ip"):
        done = subprocess.run(
            ["ip", "addr", "add", f"{address}/32", "dev", "lo"], capture_output=True, check=False
        )
        if done.returncode == 0:
            return address, True
    return "127.0.0.1", False


def _port_free(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="session")
def samba(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Samba]:
    """Samba AD DC with the starting users: alice (administrators), harry
    (helpdesk), dave (disabled), eve (expired), nora (no mapped group) and
    the service account svc-ratel."""
    _need("samba", "samba-tool")
    folder = tmp_path_factory.mktemp("samba")
    log = folder / "samba.log"
    address, added = _loopback_address()
    try:
        busy = [p for p in (389, 636) if not _port_free(address, p)]
        if busy:
            pytest.fail(
                f"Samba needs {address}:{busy} (its LDAP ports are fixed) but something "
                "listens there: stop it, or let the test add a loopback address (needs `ip`)",
                pytrace=False,
            )
        target = folder / "dc"
        _run(
            "samba-tool", "domain", "provision", "--use-rfc2307", f"--realm={SAMBA_REALM}",
            "--domain=RATEL", "--server-role=dc", "--dns-backend=NONE",
            f"--host-ip={address}", "--host-name=dc1", f"--adminpass={SAMBA_ADMIN_PASSWORD}",
            f"--targetdir={target}", f"--option=interfaces={address}",
            "--option=bind interfaces only=yes", log=log,
        )  # fmt: skip
        conf = target / "etc" / "smb.conf"
        (target / "run").mkdir(exist_ok=True)
        text = conf.read_text()
        text = text.replace("[global]\n", f"[global]\n\tpid directory = {target / 'run'}\n", 1)
        replaced = {
            "server services": "\tserver services = ldap",  # LDAP only: no SMB, KDC, DNS, RPC
            "log file": f"\tlog file = {folder / 'samba.%m.log'}",
        }
        lines = [
            replaced.get(line.strip().split("=", 1)[0].strip(), line) for line in text.splitlines()
        ]
        conf.write_text("\n".join(lines) + "\n")
        with log.open("ab") as out:
            process = subprocess.Popen(
                ["samba", "-i", "-M", "single", "-s", str(conf), "--debug-stdout"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Samba(address, str(target / "private" / "tls" / "ca.pem"), folder)
        try:
            _wait_for_port(address, 636, process, log)
            _wait_for_bind(server, process, log)
            _populate_samba(server)
            yield server
        finally:
            if server._admin is not None:
                with contextlib.suppress(Exception):
                    server._admin.unbind()
            _stop(process)
    finally:
        if added:
            command = ["ip", "addr", "del", f"{address}/32", "dev", "lo"]
            subprocess.run(command, capture_output=True, check=False)


def _wait_for_bind(server: Samba, process: subprocess.Popen[bytes], log: Path) -> None:
    """Samba accepts connections a moment before it answers binds."""
    deadline = time.monotonic() + 60
    while True:
        try:
            server.admin()
            return
        except ldap3.core.exceptions.LDAPException:
            server._admin = None
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"Samba does not answer binds: see {log}", pytrace=False)
            time.sleep(0.2)


def _populate_samba(server: Samba) -> None:
    admin = server.admin()
    for group in (SAMBA_ADMINS, SAMBA_HELPDESK, SAMBA_OTHERS):
        admin.add(group, ["top", "group"], {"sAMAccountName": group.split(",")[0][3:]})
    server.add_user("svc-ratel", name="Ratel Service", password=SERVICE_PASSWORD)
    server.add_user(
        "alice",
        name="Alice Admin",
        groups=(SAMBA_ADMINS, SAMBA_OTHERS),
        mail="alice@ratel.test",
        country="GB",
        company="Ratel Telecom",
    )
    server.add_user("harry", name="Harry Helpdesk", groups=(SAMBA_HELPDESK,))
    server.add_user("dave", name="Dave Disabled", groups=(SAMBA_ADMINS,), disabled=True)
    server.add_user(
        "eve", name="Eve Expired", groups=(SAMBA_ADMINS,), expires=datetime(2020, 1, 1, tzinfo=UTC)
    )
    server.add_user("nora", name="Nora Nogroup", groups=(SAMBA_OTHERS,))


# -- OpenLDAP slapd --------------------------------------------------------------------


@dataclass
class Slapd:
    """A running slapd and how to reach it."""

    port: int
    folder: Path
    base_dn: str = SLAPD_BASE
    service_dn: str = f"cn=ratel-reader,{SLAPD_BASE}"
    role_groups: tuple[tuple[str, str], ...] = (
        (SLAPD_ADMINS, "administrator"),
        (SLAPD_HELPDESK, "helpdesk"),
    )

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def admin(self) -> ldap3.Connection:
        server = ldap3.Server("127.0.0.1", port=self.port)
        return ldap3.Connection(
            server,
            user=SLAPD_ROOT,
            password=SERVICE_PASSWORD,
            auto_bind=ldap3.AUTO_BIND_NO_TLS,
            raise_exceptions=True,
        )


_SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {folder}/slapd.pid
database mdb
maxsize 16777216
suffix "{base}"
rootdn "{root}"
rootpw {password}
directory {folder}/data
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """slapd with olga (administrators), hank (helpdesk), xena (expired:
    shadowExpire), nick (no group) and the service account ratel-reader."""
    _need("slapd")
    folder = tmp_path_factory.mktemp("slapd")
    (folder / "data").mkdir()
    conf = folder / "slapd.conf"
    text = _SLAPD_CONF.format(
        folder=folder, base=SLAPD_BASE, root=SLAPD_ROOT, password=SERVICE_PASSWORD
    )
    conf.write_text(text)
    port = free_port()
    log = folder / "slapd.log"
    with log.open("ab") as out:
        # -d keeps slapd in the foreground, where the test can stop it
        process = subprocess.Popen(
            ["slapd", "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/", "-d", "stats"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port("127.0.0.1", port, process, log)
        server = Slapd(port, folder)
        _populate_slapd(server)
        yield server
    finally:
        _stop(process)


def _populate_slapd(server: Slapd) -> None:
    admin = server.admin()
    admin.add(SLAPD_BASE, ["top", "dcObject", "organization"], {"o": "Ratel", "dc": "ratel"})
    for ou in ("people", "groups"):
        admin.add(f"ou={ou},{SLAPD_BASE}", ["top", "organizationalUnit"])
    admin.add(
        server.service_dn,
        ["top", "person"],
        {"sn": "reader", "userPassword": SERVICE_PASSWORD},
    )
    people = f"ou=people,{SLAPD_BASE}"
    users = {
        "olga": ("Olga Operator", None),
        "hank": ("Hank Helpdesk", None),
        "xena": ("Xena Expired", "1"),  # shadowExpire: days since 1970
        "nick": ("Nick Nogroup", None),
    }
    for uid, (name, expire) in users.items():
        attributes: dict[str, object] = {
            "uid": uid,
            "cn": name,
            "sn": name.split()[-1],
            "displayName": name,
            "mail": f"{uid}@ratel.org",
            "o": "Ratel Org",
            "userPassword": PASSWORD,
        }
        classes = ["top", "inetOrgPerson"]
        if expire is not None:
            classes.append("shadowAccount")
            attributes["shadowExpire"] = expire
        admin.add(f"uid={uid},{people}", classes, attributes)
    admin.add(
        SLAPD_ADMINS,
        ["top", "groupOfNames"],
        {"member": [f"uid=olga,{people}", f"uid=xena,{people}"]},
    )
    admin.add(SLAPD_HELPDESK, ["top", "groupOfNames"], {"member": [f"uid=hank,{people}"]})
    admin.unbind()


# -- misbehaving servers ---------------------------------------------------------------


class SilentServer:
    """A TCP server that accepts connections and never says a word: what a
    hung directory server looks like (ServerPool would wait on it forever)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)  # so that close() is noticed
        self.port = int(self._socket.getsockname()[1])
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._closing:
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._held.append(connection)  # held open, never answered

    def close(self) -> None:
        self._closing = True
        self._thread.join(5)
        self._socket.close()
        for connection in self._held:
            connection.close()


def closed_port_url() -> str:
    """An LDAP URL where nothing listens (connection refused at once)."""
    return f"ldap://127.0.0.1:{free_port()}"
