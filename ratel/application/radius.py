"""RADIUS: the NAS registry, authorization of broadband logins and the
charging of their accounting reports through the one credit-control core.

Who the user is: the NAS sends the account's PPPoE / IPoE login as
User-Name. ratel looks it up as an account alias first (the login an operator
gives a subscriber), then as the account ID. PAP is checked against the
account's self-care password (argon2 hash) or its CHAP secret; CHAP needs the
password in clear, so only accounts with a CHAP secret can use it.

Exactly-once charging of accounting reports: the NAS reports cumulative
counters. For each accounting session ratel keeps the counters last charged
and the number of reports charged. A report is charged as request number
``reports + 1`` with the octets since the last counters; a retransmission
(same counters) is answered without charging, and one that races the first
gets the credit-control core's stored answer for the same request number.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from ratel.application.base import Dependencies, UseCase, found
from ratel.application.charging_batch import Charging, Companion
from ratel.application.credit_control import CreditControl, Subscriber, UnknownSubscriber
from ratel.domain.account import Account
from ratel.domain.catalogue import Product, Service, ServicePolicy, Unit, effective_policy
from ratel.domain.charging import Answer, Grant, UsageRequest
from ratel.domain.customer import Customer
from ratel.domain.errors import (
    ConcurrentChange,
    DomainError,
    NotFound,
    OutOfOrderRequest,
    ServiceDenied,
    SessionClosed,
)
from ratel.domain.identifiers import UNSET, Unset
from ratel.domain.nas import (
    DEFAULT_DAE_PORT,
    Nas,
    NasVendor,
    RadiusSession,
    RadiusSessionState,
    Restriction,
)
from ratel.ports.identity import PasswordHasher
from ratel.ports.radius import RadiusStoreFactory
from ratel.ports.store import IdentifierKind, UnitOfWork

log = logging.getLogger("ratel.radius")

#: Sessions of a restarted NAS being closed at once (Accounting-On/Off).
_CLOSED_AT_ONCE: Final = 64

#: The usage charge (access code) broadband data is rated with.
DATA_ACCESS_CODE: Final = "DATA"


class RadiusUseCase(UseCase):
    """A use case that also works on the RADIUS store."""

    def __init__(self, deps: Dependencies, store: RadiusStoreFactory) -> None:
        super().__init__(deps)
        self.store = store


# -- the NAS registry -------------------------------------------------------------


class ManageNas(RadiusUseCase):
    """Register, change, remove and list the NAS that may talk to ratel."""

    async def register(
        self,
        name: str,
        address: str,
        secret: str,
        *,
        vendor: NasVendor = NasVendor.GENERIC,
        accepts_coa: bool = False,
        accepts_disconnect: bool = False,
        dae_port: int = DEFAULT_DAE_PORT,
        require_message_authenticator: bool = False,
    ) -> Nas:
        """A new NAS (``DuplicateNas`` if its address is registered already)."""
        nas = Nas(
            id=self.deps.ids.new("nas"),
            name=name,
            address=address,
            secret=secret,
            vendor=vendor,
            accepts_coa=accepts_coa,
            accepts_disconnect=accepts_disconnect,
            dae_port=dae_port,
            require_message_authenticator=require_message_authenticator,
        )
        async with self.store() as store:
            await store.nas.add(nas)
            await store.commit()
        log.info("NAS registered", extra={"nas_id": nas.id, "nas_address": nas.address})
        return nas

    async def change(self, nas_id: str, **fields: object) -> Nas:
        """Change some fields of a NAS (name, address, secret, vendor, ...)."""
        async with self.store() as store:
            nas = found(await store.nas.get(nas_id), "NAS", nas_id)
            changed = nas.changed(**fields)
            await store.nas.save(changed)
            await store.commit()
        return changed

    async def remove(self, nas_id: str) -> bool:
        """Forget a NAS: its packets are dropped from now on."""
        async with self.store() as store:
            removed = await store.nas.remove(nas_id)
            await store.commit()
        return removed

    async def list(self) -> list[Nas]:
        """Every NAS, by name."""
        async with self.store() as store:
            return await store.nas.all()

    async def get(self, nas_id: str) -> Nas | None:
        """One NAS, or None."""
        async with self.store() as store:
            return await store.nas.get(nas_id)


class SetChapSecret(RadiusUseCase):
    """Give an account the password its router sends with CHAP."""

    async def __call__(self, account_id: str, secret: str) -> None:
        """Store (or replace) the account's CHAP secret (1 to 128 octets)."""
        if not secret or len(secret.encode()) > 128:
            raise DomainError("a CHAP secret has 1 to 128 octets")
        async with self.deps.uow() as uow:
            found(await uow.accounts.get(account_id), "account", account_id)
        async with self.store() as store:
            await store.chap_secrets.set(account_id, secret, self.deps.clock.now())
            await store.commit()


