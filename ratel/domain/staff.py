"""Who may call ratel: staff users, API keys and the access tokens of a login.

Staff users come from a directory (Active Directory in production: the
directory is the master of their name, e-mail, country, company, roles,
expiry and whether they are disabled) or are local (development, tests and
bootstrap: ratel keeps their password hash). ``source`` says which; ratel's
own API may change a directory user's status (block, unblock) but not the
fields the directory owns.

An API key authenticates an application (CRM apps, USSD gateways) with
scopes; an access token is what a staff or self-care login hands out. The
store keeps only hashes of their secrets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from ratel.domain.customer import require_aware
from ratel.domain.errors import DomainError, IllegalTransition

_MAX_LOGIN = 256


# -- errors ------------------------------------------------------------------------


class InvalidStaffUser(DomainError, ValueError):
    """A staff user field is malformed (empty login, bad country, unknown role)."""

    code = "invalid_staff_user"


class DuplicateLogin(DomainError):
    """Another staff user has this login already."""

    code = "duplicate_login"


class DirectoryManaged(IllegalTransition):
    """The field belongs to the directory: change it there, not in ratel."""

    code = "directory_managed"


class InvalidApiKey(DomainError, ValueError):
    """An API key definition is malformed (empty name, no or unknown scope)."""

    code = "invalid_api_key"


class AuthenticationFailed(DomainError):
    """The credentials do not identify a caller: unknown user, wrong password,
    unknown, expired or revoked token or key. The message never says which,
    so that it tells an attacker nothing."""

    code = "authentication_failed"


class LoginNotAllowed(AuthenticationFailed):
    """The credentials are right but the caller may not log in (blocked,
    expired, disabled in the directory, in no role ratel knows, terminated
    account). Raised only after the password was verified."""

    code = "login_not_allowed"


class WeakPassword(DomainError, ValueError):
    """A new password does not meet the password policy."""

    code = "weak_password"


# -- staff users ---------------------------------------------------------------------


class StaffStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


class StaffSource(StrEnum):
    LOCAL = "local"  # created in ratel; ratel keeps its password hash
    DIRECTORY = "directory"  # mirrored from the directory, which owns its fields


def normalize_login(login: str) -> str:
    """Logins compare case-insensitively (as Active Directory and most LDAP
    servers do): stored and looked up in lower case, without surrounding
    spaces."""
    if not isinstance(login, str):
        raise InvalidStaffUser(f"a login is a string, got {type(login).__name__}")
    value = login.strip().lower()
    if not value:
        raise InvalidStaffUser("a login must not be empty")
    if len(value) > _MAX_LOGIN or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise InvalidStaffUser(f"not a usable login: {login!r}")
    return value


def _optional_text(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _country(value: str | None) -> str | None:
    text = _optional_text(value)
    if text is None:
        return None
    if len(text) != 2 or not text.isascii() or not text.isalpha():
        raise InvalidStaffUser(f"a country is an ISO 3166 two-letter code, got {value!r}")
    return text.upper()


def _names(values: Iterable[str], what: str, error: type[DomainError]) -> frozenset[str]:
    if isinstance(values, str):
        raise error(f"{what}s are a collection of names, not one string")
    cleaned = set()
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise error(f"a {what} is a non-empty name, got {value!r}")
        cleaned.add(value.strip())
    return frozenset(cleaned)


def clean_roles(roles: Iterable[str]) -> frozenset[str]:
    """Role names, stripped; empty names refused."""
    return _names(roles, "role", InvalidStaffUser)


@dataclass(kw_only=True)
class StaffUser:
    """A person who works with ratel (administrators, helpdesk, ...).

    ``status`` is ratel's own decision (an administrator blocked them);
    ``directory_disabled`` mirrors the directory's disabled flag as last seen
    at a login or a sync. Both, and ``expires_at``, must allow a login; they
    are kept apart so that a sync enabling a user in the directory never
    lifts a block an administrator set in ratel.
    """

    id: str
    login: str
    name: str
    created_at: datetime
    email: str | None = None
    country: str | None = None
    company: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    status: StaffStatus = StaffStatus.ACTIVE
    directory_disabled: bool = False
    expires_at: datetime | None = None
    source: StaffSource = StaffSource.LOCAL
    # Local users only: the password hash (argon2) the local directory checks.
    # Never shown by the API; directory users have none.
    password_hash: str | None = field(default=None, repr=False)
    last_login_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise InvalidStaffUser("a staff user needs an id")
        self.login = normalize_login(self.login)
        self.name = _optional_text(self.name) or ""
        if not self.name:
            raise InvalidStaffUser("a staff user needs a name")
        self.created_at = require_aware(self.created_at, "created_at")
        self.email = _optional_text(self.email)
        self.country = _country(self.country)
        self.company = _optional_text(self.company)
        self.roles = clean_roles(self.roles)
        self.status = StaffStatus(self.status)
        self.source = StaffSource(self.source)
        if self.expires_at is not None:
            self.expires_at = require_aware(self.expires_at, "expires_at")
        if self.last_login_at is not None:
            self.last_login_at = require_aware(self.last_login_at, "last_login_at")
        if self.source is StaffSource.DIRECTORY and self.password_hash is not None:
            raise InvalidStaffUser("a directory user's password lives in the directory")

    @property
    def from_directory(self) -> bool:
        """Whether the directory owns this user's fields (read-only in ratel)."""
        return self.source is StaffSource.DIRECTORY

    def has_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and require_aware(now) >= self.expires_at

    def is_usable(self, now: datetime) -> bool:
        """Whether the user may log in and use their tokens at ``now``."""
        return (
            self.status is StaffStatus.ACTIVE
            and not self.directory_disabled
            and not self.has_expired(now)
        )

    @property
    def effective_status(self) -> StaffStatus:
        """Blocked if ratel or the directory blocked the user (expiry aside)."""
        if self.status is StaffStatus.BLOCKED or self.directory_disabled:
            return StaffStatus.BLOCKED
        return StaffStatus.ACTIVE

    # -- ratel's own decisions (any source)

    def block(self) -> None:
        self.status = StaffStatus.BLOCKED

    def unblock(self) -> None:
        self.status = StaffStatus.ACTIVE

    def logged_in(self, now: datetime) -> None:
        self.last_login_at = require_aware(now)

    # -- local users only

    def _local(self, what: str) -> None:
        if self.from_directory:
            raise DirectoryManaged(
                f"{self.login} comes from the directory: change their {what} there"
            )

    def update_profile(
        self,
        *,
        name: str | None = None,
        email: str | None = None,
        country: str | None = None,
        company: str | None = None,
    ) -> None:
        """Change a local user's profile fields (those given)."""
        self._local("profile")
        if name is not None:
            if not name.strip():
                raise InvalidStaffUser("a staff user needs a name")
            self.name = name.strip()
        if email is not None:
            self.email = _optional_text(email)
        if country is not None:
            self.country = _country(country)
        if company is not None:
            self.company = _optional_text(company)

    def set_roles(self, roles: Iterable[str]) -> None:
        self._local("roles")
        self.roles = clean_roles(roles)

    def set_expiry(self, expires_at: datetime | None) -> None:
        self._local("expiry date")
        self.expires_at = None if expires_at is None else require_aware(expires_at, "expires_at")

    def set_password_hash(self, password_hash: str) -> None:
        self._local("password")
        if not password_hash:
            raise InvalidStaffUser("a password hash must not be empty")
        self.password_hash = password_hash

    # -- the directory's view

    def apply_directory(
        self,
        *,
        name: str,
        email: str | None,
        country: str | None,
        company: str | None,
        roles: Iterable[str],
        disabled: bool,
        expires_at: datetime | None,
    ) -> bool:
        """Take the directory's fields (at a login or a sync); whether any
        changed. Only for directory users: a local user has no directory entry."""
        if not self.from_directory:
            raise IllegalTransition(f"{self.login} is a local user: the directory does not own it")
        mirror = StaffUser(
            id=self.id,
            login=self.login,
            name=name,
            created_at=self.created_at,
            email=email,
            country=country,
            company=company,
            roles=frozenset(roles),
            directory_disabled=disabled,
            expires_at=expires_at,
            source=StaffSource.DIRECTORY,
        )
        before = self._directory_fields()
        self.name, self.email, self.country, self.company = (
            mirror.name,
            mirror.email,
            mirror.country,
            mirror.company,
        )
        self.roles = mirror.roles
        self.directory_disabled = mirror.directory_disabled
        self.expires_at = mirror.expires_at
        return self._directory_fields() != before

    def _directory_fields(self) -> tuple[object, ...]:
        return (
            self.name,
            self.email,
            self.country,
            self.company,
            self.roles,
            self.directory_disabled,
            self.expires_at,
        )


