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
from typing import TypeVar

from dependency_injector import containers, providers

from ratel.adapters.db.engine import create_engine
from ratel.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from ratel.adapters.health import DatabaseCheck, ListenerRegistry
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
from ratel.application.base import Dependencies, UseCase
from ratel.application.bulk import ImportCustomers
from ratel.application.catalogue import (
    DefineDestinationGroups,
    DefineProduct,
    DefineTariff,
    SetDialingRules,
)
from ratel.application.credit_control import CreditControl
from ratel.application.customers import (
    CloseCustomer,
    OpenCustomer,
    ResumeCustomer,
    SetCreditLimit,
    SuspendCustomer,
    UpdateCustomer,
)
from ratel.application.enquiry import BalanceEnquiry, QuotaEnquiry
from ratel.application.housekeeping import Housekeeping
from ratel.application.payments import ManualTransaction, RecordPayment, TopUp
from ratel.application.vouchers import CreateVouchers, RedeemVoucher
from ratel.config import Settings
from ratel.domain.charging import ChargingConfig
from ratel.domain.location import LocationPolicy

U = TypeVar("U", bound=UseCase)

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


class Container(containers.DeclarativeContainer):
    """What a ratel process is made of."""

    settings = providers.Dependency(instance_of=Settings)

    # -- infrastructure
    telemetry = providers.Singleton(Telemetry)
    listeners = providers.Singleton(ListenerRegistry)
    engine = providers.Singleton(create_engine, settings.provided.database_url)
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
    balance_enquiry = _use_case(BalanceEnquiry, deps, telemetry)
    quota_enquiry = _use_case(QuotaEnquiry, deps, telemetry)

    # -- catalogue
    define_product = _use_case(DefineProduct, deps, telemetry)
    define_destination_groups = _use_case(DefineDestinationGroups, deps, telemetry)
    define_tariff = _use_case(DefineTariff, deps, telemetry)
    set_dialing_rules = _use_case(SetDialingRules, deps, telemetry)

    # -- the scheduled job
    housekeeping = _use_case(Housekeeping, deps, telemetry)


def build_container(settings: Settings) -> Container:
    """A container for ``settings``."""
    return Container(settings=providers.Object(settings))


async def dispose(container: Container) -> None:
    """Close the database connections of the container's engine."""
    await container.engine().dispose()
