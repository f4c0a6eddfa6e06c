"""Settings: an optional TOML file overridden by ``RATEL_*`` environment variables.

The defaults run everything embedded: a SQLite file in the working directory
and every listener on 127.0.0.1. In the TOML file a setting is written either
flat (``http_port = 8080``) or in a table named by its first word
(``[http]`` then ``port = 8080``); the environment variable is the flat name
in capitals after ``RATEL_`` (``RATEL_HTTP_PORT``). A bad value stops the
process with an error that names the variable or the file key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from ratel.application.identity import ROLE_PERMISSIONS

#: Only good for development: production refuses to start with it.
DEVELOPMENT_SECRET: Final = "ratel-development-secret-change-me"

DEFAULT_DATABASE_URL: Final = "sqlite+aiosqlite:///./ratel.db"

_PREFIX: Final = "RATEL_"
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DATABASE_SCHEMES: Final = ("sqlite+aiosqlite", "postgresql+asyncpg")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    JSON = "json"  # one JSON object per line, for log collectors
    TEXT = "text"  # for a person at a terminal


class DirectoryKind(StrEnum):
    """Where staff log in."""

    LOCAL = "local"  # ratel's staff table with argon2 hashes (development, bootstrap)
    LDAP = "ldap"  # Active Directory or another LDAP server (RATEL_DIRECTORY_* settings)


class DirectoryTls(StrEnum):
    """How ``ldap://`` directory URLs are protected (``ldaps://`` is always TLS)."""

    STARTTLS = "starttls"
    PLAIN = "plain"  # passwords in clear on the wire: only when asked for


class SettingsError(ValueError):
    """A setting has a value ratel cannot use; the message names where it came from."""