# -- API keys ------------------------------------------------------------------------

#: Every API key reads ``rk_<prefix>_<secret>``: the prefix finds the key
#: (an indexed lookup), the secret proves it.
API_KEY_MARK: Final = "rk"


@dataclass(kw_only=True)
class ApiKey:
    """An application's credential with its scopes. Its secret is shown once,
    at creation; the store keeps ``secret_hash`` only. ``prefix`` is public
    (it names the key in lists and logs)."""

    id: str
    name: str
    scopes: frozenset[str]
    prefix: str
    secret_hash: str = field(repr=False)
    created_at: datetime
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidApiKey("an API key needs a name")
        self.name = self.name.strip()
        self.scopes = _names(self.scopes, "scope", InvalidApiKey)
        if not self.scopes:
            raise InvalidApiKey("an API key needs at least one scope")
        if not self.prefix or "_" in self.prefix or not self.prefix.isascii():
            raise InvalidApiKey(f"not a key prefix: {self.prefix!r}")
        if not self.secret_hash:
            raise InvalidApiKey("an API key needs its secret's hash")
        self.created_at = require_aware(self.created_at, "created_at")
        if self.revoked_at is not None:
            self.revoked_at = require_aware(self.revoked_at, "revoked_at")

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def display(self) -> str:
        """How the key is shown after creation: its prefix, the secret elided."""
        return f"{API_KEY_MARK}_{self.prefix}_..."

    def revoke(self, now: datetime) -> None:
        """Revoke the key for good; revoking it again keeps the first time."""
        if self.revoked_at is None:
            self.revoked_at = require_aware(now)


