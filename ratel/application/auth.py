"""Logins, bearer tokens, API keys and passwords: who is calling.

Staff log in through the ``Directory`` (Active Directory in production, the
local directory until then) and self-care users with their account id and
password; both get an opaque bearer token that expires and can be revoked.
Applications (CRM apps, USSD gateways) use API keys with scopes.
``Authenticate`` turns what a request presents into a ``Principal``.

Secrets are stored as hashes only: passwords with argon2 (slow, salted: they
may be guessable), tokens and API key secrets with SHA-256 (they are 256
random bits, so a fast hash is as safe, and every request can afford it).
SHA-256 rather than the keyed ``SecretHasher``: rotating ``RATEL_SECRET``
must not invalidate every API key.

Slow work (argon2, the directory) never runs inside a unit of work: on
SQLite a transaction holds the database's write lock, which charging needs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from ratel.application.base import Dependencies, UseCase, found
from ratel.application.identity import ROLE_PERMISSIONS, SCOPE_PERMISSIONS, CallerKind, Principal
from ratel.domain.account import Account, AccountStatus
from ratel.domain.errors import AccountTerminated, ConcurrentChange, DomainError
from ratel.domain.staff import (
    API_KEY_MARK,
    AccessToken,
    ApiKey,
    AuthenticationFailed,
    DuplicateLogin,
    InvalidApiKey,
    InvalidStaffUser,
    LoginNotAllowed,
    StaffSource,
    StaffUser,
    TokenKind,
    WeakPassword,
    clean_roles,
    normalize_login,
)
from ratel.ports.identity import Directory, DirectoryUnavailable, DirectoryUser, PasswordHasher

log = logging.getLogger("ratel.auth")

DEFAULT_TOKEN_LIFETIME: Final = timedelta(hours=8)
MIN_PASSWORD_LENGTH: Final = 8
# argon2 hashes any length, but a megabyte password is a denial of service.
MAX_PASSWORD_LENGTH: Final = 1024
# Far longer than any token or key we issue: longer input is refused unread.
_MAX_CREDENTIAL: Final = 512
_KEY_PREFIX_BYTES: Final = 6  # 12 hex characters
_SECRET_BYTES: Final = 32  # 256 bits
_BAD_CREDENTIALS: Final = "invalid login or password"
_BAD_BEARER: Final = "invalid, expired or revoked credentials"


class AuthenticationUnavailable(DomainError):
    """The directory did not answer: nobody can be told apart right now, so
    the login is refused without judging the credentials. Try again later."""

    code = "authentication_unavailable"


@dataclass(frozen=True)
class IdentityServices:
    """What the identity use cases need besides the common dependencies."""

    passwords: PasswordHasher
    directory: Directory
    token_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME

    def __post_init__(self) -> None:
        if self.token_lifetime <= timedelta(0):
            raise ValueError("tokens must live a positive time")


class IdentityUseCase(UseCase):
    """Base of the identity use cases: the common dependencies and the
    identity services."""

    def __init__(self, deps: Dependencies, identity: IdentityServices) -> None:
        super().__init__(deps)
        self.identity = identity
        self._dummy: str | None = None

    async def _burn_verify(self, password: str) -> None:
        """Verify against a dummy hash: refusing an unknown user then costs as
        much as refusing a wrong password, so timing tells no user names."""
        if self._dummy is None:
            self._dummy = await self.identity.passwords.hash(secrets.token_urlsafe(16))
        await self.identity.passwords.verify(self._dummy, password)


@dataclass(frozen=True)
class Session:
    """What a successful login gives: the bearer token (shown this once; the
    store keeps its hash), when it expires, and who it stands for."""

    token: str = field(repr=False)
    token_id: str
    expires_at: datetime
    principal: Principal


# -- helpers ---------------------------------------------------------------------------


def digest(secret: str) -> str:
    """The stored form of a random token or API key secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_password(password: str) -> None:
    """The password policy: ``WeakPassword`` unless 8 to 1024 characters, not
    only spaces."""
    if not isinstance(password, str) or not password.strip():
        raise WeakPassword("a password must not be empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def new_bearer() -> str:
    """An opaque random bearer token (256 bits, URL-safe)."""
    while True:
        token = secrets.token_urlsafe(_SECRET_BYTES)
        # Never mistaken for an API key, whose form Authenticate checks first.
        if not token.startswith(f"{API_KEY_MARK}_"):
            return token


def _credential(bearer: str | None) -> str:
    """The credential of an ``Authorization`` value: the token or key, with or
    without the ``Bearer`` scheme in front."""
    if not bearer:
        return ""
    value = bearer.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()  # "Bearer" alone presents nothing
    return value


def _shown(value: str) -> str:
    """A login or id as logged: printable and bounded (it is attacker input)."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value)[:128])
    return text


def _mapped(roles: Iterable[str]) -> frozenset[str]:
    """The roles ratel knows; the others grant nothing."""
    return frozenset(role for role in roles if role in ROLE_PERMISSIONS)


def _known_roles(roles: Iterable[str]) -> frozenset[str]:
    cleaned = clean_roles(roles)
    if not cleaned:
        raise InvalidStaffUser("a staff user needs at least one role")
    unknown = sorted(cleaned - ROLE_PERMISSIONS.keys())
    if unknown:
        raise InvalidStaffUser(
            f"unknown role {', '.join(unknown)} (known: {', '.join(sorted(ROLE_PERMISSIONS))})"
        )
    return cleaned


def _country(value: str | None) -> str | None:
    """A directory's country if it is an ISO code; anything else (a country
    name in the wrong attribute) is dropped rather than refusing the login."""
    if value and len(value.strip()) == 2 and value.strip().isascii() and value.strip().isalpha():
        return value.strip()
    return None


def staff_principal(user: StaffUser) -> Principal:
    return Principal(CallerKind.STAFF, subject=user.login, roles=user.roles)


def account_principal(account: Account) -> Principal:
    return Principal(
        CallerKind.ACCOUNT_HOLDER,
        subject=account.id,
        account_id=account.id,
        customer_id=account.customer_id,
    )


# -- logins ----------------------------------------------------------------------------


class StaffLogin(IdentityUseCase):
    """Log a staff member in through the directory; a bearer token for them.

    An empty password is refused before the directory is asked. Unknown
    login and wrong password give the same ``AuthenticationFailed``; a
    blocked, expired or disabled user, or one in no role ratel knows, gets
    ``LoginNotAllowed`` (only once the password is proven). A directory
    user's fields are mirrored into the staff table at each login (the
    first login creates it). ``AuthenticationUnavailable`` when the directory
    does not answer. Every attempt is logged, never the password.
    """

    async def __call__(self, login: str, password: str) -> Session:
        shown = _shown(login)
        if not isinstance(login, str) or not login.strip() or not password:
            log.warning("staff login refused", extra={"login": shown, "reason": "empty"})
            raise AuthenticationFailed(_BAD_CREDENTIALS)
        try:
            answer = await self.identity.directory.authenticate(login.strip(), password)
        except DirectoryUnavailable as exc:
            log.error(
                "staff login impossible: the directory does not answer",
                extra={"login": shown, "reason": "directory_unavailable", "error": str(exc)},
            )
            raise AuthenticationUnavailable(
                "the staff directory does not answer; try again later"
            ) from exc
        if answer is None:
            log.warning(
                "staff login refused", extra={"login": shown, "reason": "invalid_credentials"}
            )
            raise AuthenticationFailed(_BAD_CREDENTIALS)
        try:
            return await self._sign_in(answer)
        except DuplicateLogin:
            # The same user's first login on another node created the row
            # meanwhile: this time it is found and updated.
            return await self._sign_in(answer)

    async def _sign_in(self, answer: DirectoryUser) -> Session:
        now = self.deps.clock.now()
        shown = _shown(answer.login)
        async with self.deps.uow() as uow:
            user = await uow.staff.by_login(answer.login, lock=True)
            known = user is not None
            if answer.source is StaffSource.DIRECTORY:
                if user is None:
                    user = self._mirror(answer, now)
                    await uow.staff.add(user)
                elif user.source is StaffSource.LOCAL:
                    # A directory entry may not take over a local account
                    # that happens to share its login.
                    log.warning(
                        "staff login refused",
                        extra={"login": shown, "reason": "login_held_by_local_user"},
                    )
                    raise AuthenticationFailed(_BAD_CREDENTIALS)
                else:
                    user.apply_directory(
                        name=answer.name.strip() or user.login,
                        email=answer.email,
                        country=_country(answer.country),
                        company=answer.company,
                        roles=_mapped(answer.roles),
                        disabled=answer.disabled,
                        expires_at=answer.expires_at,
                    )
            elif user is None or user.source is not StaffSource.LOCAL:
                log.warning("staff login refused", extra={"login": shown, "reason": "unknown"})
                raise AuthenticationFailed(_BAD_CREDENTIALS)

            refusal = None
            if not user.is_usable(now):
                refusal = "not_usable", f"{user.login} may not log in (blocked or expired)"
            elif not _mapped(user.roles):
                refusal = "no_role", f"{user.login} has no role in ratel"
            if refusal is not None:
                reason, message = refusal
                revoked = 0
                # A refused first login leaves no trace in the staff table
                # (anyone in the directory may try). A known user keeps what
                # the directory said, and loses the sessions they had.
                if known:
                    revoked = await uow.tokens.revoke_for_subject(TokenKind.STAFF, user.login, now)
                    await uow.staff.save(user)
                    await uow.commit()
                log.warning(
                    "staff login refused",
                    extra={"login": shown, "reason": reason, "tokens_revoked": revoked},
                )
                raise LoginNotAllowed(message)

            user.logged_in(now)
            await uow.staff.save(user)
            expires_at = now + self.identity.token_lifetime
            if user.expires_at is not None:
                expires_at = min(expires_at, user.expires_at)
            bearer = new_bearer()
            token = AccessToken(
                id=self.deps.ids.new("tok"),
                token_hash=digest(bearer),
                kind=TokenKind.STAFF,
                subject=user.login,
                issued_at=now,
                expires_at=expires_at,
            )
            await uow.tokens.add(token)
            await uow.commit()
        log.info(
            "staff login",
            extra={"login": shown, "token_id": token.id, "source": user.source.value},
        )
        return Session(bearer, token.id, token.expires_at, staff_principal(user))

    def _mirror(self, answer: DirectoryUser, now: datetime) -> StaffUser:
        return StaffUser(
            id=self.deps.ids.new("stf"),
            login=answer.login,
            name=answer.name.strip() or answer.login,
            email=answer.email,
            country=_country(answer.country),
            company=answer.company,
            roles=_mapped(answer.roles),
            directory_disabled=answer.disabled,
            expires_at=answer.expires_at,
            source=StaffSource.DIRECTORY,
            created_at=now,
        )


class SelfCareLogin(IdentityUseCase):
    """Log an account holder in with their account id and self-care
    password; a bearer token for their own account and customer. Unknown
    account, no password set and wrong password give the same
    ``AuthenticationFailed``; a terminated account gets ``LoginNotAllowed``."""

    async def __call__(self, account_id: str, password: str) -> Session:
        account_id = account_id.strip() if isinstance(account_id, str) else ""
        shown = _shown(account_id)
        if not account_id or not password or len(password) > MAX_PASSWORD_LENGTH:
            # no password longer than one may set is anybody's: not hashed
            reason = "empty" if not account_id or not password else "too_long"
            log.warning("self-care login refused", extra={"account_id": shown, "reason": reason})
            raise AuthenticationFailed(_BAD_CREDENTIALS)
        async with self.deps.uow() as uow:
            stored = await uow.credentials.get(account_id)
            account = await uow.accounts.get(account_id) if stored is not None else None
        if stored is None or account is None:
            await self._burn_verify(password)
            log.warning("self-care login refused", extra={"account_id": shown, "reason": "unknown"})
            raise AuthenticationFailed(_BAD_CREDENTIALS)
        if not await self.identity.passwords.verify(stored, password):
            log.warning(
                "self-care login refused",
                extra={"account_id": shown, "reason": "invalid_credentials"},
            )
            raise AuthenticationFailed(_BAD_CREDENTIALS)
        if account.status is AccountStatus.TERMINATED:
            log.warning(
                "self-care login refused", extra={"account_id": shown, "reason": "terminated"}
            )
            raise LoginNotAllowed(f"account {account.id} is terminated")

        rehashed = None
        if self.identity.passwords.needs_rehash(stored):
            rehashed = await self.identity.passwords.hash(password)
        now = self.deps.clock.now()
        bearer = new_bearer()
        token = AccessToken(
            id=self.deps.ids.new("tok"),
            token_hash=digest(bearer),
            kind=TokenKind.ACCOUNT_HOLDER,
            subject=account.id,
            account_id=account.id,
            customer_id=account.customer_id,
            issued_at=now,
            expires_at=now + self.identity.token_lifetime,
        )
        async with self.deps.uow() as uow:
            if rehashed is not None:
                await uow.credentials.set(account.id, rehashed, now)
            await uow.tokens.add(token)
            await uow.commit()
        log.info("self-care login", extra={"account_id": shown, "token_id": token.id})
        return Session(bearer, token.id, token.expires_at, account_principal(account))


class Authenticate(IdentityUseCase):
    """The caller behind a request's credential (the ``Authorization``
    header's value, with or without ``Bearer``).

    * nothing (None, empty): ``Principal.anonymous()``;
    * ``rk_<prefix>_<secret>``: the API client of that key, with its scopes;
    * anything else: a login's token: the staff member (with their roles as
      stored now; refused once they are blocked or expired) or the account
      holder (refused once the account is terminated).

    A credential that is presented but not good (unknown, malformed, expired,
    revoked, a blocked or expired staff user, a revoked key) raises
    ``AuthenticationFailed``: it never falls back to anonymous, so that a
    client with a stale token is told to log in again (HTTP 401) rather than
    seeing every field refused. One indexed lookup per call; nothing is
    written.
    """

    async def __call__(self, bearer: str | None) -> Principal:
        credential = _credential(bearer)
        if not credential:
            return Principal.anonymous()
        if len(credential) > _MAX_CREDENTIAL:
            raise self._refused("too_long")
        if credential.startswith(f"{API_KEY_MARK}_"):
            return await self._api_client(credential)
        return await self._token_holder(credential)

    @staticmethod
    def _refused(reason: str, **extra: str) -> AuthenticationFailed:
        log.info("credential refused", extra={"reason": reason, **extra})
        return AuthenticationFailed(_BAD_BEARER)

    async def _api_client(self, credential: str) -> Principal:
        _, prefix, secret = [*credential.split("_", 2), "", ""][:3]
        if not prefix or not secret:
            raise self._refused("malformed_api_key")
        async with self.deps.uow() as uow:
            key = await uow.api_keys.by_prefix(prefix)
        if key is None:
            raise self._refused("unknown_api_key", key_prefix=_shown(prefix))
        if not hmac.compare_digest(digest(secret), key.secret_hash):
            raise self._refused("wrong_api_key_secret", key_id=key.id)
        if key.revoked:
            raise self._refused("revoked_api_key", key_id=key.id)
        return Principal(CallerKind.API_CLIENT, subject=key.id, scopes=key.scopes)

    async def _token_holder(self, credential: str) -> Principal:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            holder = await uow.tokens.holder(digest(credential))
        if holder is None:
            raise self._refused("unknown_token")
        token = holder.token
        if not token.is_valid(now):
            raise self._refused("expired_or_revoked_token", token_id=token.id)
        if token.kind is TokenKind.STAFF:
            staff = holder.staff
            if staff is None or not staff.is_usable(now):
                raise self._refused("staff_user_not_usable", token_id=token.id)
            return staff_principal(staff)
        if holder.account_status in (None, AccountStatus.TERMINATED):
            raise self._refused("account_terminated", token_id=token.id)
        assert token.account_id is not None and token.customer_id is not None
        return Principal(
            CallerKind.ACCOUNT_HOLDER,
            subject=token.subject,
            account_id=token.account_id,
            customer_id=token.customer_id,
        )


class Logout(IdentityUseCase):
    """Revoke the bearer token of a login (the caller's own, to log out);
    whether a live token was revoked. API keys are not logged out: an
    administrator revokes them (``RevokeApiKey``)."""

    async def __call__(self, bearer: str) -> bool:
        credential = _credential(bearer)
        if not credential or credential.startswith(f"{API_KEY_MARK}_"):
            return False
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            token = await uow.tokens.by_hash(digest(credential))
            if token is None or not token.is_valid(now):
                return False
            token.revoke(now)
            await uow.tokens.save(token)
            await uow.commit()
        log.info("logout", extra={"token_id": token.id, "subject": _shown(token.subject)})
        return True


class RevokeStaffTokens(IdentityUseCase):
    """End every session of a staff member (the directory sync does when the
    directory blocks them); how many tokens were revoked."""

    async def __call__(self, login: str) -> int:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            revoked = await uow.tokens.revoke_for_subject(
                TokenKind.STAFF, normalize_login(login), now
            )
            await uow.commit()
        log.info("staff tokens revoked", extra={"login": _shown(login), "tokens_revoked": revoked})
        return revoked


class PurgeExpiredTokens(IdentityUseCase):
    """Delete tokens that expired more than a day ago (they only take room);
    how many. Meant for a scheduled job."""

    async def __call__(self, *, older_than: timedelta = timedelta(days=1)) -> int:
        async with self.deps.uow() as uow:
            removed = await uow.tokens.remove_expired(self.deps.clock.now() - older_than)
            await uow.commit()
        return removed


# -- staff users -----------------------------------------------------------------------


class CreateLocalStaffUser(IdentityUseCase):
    """A staff user kept by ratel itself, with a password (development,
    tests, and the first administrator before a directory is set up).
    ``roles`` must be roles ratel knows; the password follows the policy."""

    async def __call__(
        self,
        login: str,
        name: str,
        password: str,
        roles: Iterable[str],
        *,
        email: str | None = None,
        country: str | None = None,
        company: str | None = None,
        expires_at: datetime | None = None,
    ) -> StaffUser:
        known = _known_roles(roles)
        check_password(password)
        user = StaffUser(
            id=self.deps.ids.new("stf"),
            login=login,
            name=name,
            email=email,
            country=country,
            company=company,
            roles=known,
            expires_at=expires_at,
            source=StaffSource.LOCAL,
            created_at=self.deps.clock.now(),
        )
        user.set_password_hash(await self.identity.passwords.hash(password))
        async with self.deps.uow() as uow:
            await uow.staff.add(user)
            await uow.commit()
        log.info(
            "local staff user created",
            extra={"login": user.login, "roles": ",".join(sorted(user.roles))},
        )
        return user


class BlockStaffUser(IdentityUseCase):
    """Block a staff member in ratel (directory users too) and end their
    sessions at once."""

    async def __call__(self, login: str) -> StaffUser:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            user = found(await uow.staff.by_login(login, lock=True), "staff user", login)
            user.block()
            await uow.staff.save(user)
            await uow.tokens.revoke_for_subject(TokenKind.STAFF, user.login, now)
            await uow.commit()
        log.info("staff user blocked", extra={"login": user.login})
        return user


class UnblockStaffUser(IdentityUseCase):
    """Lift ratel's block of a staff member (a block in the directory stays)."""

    async def __call__(self, login: str) -> StaffUser:
        async with self.deps.uow() as uow:
            user = found(await uow.staff.by_login(login, lock=True), "staff user", login)
            user.unblock()
            await uow.staff.save(user)
            await uow.commit()
        log.info("staff user unblocked", extra={"login": user.login})
        return user


@dataclass(frozen=True, slots=True)
class StaffStanding:
    """A staff user as a list shows them: ``expired`` is judged by ratel's
    clock when they were read (the user's own fields only hold the date)."""

    user: StaffUser
    expired: bool


class ListStaff(IdentityUseCase):
    """Staff users ordered by login (a page after ``after_login``)."""

    async def __call__(
        self, *, after_login: str | None = None, limit: int = 1000
    ) -> list[StaffUser]:
        async with self.deps.uow() as uow:
            return await uow.staff.all(after_login=after_login, limit=limit)

    async def standings(
        self, *, after_login: str | None = None, limit: int = 1000
    ) -> list[StaffStanding]:
        """The same page, each user with whether they have expired."""
        return self.judge(await self(after_login=after_login, limit=limit))

    def judge(self, users: Iterable[StaffUser]) -> list[StaffStanding]:
        """Whether each user has expired, by the clock now (one reading for all)."""
        now = self.deps.clock.now()
        return [StaffStanding(user=user, expired=user.has_expired(now)) for user in users]


# -- self-care passwords ---------------------------------------------------------------


class SetAccountPassword(IdentityUseCase):
    """Set or reset an account's self-care password (a staff action). The
    account's open self-care sessions end."""

    async def __call__(self, account_id: str, password: str) -> None:
        check_password(password)
        hashed = await self.identity.passwords.hash(password)
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            account = found(await uow.accounts.get(account_id), "account", account_id)
            if account.status is AccountStatus.TERMINATED:
                raise AccountTerminated(f"account {account_id} is terminated")
            await uow.credentials.set(account.id, hashed, now)
            await uow.tokens.revoke_for_subject(TokenKind.ACCOUNT_HOLDER, account.id, now)
            await uow.commit()
        log.info("self-care password set", extra={"account_id": account.id})


class ChangeOwnPassword(IdentityUseCase):
    """An account holder changes their self-care password, proving the
    current one (``AuthenticationFailed`` if wrong). Their other sessions
    end; the one named by ``current_bearer`` (the session making the change)
    stays."""

    async def __call__(
        self, account_id: str, old: str, new: str, *, current_bearer: str | None = None
    ) -> None:
        check_password(new)
        async with self.deps.uow() as uow:
            stored = await uow.credentials.get(account_id)
        if stored is None:
            await self._burn_verify(old or "-")
            raise AuthenticationFailed("the current password is wrong")
        if not old or not await self.identity.passwords.verify(stored, old):
            log.warning(
                "self-care password change refused",
                extra={"account_id": _shown(account_id), "reason": "invalid_credentials"},
            )
            raise AuthenticationFailed("the current password is wrong")
        hashed = await self.identity.passwords.hash(new)
        now = self.deps.clock.now()
        keep = _credential(current_bearer)
        async with self.deps.uow() as uow:
            # Compare and set: a change made meanwhile (by a staff reset or
            # another session) is not overwritten by this one.
            if await uow.credentials.get(account_id) != stored:
                raise ConcurrentChange("the password was changed meanwhile; try again")
            await uow.credentials.set(account_id, hashed, now)
            current = await uow.tokens.by_hash(digest(keep)) if keep else None
            keep_id = current.id if current is not None and current.subject == account_id else None
            await uow.tokens.revoke_for_subject(
                TokenKind.ACCOUNT_HOLDER, account_id, now, except_id=keep_id
            )
            await uow.commit()
        log.info("self-care password changed", extra={"account_id": _shown(account_id)})


# -- API keys --------------------------------------------------------------------------


class CreateApiKey(IdentityUseCase):
    """A new API key with ``scopes`` (known ones only); returns the key and
    the full credential ``rk_<prefix>_<secret>``, shown this once (only a
    hash of the secret is stored)."""

    async def __call__(self, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
        wanted = frozenset(s.strip() for s in scopes if isinstance(s, str))
        unknown = sorted(wanted - SCOPE_PERMISSIONS.keys())
        if unknown:
            raise InvalidApiKey(
                f"unknown scope {', '.join(unknown)} "
                f"(known: {', '.join(sorted(SCOPE_PERMISSIONS))})"
            )
        prefix = secrets.token_hex(_KEY_PREFIX_BYTES)
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        key = ApiKey(
            id=self.deps.ids.new("key"),
            name=name,
            scopes=wanted,
            prefix=prefix,
            secret_hash=digest(secret),
            created_at=self.deps.clock.now(),
        )
        async with self.deps.uow() as uow:
            await uow.api_keys.add(key)
            await uow.commit()
        log.info(
            "API key created",
            extra={"key_id": key.id, "key_prefix": prefix, "scopes": ",".join(sorted(wanted))},
        )
        return key, f"{API_KEY_MARK}_{prefix}_{secret}"


class RevokeApiKey(IdentityUseCase):
    """Revoke an API key for good; the next request made with it is refused."""

    async def __call__(self, key_id: str) -> ApiKey:
        async with self.deps.uow() as uow:
            key = found(await uow.api_keys.get(key_id), "API key", key_id)
            key.revoke(self.deps.clock.now())
            await uow.api_keys.save(key)
            await uow.commit()
        log.info("API key revoked", extra={"key_id": key.id})
        return key


class ListApiKeys(IdentityUseCase):
    """API keys, oldest first (their secrets are not known: only prefixes)."""

    async def __call__(self, *, include_revoked: bool = True) -> list[ApiKey]:
        async with self.deps.uow() as uow:
            return await uow.api_keys.all(include_revoked=include_revoked)
