"""Demo data: a small, realistic operator, loaded through the use cases.

A US operator (USD) selling mobile prepaid, fibre broadband, IPTV,
satellite and IoT, with the catalogue the mission describes: destination
groups with ledger codes, voice/SMS/data/USSD tariffs, the 411 dialing rule,
add-ons of different precedence, and one customer of each kind (among them
the prepaid subscriber whose USSD balance reads "Your current balance is
43.25 USD").

Who may call: a local administrator ``admin`` and a helpdesk user
``helpdesk`` with demo passwords, a self-care password for the prepaid
subscriber's account, an API key for a USSD gateway (printed once, when
it is made), a Huawei BRAS at 127.0.0.1 as the RADIUS client and a PPPoE
login for the fibre account (so ``radclient`` on the same machine can play
the BRAS). The passwords are printed by ``ratel demo load``: demo data
only, never for a real operator.

``load_demo(container, customers=N)`` also bulk-creates N customers with one
mobile account each (for benchmarks), a batch per transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Final

from ratel.application.bulk import NewAccount, NewCustomer
from ratel.application.identity import Role, Scope
from ratel.container import Container
from ratel.domain.catalogue import (
    ExhaustionAction,
    Precedence,
    Product,
    ProductKind,
    QuotaDefinition,
    Renewal,
    Service,
    ServicePolicy,
    Subscription,
    Unit,
    UsageCharge,
)
from ratel.domain.customer import Contact
from ratel.domain.identifiers import (
    CpeDevice,
    Iccid,
    Identifiers,
    Imei,
    Imsi,
    Msisdn,
    StaticIp,
    luhn_check_digit,
)
from ratel.domain.money import Money
from ratel.domain.nas import DEFAULT_DAE_PORT, NasVendor
from ratel.domain.rating import DestinationGroup, DialingRule, Rate, Tariff

CURRENCY: Final = "USD"
MIB: Final = 1024 * 1024
GIB: Final = 1024 * MIB

#: The first demo customer: its presence means the demo is loaded.
MARKER_CUSTOMER: Final = "cus_demo_alice"

BATCH_SIZE: Final = 1000


def usd(amount: str) -> Money:
    return Money.of(amount, CURRENCY)


# -- catalogue -------------------------------------------------------------------

LOCAL = DestinationGroup("LOCAL", "Local calls", "400000001")
INTERNATIONAL = DestinationGroup("INTERNATIONAL", "International calls", "400000002")
WHOLESALE = DestinationGroup("WHOLESALE", "Wholesale calls", "400000003")
DOMESTIC_SMS = DestinationGroup("DOMESTIC_SMS", "Domestic SMS", "400000004")
USSD = DestinationGroup("USSD", "USSD sessions", "400000005")
DATA = DestinationGroup("DATA", "Mobile and fixed data", "400000006")

GROUPS: Final = (LOCAL, INTERNATIONAL, WHOLESALE, DOMESTIC_SMS, USSD, DATA)


def tariffs() -> list[Tariff]:
    """Voice, SMS, data (metered and flat) and USSD."""
    voice = Tariff("VOICE", CURRENCY, "Voice")
    # Local (North American numbering plan): per minute, 60/60, connection fee.
    voice.add_prefix("1", Rate.per_interval(usd("0.10"), 60, connection_fee=usd("0.05")), LOCAL)
    # International: a first 30 seconds, then 6-second steps.
    for prefix, first, step in (
        ("44", "0.15", "0.03"),  # United Kingdom, 0.30/min
        ("33", "0.12", "0.024"),  # France, 0.24/min
        ("49", "0.12", "0.024"),  # Germany, 0.24/min
    ):
        voice.add_prefix(prefix, Rate(usd(first), 30, 6, usd(step), usd("0")), INTERNATIONAL)
    # A wholesale partner's range, billed per second.
    voice.add_prefix("1999", Rate.per_interval(usd("0.00015"), 1), WHOLESALE)

    sms = Tariff("SMS", CURRENCY, "SMS")
    sms.add_prefix("1", Rate.per_interval(usd("0.05"), 1), DOMESTIC_SMS)
    for prefix in ("44", "33", "49"):
        sms.add_prefix(prefix, Rate.per_interval(usd("0.15"), 1), INTERNATIONAL)

    data = Tariff("DATA", CURRENCY, "Data per MiB")
    data.add_custom("DATA", Rate.per_interval(usd("0.01"), MIB), DATA)

    flat = Tariff("DATA_FLAT", CURRENCY, "Data included in the subscription")
    flat.add_custom("DATA", Rate.per_interval(usd("0"), MIB), DATA)

    ussd = Tariff("USSD", CURRENCY, "USSD per 20 seconds")
    per_20s = Rate.per_interval(usd("0.2"), 20)
    for code in ("*101#", "*102*3#", UsageCharge.ussd_access_code(120)):
        ussd.add_custom(code, per_20s, USSD)
    return [voice, sms, data, flat, ussd]


DIALING_RULES: Final = (DialingRule("411", "12055576061", exact=True),)

_MOBILE_CHARGES: Final = (
    UsageCharge("VOICE", "VOICE", Service.VOICE),
    UsageCharge("SMS", "SMS", Service.SMS),
    UsageCharge("DATA", "DATA", Service.DATA),
    UsageCharge("USSD", "USSD", Service.USSD),
    UsageCharge(UsageCharge.ussd_access_code(120), "USSD", Service.USSD),
)


def products() -> list[Product]:
    """Main products, then add-ons."""
    mobile = Product(
        "MOBILE_PREPAID",
        "Mobile Prepaid",
        ProductKind.MAIN,
        frozenset({Service.VOICE, Service.SMS, Service.DATA, Service.USSD, Service.MOBILE_NETWORK}),
        subscriptions=(Subscription("MOBILE_FEE", "Mobile bundle", usd("9.99"), "400000010"),),
        usage_charges=_MOBILE_CHARGES,
        quotas=(
            QuotaDefinition("DATA_1GB", Service.DATA, Unit.BYTES, Decimal(GIB)),
            QuotaDefinition(
                "SMS_100",
                Service.SMS,
                Unit.MESSAGES,
                Decimal(100),
                destination_group=DOMESTIC_SMS.code,
            ),
        ),
        policy=ServicePolicy(
            name="mobile-standard",
            download_kbps=20_000,
            upload_kbps=5_000,
            throttle_download_kbps=128,
            throttle_upload_kbps=64,
            hotline_url="https://topup.ratel.example/",
            pakid="PAK-100",
            apn_ids=("internet",),
            roaming_profile_id="ROAM-EU-US",
            provision_translated_number=True,
            push_events=True,
            on_exhaustion=ExhaustionAction.REDIRECT,
            free_rating_groups=frozenset({1}),  # the self-care portal
        ),
    )
    fibre = Product(
        "FIBRE_100",
        "Fibre 100/50",
        ProductKind.MAIN,
        frozenset({Service.DATA}),
        subscriptions=(Subscription("FIBRE_FEE", "Fibre 100/50", usd("49.00"), "400000011"),),
        usage_charges=(UsageCharge("DATA", "DATA_FLAT", Service.DATA),),
        policy=ServicePolicy(
            name="fibre-100",
            download_kbps=100_000,
            upload_kbps=50_000,
            hotline_url="https://portal.ratel.example/hotline",
            ont_port_type="RG",
            bandwidth_profile_id="BW-100M",
            dpi_policy_name="residential-100",
            on_exhaustion=ExhaustionAction.REDIRECT,
        ),
    )
    iptv = Product(
        "IPTV_BASIC",
        "IPTV Basic",
        ProductKind.MAIN,
        frozenset({Service.IPTV}),
        subscriptions=(Subscription("IPTV_FEE", "IPTV Basic", usd("15.00"), "400000012"),),
        iptv_packages=("basic", "news", "kids"),
    )
    satellite = Product(
        "SATELLITE_10",
        "Satellite 10/2",
        ProductKind.MAIN,
        frozenset({Service.DATA}),
        subscriptions=(Subscription("SAT_FEE", "Satellite 10/2", usd("69.00"), "400000013"),),
        usage_charges=(UsageCharge("DATA", "DATA", Service.DATA),),
        quotas=(QuotaDefinition("SAT_DATA_20GB", Service.DATA, Unit.BYTES, Decimal(20 * GIB)),),
        policy=ServicePolicy(
            name="satellite-10",
            download_kbps=10_000,
            upload_kbps=2_000,
            satellite_default_profile_id="SAT-DEFAULT",
            satellite_restricted_profile_id="SAT-RESTRICTED",
            on_exhaustion=ExhaustionAction.THROTTLE,
            throttle_download_kbps=256,
            throttle_upload_kbps=128,
        ),
    )
    iot = Product(
        "IOT_M2M",
        "IoT M2M SIM",
        ProductKind.MAIN,
        frozenset({Service.DATA, Service.SMS, Service.MOBILE_NETWORK}),
        subscriptions=(Subscription("IOT_FEE", "IoT SIM", usd("1.50"), "400000014"),),
        usage_charges=(
            UsageCharge("DATA", "DATA", Service.DATA),
            UsageCharge("SMS", "SMS", Service.SMS),
        ),
        quotas=(QuotaDefinition("IOT_DATA_10MB", Service.DATA, Unit.BYTES, Decimal(10 * MIB)),),
        policy=ServicePolicy(
            name="iot-m2m", apn_ids=("iot.m2m",), on_exhaustion=ExhaustionAction.TERMINATE
        ),
    )
    turbo = Product(
        "TURBO",
        "Turbo 2 GB, 24 hours",
        ProductKind.ADDON,
        frozenset({Service.DATA}),
        precedence=Precedence.HIGH,
        validity=timedelta(hours=24),
        price=usd("3.00"),
        quotas=(
            QuotaDefinition(
                "TURBO_2GB",
                Service.DATA,
                Unit.BYTES,
                Decimal(2 * GIB),
                renewal=Renewal.ONCE,
                validity=timedelta(hours=24),
            ),
        ),
        policy=ServicePolicy(download_kbps=100_000, upload_kbps=20_000),
        ledger_code="400000020",
    )
    regular = Product(
        "REGULAR",
        "Regular 5 GB, 30 days",
        ProductKind.ADDON,
        frozenset({Service.DATA}),
        precedence=Precedence.MEDIUM,
        validity=timedelta(days=30),
        price=usd("10.00"),
        quotas=(
            QuotaDefinition(
                "REGULAR_5GB",
                Service.DATA,
                Unit.BYTES,
                Decimal(5 * GIB),
                renewal=Renewal.ONCE,
                validity=timedelta(days=30),
            ),
        ),
        ledger_code="400000021",
    )
    sms50 = Product(
        "SMS50",
        "50 domestic SMS",
        ProductKind.ADDON,
        frozenset({Service.SMS}),
        precedence=Precedence.LOW,
        validity=timedelta(days=30),
        price=usd("2.00"),
        quotas=(
            QuotaDefinition(
                "SMS_50",
                Service.SMS,
                Unit.MESSAGES,
                Decimal(50),
                renewal=Renewal.ONCE,
                destination_group=DOMESTIC_SMS.code,
                validity=timedelta(days=30),
            ),
        ),
        ledger_code="400000022",
    )
    return [mobile, fibre, iptv, satellite, iot, turbo, regular, sms50]


# -- identifiers -----------------------------------------------------------------


def iccid(payload: str) -> Iccid:
    """An ICCID from its 18 digits, with the Luhn check digit appended."""
    return Iccid(payload + luhn_check_digit(payload))


def imei(payload: str) -> Imei:
    """An IMEI from its 14 digits, with the Luhn check digit appended."""
    return Imei(payload + luhn_check_digit(payload))


def bulk_identifiers(n: int) -> Identifiers:
    """Unique mobile identifiers for the ``n``-th bulk customer (n < 10**7):
    MSISDN 1700nnnnnnn, IMSI on the test network 001-01, ICCID with its
    check digit."""
    return Identifiers(
        msisdn=Msisdn(f"1700{n:07d}"),
        imsi=Imsi(f"00101{n:010d}"),
        iccid=iccid(f"8900101{n:011d}"),
    )


# -- loading ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoStaff:
    """A demo staff login and its (demo only) password."""

    login: str
    name: str
    role: str
    password: str


DEMO_STAFF: Final = (
    DemoStaff("admin", "Demo Administrator", Role.ADMINISTRATOR, "ratel-admin-demo"),
    DemoStaff("helpdesk", "Demo Helpdesk", Role.HELPDESK, "ratel-helpdesk-demo"),
)

#: The prepaid subscriber's self-care login (account id and password).
SELF_CARE_ACCOUNT: Final = "acc_demo_alice"
SELF_CARE_PASSWORD: Final = "alice-self-care"

#: The name of the demo USSD gateway's API key (its presence: made already).
USSD_KEY_NAME: Final = "Demo USSD gateway"


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """How to reach a demo account: who, which account, by what identifier."""

    customer: str
    account_id: str
    kind: str
    identifier: str
    note: str


@dataclass(frozen=True, slots=True)
class DemoNas:
    """The demo BRAS: where RADIUS requests may come from, and its secret."""

    name: str
    address: str
    vendor: NasVendor
    secret: str
    dae_port: int


#: The demo BRAS is this machine: radclient run here plays it.
DEMO_NAS: Final = DemoNas(
    "demo-bras", "127.0.0.1", NasVendor.HUAWEI, "ratel-demo-radius", DEFAULT_DAE_PORT
)


@dataclass(frozen=True, slots=True)
class DemoPppoe:
    """The fibre account's PPPoE login: an alias, and a CHAP secret that PAP
    accepts too."""

    account_id: str
    user_name: str
    password: str


DEMO_PPPOE: Final = DemoPppoe("acc_demo_bob_fibre", "bob@fibre.ratel.example", "bob-pppoe-demo")


@dataclass(slots=True)
class DemoReport:
    """What ``load_demo`` did."""

    loaded: bool  # False: the demo data was there already
    logins: list[DemoLogin] = field(default_factory=list)
    imported_customers: int = 0
    total_customers: int = 0
    staff: list[DemoStaff] = field(default_factory=list)
    self_care: tuple[str, str] = (SELF_CARE_ACCOUNT, SELF_CARE_PASSWORD)
    # The USSD gateway's key when this load made it; None when an earlier one
    # did (a key is shown once: only its hash is kept).
    ussd_api_key: str | None = None
    nas: DemoNas = DEMO_NAS
    pppoe: DemoPppoe = DEMO_PPPOE


#: Called with (customers imported so far, customers to import).
Progress = Callable[[int, int], None]


async def demo_loaded(container: Container) -> bool:
    """Whether the demo customers exist already."""
    async with container.uow()() as uow:
        return await uow.customers.get(MARKER_CUSTOMER) is not None


async def load_demo(
    container: Container,
    customers: int = 0,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> DemoReport:
    """Load the demo operator unless it is there already, then bulk-create
    ``customers`` more customers with one mobile account each."""
    if customers < 0:
        raise ValueError("the number of customers is zero or more")
    if await demo_loaded(container):
        report = DemoReport(loaded=False, logins=list(_LOGINS))
    else:
        await _load_catalogue(container)
        await _load_customers(container)
        report = DemoReport(loaded=True, logins=list(_LOGINS))
    report.staff = list(DEMO_STAFF)
    report.ussd_api_key = await _load_identity(container)
    await _load_broadband_access(container)
    if customers:
        report.imported_customers = await _bulk(container, customers, progress, batch_size)
    async with container.uow()() as uow:
        report.total_customers = await uow.customers.count()
    return report


async def _load_catalogue(container: Container) -> None:
    await container.define_destination_groups()(GROUPS)
    for tariff in tariffs():
        await container.define_tariff()(tariff)
    await container.set_dialing_rules()(DIALING_RULES)
    for product in products():
        # replace: a load interrupted after the catalogue can simply be run again
        await container.define_product()(product, replace=True)


DAVE_ICCID: Final = iccid("890126012345678904")

_LOGINS: Final = (
    DemoLogin("Alice Prepaid", "acc_demo_alice", "msisdn", "12055550100", "43.25 USD, 2 add-ons"),
    DemoLogin(
        "Bob Fibre", "acc_demo_bob_fibre", "cpe_serial", "CXNK0012AB34", "fibre, ONT, static IP"
    ),
    DemoLogin("Bob Fibre", "acc_demo_bob_iptv", "account_id", "acc_demo_bob_iptv", "IPTV"),
    DemoLogin("Carol Satellite", "acc_demo_carol", "alias", "MODEM-00A1B2C3", "satellite"),
    DemoLogin("Dave Fleet Ltd", "acc_demo_dave_sim1", "iccid", str(DAVE_ICCID), "IoT SIM"),
    DemoLogin("Eve Suspended", "acc_demo_eve", "msisdn", "12055550105", "suspended"),
    DemoLogin("Frank Blocked", "acc_demo_frank", "msisdn", "12055550106", "blocked"),
    DemoLogin("Grace at Sea", "acc_demo_grace", "msisdn", "12055550107", "MARITIME: no data"),
)


def _mobile(n: int) -> Identifiers:
    """Identifiers of the n-th demo mobile account (MSISDN 1205555010n)."""
    return Identifiers(
        msisdn=Msisdn(f"1205555010{n}"),
        imsi=Imsi(f"31015012345670{n}"),
        iccid=iccid(f"89012601234567890{n}"),
        imei=imei(f"3569380356438{n}"),
    )


async def _load_customers(container: Container) -> None:
    open_customer = container.open_customer()
    create_account = container.create_account()
    top_up = container.top_up()

    # A prepaid mobile subscriber: the USSD balance example.
    await open_customer(
        "Alice Prepaid",
        CURRENCY,
        country="US",
        contact=Contact(email="alice@example.com", phone="+12055550100"),
        customer_class="consumer",
        customer_id=MARKER_CUSTOMER,
    )
    await create_account(
        MARKER_CUSTOMER, "MOBILE_PREPAID", identifiers=_mobile(0), account_id="acc_demo_alice"
    )
    await top_up(MARKER_CUSTOMER, usd("43.25"), "demo opening top-up")
    await container.add_add_on()("acc_demo_alice", "TURBO")
    await container.add_add_on()("acc_demo_alice", "REGULAR")

    # Fibre with an ONT (all ports, Gigabit Ethernet profile) and a static IP,
    # plus IPTV on a second account; postpaid with a credit limit.
    await open_customer(
        "Bob Fibre",
        CURRENCY,
        credit_limit=usd("200"),
        country="US",
        contact=Contact(email="bob@example.com", address_lines=("12 Fiber Lane", "Birmingham AL")),
        customer_class="residential",
        customer_id="cus_demo_bob",
    )
    await create_account(
        "cus_demo_bob",
        "FIBRE_100",
        identifiers=Identifiers(
            cpe=CpeDevice("CXNK0012AB34", None, "GE"), static_ip=StaticIp.parse("203.0.113.10/29")
        ),
        custom_fields={"pppoe_login": "bob@fibre.ratel.example"},
        account_id="acc_demo_bob_fibre",
    )
    await create_account("cus_demo_bob", "IPTV_BASIC", account_id="acc_demo_bob_iptv")

    # Satellite: the NMS returned a modem ID, kept as the account's alias.
    await open_customer(
        "Carol Satellite",
        CURRENCY,
        credit_limit=usd("100"),
        country="US",
        customer_class="rural",
        customer_id="cus_demo_carol",
    )
    await create_account(
        "cus_demo_carol",
        "SATELLITE_10",
        custom_fields={"modem_model": "MDM3310", "modem_mac": "00:06:39:A1:B2:C3"},
        account_id="acc_demo_carol",
    )
    await container.add_alias()("acc_demo_carol", "MODEM-00A1B2C3")

    # An IoT fleet with one SIM.
    await open_customer(
        "Dave Fleet Ltd",
        CURRENCY,
        country="US",
        contact=Contact(email="ops@fleet.example"),
        customer_class="business",
        customer_id="cus_demo_dave",
    )
    await create_account(
        "cus_demo_dave",
        "IOT_M2M",
        identifiers=Identifiers(
            msisdn=Msisdn("12055550104"),
            imsi=Imsi("310150123456704"),
            iccid=DAVE_ICCID,
        ),
        account_id="acc_demo_dave_sim1",
    )
    await top_up("cus_demo_dave", usd("20.00"), "demo opening top-up")

    # Suspended for non-payment.
    await open_customer("Eve Suspended", CURRENCY, country="US", customer_id="cus_demo_eve")
    await create_account(
        "cus_demo_eve", "MOBILE_PREPAID", identifiers=_mobile(5), account_id="acc_demo_eve"
    )
    await container.suspend_customer()("cus_demo_eve", "non-payment")

    # Account blocked by staff.
    await open_customer("Frank Blocked", CURRENCY, country="US", customer_id="cus_demo_frank")
    await create_account(
        "cus_demo_frank", "MOBILE_PREPAID", identifiers=_mobile(6), account_id="acc_demo_frank"
    )
    await top_up("cus_demo_frank", usd("5.00"), "demo opening top-up")
    await container.block_account()("acc_demo_frank", "fraud check")

    # Roaming on a ship: data blocked, voice and SMS allowed.
    await open_customer("Grace at Sea", CURRENCY, country="US", customer_id="cus_demo_grace")
    await create_account(
        "cus_demo_grace", "MOBILE_PREPAID", identifiers=_mobile(7), account_id="acc_demo_grace"
    )
    await top_up("cus_demo_grace", usd("25.00"), "demo opening top-up")
    await container.set_location()("acc_demo_grace", "MARITIME")


async def _load_identity(container: Container) -> str | None:
    """Demo staff, the self-care password and the USSD gateway's key, each
    made only if missing (so an older demo database gets them too); the key
    when it was made now."""
    async with container.uow()() as uow:
        missing = [s for s in DEMO_STAFF if await uow.staff.by_login(s.login) is None]
        has_password = await uow.credentials.get(SELF_CARE_ACCOUNT) is not None
        has_key = any(k.name == USSD_KEY_NAME for k in await uow.api_keys.all())
    for staff in missing:
        await container.create_local_staff_user()(
            staff.login, staff.name, staff.password, [staff.role]
        )
    if not has_password:
        await container.set_account_password()(SELF_CARE_ACCOUNT, SELF_CARE_PASSWORD)
    if has_key:
        return None
    _, secret = await container.create_api_key()(USSD_KEY_NAME, [Scope.USSD])
    return secret


async def _load_broadband_access(container: Container) -> None:
    """The demo BRAS and the fibre account's PPPoE login, each made only if
    missing (an older demo database gets them too; a changed one is kept)."""
    manage_nas = container.manage_nas()
    if not any(n.address == DEMO_NAS.address for n in await manage_nas.list()):
        # CoA / Disconnect go nowhere: nothing listens on the demo BRAS's port 3799
        await manage_nas.register(
            DEMO_NAS.name,
            DEMO_NAS.address,
            DEMO_NAS.secret,
            vendor=DEMO_NAS.vendor,
            dae_port=DEMO_NAS.dae_port,
        )
    async with container.uow()() as uow:
        account = await uow.accounts.get(DEMO_PPPOE.account_id)
    if account is not None and DEMO_PPPOE.user_name not in account.identifiers.aliases:
        await container.add_alias()(DEMO_PPPOE.account_id, DEMO_PPPOE.user_name)
    async with container.radius_store()() as store:
        has_secret = await store.chap_secrets.get(DEMO_PPPOE.account_id) is not None
    if account is not None and not has_secret:
        await container.set_chap_secret()(DEMO_PPPOE.account_id, DEMO_PPPOE.password)


def _batches(start: int, count: int, size: int) -> Iterator[range]:
    for first in range(start, start + count, size):
        yield range(first, min(first + size, start + count))


async def _bulk(container: Container, count: int, progress: Progress | None, size: int) -> int:
    """``count`` customers with a mobile account and 50 USD each."""
    async with container.uow()() as uow:
        # numbering continues after the customers already there, so a second
        # bulk load does not reuse identifiers
        start = await uow.customers.count()
    if start + count > 10**7:
        raise ValueError("bulk identifiers run out after 10,000,000 customers")
    import_customers = container.import_customers()
    done = 0
    if progress:
        progress(done, count)
    for numbers in _batches(start, count, size):
        batch = [
            NewCustomer(
                name=f"Customer {n:07d}",
                currency=CURRENCY,
                country="US",
                customer_class="bulk",
                opening_balance=usd("50.00"),
                accounts=(NewAccount("MOBILE_PREPAID", bulk_identifiers(n)),),
            )
            for n in numbers
        ]
        report = await import_customers(batch)
        done += report.customers
        if progress:
            progress(done, count)
    return done
