"""The wiring: the only place where adapters meet the ports.

``build_container(settings)`` gives a container whose providers build the
process's objects once (engine, unit-of-work factory, clock, ids, hasher,
telemetry, listener registry) and one instrumented instance per use case::

    container = build_container(load_settings())
    customer = await container.open_customer()("Ada", "USD")

Every use case call is counted and timed (protocol ``internal``, operation
the use case's name). Tests replace a part with ``override``::

    container.clock.override(providers.Object(FixedClock(...)))

Call ``await dispose(container)`` before the loop ends so the engine's
connections are closed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from dependency_injector import containers, providers

from ratel.adapters.charging import ChargingBatcher, ChargingWorkers, worker_count
from ratel.adapters.component import EventRelayLoop
from ratel.adapters.db.directory_sync import SqlDirectorySyncLog
from ratel.adapters.db.engine import charging_engine, create_engine
from ratel.adapters.db.radius import SqlRadiusStoreFactory
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.diameter.credit_control import CreditControlOptions
from ratel.adapters.diameter.peers import SessionPeers
from ratel.adapters.diameter.server import DiameterServer, DiameterSettings
from ratel.adapters.directory.local import LocalDirectory
from ratel.adapters.directory.scheduled import DirectorySyncLoop
from ratel.adapters.health import DatabaseCheck, ListenerRegistry
from ratel.adapters.passwords import Argon2Hasher
from ratel.adapters.radius.dae import DynamicAuthorization
from ratel.adapters.radius.dpi import DpiForwarder
from ratel.adapters.radius.server import RadiusServer
from ratel.adapters.system import HmacHasher, SystemClock, TimeOrderedIds
from ratel.adapters.telemetry import Telemetry, instrument
from ratel.application.accounts import (
    AddAlias,
    BlockAccount,
    ChangeNumber,
    ChangeProduct,
    ChangeSim,
    CreateAccount,
    LiftLocationBlock,
    SetLocation,
    TerminateAccount,
    UnblockAccount,
    UpdateAccount,
)
from ratel.application.add_ons import AddAddOn, RemoveAddOn
from ratel.application.auth import (
    Authenticate,
    BlockStaffUser,
    ChangeOwnPassword,
    CreateApiKey,
    CreateLocalStaffUser,
    IdentityServices,
    IdentityUseCase,
    ListApiKeys,
    ListStaff,
    Logout,
    PurgeExpiredTokens,
    RevokeApiKey,
    RevokeStaffTokens,
    SelfCareLogin,
    SetAccountPassword,
    StaffLogin,
    UnblockStaffUser,
)
from ratel.application.base import Dependencies, UseCase
from ratel.application.bulk import ImportCustomers
from ratel.application.catalogue import (
    DefineDestinationGroups,
    DefineProduct,
    DefineServicePolicy,
    DefineTariff,
    SetDialingRules,
)
from ratel.application.charging_batch import ChargingBatch
from ratel.application.credit_control import CreditControl
from ratel.application.crm import (
    CrmRecordsOfCustomers,
    CustomerByCrmRecord,
    LinkCrmRecord,
    UnlinkCrmRecord,
)
from ratel.application.customers import (
    CloseCustomer,
    OpenCustomer,
    ResumeCustomer,
    SetCreditLimit,
    SuspendCustomer,
    UpdateCustomer,
)
from ratel.application.directory_sync import DirectorySyncRuns, SyncDirectory
from ratel.application.enquiry import BalanceEnquiry, QuotaEnquiry
from ratel.application.housekeeping import Housekeeping
from ratel.application.network_sessions import OpenSessions
from ratel.application.payments import ManualTransaction, RecordPayment, TopUp
from ratel.application.queries import (
    AccountsOfCustomers,
    AccountXdrs,
    CustomersById,
    CustomerTransactions,
    CustomerXdrs,
    FindAccount,
    FindCustomers,
    GetTariff,
    ListDestinationGroups,
    ListProducts,
    ListServicePolicies,
    ListTariffs,
    ListVouchers,
    RecentEvents,
)
from ratel.application.radius import (
    AuthorizeLogin,
    ChargeAccounting,
    ManageNas,
    RadiusSessionCache,
    RadiusSessions,
    SetChapSecret,
)
from ratel.application.relay import EventRelay
from ratel.application.throttle import LoginThrottle, ThrottlePolicy
from ratel.application.vouchers import CreateVouchers, RedeemVoucher
from ratel.config import DirectoryKind, DirectoryTls, Environment, Settings
from ratel.domain.charging import ChargingConfig
from ratel.domain.location import LocationPolicy
from ratel.graphql.context import CustomerLinks, UseCases
from ratel.graphql.live import AccountFeed
from ratel.graphql.schema import build_schema

if TYPE_CHECKING:
    from ratel.adapters.directory.ldap import LdapConfig, LdapDirectory

U = TypeVar("U", bound=UseCase)
IU = TypeVar("IU", bound=IdentityUseCase)

#: The protocol label of use case calls in the metrics.
INTERNAL = "internal"


def operation_name(cls: type) -> str:
    """``OpenCustomer`` -> ``open_customer``: the metric label of a use case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def _instrumented(cls: type[U], deps: Dependencies, telemetry: Telemetry) -> U:
    return instrument(cls(deps), telemetry, INTERNAL, operation_name(cls))