# -- Access-Request ----------------------------------------------------------------


class RejectReason:
    """Why an Access-Request is refused (the metric code), with the
    Reply-Message the user's router shows."""

    UNKNOWN_USER = "unknown_subscriber"
    BAD_PASSWORD = "invalid_credentials"
    NO_FUNDS = "insufficient_funds"

    MESSAGES: Final = {
        "unknown_subscriber": "Unknown user",
        "invalid_credentials": "Wrong user name or password",
        "insufficient_funds": "No funds or quota left: please top up",
        "account_blocked": "Your account is blocked",
        "account_terminated": "Your account is terminated",
        "customer_suspended": "Your service is suspended",
        "customer_closed": "Your contract is closed",
        "location_restricted": "Data is not available in your location",
        "service_not_subscribed": "Internet access is not part of your product",
    }

    @classmethod
    def message(cls, code: str) -> str:
        return cls.MESSAGES.get(code, "Access denied")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the Access-Request proves: a PAP password, or a CHAP check that
    the adapter runs against a candidate password."""

    pap_password: str | None = None
    chap_matches: Callable[[str], bool] | None = None


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """Accept with the effective policy, or reject with a reason."""

    accepted: bool
    reason: str = ""
    message: str = ""
    account_id: str | None = None
    customer_id: str | None = None
    policy: ServicePolicy | None = None
    static_ip: str | None = None
    static_netmask: str | None = None
    session_timeout: int = 0

    @classmethod
    def reject(cls, reason: str, account_id: str | None = None) -> AccessDecision:
        return cls(False, reason, RejectReason.message(reason), account_id)


async def find_login(uow: UnitOfWork, user_name: str) -> Account | None:
    """The account whose alias (PPPoE / IPoE login) or account ID is ``user_name``."""
    name = user_name.strip()
    if not name:
        return None
    account = await uow.accounts.by_identifier(IdentifierKind.ALIAS, name)
    if account is None:
        account = await uow.accounts.by_identifier(IdentifierKind.ACCOUNT_ID, name)
    return account


async def account_policy(uow: UnitOfWork, account: Account, now: datetime) -> ServicePolicy:
    """The account's effective service policy (main product and active add-ons)."""
    main = found(
        await uow.catalogue.get_product(account.product_code), "product", account.product_code
    )
    add_ons: list[Product] = []
    for assignment in account.active_add_ons(now):
        product = await uow.catalogue.get_product(assignment.product_code)
        if product is not None:
            add_ons.append(product)
    cpe = account.identifiers.cpe
    return effective_policy(main, add_ons, cpe.port_type if cpe else None)


def data_request(used: int = 0, *, requested: int | None = None) -> UsageRequest:
    """The one stream of a broadband session: data, counted in octets."""
    return UsageRequest(Service.DATA, Unit.BYTES, DATA_ACCESS_CODE, used=used, requested=requested)


