"""The ``Directory`` port on Active Directory or another LDAP server (ldap3).

A login searches the user with the service account (the filter value
escaped), then binds as the user with the given password: the password is
only ever checked by the directory. An empty password is refused before any
bind, because an empty password is an anonymous bind that many servers
accept. Active Directory users bind with their userPrincipalName (Samba
refuses a simple bind by DN on some set-ups and always over plain LDAP).

Roles come from the user's groups (``memberOf``, or a group search), mapped
by configuration; a user in no mapped group is not a ratel user. Disabled
(userAccountControl bit 2) and expired (accountExpires, or another expiry
attribute such as OpenLDAP's shadowExpire) users are reported as such: the
use cases refuse them and end their sessions.

Several servers may be listed. They are tried in order with a connect
timeout and a receive timeout of our own: ldap3's ServerPool never leaves a
server that accepts the connection and then does not answer, and waits
between rounds. A server that failed is tried last for ``retry_after``
seconds, so a dead first server does not slow every login. Only when every
server failed is ``DirectoryUnavailable`` raised, which says nothing about
the credentials.

ldap3 is blocking: every directory conversation runs in a small thread pool
of its own, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from ratel.ports.identity import DirectoryUnavailable, DirectoryUser

log = logging.getLogger("ratel.directory")

T = TypeVar("T")

_SUCCESS: Final = 0
_INVALID_CREDENTIALS: Final = 49
#: What a server answers a user's bind it refuses for the user's sake, not its
#: own: wrong password (49), password expired or constraint (19, 389-DS),
#: account inactivated (53, 389-DS). The server works: no failover.
_USER_REFUSED: Final = frozenset({_INVALID_CREDENTIALS, 19, 53})
_PAGED_RESULTS: Final = "1.2.840.113556.1.4.319"
_ACCOUNT_DISABLE: Final = 0x2  # userAccountControl bit
_NEVER: Final = (0, 0x7FFF_FFFF_FFFF_FFFF)  # accountExpires values meaning "never"
_FILETIME_EPOCH: Final = datetime(1601, 1, 1, tzinfo=UTC)
_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_LOGIN: Final = 256
_MAX_PASSWORD: Final = 1024
_GENERALIZED_TIME = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:[.,]\d+)?(Z|[+-]\d{4})?$"
)


class _ServerFailed(Exception):
    """This server could not serve the request (down, silent, TLS refused,
    the service account refused, a search failed): try the next one."""


@dataclass(frozen=True)
class LdapConfig:
    """How to reach and read the directory (built from ``RATEL_DIRECTORY_*``).

    ``role_groups`` maps group DNs to ratel role names. ``group_filter``,
    when set, finds a user's groups by a search (``{dn}`` is the user's DN,
    escaped) instead of reading ``memberOf``; Active Directory's nested
    groups: ``(member:1.2.840.113556.1.4.1941:={dn})``.
    """

    urls: tuple[str, ...]
    base_dn: str
    bind_dn: str
    bind_password: str = field(default="", repr=False)
    bind_password_file: str = ""
    user_filter: str = "(objectClass=person)"
    login_attribute: str = "sAMAccountName"
    group_filter: str = ""
    role_groups: tuple[tuple[str, str], ...] = ()
    starttls: bool = True  # for ldap:// URLs; ldaps:// is TLS from the first byte
    tls_verify: bool = True
    ca_file: str = ""
    tls_server_name: str = ""
    expiry_attribute: str = "accountExpires"
    connect_timeout: float = 3.0
    receive_timeout: int = 5
    retry_after: float = 30.0
    page_size: int = 500

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("the directory needs at least one server URL")
        for url in self.urls:
            if urlsplit(url).scheme.lower() not in ("ldap", "ldaps") or not urlsplit(url).hostname:
                raise ValueError(f"not an LDAP URL: {url!r}")
        if not self.role_groups:
            raise ValueError("the directory needs at least one group mapped to a role")
        if self.group_filter and "{dn}" not in self.group_filter:
            raise ValueError("the group filter names the user as {dn}")
        if self.receive_timeout < 1 or self.connect_timeout <= 0:
            raise ValueError("directory timeouts are positive")

    def service_password(self) -> str:
        """The service account's password, from the setting or its file (read
        at each connection, so a rotated file takes effect without a restart)."""
        if self.bind_password:
            return self.bind_password
        try:
            return Path(self.bind_password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise _ServerFailed(f"cannot read the service account's password file: {exc}") from exc


def dn_key(dn: str) -> str:
    """A DN compared as directories do: case and spaces around separators
    do not matter."""
    parts = []
    for rdn in dn.split(","):
        attribute, _, value = rdn.partition("=")
        parts.append(f"{attribute.strip().lower()}={value.strip().lower()}")
    return ",".join(parts)


def parse_expiry(attribute: str, value: str) -> datetime | None:
    """An expiry date as directories write it: Active Directory's
    accountExpires (100 ns ticks since 1601; 0 and 2**63-1 mean never),
    shadowExpire (days since 1970; -1 means never) or a GeneralizedTime.
    ``ValueError`` when it is none of them."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        number = int(text)
        if attribute.lower() == "shadowexpire":
            return None if number < 0 else _UNIX_EPOCH + timedelta(days=number)
        if number in _NEVER or number < 0:
            return None
        return _FILETIME_EPOCH + timedelta(microseconds=number // 10)
    match = _GENERALIZED_TIME.match(text)
    if match is None:
        raise ValueError(f"not a date: {value!r}")
    year, month, day, hour, minute, second, zone = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC
    )
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
    return moment