def _use_case(
    cls: type[U], deps: providers.Provider[Dependencies], telemetry: providers.Provider[Telemetry]
) -> providers.Singleton[U]:
    # Use cases keep no state between calls (each opens its own unit of
    # work), so one instance per process serves every caller.
    return providers.Singleton(_instrumented, cls, deps, telemetry)


def _instrumented_identity(
    cls: type[IU], deps: Dependencies, identity: IdentityServices, telemetry: Telemetry
) -> IU:
    return instrument(cls(deps, identity), telemetry, INTERNAL, operation_name(cls))


def _identity_use_case(
    cls: type[IU],
    deps: providers.Provider[Dependencies],
    identity: providers.Provider[IdentityServices],
    telemetry: providers.Provider[Telemetry],
) -> providers.Singleton[IU]:
    return providers.Singleton(_instrumented_identity, cls, deps, identity, telemetry)


def _instrumented_batcher(
    workers: ChargingWorkers, credit_control: CreditControl, telemetry: Telemetry
) -> ChargingBatcher:
    # counted and timed as "charging.start", "charging.update", ...
    return instrument(ChargingBatcher(workers, credit_control), telemetry, INTERNAL, "charging")


def ldap_config(settings: Settings) -> LdapConfig:
    """The LDAP directory's configuration from the ``RATEL_DIRECTORY_*`` settings."""
    from ratel.adapters.directory.ldap import LdapConfig

    return LdapConfig(
        urls=settings.directory_urls,
        base_dn=settings.directory_base_dn,
        bind_dn=settings.directory_bind_dn,
        bind_password=settings.directory_bind_password,
        bind_password_file=settings.directory_bind_password_file,
        user_filter=settings.directory_user_filter,
        login_attribute=settings.directory_login_attribute,
        group_filter=settings.directory_group_filter,
        role_groups=settings.directory_role_groups,
        starttls=settings.directory_tls is DirectoryTls.STARTTLS,
        tls_verify=settings.directory_tls_verify,
        ca_file=settings.directory_ca_file,
        tls_server_name=settings.directory_tls_server_name,
        expiry_attribute=settings.directory_expiry_attribute,
        connect_timeout=settings.directory_connect_timeout,
        receive_timeout=settings.directory_receive_timeout,
    )


def ldap_directory(settings: Settings) -> LdapDirectory:
    """The LDAP directory; ldap3 is imported only by a process that uses it."""
    from ratel.adapters.directory.ldap import LdapDirectory

    return LdapDirectory(ldap_config(settings))


def _sync_directory(
    deps: Dependencies,
    identity: IdentityServices,
    runs: SqlDirectorySyncLog,
    telemetry: Telemetry,
) -> SyncDirectory:
    return instrument(
        SyncDirectory(deps, identity, runs), telemetry, INTERNAL, operation_name(SyncDirectory)
    )


def _directory_sync_runs(
    deps: Dependencies, runs: SqlDirectorySyncLog, telemetry: Telemetry
) -> DirectorySyncRuns:
    return instrument(
        DirectorySyncRuns(deps, runs), telemetry, INTERNAL, operation_name(DirectorySyncRuns)
    )


def _housekeeping(deps: Dependencies, telemetry: Telemetry, tcc_grace: float) -> Housekeeping:
    job = Housekeeping(deps)
    # Tcc supervision: a silent session lives this long past its validity
    job.idle_grace = timedelta(seconds=tcc_grace)
    return instrument(job, telemetry, INTERNAL, operation_name(Housekeeping))