# -- access tokens -------------------------------------------------------------------


class TokenKind(StrEnum):
    """Who a token was issued to (the same words as the caller kinds)."""

    STAFF = "staff"
    ACCOUNT_HOLDER = "account_holder"


@dataclass(kw_only=True)
class AccessToken:
    """A bearer token handed out by a login. The store keeps ``token_hash``
    only, never the token.

    ``subject`` is the staff login or the account id. A staff token refers to
    its user rather than copying the roles: each request reads the user as
    stored (roles, block, expiry), so a change takes effect at once. An
    account holder's token carries the account and its customer, which never
    change.
    """

    id: str
    token_hash: str = field(repr=False)
    kind: TokenKind
    subject: str
    issued_at: datetime
    expires_at: datetime
    account_id: str | None = None
    customer_id: str | None = None
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        self.kind = TokenKind(self.kind)
        if not self.id or not self.token_hash or not self.subject:
            raise DomainError("a token needs an id, a hash and a subject")
        self.issued_at = require_aware(self.issued_at, "issued_at")
        self.expires_at = require_aware(self.expires_at, "expires_at")
        if self.expires_at <= self.issued_at:
            raise DomainError("a token must expire after it was issued")
        if self.kind is TokenKind.ACCOUNT_HOLDER and not (self.account_id and self.customer_id):
            raise DomainError("an account holder's token names the account and its customer")
        if self.revoked_at is not None:
            self.revoked_at = require_aware(self.revoked_at, "revoked_at")

    def is_valid(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and require_aware(now) < self.expires_at

    def revoke(self, now: datetime) -> None:
        """Revoke the token; revoking it again keeps the first time."""
        if self.revoked_at is None:
            self.revoked_at = require_aware(now)