@dataclass(frozen=True)
class Settings:
    """Everything an operator may configure. See the README for the table."""

    database_url: str = DEFAULT_DATABASE_URL
    environment: Environment = Environment.DEVELOPMENT
    secret: str = DEVELOPMENT_SECRET
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Reserved for the RADIUS and Diameter listeners (their own issues).
    radius_host: str = "127.0.0.1"
    radius_auth_port: int = 1812
    radius_acct_port: int = 1813
    diameter_host: str = "127.0.0.1"
    diameter_port: int = 3868
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.JSON
    housekeeping_interval: float = 60.0
    shutdown_timeout: float = 10.0
    restricted_locations: frozenset[str] = field(
        default_factory=lambda: frozenset({"AEROSPACE", "MARITIME"})
    )
    restricted_services: frozenset[str] = field(default_factory=lambda: frozenset({"data"}))
    charging_validity_seconds: int = 3600
    directory: DirectoryKind = DirectoryKind.LOCAL
    token_ttl_seconds: int = 28800  # 8 hours: a working day
    # How often a process looks for new events to react to (CoA, RAR, subscriptions).
    event_relay_interval: float = 0.2
    # Login throttling (per process): failures allowed per login name and per
    # client address within the window, then refused until it passes.
    login_max_failures: int = 5
    login_max_failures_per_address: int = 20
    login_throttle_seconds: float = 900.0
    # The customer's page in the operator's back office, linked from the CRM
    # apps (Zendesk): a URL with {customer_id} in it; unset: no link.
    customer_page_url: str | None = None
    # Group commit of credit control: workers running batches (0: 1 on
    # SQLite, 4 on PostgreSQL, two at a time under load) and the most calls
    # one transaction holds.
    charging_workers: int = 0
    # PostgreSQL connections kept open, and how many more may be opened (and
    # closed again after use) when every kept one is busy.
    database_pool_size: int = 20
    database_max_overflow: int = 20
    charging_batch: int = 100
    # Active Directory / LDAP (RATEL_DIRECTORY=ldap): see the README.
    directory_urls: tuple[str, ...] = ()
    directory_bind_dn: str = ""
    directory_bind_password: str = ""
    directory_bind_password_file: str = ""
    directory_base_dn: str = ""
    directory_user_filter: str = "(objectClass=person)"
    directory_login_attribute: str = "sAMAccountName"
    directory_group_filter: str = ""  # empty: groups from memberOf
    directory_role_groups: tuple[tuple[str, str], ...] = ()  # (group DN, role)
    directory_tls: DirectoryTls = DirectoryTls.STARTTLS
    directory_tls_verify: bool = True
    directory_ca_file: str = ""
    directory_tls_server_name: str = ""
    directory_expiry_attribute: str = "accountExpires"
    directory_connect_timeout: float = 3.0
    directory_receive_timeout: int = 5
    directory_sync_interval: float = 600.0
    # RADIUS: how often a NAS reports usage, and how the DAE client retries.
    radius_interim_interval: int = 300
    # The kernel's receive buffer of the RADIUS sockets, in bytes: a burst of
    # requests arriving while a charging batch runs waits there; overflowing
    # it drops them, and the NAS retransmits only seconds later.
    radius_receive_buffer: int = 4 * 1024 * 1024
    # Requests being answered at once; beyond it new ones are dropped (and
    # counted) so that a slow database makes the NAS fail over, not queue.
    radius_max_in_flight: int = 4096
    radius_dae_timeout: float = 2.0
    radius_dae_retries: int = 3
    # DPI: a Sandvine policy broker told each session's Framed-IP-Address ("": none)
    radius_dpi_host: str = ""
    radius_dpi_port: int = 1813
    radius_dpi_secret: str = ""
    # Diameter credit control (issue 6): our identity, the gateways we accept
    # (Origin-Host, optionally =address;address), the USSD Service-Context-Id
    # of CAMEL gateways, whether a failing per-MSCC Result-Code is copied to
    # the top level, and how long past its validity a silent session lives.
    diameter_origin_host: str = "ocs.ratel.local"
    diameter_origin_realm: str = "ratel.local"
    diameter_peers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    diameter_ussd_context_id: str = "ussd@camel.ratel.local"
    diameter_raise_mscc_result_code: bool = False
    diameter_tcc_grace: float = 60.0
    # The peer connections: requests one peer may have being answered before
    # the next gets 3004 DIAMETER_TOO_BUSY (overload is refused, so the
    # gateway fails over, not queued), the watchdog (Tw: a silent peer gets a
    # DWR) and how long a DWA or a new connection's CER may take.
    diameter_max_in_flight: int = 1000
    diameter_watchdog: float = 30.0
    diameter_answer_timeout: float = 4.0
    # The Vendor-Id of the CEA (RFC 6733 5.3.3: the IANA enterprise number of
    # the vendor): 0, as ratel has none, unless the operator gives its own.
    diameter_vendor_id: int = 0

    @property
    def http_url(self) -> str:
        """The base URL of the HTTP listener as configured."""
        host = f"[{self.http_host}]" if ":" in self.http_host else self.http_host
        return f"http://{host}:{self.http_port}"


# -- parsing ---------------------------------------------------------------------


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value.strip()


def _required_text(value: object) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _port(value: object) -> int:
    number = _integer(value)
    # 0 asks the system for a free port (tests); it is logged once bound.
    if not 0 <= number <= 65535:
        raise ValueError(f"expected a port number 0-65535, got {value!r}")
    return number