def funded_seconds(units: int | None, policy: ServicePolicy, longest: int) -> int:
    """How long ``units`` octets last at the policy's line rate (download and
    upload together, the most a session can use), within ``longest``: at
    least a second. Without a rate (or a bound on the units) nothing shortens
    ``longest``."""
    kbps = (policy.download_kbps or 0) + (policy.upload_kbps or 0)
    if units is None or kbps == 0:
        return longest
    octets_per_second = kbps * 1000 // 8
    return max(1, min(longest, units // octets_per_second))


class AuthorizeLogin(RadiusUseCase):
    """Access-Request: who is it, is the password right, may the account use
    data now (status, location), and do quota or funds cover a first grant.
    Nothing is charged or held: the session is opened by Accounting-Start."""

    def __init__(
        self,
        deps: Dependencies,
        store: RadiusStoreFactory,
        passwords: PasswordHasher,
        credit_control: CreditControl,
    ) -> None:
        super().__init__(deps, store)
        self.passwords = passwords
        self.credit_control = credit_control

    async def __call__(
        self, user_name: str, credentials: Credentials, *, funds_bound: bool = False
    ) -> AccessDecision:
        """The decision for one Access-Request. ``funds_bound``: the NAS takes
        neither CoA nor Disconnect, so nothing can stop the session when the
        money runs out: its Session-Timeout is how long the quota and funds
        last at the policy's line rate, and the next login is checked again."""
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            account = await find_login(uow, user_name)
            if account is None:
                return AccessDecision.reject(RejectReason.UNKNOWN_USER)
            password_hash = await uow.credentials.get(account.id)
            customer = found(
                await uow.customers.get(account.customer_id), "customer", account.customer_id
            )
            policy = await account_policy(uow, account, now)
        async with self.store() as store:
            chap_secret = await store.chap_secrets.get(account.id)
        if not await self._proves(credentials, password_hash, chap_secret):
            return AccessDecision.reject(RejectReason.BAD_PASSWORD, account.id)
        refusal = self._refusal(account, customer)
        if refusal is not None:
            return AccessDecision.reject(refusal, account.id)
        subscriber = Subscriber(IdentifierKind.ACCOUNT_ID, account.id)
        try:
            units = await self.credit_control.units_covered(subscriber, data_request())
        except UnknownSubscriber:
            return AccessDecision.reject(RejectReason.UNKNOWN_USER)
        if units is not None and units < 1:
            return AccessDecision.reject(RejectReason.NO_FUNDS, account.id)
        timeout = self.deps.charging.validity_seconds
        if funds_bound:
            timeout = funded_seconds(units, policy, timeout)
        static = account.identifiers.static_ip
        return AccessDecision(
            True,
            account_id=account.id,
            customer_id=account.customer_id,
            policy=policy,
            static_ip=str(static.address) if static else None,
            static_netmask=str(static.netmask) if static else None,
            session_timeout=timeout,
        )

    def _refusal(self, account: Account, customer: Customer) -> str | None:
        try:
            account.check_can_use(customer, Service.DATA.value, self.deps.location_policy)
        except ServiceDenied as denied:
            return denied.code
        return None

    async def _proves(
        self, credentials: Credentials, password_hash: str | None, chap_secret: str | None
    ) -> bool:
        if credentials.chap_matches is not None:
            return chap_secret is not None and credentials.chap_matches(chap_secret)
        password = credentials.pap_password
        if password is None:
            return False
        if chap_secret is not None and chap_secret == password:
            return True
        if password_hash is None:
            return False
        return await self.passwords.verify(password_hash, password)


# -- Accounting-Request --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountingReport:
    """One Accounting-Request as the core needs it: the NAS, the session's
    ids, the cumulative counters (gigawords folded in) and the user."""

    nas_address: str
    acct_session_id: str
    user_name: str = ""
    correlation_id: str | None = None  # Acct-Multi-Session-Id / 3GPP2-Correlation-Id
    framed_ip: str | None = None
    input_octets: int = 0
    output_octets: int = 0
    session_time: int = 0
    cause: str = "normal"


@dataclass(frozen=True, slots=True)
class AccountingOutcome:
    """What the report did: the core's answer (None when nothing was charged:
    a retransmission, a closed session, a hotlined session) and the session."""

    session: RadiusSession | None
    answer: Answer | None = None
    duplicate: bool = False

    @property
    def out_of_funds(self) -> bool:
        """The grant was refused or is the last: the NAS must be told."""
        if self.answer is None:
            return False
        if not self.answer.granted:
            return bool(self.answer.results)
        return any(isinstance(r, Grant) and r.final is not None for r in self.answer.results)


def charging_session_id(report: AccountingReport) -> str:
    """The credit-control session a report feeds. Sub-sessions of one mobile
    data session (a PDSN's, as the phone moves between base stations) share
    the correlation id. A NAS numbers its Acct-Multi-Session-Ids on its own
    (Cisco counts them up from 1), so the id is the NAS's: the same one from
    two NASes is two users' sessions."""
    if report.correlation_id:
        return f"radius:corr:{report.nas_address}:{report.correlation_id}"
    return f"radius:{report.nas_address}:{report.acct_session_id}"


#: Generations of a correlation id's charging session a Start tries, the
#: first one's and then ``#2``, ``#3``..., before it gives up.
_GENERATIONS_TRIED: Final = 16

#: Accounting sessions a process keeps in memory (about 1 kB each).
SESSION_CACHE_SIZE: Final = 100_000

#: How long a DAE claim is kept: far longer than the relay awaits a late event
#: (30 s) and than a node's reaction takes; then it is forgotten, at most once
#: per ``CLAIMS_PURGED_EVERY`` per process.
DAE_CLAIMS_KEPT: Final = timedelta(days=1)
CLAIMS_PURGED_EVERY: Final = timedelta(hours=1)


class RadiusSessionCache:
    """The accounting sessions this process charged lately, as stored.

    Accounting reads a session before each report and writes it with the
    charge; keeping the last stored state here saves a transaction per
    report. A copy may be outdated: a NAS whose primary accounting server is
    slow sends the next report to its secondary, another ratel node, and then
    comes back. Accounting finds out without a read of its own: the charging
    transaction writes the session's counters only over an older report
    number, and the request number already taken gets its stored answer,
    charging nothing; accounting then reads the session from the store and
    charges the report again. A Start is judged on the stored session, and so
    is a report on a session this cache holds as closed. The DAE client
    tells this cache what it stores (``restricted`` and ``last_dae``). The
    oldest sessions are forgotten beyond ``size``; a forgotten one is read
    again."""

    def __init__(self, size: int = SESSION_CACHE_SIZE) -> None:
        self._size = size
        self._sessions: OrderedDict[tuple[str, str], RadiusSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, nas_address: str, acct_session_id: str) -> RadiusSession | None:
        """A copy of the session as last stored, or None."""
        key = (nas_address, acct_session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        self._sessions.move_to_end(key)
        return replace(session)

    def stored(self, session: RadiusSession) -> None:
        """Accounting stored ``session``: keep its counters and state, and the
        DAE outcome already known here (the DAE client may have written it
        while the report was being charged)."""
        key = (session.nas_address, session.acct_session_id)
        known = self._sessions.get(key)
        kept = replace(session)
        if known is not None:
            kept.restriction = known.restriction
            kept.last_dae = known.last_dae
        self._sessions[key] = kept
        self._sessions.move_to_end(key)
        while len(self._sessions) > self._size:
            self._sessions.popitem(last=False)

    def dae_outcome(
        self,
        nas_address: str,
        acct_session_id: str,
        last_dae: str,
        restriction: Restriction | None | Unset,
    ) -> None:
        """What the DAE client stored on a session."""
        known = self._sessions.get((nas_address, acct_session_id))
        if known is not None:
            known.last_dae = last_dae
            if not isinstance(restriction, Unset):
                known.restriction = restriction

    def forget(self, nas_address: str, acct_session_id: str) -> None:
        """Read the session from the store next time."""
        self._sessions.pop((nas_address, acct_session_id), None)


@dataclass(frozen=True, slots=True)
class _Opening:
    """A Start's session row, written with the charging session's opening
    (``replaces``: over a closed session whose Acct-Session-Id the NAS reused)."""

    session: RadiusSession
    replaces: bool


class ChargeAccounting(RadiusUseCase):
    """Accounting Start, Interim-Update, Stop and Accounting-On/Off charged
    through the credit-control core, each at most once. A report's new
    counters are written in the transaction that charges it (a ``Companion``
    of the charging call), so counters and charge never disagree."""

    def __init__(
        self,
        deps: Dependencies,
        store: RadiusStoreFactory,
        credit_control: Charging,
        cache: RadiusSessionCache | None = None,
    ) -> None:
        super().__init__(deps, store)
        self.credit_control = credit_control
        self.cache = cache if cache is not None else RadiusSessionCache()
        # Reports of one session are charged one at a time in this process, so
        # two different reports never both take the same request number.
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._lock_users: dict[tuple[str, str], int] = {}
        # Sessions whose Start or report was charged from an outdated copy:
        # another server (a NAS failing over and back) had stored that Start or
        # charged that report number.
        self._outdated: set[tuple[str, str]] = set()
        # When each NAS last said it restarted (Accounting-On/Off): a session
        # it began before is one of those that restart ended.
        self._restarted: dict[str, datetime] = {}

    @contextmanager
    def _counting(self, key: tuple[str, str]) -> Iterator[asyncio.Lock]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            yield lock
        finally:
            self._lock_users[key] -= 1
            if self._lock_users[key] == 0:
                del self._lock_users[key]
                del self._locks[key]

    async def _session(
        self, report: AccountingReport, *, fresh: bool = False
    ) -> tuple[RadiusSession | None, bool]:
        """The session and whether it came from this process's cache (``fresh``:
        read from the store whatever the cache holds)."""
        key = (report.nas_address, report.acct_session_id)
        if not fresh:
            cached = self.cache.get(*key)
            if cached is not None:
                return cached, True
        async with self.store() as store:
            session = await store.sessions.get(*key)
        if session is None:
            self.cache.forget(*key)
        else:
            self.cache.stored(session)
        return session, False

    async def write_companions(self, uow: UnitOfWork, records: Sequence[object]) -> None:
        """The session rows of charged Starts and the new counters of charged
        reports, in the charging transaction (``CompanionWriter``). What the
        store already had newer is noted for the waiting call."""
        usage = [r for r in records if isinstance(r, RadiusSession)]
        openings = [r for r in records if isinstance(r, _Opening)]
        if len(usage) + len(openings) != len(records):
            raise TypeError("RADIUS accounting writes RADIUS sessions only")
        store = self.store.joining(uow)
        new = [o.session for o in openings if not o.replaces]
        self._note_outdated(await store.add_many(new) if new else [])
        for opening in openings:
            if opening.replaces:
                await store.save(opening.session)
        if usage:
            await store.save_usage_many(usage, self._note_outdated)

    def _note_outdated(self, sessions: list[RadiusSession]) -> None:
        """Rows the store already had newer: their calls learn it (``_written_with``)."""
        for old in sessions:
            self._outdated.add((old.nas_address, old.acct_session_id))

    async def _written_with(
        self, key: tuple[str, str], call: Awaitable[Answer]
    ) -> tuple[Answer, bool]:
        """The answer of a charging ``call`` whose companion is the session
        ``key``'s row, and whether that row was left unwritten because the
        store already had it newer (``write_companions`` notes it)."""
        self._outdated.discard(key)
        try:
            answer = await call
        finally:
            outdated = key in self._outdated
            self._outdated.discard(key)
        return answer, outdated

    async def start(self, report: AccountingReport) -> AccountingOutcome:
        """Accounting Start: open (or join) the charging session and hold a first grant."""
        with self._counting((report.nas_address, report.acct_session_id)) as lock:
            async with lock:
                return await self._start(report)

    async def _start(self, report: AccountingReport) -> AccountingOutcome:
        key = (report.nas_address, report.acct_session_id)
        # From the store, not the cache: another server may have ended the
        # session this process last saw open, or begun a new one under a reused
        # Acct-Session-Id. One read transaction for the session and the login.
        account: Account | None = None
        async with self.deps.uow() as uow:
            existing = await self.store.joining(uow).get(*key)
            if existing is None or existing.state is not RadiusSessionState.OPEN:
                account = await find_login(uow, report.user_name)
        if existing is None:
            self.cache.forget(*key)
        else:
            self.cache.stored(existing)
            if existing.state is RadiusSessionState.OPEN:
                restarted = self._restarted.get(report.nas_address)
                if restarted is None or existing.started_at >= restarted:
                    return AccountingOutcome(existing, duplicate=True)
                # The NAS restarted after that session began, and reuses its
                # id: the Accounting-On is still closing the old session.
                # Close it now, and open this one as a new session.
                ended = await self._report_held(_closing(existing, "nas_reboot"), ending=True)
                existing = ended.session
                async with self.deps.uow() as uow:
                    account = await find_login(uow, report.user_name)
        if account is None:
            raise UnknownSubscriber(f"no account has the login {report.user_name!r}")
        charging_id = charging_session_id(report)
        if existing is not None and not report.correlation_id:
            # A NAS that restarted reuses its Acct-Session-Ids: a new session.
            charging_id = f"{charging_id}#{self.deps.ids.new('gen')}"
        sub_session = report.acct_session_id if report.correlation_id else ""
        now = self.deps.clock.now()
        session = RadiusSession(
            nas_address=report.nas_address,
            acct_session_id=report.acct_session_id,
            charging_session_id=charging_id,
            sub_session=sub_session,
            account_id=account.id,
            customer_id=account.customer_id,
            user_name=report.user_name,
            started_at=now,
            updated_at=now,
            framed_ip=report.framed_ip,
            input_octets=report.input_octets,
            output_octets=report.output_octets,
            session_time=report.session_time,
        )
        # the session row is written in the transaction that opens the charging
        for generation in range(2, _GENERATIONS_TRIED + 2):
            try:
                answer, raced = await self._opened(session, replaces=existing is not None)
                break
            except SessionClosed:
                if not report.correlation_id or generation > _GENERATIONS_TRIED:
                    raise
                # The mobile session of this correlation id ended (its last
                # sub-session stopped before this one started, as in a PDSN
                # hand-off): this sub-session goes on in the next generation,
                # which the correlation's later sub-sessions join too.
                session.charging_session_id = f"{charging_id}#{generation}"
        if raced:  # another server's Start of the same session was stored first
            stored, _ = await self._session(report, fresh=True)
            return AccountingOutcome(stored, answer, duplicate=True)
        self.cache.stored(session)
        return AccountingOutcome(session, answer)

    async def interim(self, report: AccountingReport) -> AccountingOutcome:
        """Interim-Update: charge the octets since the last report and grant again."""
        return await self._report(report, ending=False)

    async def stop(self, report: AccountingReport) -> AccountingOutcome:
        """Stop: charge the last octets and end the (sub-)session; the last
        sub-session's Stop produces the xDR."""
        return await self._report(report, ending=True)

    async def _report(
        self, report: AccountingReport, *, ending: bool, only: str | None = None
    ) -> AccountingOutcome:
        with self._counting((report.nas_address, report.acct_session_id)) as lock:
            async with lock:
                return await self._report_held(report, ending=ending, only=only)

    async def _report_held(
        self, report: AccountingReport, *, ending: bool, only: str | None = None
    ) -> AccountingOutcome:
        """``_report`` with the session's lock held (``only``: charge nothing
        unless the session feeds that charging session)."""
        session, cached = await self._session(report)
        if cached and session is not None and session.state is RadiusSessionState.CLOSED:
            # another server may have begun a new session under this id
            session, cached = await self._session(report, fresh=True)
        if only is not None and (session is None or session.charging_session_id != only):
            return AccountingOutcome(session, duplicate=True)  # not that session
        if session is None:
            # The Start was lost or went to another server: open the
            # session from zero, then charge this report's octets.
            opening = replace(report, input_octets=0, output_octets=0, session_time=0)
            session = (await self._start(opening)).session
            if session is None:
                raise NotFound(f"session {report.acct_session_id} could not be opened")
            cached = False
        outcome = await self._charge(session, report, ending=ending, cached=cached)
        if outcome is not None:
            return outcome
        # What this process knew of the session was outdated: charge
        # the report again against the session as stored.
        session, _ = await self._session(report, fresh=True)
        if session is None:
            raise NotFound(f"session {report.acct_session_id} is gone")
        try:
            outcome = await self._charge(session, report, ending=ending, cached=False)
        except SessionClosed:
            if session.state is not RadiusSessionState.OPEN:
                raise
            session = await self._reopen(session, report)
            outcome = await self._charge(session, report, ending=ending, cached=False)
        if outcome is None:
            raise ConcurrentChange(
                f"session {report.acct_session_id} of {report.nas_address} "
                "is being charged by another server"
            )
        return outcome

    async def _opened(self, session: RadiusSession, *, replaces: bool) -> tuple[Answer, bool]:
        """Open ``session``'s charging session (or join it, for a sub-session)
        with its row written in the same transaction (``replaces``: over a
        closed row of the same id); the answer, and whether another server's
        row was stored first."""
        return await self._written_with(
            (session.nas_address, session.acct_session_id),
            self.credit_control.start(
                session.charging_session_id,
                Subscriber(IdentifierKind.ACCOUNT_ID, session.account_id),
                [data_request()],
                number=0,
                sub_session=session.sub_session,
                companion=Companion(self, _Opening(session, replaces=replaces)),
            ),
        )

    def _quiet_long(self, session: RadiusSession) -> bool:
        """Whether the session was last charged half a grant's validity ago or
        more. An idle user's Interim-Updates repeat the same counters (and
        many NASes send no Acct-Session-Time in them); such a report is then
        charged (nothing used) rather than taken for a retransmission, so that
        the charging session sees the NAS alive and Tcc supervision does not
        release it."""
        quiet = self.deps.clock.now() - session.updated_at
        return quiet >= timedelta(seconds=self.deps.charging.validity_seconds / 2)

    async def _reopen(self, session: RadiusSession, report: AccountingReport) -> RadiusSession:
        """The NAS reports on a session whose charging session has ended under
        it (Tcc supervision released it while the NAS was silent, or ratel was
        down longer than a grant's validity): the NAS still serves the user,
        so the usage goes on being charged, in a new charging session from the
        counters last charged (a second xDR; the first one has the usage up to
        the release)."""
        charging_id = f"{charging_session_id(report)}#{self.deps.ids.new('gen')}"
        log.warning(
            "radius: the charging session of an open accounting session has ended; "
            "its usage goes on in a new one",
            extra={
                "nas_address": session.nas_address,
                "session_id": session.charging_session_id,
                "new_session_id": charging_id,
            },
        )
        reopened = replace(
            session, charging_session_id=charging_id, updated_at=self.deps.clock.now()
        )
        _, raced = await self._opened(reopened, replaces=True)
        if raced:
            raise ConcurrentChange(
                f"session {session.acct_session_id} of {session.nas_address} "
                "is being charged by another server"
            )
        self.cache.stored(reopened)
        return reopened

    async def _charge(
        self, session: RadiusSession, report: AccountingReport, *, ending: bool, cached: bool
    ) -> AccountingOutcome | None:
        """Charge the report's usage since ``session``'s counters; None when
        ``session`` turned out to be older than the stored one (it is forgotten
        from the cache, nothing is charged)."""
        if session.state is RadiusSessionState.CLOSED:
            return AccountingOutcome(session, duplicate=True)
        unchanged = session.same_counters(
            report.input_octets, report.output_octets, report.session_time
        )
        stale = session.is_stale(report.input_octets, report.output_octets)
        if (unchanged or stale) and not ending and not (unchanged and self._quiet_long(session)):
            return AccountingOutcome(session, duplicate=True)
        used = session.usage_since(report.input_octets, report.output_octets)
        if session.restricted:
            used = 0  # hotline / throttled traffic is not charged
        number = session.reports + 1
        request = [data_request(used, requested=0 if ending else None)]
        charged = replace(session, reports=number, updated_at=self.deps.clock.now())
        if not stale:  # a late Stop ends the session; the counters charged stand
            charged.input_octets = report.input_octets
            charged.output_octets = report.output_octets
            charged.session_time = report.session_time
        if report.framed_ip:
            charged.framed_ip = report.framed_ip
        if ending:
            charged.state = RadiusSessionState.CLOSED
        companion = Companion(self, charged)
        key = (session.nas_address, session.acct_session_id)
        if ending:
            call = self.credit_control.terminate(
                session.charging_session_id,
                number,
                request,
                sub_session=session.sub_session,
                cause=report.cause,
                companion=companion,
            )
        else:
            call = self.credit_control.update(
                session.charging_session_id,
                number,
                request,
                sub_session=session.sub_session,
                companion=companion,
            )
        try:
            answer, outdated = await self._written_with(key, call)
        except (OutOfOrderRequest, SessionClosed):
            if not cached:
                raise
            self.cache.forget(*key)  # another server charged past this copy
            return None
        if outdated:
            # The answer is the one stored for that request number: nothing
            # was charged or written for this report yet.
            self.cache.forget(*key)
            return None
        self.cache.stored(charged)
        return AccountingOutcome(charged, answer)

    async def nas_restarted(self, nas_address: str, cause: str = "nas_reboot") -> int:
        """Accounting-On / Off: the NAS lost every session it had; end them
        with the usage last reported. How many were closed. A Start that comes
        meanwhile under the id of a session not closed yet ends that one
        first (``_start``)."""
        self._restarted[nas_address] = self.deps.clock.now()
        async with self.store() as store:
            sessions = await store.sessions.open_for_nas(nas_address)
        restarted = self._restarted[nas_address]
        sessions = [s for s in sessions if s.started_at < restarted]  # not one begun since
        # Many at once, so that the charging batches take them together: a
        # BRAS may have tens of thousands, and answers Accounting-On late
        # only at the cost of its retransmissions.
        waiting = iter(sessions)

        async def closing() -> int:
            closed = 0
            for session in waiting:  # shared: each session is taken once
                if await self._close(session, cause):
                    closed += 1
            return closed

        closers = min(_CLOSED_AT_ONCE, len(sessions))
        return sum(await asyncio.gather(*(closing() for _ in range(closers))))

    async def _close(self, session: RadiusSession, cause: str) -> bool:
        """End one session of a restarted NAS with the usage last reported
        (not a session begun since under the same id)."""
        try:
            await self._report(
                _closing(session, cause), ending=True, only=session.charging_session_id
            )
        except DomainError:
            log.exception(
                "could not close a session of a restarted NAS",
                extra={
                    "nas_address": session.nas_address,
                    "session_id": session.charging_session_id,
                },
            )
            return False
        return True


def _closing(session: RadiusSession, cause: str) -> AccountingReport:
    """The Stop that ends ``session`` with the usage it last reported."""
    return AccountingReport(
        nas_address=session.nas_address,
        acct_session_id=session.acct_session_id,
        user_name=session.user_name,
        input_octets=session.input_octets,
        output_octets=session.output_octets,
        session_time=session.session_time,
        cause=cause,
    )


class RadiusSessions(RadiusUseCase):
    """Read and annotate accounting sessions (the DAE client's view)."""

    def __init__(
        self,
        deps: Dependencies,
        store: RadiusStoreFactory,
        credit_control: CreditControl,
        cache: RadiusSessionCache | None = None,
    ) -> None:
        super().__init__(deps, store)
        self.credit_control = credit_control
        self.cache = cache  # accounting's, told of what the DAE client stores
        self._claims_purged_at: datetime | None = None

    async def get(self, nas_address: str, acct_session_id: str) -> RadiusSession | None:
        """One accounting session, or None."""
        async with self.store() as store:
            return await store.sessions.get(nas_address, acct_session_id)

    async def open_for_customer(self, customer_id: str) -> list[RadiusSession]:
        """The customer's open sessions on every NAS."""
        async with self.store() as store:
            return await store.sessions.open_for_customer(customer_id)

    async def open_for_account(self, account_id: str) -> list[RadiusSession]:
        """The account's open sessions on every NAS."""
        async with self.store() as store:
            return await store.sessions.open_for_account(account_id)

    async def claim(self, reaction: str, session: RadiusSession) -> bool:
        """Whether this node is the one to send ``session`` the CoA or
        Disconnect named by ``reaction``: ``"disconnect:<charging session>:
        <reports>"`` for the Disconnect an event calls for, ``"restore:
        <reports>"`` for the restoring CoA, each of the session as it stands
        (closing a customer raises several events; one Disconnect goes).
        With several ratel nodes every node's relay sees every event; the
        first to claim reacts, the others leave it (the NAS gets one request,
        not one per node). Claims older than
        ``DAE_CLAIMS_KEPT`` are forgotten here, at most once per
        ``CLAIMS_PURGED_EVERY``."""
        now = self.deps.clock.now()
        async with self.store() as store:
            won = await store.dae_claims.claim(
                reaction, session.nas_address, session.acct_session_id, now
            )
            purged = self._claims_purged_at
            if purged is None or now - purged >= CLAIMS_PURGED_EVERY:
                await store.dae_claims.forget_before(now - DAE_CLAIMS_KEPT)
                self._claims_purged_at = now
            await store.commit()
        return won

    async def for_charging_session(self, charging_session_id: str) -> list[RadiusSession]:
        """The accounting sessions of one charging session."""
        async with self.store() as store:
            return await store.sessions.for_charging_session(charging_session_id)

    async def dae_result(
        self,
        nas_address: str,
        acct_session_id: str,
        outcome: str,
        restriction: Restriction | None | Unset = UNSET,
    ) -> None:
        """Keep what the NAS answered to a CoA / Disconnect on the session, and
        how the session is now restricted (hotline, throttle, None: not)."""
        async with self.store() as store:
            session = await store.sessions.get(nas_address, acct_session_id, lock=True)
            if session is None:
                return
            session.last_dae = outcome[:500]
            if not isinstance(restriction, Unset):
                session.restriction = restriction
            session.updated_at = self.deps.clock.now()
            await store.sessions.save(session)
            await store.commit()
        if self.cache is not None:
            self.cache.dae_outcome(nas_address, acct_session_id, outcome[:500], restriction)

    async def policy(self, account_id: str) -> ServicePolicy:
        """The account's effective service policy now (for a restoring CoA)."""
        async with self.deps.uow() as uow:
            account = found(await uow.accounts.get(account_id), "account", account_id)
            return await account_policy(uow, account, self.deps.clock.now())

    async def can_use(self, account_id: str) -> bool:
        """Whether the account may use data and has quota or funds for it."""
        async with self.deps.uow() as uow:
            account = await uow.accounts.get(account_id)
            if account is None:
                return False
            customer = await uow.customers.get(account.customer_id)
            if customer is None or not account.usable_for(
                customer, Service.DATA.value, self.deps.location_policy
            ):
                return False
        subscriber = Subscriber(IdentifierKind.ACCOUNT_ID, account_id)
        return await self.credit_control.can_afford(subscriber, data_request(requested=1))
