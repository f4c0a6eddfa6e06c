"""Logins, passwords, staff users and API keys in the schema.

Staff and account holders log in here for a bearer token; failed logins are
throttled per login and per client address (``LoginThrottle``). The token
and an API key's secret are in the answer this once: ratel keeps only their
hashes. Refusals are user errors with stable codes:
``authentication_failed`` (never saying whether the login exists),
``login_not_allowed`` (blocked, expired, terminated), ``weak_password``,
``too_many_attempts``, ``authentication_unavailable`` (the directory does
not answer).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from ratel.application.auth import Session, StaffStanding
from ratel.application.identity import Principal
from ratel.domain import staff as staff_domain
from ratel.graphql.fields import attempt, guarded, guarded_mutation, own_account
from ratel.graphql.types import (
    Connection,
    Info,
    UserError,
    connection,
    decode_cursor,
    encode_cursor,
    page_size,
    slice_connection,
)


@strawberry.enum
class CallerKind(Enum):
    STAFF = "staff"
    ACCOUNT_HOLDER = "account_holder"
    API_CLIENT = "api_client"
    ANONYMOUS = "anonymous"


@strawberry.type
class Caller:
    """Who a token stands for: a staff member with roles, or an account holder."""

    kind: CallerKind
    subject: str
    roles: list[str]
    account_id: str | None
    customer_id: str | None

    @staticmethod
    def of(principal: Principal) -> Caller:
        return Caller(
            kind=CallerKind(principal.kind.value),
            subject=principal.subject,
            roles=sorted(principal.roles),
            account_id=principal.account_id,
            customer_id=principal.customer_id,
        )


@strawberry.type
class LoginPayload:
    """A bearer token (send it as ``Authorization: Bearer <token>``), shown
    this once, and when it expires; or why the login was refused."""

    token: str | None
    token_id: str | None
    expires_at: datetime | None
    caller: Caller | None
    errors: list[UserError]

    @staticmethod
    def of(session: Session | None, errors: list[UserError]) -> LoginPayload:
        if session is None:
            return LoginPayload(
                token=None, token_id=None, expires_at=None, caller=None, errors=errors
            )
        return LoginPayload(
            token=session.token,
            token_id=session.token_id,
            expires_at=session.expires_at,
            caller=Caller.of(session.principal),
            errors=errors,
        )


@strawberry.type
class LogoutPayload:
    """Whether a live token was revoked (false: none was presented, or it had
    expired or been revoked already)."""

    logged_out: bool


@strawberry.type
class PasswordPayload:
    changed: bool
    errors: list[UserError]


@strawberry.enum
class StaffStatus(Enum):
    ACTIVE = "active"
    BLOCKED = "blocked"


@strawberry.enum
class StaffSource(Enum):
    LOCAL = "local"
    DIRECTORY = "directory"


@strawberry.type(description="A person who works with ratel.")
class StaffUser:
    id: str
    login: str
    name: str
    email: str | None
    country: str | None
    company: str | None
    roles: list[str]
    status: StaffStatus = strawberry.field(
        description="BLOCKED when ratel or the directory blocked the user (expiry aside)."
    )
    blocked_in_ratel: bool
    disabled_in_directory: bool
    expires_at: datetime | None
    expired: bool = strawberry.field(description="Whether expiresAt has passed.")
    source: StaffSource
    directory_managed: bool = strawberry.field(
        description="Name, email, country, company, roles and expiry come from the directory "
        "and are read-only in ratel."
    )
    last_login_at: datetime | None
    created_at: datetime

    @staticmethod
    def of(standing: StaffStanding) -> StaffUser:
        user = standing.user
        return StaffUser(
            id=user.id,
            login=user.login,
            name=user.name,
            email=user.email,
            country=user.country,
            company=user.company,
            roles=sorted(user.roles),
            status=StaffStatus(user.effective_status.value),
            blocked_in_ratel=user.status is staff_domain.StaffStatus.BLOCKED,
            disabled_in_directory=user.directory_disabled,
            expires_at=user.expires_at,
            expired=standing.expired,
            source=StaffSource(user.source.value),
            directory_managed=user.from_directory,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
        )


@strawberry.type
class StaffPayload:
    staff_user: StaffUser | None
    errors: list[UserError]


@strawberry.type
class TokensRevokedPayload:
    revoked: int
    errors: list[UserError]


@strawberry.type
class ApiKey:
    """An application's key; only its public prefix is ever shown again."""

    id: str
    name: str
    scopes: list[str]
    prefix: str
    display: str
    created_at: datetime
    revoked_at: datetime | None

    @staticmethod
    def of(key: staff_domain.ApiKey) -> ApiKey:
        return ApiKey(
            id=key.id,
            name=key.name,
            scopes=sorted(key.scopes),
            prefix=key.prefix,
            display=key.display,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


@strawberry.type
class ApiKeyPayload:
    """``secret`` is the whole credential (``rk_<prefix>_<secret>``), given
    only by ``createApiKey``, this once."""

    api_key: ApiKey | None
    secret: str | None
    errors: list[UserError]


def _client(info: Info) -> str | None:
    """The client's address as the HTTP server saw it (behind a proxy: the
    proxy's, which then shares one address budget)."""
    request = info.context.request
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


def _authorization(info: Info) -> str | None:
    """What the caller presented: the request's Authorization header, or over
    a WebSocket the one of ``connection_init`` (a browser cannot set headers
    on a socket)."""
    presented: str | None = info.context.authorization
    if presented is not None:
        return presented
    request = info.context.request
    headers = getattr(request, "headers", None)
    return headers.get("authorization") if headers is not None else None


def _staff_payload(
    info: Info, user: staff_domain.StaffUser | None, errors: list[UserError]
) -> StaffPayload:
    if user is None:
        return StaffPayload(staff_user=None, errors=errors)
    [standing] = info.context.use_cases.list_staff.judge([user])
    return StaffPayload(staff_user=StaffUser.of(standing), errors=errors)


@strawberry.type
class IdentityQuery:
    @guarded("Staff users ordered by login.")
    async def staff(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[StaffUser]:
        size = page_size(first)
        after_login = decode_cursor(after, "staff")
        standings = await info.context.use_cases.list_staff.standings(
            after_login=after_login, limit=size + 1
        )
        return connection(
            [StaffUser.of(s) for s in standings],
            size,
            lambda u, _i: encode_cursor("staff", u.login),
            has_previous=after_login is not None,
        )

    @guarded("API keys, oldest first (prefixes only: secrets are never shown again).")
    async def api_keys(
        self,
        info: Info,
        include_revoked: bool = True,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ApiKey]:
        keys = await info.context.use_cases.list_api_keys(include_revoked=include_revoked)
        return slice_connection([ApiKey.of(k) for k in keys], first, after)


@strawberry.type
class IdentityMutation:
    @guarded_mutation("Staff: log in with directory credentials; a bearer token.")
    async def staff_login(self, info: Info, login: str, password: str) -> LoginPayload:
        use_cases = info.context.use_cases
        session, errors = await attempt(
            lambda: use_cases.login_throttle.attempt(
                # the login as it is looked up (stripped, any case): " admin"
                # is admin, and must not be a fresh count of guesses
                f"staff:{login.strip()}",
                _client(info),
                lambda: use_cases.staff_login(login, password),
            )
        )
        return LoginPayload.of(session, errors)

    @guarded_mutation("Self-care: log in with the account ID and its password; a bearer token.")
    async def self_care_login(self, info: Info, account_id: str, password: str) -> LoginPayload:
        use_cases = info.context.use_cases
        session, errors = await attempt(
            lambda: use_cases.login_throttle.attempt(
                f"account:{account_id.strip()}",
                _client(info),
                lambda: use_cases.self_care_login(account_id, password),
            )
        )
        return LoginPayload.of(session, errors)

    @guarded_mutation("Revoke the bearer token of this request (log out).")
    async def logout(self, info: Info) -> LogoutPayload:
        bearer = _authorization(info)
        logged_out = await info.context.use_cases.logout(bearer) if bearer else False
        return LogoutPayload(logged_out=logged_out)

    @guarded_mutation("Self-care: change the password, proving the current one.")
    async def change_own_password(
        self, info: Info, current_password: str, new_password: str
    ) -> PasswordPayload:
        use_cases = info.context.use_cases

        async def call() -> bool:
            account_id, _ = own_account(info)
            # Counted like logins: a stolen token must not guess the password.
            await use_cases.login_throttle.attempt(
                f"account:{account_id}",
                _client(info),
                lambda: use_cases.change_own_password(
                    account_id,
                    current_password,
                    new_password,
                    current_bearer=_authorization(info),
                ),
            )
            return True

        changed, errors = await attempt(call)
        return PasswordPayload(changed=bool(changed), errors=errors)

    @guarded_mutation("Staff: set or reset an account's self-care password (its sessions end).")
    async def set_account_password(
        self, info: Info, account_id: str, password: str
    ) -> PasswordPayload:
        call = info.context.use_cases.set_account_password
        _, errors = await attempt(lambda: call(account_id, password))
        return PasswordPayload(changed=not errors, errors=errors)

    @guarded_mutation("Block a staff user in ratel and end their sessions.")
    async def block_staff_user(self, info: Info, login: str) -> StaffPayload:
        call = info.context.use_cases.block_staff_user
        user, errors = await attempt(lambda: call(login))
        return _staff_payload(info, user, errors)

    @guarded_mutation("Lift ratel's block of a staff user (a directory block stays).")
    async def unblock_staff_user(self, info: Info, login: str) -> StaffPayload:
        call = info.context.use_cases.unblock_staff_user
        user, errors = await attempt(lambda: call(login))
        return _staff_payload(info, user, errors)

    @guarded_mutation("End every session of a staff user; how many tokens were revoked.")
    async def revoke_staff_tokens(self, info: Info, login: str) -> TokensRevokedPayload:
        call = info.context.use_cases.revoke_staff_tokens
        revoked, errors = await attempt(lambda: call(login))
        return TokensRevokedPayload(revoked=revoked or 0, errors=errors)

    @guarded_mutation("A new API key with scopes; its secret is in this answer only.")
    async def create_api_key(self, info: Info, name: str, scopes: list[str]) -> ApiKeyPayload:
        call = info.context.use_cases.create_api_key
        made, errors = await attempt(lambda: call(name, scopes))
        if made is None:
            return ApiKeyPayload(api_key=None, secret=None, errors=errors)
        key, secret = made
        return ApiKeyPayload(api_key=ApiKey.of(key), secret=secret, errors=errors)

    @guarded_mutation("Revoke an API key for good.")
    async def revoke_api_key(self, info: Info, id: str) -> ApiKeyPayload:
        call = info.context.use_cases.revoke_api_key
        key, errors = await attempt(lambda: call(id))
        return ApiKeyPayload(api_key=ApiKey.of(key) if key else None, secret=None, errors=errors)