def _integer(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(_text(value))
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


def _positive_integer(value: object) -> int:
    number = _integer(value)
    if number < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return number


def _interim_interval(value: object) -> int:
    number = _integer(value)
    if number < 60:
        # RFC 2869 5.16: not smaller than 60 (each interim is a charging round)
        raise ValueError(f"expected at least 60 seconds, got {value!r}")
    return number


def _non_negative_integer(value: object) -> int:
    number = _integer(value)
    if number < 0:
        raise ValueError(f"expected a whole number of at least 0, got {value!r}")
    return number


def _vendor_id(value: object) -> int:
    number = _integer(value)
    if not 0 <= number <= 0xFFFFFFFF:
        raise ValueError(f"expected an IANA enterprise number (0 to 4294967295), got {value!r}")
    return number


def _workers(value: object) -> int:
    number = _integer(value)
    if not 0 <= number <= 64:
        raise ValueError(f"expected 0 (automatic) to 64 workers, got {value!r}")
    return number


def _seconds(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected seconds, got {value!r}")
    try:
        seconds = float(value) if isinstance(value, int | float) else float(_text(value))
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def _choice(enum: type[StrEnum]) -> Callable[[object], StrEnum]:
    def parse(value: object) -> StrEnum:
        text = _text(value).lower()
        try:
            return enum(text)
        except ValueError:
            allowed = " or ".join(e.value for e in enum)
            raise ValueError(f"expected {allowed}, got {value!r}") from None

    return parse


def _log_level(value: object) -> str:
    level = _text(value).upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}, got {value!r}")
    return level


def _database_url(value: object) -> str:
    url = _required_text(value)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in _DATABASE_SCHEMES:
        raise ValueError(
            f"expected a URL starting with {' or '.join(s + '://' for s in _DATABASE_SCHEMES)}, "
            f"got {url!r}"
        )
    return url


def _names(value: object) -> frozenset[str]:
    """A comma-separated list (environment) or a list of strings (TOML)."""
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(f"expected a comma-separated list, got {value!r}")
    names = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected names, got {item!r}")
        if item.strip():
            names.add(item.strip())
    return frozenset(names)


def _page_url(value: object) -> str | None:
    """A URL template with ``{customer_id}`` (empty: none)."""
    url = _text(value)
    if not url:
        return None
    if not url.startswith(("http://", "https://")) or "{customer_id}" not in url:
        raise ValueError(f"expected an http(s) URL containing {{customer_id}}, got {url!r}")
    try:
        url.format(customer_id="x")
    except (KeyError, IndexError, ValueError):
        raise ValueError(f"only {{customer_id}} may be in braces, got {url!r}") from None
    return url


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _directory_urls(value: object) -> tuple[str, ...]:
    """Server URLs in the order they are tried (a comma list or a TOML list)."""
    items: list[object] = list(value.split(",")) if isinstance(value, str) else []
    if isinstance(value, list):
        items = value
    elif not isinstance(value, str):
        raise ValueError(f"expected a comma-separated list of URLs, got {value!r}")
    urls = []
    for item in items:
        url = _text(item)
        if not url:
            continue
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("ldap", "ldaps") or not rest.strip("/"):
            raise ValueError(f"expected ldap://host[:port] or ldaps://host[:port], got {url!r}")
        urls.append(url)
    return tuple(urls)


def _role_groups(value: object) -> tuple[tuple[str, str], ...]:
    """``role=group DN`` pairs: a ``;``-separated list (a DN holds commas) or a
    TOML list of strings. The role comes first: a DN holds ``=`` too."""
    if isinstance(value, str):
        items: list[object] = list(value.split(";"))
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(f"expected role=group DN pairs separated by ';', got {value!r}")
    pairs = []
    for item in items:
        text = _text(item)
        if not text:
            continue
        role, sep, group = text.partition("=")
        if not sep or not role.strip() or not group.strip() or "=" not in group:
            raise ValueError(f"expected role=group DN (administrator=CN=...), got {text!r}")
        if role.strip() not in ROLE_PERMISSIONS:
            known = ", ".join(sorted(ROLE_PERMISSIONS))
            raise ValueError(
                f"expected role=group DN with a role ratel knows ({known}), got {text!r}"
            )
        pairs.append((group.strip(), role.strip()))
    return tuple(pairs)


def _secret_text(value: object) -> str:
    # A password is taken as written: its spaces may be part of it.
    if not isinstance(value, str):
        raise ValueError("expected text")
    return value


def _receive_timeout(value: object) -> int:
    # ldap3 sets SO_RCVTIMEO from a whole number of seconds.
    return _positive_integer(value)


def _diameter_peers(value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``gw1.example.net=10.0.0.1;10.0.0.2, gw2.example.net``: Origin-Hosts,
    each with the addresses it may connect from (none: any)."""
    peers: dict[str, tuple[str, ...]] = {}
    for item in sorted(_names(value)):
        host, _, addresses = item.partition("=")
        host = host.strip().lower()
        if not host:
            raise ValueError(f"expected Origin-Host[=address;address], got {item!r}")
        peers[host] = tuple(a.strip() for a in addresses.split(";") if a.strip())
    return tuple(peers.items())


_PARSERS: Final[dict[str, Callable[[object], Any]]] = {
    "database_url": _database_url,
    "database_pool_size": _positive_integer,
    "database_max_overflow": _non_negative_integer,
    "environment": _choice(Environment),
    "secret": _required_text,
    "http_host": _required_text,
    "http_port": _port,
    "radius_host": _required_text,
    "radius_auth_port": _port,
    "radius_acct_port": _port,
    "diameter_host": _required_text,
    "diameter_port": _port,
    "log_level": _log_level,
    "log_format": _choice(LogFormat),
    "housekeeping_interval": _seconds,
    "shutdown_timeout": _seconds,
    "restricted_locations": lambda v: frozenset(n.upper() for n in _names(v)),
    "restricted_services": lambda v: frozenset(n.lower() for n in _names(v)),
    "charging_validity_seconds": _positive_integer,
    "directory": _choice(DirectoryKind),
    "token_ttl_seconds": _positive_integer,
    "event_relay_interval": _seconds,
    "login_max_failures": _positive_integer,
    "login_max_failures_per_address": _positive_integer,
    "login_throttle_seconds": _seconds,
    "customer_page_url": _page_url,
    "charging_workers": _workers,
    "charging_batch": _positive_integer,
    "directory_urls": _directory_urls,
    "directory_bind_dn": _text,
    "directory_bind_password": _secret_text,
    "directory_bind_password_file": _text,
    "directory_base_dn": _text,
    "directory_user_filter": _required_text,
    "directory_login_attribute": _required_text,
    "directory_group_filter": _text,
    "directory_role_groups": _role_groups,
    "directory_tls": _choice(DirectoryTls),
    "directory_tls_verify": _boolean,
    "directory_ca_file": _text,
    "directory_tls_server_name": _text,
    "directory_expiry_attribute": _text,
    "directory_connect_timeout": _seconds,
    "directory_receive_timeout": _receive_timeout,
    "directory_sync_interval": _seconds,
    "radius_interim_interval": _interim_interval,
    "radius_receive_buffer": _positive_integer,
    "radius_max_in_flight": _positive_integer,
    "radius_dae_timeout": _seconds,
    "radius_dae_retries": _positive_integer,
    "radius_dpi_host": _text,
    "radius_dpi_port": _port,
    "radius_dpi_secret": _text,
    "diameter_origin_host": _required_text,
    "diameter_origin_realm": _required_text,
    "diameter_peers": _diameter_peers,
    "diameter_ussd_context_id": _required_text,
    "diameter_raise_mscc_result_code": _boolean,
    "diameter_tcc_grace": _seconds,
    "diameter_max_in_flight": _positive_integer,
    "diameter_watchdog": _seconds,
    "diameter_answer_timeout": _seconds,
    "diameter_vendor_id": _vendor_id,
}

SETTING_NAMES: Final = tuple(f.name for f in fields(Settings))


def env_name(setting: str) -> str:
    """The environment variable of a setting: ``http_port`` -> ``RATEL_HTTP_PORT``."""
    return _PREFIX + setting.upper()


def _flatten(table: Mapping[str, Any], source: str) -> dict[str, tuple[object, str]]:
    """``{"http": {"port": 1}}`` and ``{"http_port": 1}`` both give ``http_port``,
    with the key as written, for error messages."""
    flat: dict[str, tuple[object, str]] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                if isinstance(inner_value, dict):
                    raise SettingsError(f"{source}: [{key}.{inner}] is nested too deeply")
                flat[f"{key}_{inner}"] = (inner_value, f"{source}: {key}.{inner}")
        else:
            flat[key] = (value, f"{source}: {key}")
    unknown = sorted(set(flat) - set(SETTING_NAMES))
    if unknown:
        where = ", ".join(flat[name][1] for name in unknown)
        raise SettingsError(f"{where}: unknown setting (known: {', '.join(SETTING_NAMES)})")
    return flat


def _read_toml(path: str) -> dict[str, tuple[object, str]]:
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"configuration file {path} does not exist") from None
    except OSError as exc:
        raise SettingsError(f"configuration file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"configuration file {path} is not valid TOML: {exc}") from None
    return _flatten(data, path)


def load_settings(path: str | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Settings from the TOML file ``path`` (or the one ``RATEL_CONFIG`` names;
    none by default), each overridden by its ``RATEL_*`` variable in ``env``.
    Raises ``SettingsError`` naming the variable or key of a bad value."""
    path = path or env.get(_PREFIX + "CONFIG") or None
    raw: dict[str, tuple[object, str]] = _read_toml(path) if path else {}
    for name in SETTING_NAMES:
        variable = env_name(name)
        if variable in env:
            raw[name] = (env[variable], variable)
    values: dict[str, Any] = {}
    for name, (value, source) in raw.items():
        try:
            values[name] = _PARSERS[name](value)
        except ValueError as exc:
            raise SettingsError(f"{source}: {exc}") from None
    settings = Settings(**values)
    _check(settings, {name: source for name, (_, source) in raw.items()})
    return settings


def _check(settings: Settings, sources: Mapping[str, str]) -> None:
    """Rules across settings."""
    if settings.environment is Environment.PRODUCTION and settings.secret == DEVELOPMENT_SECRET:
        raise SettingsError(
            f"{sources.get('secret', env_name('secret'))}: production refuses the development "
            f"secret; set {env_name('secret')} to a long random value"
        )
    supervised = settings.charging_validity_seconds + settings.diameter_tcc_grace
    if supervised <= settings.radius_interim_interval:
        # Tcc supervision would release every live RADIUS session between two
        # of its Interim-Updates (an xDR per interval instead of per session)
        raise SettingsError(
            f"{sources.get('charging_validity_seconds', env_name('charging_validity_seconds'))}: "
            f"a grant's validity plus the Tcc grace ({supervised:g} s) must be longer than "
            f"{env_name('radius_interim_interval')} ({settings.radius_interim_interval} s)"
        )
    if settings.directory is DirectoryKind.LDAP:
        _check_directory(settings, sources)


def _check_directory(settings: Settings, sources: Mapping[str, str]) -> None:
    """What an LDAP directory cannot work without."""

    def where(name: str) -> str:
        return sources.get(name, env_name(name))

    required = {
        "directory_urls": settings.directory_urls,
        "directory_base_dn": settings.directory_base_dn,
        "directory_bind_dn": settings.directory_bind_dn,
        "directory_role_groups": settings.directory_role_groups,
    }
    for name, value in required.items():
        if not value:
            raise SettingsError(f"{where(name)}: required with RATEL_DIRECTORY=ldap")
    if not settings.directory_bind_password and not settings.directory_bind_password_file:
        raise SettingsError(
            f"{where('directory_bind_password')}: the service account needs a password "
            f"(or {env_name('directory_bind_password_file')})"
        )
    if settings.directory_group_filter and "{dn}" not in settings.directory_group_filter:
        raise SettingsError(
            f"{where('directory_group_filter')}: the group filter names the user as {{dn}}"
        )