@dataclass
class _Endpoint:
    url: str
    host: str
    port: int
    use_ssl: bool
    resting_until: float = 0.0  # monotonic time until which it is tried last


class _Entry:
    """A search result entry with its attributes by lower-case name."""

    def __init__(self, dn: str, raw: Mapping[str, Sequence[bytes]]) -> None:
        self.dn = dn
        self._values = {
            name.lower(): [v.decode("utf-8", "replace") for v in values]
            for name, values in raw.items()
        }

    def all(self, name: str) -> list[str]:
        return self._values.get(name.lower(), [])

    def first(self, *names: str) -> str | None:
        for name in names:
            for value in self.all(name):
                if value.strip():
                    return value.strip()
        return None


class LdapDirectory:
    """The ``Directory`` port on LDAP servers (Active Directory, Samba, OpenLDAP)."""

    def __init__(self, config: LdapConfig, *, workers: int = 8) -> None:
        self.config = config
        self._endpoints = [self._endpoint(url) for url in config.urls]
        self._roles = {dn_key(group): role for group, role in config.role_groups}
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ldap")
        validate = ssl.CERT_REQUIRED if config.tls_verify else ssl.CERT_NONE
        self._tls = ldap3.Tls(
            validate=validate,
            ca_certs_file=config.ca_file or None,
            valid_names=[config.tls_server_name] if config.tls_server_name else None,
        )
        self._attributes = sorted(
            {
                config.login_attribute,
                "userPrincipalName",
                "displayName",
                "cn",
                "mail",
                "c",
                "company",
                "o",
                "userAccountControl",
                "memberOf",
                *([config.expiry_attribute] if config.expiry_attribute else []),
            }
        )

    @staticmethod
    def _endpoint(url: str) -> _Endpoint:
        parts = urlsplit(url)
        use_ssl = parts.scheme.lower() == "ldaps"
        host = parts.hostname or ""
        return _Endpoint(url, host, parts.port or (636 if use_ssl else 389), use_ssl)

    def close(self) -> None:
        """Let the worker threads end (a call in flight finishes first)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- the port

    async def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        if not password or not isinstance(login, str) or not login.strip():
            return None  # before any bind: an empty password is an anonymous bind
        if len(login) > _MAX_LOGIN or len(password) > _MAX_PASSWORD:
            return None
        if not all(ch.isprintable() for ch in login):
            # No login holds a control character; and Samba ends a filter
            # value at an (escaped) NUL, so "alice\0..." would find alice.
            return None
        return await self._off_loop(self._authenticate, login.strip(), password)

    async def users(self) -> Sequence[DirectoryUser]:
        return await self._off_loop(self._users)

    async def _off_loop(self, work: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, work, *args)

    # -- failover

    def _in_order(self) -> list[_Endpoint]:
        """Servers to try: those not resting first, in configured order; the
        resting ones last (never refuse a login without trying every server)."""
        now = time.monotonic()
        ready = [e for e in self._endpoints if e.resting_until <= now]
        return ready + [e for e in self._endpoints if e.resting_until > now]

    def _failover(self, work: Callable[[_Endpoint, ldap3.Connection], T]) -> T:
        failures = []
        for endpoint in self._in_order():
            try:
                connection = self._connect(endpoint, self.config.bind_dn, None)
                try:
                    result = work(endpoint, connection)
                finally:
                    _close(connection)
            except (_ServerFailed, LDAPException, OSError) as exc:
                endpoint.resting_until = time.monotonic() + self.config.retry_after
                reason = f"{type(exc).__name__}: {exc}"[:300]
                failures.append(f"{endpoint.url}: {reason}")
                log.warning(
                    "directory server failed; trying the next",
                    extra={"server": endpoint.url, "error": reason},
                )
                continue
            endpoint.resting_until = 0.0
            return result
        raise DirectoryUnavailable("no directory server answered: " + "; ".join(failures))

    def _connect(self, endpoint: _Endpoint, user: str, password: str | None) -> ldap3.Connection:
        """An open, protected, bound connection; ``password`` None binds the
        service account. ``_ServerFailed`` unless bound; a user's wrong
        password raises ``_WrongPassword``."""
        server = ldap3.Server(
            endpoint.host,
            port=endpoint.port,
            use_ssl=endpoint.use_ssl,
            tls=self._tls,
            get_info=ldap3.NONE,
            connect_timeout=self.config.connect_timeout,
        )
        secret = self.config.service_password() if password is None else password
        if not secret:
            raise _ServerFailed("refusing an empty password: it would bind anonymously")
        if password is not None:
            # As typed, UTF-8: given text, ldap3 applies SASLprep, which
            # changes some passwords the directory holds (NFKC, a no-break
            # space) and raises on others (a control character), which
            # looked like a dead server.
            secret = password.encode("utf-8")
        connection = ldap3.Connection(
            server,
            user=user,
            password=secret,
            auto_bind=ldap3.AUTO_BIND_NONE,
            raise_exceptions=False,
            receive_timeout=self.config.receive_timeout,
            auto_referrals=False,
            read_only=True,
        )
        try:
            connection.open()
            if not endpoint.use_ssl and self.config.starttls and not connection.start_tls():
                raise _ServerFailed(f"StartTLS refused: {_said(connection)}")
            if not connection.bind():
                code = connection.result.get("result") if connection.result else None
                if password is not None and code in _USER_REFUSED:
                    raise _WrongPassword()
                who = "the service account" if password is None else "the user"
                raise _ServerFailed(f"bind as {who} refused: {_said(connection)}")
        except BaseException:
            _close(connection)
            raise
        return connection

    # -- login

    def _authenticate(self, login: str, password: str) -> DirectoryUser | None:
        def conversation(endpoint: _Endpoint, service: ldap3.Connection) -> DirectoryUser | None:
            entries = self._search(service, self._user_filter(login))
            if len(entries) != 1:
                return None  # unknown, or ambiguous: never guess who it is
            entry = entries[0]
            # Active Directory accepts a simple bind by userPrincipalName
            # over TLS; other servers bind by DN.
            bind_name = entry.first("userPrincipalName") or entry.dn
            try:
                _close(self._connect(endpoint, bind_name, password))
            except _WrongPassword:
                return None
            return self._directory_user(service, entry)

        answer = self._failover(conversation)
        if answer is not None and not answer.roles:
            log.info("directory user in no mapped group", extra={"login": answer.login})
        return answer

    def _user_filter(self, login: str) -> str:
        attribute = self.config.login_attribute
        return f"(&{self.config.user_filter}({attribute}={escape_filter_chars(login)}))"

    # -- sync

    def _users(self) -> list[DirectoryUser]:
        def conversation(endpoint: _Endpoint, service: ldap3.Connection) -> list[DirectoryUser]:
            query = f"(&{self.config.user_filter}({self.config.login_attribute}=*))"
            users = []
            for entry in self._search(service, query, paged=True):
                user = self._directory_user(service, entry)
                if user is not None and user.roles:
                    users.append(user)
            return users

        return self._failover(conversation)

    # -- reading entries

    def _search(
        self, connection: ldap3.Connection, query: str, *, paged: bool = False
    ) -> list[_Entry]:
        """Every entry under the base DN matching ``query``; ``_ServerFailed``
        when the search did not complete (a partial answer is no answer)."""
        entries: list[_Entry] = []
        cookie: bytes | None = None
        while True:
            extra: dict[str, Any] = {}
            if paged:
                extra = {"paged_size": self.config.page_size, "paged_cookie": cookie}
            connection.search(
                self.config.base_dn,
                query,
                search_scope=ldap3.SUBTREE,
                attributes=self._attributes,
                **extra,
            )
            result = connection.result or {}
            if result.get("result") != _SUCCESS:
                raise _ServerFailed(f"search failed: {_said(connection)}")
            for item in connection.response or []:
                if item.get("type") == "searchResEntry":
                    entries.append(_Entry(item["dn"], item.get("raw_attributes", {})))
            if not paged:
                return entries
            control = (result.get("controls") or {}).get(_PAGED_RESULTS) or {}
            cookie = (control.get("value") or {}).get("cookie")
            if not cookie:
                return entries

    def _groups(self, connection: ldap3.Connection, entry: _Entry) -> list[str]:
        if not self.config.group_filter:
            return entry.all("memberOf")
        query = self.config.group_filter.replace("{dn}", escape_filter_chars(entry.dn))
        connection.search(self.config.base_dn, query, ldap3.SUBTREE, attributes=["1.1"])
        if (connection.result or {}).get("result") != _SUCCESS:
            raise _ServerFailed(f"group search failed: {_said(connection)}")
        return [i["dn"] for i in connection.response or [] if i.get("type") == "searchResEntry"]

    def _directory_user(self, connection: ldap3.Connection, entry: _Entry) -> DirectoryUser | None:
        logins = entry.all(self.config.login_attribute)
        if len(logins) != 1:
            if logins:
                # uid: vic and uid: mal on one entry: whoever logs in by one
                # of them would be the other. Never guess who it is.
                log.warning(
                    "directory entry with several logins ignored",
                    extra={"dn": entry.dn, "logins": logins[:5]},
                )
            return None
        login = logins[0]
        groups = self._groups(connection, entry)
        roles = frozenset(self._roles[key] for g in groups if (key := dn_key(g)) in self._roles)
        return DirectoryUser(
            login=login,
            name=entry.first("displayName", "cn") or login,
            email=entry.first("mail"),
            country=entry.first("c"),
            company=entry.first("company", "o"),
            roles=roles,
            groups=frozenset(groups),
            disabled=self._disabled(entry),
            expires_at=self._expiry(entry, login),
        )

    @staticmethod
    def _disabled(entry: _Entry) -> bool:
        flags = entry.first("userAccountControl")
        if flags is None:
            return False
        try:
            return bool(int(flags) & _ACCOUNT_DISABLE)
        except ValueError:
            return True  # unreadable flags: refuse rather than let in

    def _expiry(self, entry: _Entry, login: str) -> datetime | None:
        attribute = self.config.expiry_attribute
        value = entry.first(attribute) if attribute else None
        if value is None:
            return None
        try:
            return parse_expiry(attribute, value)
        except (ValueError, OverflowError):
            # Unreadable: treat as expired (refuse) rather than as never.
            log.warning(
                "unreadable expiry date: the user is treated as expired",
                extra={"login": login, "attribute": attribute, "value": value[:64]},
            )
            return _UNIX_EPOCH


class _WrongPassword(Exception):
    """The directory refused the user's password (invalidCredentials)."""


def _said(connection: ldap3.Connection) -> str:
    result = connection.result or {}
    description = result.get("description") or connection.last_error or "no answer"
    message = str(result.get("message") or "").strip()
    return f"{description} {message}".strip()[:300]


def _close(connection: ldap3.Connection) -> None:
    # Closing a connection to a failed server may fail too.
    with contextlib.suppress(LDAPException, OSError):
        connection.unbind()