def _diameter_settings(settings: Settings) -> DiameterSettings:
    return DiameterSettings(
        host=settings.diameter_host,
        port=settings.diameter_port,
        origin_host=settings.diameter_origin_host,
        origin_realm=settings.diameter_origin_realm,
        peers=dict(settings.diameter_peers),
        options=CreditControlOptions(
            ussd_context_id=settings.diameter_ussd_context_id,
            raise_mscc_result_code=settings.diameter_raise_mscc_result_code,
        ),
        validity_seconds=settings.charging_validity_seconds,
        max_in_flight=settings.diameter_max_in_flight,
        watchdog_seconds=settings.diameter_watchdog,
        answer_timeout=settings.diameter_answer_timeout,
        vendor_id=settings.diameter_vendor_id,
        shutdown_timeout=settings.shutdown_timeout,
    )


class Container(containers.DeclarativeContainer):
    """What a ratel process is made of."""

    settings = providers.Dependency(instance_of=Settings)

    # -- infrastructure
    telemetry = providers.Singleton(Telemetry)
    listeners = providers.Singleton(ListenerRegistry)
    engine = providers.Singleton(
        create_engine,
        settings.provided.database_url,
        pool_size=settings.provided.database_pool_size,
        max_overflow=settings.provided.database_max_overflow,
    )
    database_check = providers.Singleton(DatabaseCheck, engine)
    uow = providers.Singleton(SqlUnitOfWorkFactory, engine)
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(TimeOrderedIds)
    hasher = providers.Singleton(HmacHasher, settings.provided.secret)

    # -- policy from settings
    charging = providers.Singleton(
        ChargingConfig, validity_seconds=settings.provided.charging_validity_seconds
    )
    location_policy = providers.Singleton(
        LocationPolicy,
        restricted_locations=settings.provided.restricted_locations,
        restricted_services=settings.provided.restricted_services,
    )
    deps = providers.Singleton(
        Dependencies,
        uow=uow,
        clock=clock,
        ids=ids,
        hasher=hasher,
        charging=charging,
        location_policy=location_policy,
    )

    # -- use cases: customers
    open_customer = _use_case(OpenCustomer, deps, telemetry)
    update_customer = _use_case(UpdateCustomer, deps, telemetry)
    suspend_customer = _use_case(SuspendCustomer, deps, telemetry)
    resume_customer = _use_case(ResumeCustomer, deps, telemetry)
    close_customer = _use_case(CloseCustomer, deps, telemetry)
    set_credit_limit = _use_case(SetCreditLimit, deps, telemetry)
    import_customers = _use_case(ImportCustomers, deps, telemetry)

    # -- accounts
    create_account = _use_case(CreateAccount, deps, telemetry)
    block_account = _use_case(BlockAccount, deps, telemetry)
    unblock_account = _use_case(UnblockAccount, deps, telemetry)
    terminate_account = _use_case(TerminateAccount, deps, telemetry)
    change_number = _use_case(ChangeNumber, deps, telemetry)
    change_sim = _use_case(ChangeSim, deps, telemetry)
    update_account = _use_case(UpdateAccount, deps, telemetry)
    add_alias = _use_case(AddAlias, deps, telemetry)
    set_location = _use_case(SetLocation, deps, telemetry)
    lift_location_block = _use_case(LiftLocationBlock, deps, telemetry)
    change_product = _use_case(ChangeProduct, deps, telemetry)
    add_add_on = _use_case(AddAddOn, deps, telemetry)
    remove_add_on = _use_case(RemoveAddOn, deps, telemetry)

    # -- money
    top_up = _use_case(TopUp, deps, telemetry)
    record_payment = _use_case(RecordPayment, deps, telemetry)
    manual_transaction = _use_case(ManualTransaction, deps, telemetry)
    create_vouchers = _use_case(CreateVouchers, deps, telemetry)
    redeem_voucher = _use_case(RedeemVoucher, deps, telemetry)

    # -- charging and enquiries
    credit_control = _use_case(CreditControl, deps, telemetry)

    # -- group commit of credit control: protocol adapters call `charging`
    # (CreditControl's methods, many calls per transaction), run by workers
    # on a pool of their own (see charging_engine)
    workers = providers.Callable(
        worker_count, settings.provided.charging_workers, settings.provided.database_url
    )
    charging_engine = providers.Singleton(
        charging_engine, engine, settings.provided.database_url, workers
    )
    charging_deps = providers.Singleton(
        Dependencies,
        uow=providers.Singleton(SqlUnitOfWorkFactory, charging_engine, uow),
        clock=clock,
        ids=ids,
        hasher=hasher,
        charging=charging,
        location_policy=location_policy,
    )
    charging_workers = providers.Singleton(
        ChargingWorkers,
        providers.Factory(ChargingBatch, charging_deps),
        workers,
        settings.provided.charging_batch,
    )
    charging = providers.Singleton(
        _instrumented_batcher, charging_workers, credit_control, telemetry
    )

    balance_enquiry = _use_case(BalanceEnquiry, deps, telemetry)
    quota_enquiry = _use_case(QuotaEnquiry, deps, telemetry)

    # -- catalogue
    define_product = _use_case(DefineProduct, deps, telemetry)
    define_destination_groups = _use_case(DefineDestinationGroups, deps, telemetry)
    define_tariff = _use_case(DefineTariff, deps, telemetry)
    set_dialing_rules = _use_case(SetDialingRules, deps, telemetry)
    define_service_policy = _use_case(DefineServicePolicy, deps, telemetry)

    # -- the scheduled job
    housekeeping = providers.Singleton(
        _housekeeping, deps, telemetry, settings.provided.diameter_tcc_grace
    )

    # -- events: what this process reacts to at once (not instrumented: it
    # has subscribers, and each pass is not a use case call)
    event_relay = providers.Singleton(EventRelay, deps)
    event_relay_loop = providers.Singleton(
        EventRelayLoop, event_relay, settings.provided.event_relay_interval, listeners
    )

    # -- identity: who calls (staff, self-care, API clients)
    passwords = providers.Singleton(Argon2Hasher)
    # RATEL_DIRECTORY picks the adapter; the Active Directory issue adds one.
    directory = providers.Selector(
        settings.provided.directory,
        local=providers.Singleton(LocalDirectory, uow, passwords),
        ldap=providers.Singleton(ldap_directory, settings),
    )
    token_lifetime = providers.Factory(timedelta, seconds=settings.provided.token_ttl_seconds)
    identity = providers.Singleton(
        IdentityServices, passwords=passwords, directory=directory, token_lifetime=token_lifetime
    )
    staff_login = _identity_use_case(StaffLogin, deps, identity, telemetry)
    self_care_login = _identity_use_case(SelfCareLogin, deps, identity, telemetry)
    # bearer -> Principal: what the GraphQL view's "authenticate" should call
    authenticate_caller = _identity_use_case(Authenticate, deps, identity, telemetry)
    logout = _identity_use_case(Logout, deps, identity, telemetry)
    revoke_staff_tokens = _identity_use_case(RevokeStaffTokens, deps, identity, telemetry)
    purge_expired_tokens = _identity_use_case(PurgeExpiredTokens, deps, identity, telemetry)
    create_local_staff_user = _identity_use_case(CreateLocalStaffUser, deps, identity, telemetry)
    block_staff_user = _identity_use_case(BlockStaffUser, deps, identity, telemetry)
    unblock_staff_user = _identity_use_case(UnblockStaffUser, deps, identity, telemetry)
    list_staff = _identity_use_case(ListStaff, deps, identity, telemetry)
    set_account_password = _identity_use_case(SetAccountPassword, deps, identity, telemetry)
    change_own_password = _identity_use_case(ChangeOwnPassword, deps, identity, telemetry)
    create_api_key = _identity_use_case(CreateApiKey, deps, identity, telemetry)
    revoke_api_key = _identity_use_case(RevokeApiKey, deps, identity, telemetry)
    list_api_keys = _identity_use_case(ListApiKeys, deps, identity, telemetry)
    # failed logins per login and per client address, in this process's memory
    login_throttle = providers.Singleton(
        LoginThrottle,
        clock,
        providers.Singleton(
            ThrottlePolicy,
            per_login=settings.provided.login_max_failures,
            per_address=settings.provided.login_max_failures_per_address,
            window=providers.Factory(timedelta, seconds=settings.provided.login_throttle_seconds),
        ),
    )
    # the directory sync (issue 7): a use case, its record, and its loop in `ratel serve`
    directory_sync_log = providers.Singleton(SqlDirectorySyncLog, engine)
    sync_directory = providers.Singleton(
        _sync_directory, deps, identity, directory_sync_log, telemetry
    )
    directory_sync_runs = providers.Singleton(
        _directory_sync_runs, deps, directory_sync_log, telemetry
    )
    directory_sync_loop = providers.Singleton(
        DirectorySyncLoop,
        sync_directory,
        settings.provided.directory_sync_interval,
        listeners,
        enabled=providers.Callable(
            lambda settings: settings.directory is DirectoryKind.LDAP, settings
        ),
    )

    # -- read side (GraphQL and other readers)
    find_customers = _use_case(FindCustomers, deps, telemetry)
    customers_by_id = _use_case(CustomersById, deps, telemetry)
    accounts_of_customers = _use_case(AccountsOfCustomers, deps, telemetry)
    find_account = _use_case(FindAccount, deps, telemetry)
    list_products = _use_case(ListProducts, deps, telemetry)
    list_tariffs = _use_case(ListTariffs, deps, telemetry)
    get_tariff = _use_case(GetTariff, deps, telemetry)
    list_destination_groups = _use_case(ListDestinationGroups, deps, telemetry)
    account_xdrs = _use_case(AccountXdrs, deps, telemetry)
    customer_xdrs = _use_case(CustomerXdrs, deps, telemetry)
    customer_transactions = _use_case(CustomerTransactions, deps, telemetry)
    recent_events = _use_case(RecentEvents, deps, telemetry)
    list_vouchers = _use_case(ListVouchers, deps, telemetry)
    list_service_policies = _use_case(ListServicePolicies, deps, telemetry)

    # -- CRM apps: customers linked to CRM records (Zendesk organizations)
    link_crm_record = _use_case(LinkCrmRecord, deps, telemetry)
    unlink_crm_record = _use_case(UnlinkCrmRecord, deps, telemetry)
    crm_records_of_customers = _use_case(CrmRecordsOfCustomers, deps, telemetry)
    customer_by_crm_record = _use_case(CustomerByCrmRecord, deps, telemetry)

    # -- RADIUS: the NAS registry, authorization, accounting, the server
    radius_store = providers.Singleton(SqlRadiusStoreFactory, engine)
    manage_nas = providers.Singleton(
        lambda deps, store, telemetry: instrument(
            ManageNas(deps, store), telemetry, INTERNAL, "manage_nas"
        ),
        deps,
        radius_store,
        telemetry,
    )
    set_chap_secret = providers.Singleton(
        lambda deps, store, telemetry: instrument(
            SetChapSecret(deps, store), telemetry, INTERNAL, "set_chap_secret"
        ),
        deps,
        radius_store,
        telemetry,
    )
    authorize_login = providers.Singleton(
        AuthorizeLogin, deps, radius_store, passwords, credit_control
    )
    radius_session_cache = providers.Singleton(RadiusSessionCache)
    charge_accounting = providers.Singleton(
        ChargeAccounting, deps, radius_store, charging, radius_session_cache
    )
    radius_sessions = providers.Singleton(
        RadiusSessions, deps, radius_store, credit_control, radius_session_cache
    )
    radius_server = providers.Singleton(
        RadiusServer,
        host=settings.provided.radius_host,
        auth_port=settings.provided.radius_auth_port,
        acct_port=settings.provided.radius_acct_port,
        authorize=authorize_login,
        accounting=charge_accounting,
        nas_registry=manage_nas,
        telemetry=telemetry,
        listeners=listeners,
        interim_interval=settings.provided.radius_interim_interval,
        receive_buffer=settings.provided.radius_receive_buffer,
        max_in_flight=settings.provided.radius_max_in_flight,
    )

    # -- what `ratel serve` runs besides HTTP, started in this order and
    # stopped in the reverse one (protocol listeners append themselves here)
    # -- GraphQL: bearer token -> Principal (tests may override it), the
    # schema and its use cases
    authenticate = authenticate_caller
    graphql_development = providers.Callable(
        lambda settings: settings.environment is Environment.DEVELOPMENT, settings
    )
    graphql_schema = providers.Singleton(
        build_schema, introspection=graphql_development, recorder=telemetry
    )
    # balance and quota subscriptions, woken by the event relay
    account_feed = providers.Singleton(AccountFeed, event_relay)
    graphql_use_cases = providers.Singleton(
        UseCases,
        find_customers=find_customers,
        customers_by_id=customers_by_id,
        accounts_of_customers=accounts_of_customers,
        find_account=find_account,
        list_products=list_products,
        list_tariffs=list_tariffs,
        get_tariff=get_tariff,
        list_destination_groups=list_destination_groups,
        account_xdrs=account_xdrs,
        customer_xdrs=customer_xdrs,
        customer_transactions=customer_transactions,
        recent_events=recent_events,
        balance_enquiry=balance_enquiry,
        quota_enquiry=quota_enquiry,
        open_customer=open_customer,
        update_customer=update_customer,
        suspend_customer=suspend_customer,
        resume_customer=resume_customer,
        close_customer=close_customer,
        create_account=create_account,
        block_account=block_account,
        unblock_account=unblock_account,
        terminate_account=terminate_account,
        change_product=change_product,
        lift_location_block=lift_location_block,
        add_add_on=add_add_on,
        remove_add_on=remove_add_on,
        top_up=top_up,
        record_payment=record_payment,
        manual_transaction=manual_transaction,
        create_vouchers=create_vouchers,
        redeem_voucher=redeem_voucher,
        staff_login=staff_login,
        self_care_login=self_care_login,
        login_throttle=login_throttle,
        logout=logout,
        change_own_password=change_own_password,
        set_account_password=set_account_password,
        list_staff=list_staff,
        block_staff_user=block_staff_user,
        unblock_staff_user=unblock_staff_user,
        revoke_staff_tokens=revoke_staff_tokens,
        list_api_keys=list_api_keys,
        create_api_key=create_api_key,
        revoke_api_key=revoke_api_key,
        account_feed=account_feed,
        list_vouchers=list_vouchers,
        list_service_policies=list_service_policies,
        link_crm_record=link_crm_record,
        unlink_crm_record=unlink_crm_record,
        crm_records_of_customers=crm_records_of_customers,
        customer_by_crm_record=customer_by_crm_record,
        links=providers.Singleton(CustomerLinks, settings.provided.customer_page_url),
        directory_sync_runs=directory_sync_runs,
        sync_directory=sync_directory,
        manage_nas=manage_nas,
        set_chap_secret=set_chap_secret,
        radius_sessions=radius_sessions,
    )

    radius_dae = providers.Singleton(
        DynamicAuthorization,
        radius_server,
        radius_sessions,
        event_relay,
        telemetry,
        timeout=settings.provided.radius_dae_timeout,
        retries=settings.provided.radius_dae_retries,
    )
    radius_dpi = providers.Singleton(
        DpiForwarder,
        radius_server,
        radius_sessions,
        telemetry,
        host=settings.provided.radius_dpi_host,
        port=settings.provided.radius_dpi_port,
        secret=settings.provided.radius_dpi_secret,
        timeout=settings.provided.radius_dae_timeout,
        retries=settings.provided.radius_dae_retries,
    )
    # -- what `ratel serve` runs besides HTTP, started in this order and
    # stopped in the reverse one (protocol listeners append themselves here)
    # -- Diameter credit control (issue 6)
    open_sessions = _use_case(OpenSessions, deps, telemetry)
    diameter_session_peers = providers.Singleton(SessionPeers, engine)
    diameter = providers.Singleton(
        DiameterServer,
        providers.Callable(_diameter_settings, settings),
        charging,
        open_sessions,
        event_relay,
        diameter_session_peers,
        clock,
        telemetry,
        listeners,
    )

    # RADIUS after its DAE and DPI senders, so it is stopped first: the work its
    # last requests hand them is then waited for when they stop; every
    # protocol listener after the charging workers, which drain last.
    components = providers.List(
        event_relay_loop,
        charging_workers,
        directory_sync_loop,
        radius_dae,
        radius_dpi,
        radius_server,
        diameter,
    )


def build_container(settings: Settings) -> Container:
    """A container for ``settings``."""
    return Container(settings=providers.Object(settings))


async def dispose(container: Container) -> None:
    """Close the database connections of the container's engines."""
    engine = container.engine()
    await engine.dispose()
    charging = container.charging_engine()  # (made here if unused: it opened nothing)
    if charging is not engine:
        await charging.dispose()
