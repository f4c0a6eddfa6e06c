"""Domain objects for the store's integration tests: a small operator with
realistic products, tariffs and subscribers."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ratel.domain.account import Account
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
from ratel.domain.customer import BillingPeriod, Contact, Customer
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
from ratel.domain.quota import QuotaBucket
from ratel.domain.rating import DestinationGroup, Rate, Tariff

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIB = 1024 * 1024

LOCAL = DestinationGroup("LOCAL", "Local calls", "400000001")
INTL = DestinationGroup("INTL", "International calls", "400000002")
DATA = DestinationGroup("DATA", "Data", "400000006")
USSD = DestinationGroup("USSD", "USSD", "400000005")


def usd(amount: str | int) -> Money:
    return Money.of(amount, "USD")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def customer(
    *,
    id: str | None = None,
    balance: str = "0",
    credit_limit: str = "0",
    name: str = "Ada Lovelace",
    country: str | None = "GB",
) -> Customer:
    """An open USD customer with ``balance`` and ``credit_limit``; its
    ``CustomerCreated`` event is pulled so tests start clean."""
    made = Customer.open(
        id or new_id("cus"),
        name,
        "USD",
        NOW,
        credit_limit=usd(credit_limit),
        country=country,
        contact=Contact("ada@example.com", "+44 20 7946 0000", ("1 Analytical Row", "London")),
        billing_period=BillingPeriod.monthly(5),
        customer_class="residential",
        custom_fields={"crm_id": "CRM-1", "segment": "gold"},
    )
    if Decimal(balance):
        made.wallet.credit(usd(balance))
    made.pull_events()
    return made


_serial = iter(range(10**6))


def identifiers(n: int | None = None) -> Identifiers:
    """A full set of unique identifiers (the nth)."""
    n = next(_serial) if n is None else n
    iccid_payload = f"8944{n:014d}"
    imei_payload = f"35{n:012d}"
    return Identifiers(
        msisdn=Msisdn(f"4477009{n:05d}"),
        imsi=Imsi(f"23415{n:010d}"),
        iccid=Iccid(iccid_payload + luhn_check_digit(iccid_payload)),
        imei=Imei(imei_payload + luhn_check_digit(imei_payload)),
        aliases=frozenset({f"modem-{n}", f"nms:{n}"}),
        cpe=CpeDevice(f"CXNK{n:08X}", 2, "GE"),
        static_ip=StaticIp.parse(f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}/24"),
    )


def account(
    owner: Customer,
    *,
    id: str | None = None,
    ids: Identifiers | None = None,
    product: str = "BASIC",
) -> Account:
    made = Account.create(
        id or new_id("acc"),
        owner.id,
        product,
        NOW,
        identifiers=ids if ids is not None else identifiers(),
        custom_fields={"installation": "roof", "plan": "A"},
    )
    made.pull_events()
    return made


def tariffs() -> list[Tariff]:
    voice = Tariff("VOICE-STD", "USD", "Standard voice")
    voice.add_prefix("1", Rate.per_interval(usd("0.10"), 60, connection_fee=usd("0.05")), LOCAL)
    voice.add_prefix("44", Rate(usd("0.30"), 30, 6, usd("0.06"), usd(0)), INTL)
    voice.add_prefix("4477", Rate(usd("0.00015"), 1, 1, usd("0.00015"), usd(0), 10), INTL)
    data = Tariff("DATA-STD", "USD", "Data")
    data.add_custom("DATA", Rate.per_interval(usd("0.01"), MIB), DATA)
    ussd = Tariff("USSD-STD", "USD")
    ussd.add_custom("*101#", Rate.per_interval(usd("0"), 1), USSD)
    ussd.add_custom("OUTGOING.SI120", Rate.per_interval(usd("0.2"), 20), USSD)
    return [voice, data, ussd]


def main_product(code: str = "BASIC") -> Product:
    return Product(
        code=code,
        name="Basic mobile",
        kind=ProductKind.MAIN,
        services=frozenset({Service.VOICE, Service.SMS, Service.DATA, Service.USSD}),
        subscriptions=(
            Subscription("MRC", "Monthly fee", usd("9.99"), "700000001"),
            Subscription("DAILY", "Daily fee", usd("0.10"), "700000002", "daily"),
        ),
        usage_charges=(
            UsageCharge("VOICE", "VOICE-STD", Service.VOICE),
            UsageCharge("DATA", "DATA-STD"),
            UsageCharge(UsageCharge.ussd_access_code(120), "USSD-STD", Service.USSD),
        ),
        quotas=(
            QuotaDefinition("DATA-1G", Service.DATA, Unit.BYTES, Decimal(1024 * MIB)),
            QuotaDefinition(
                "LOCAL-100", Service.VOICE, Unit.SECONDS, Decimal(6000), destination_group="LOCAL"
            ),
            QuotaDefinition(
                "WALLET",
                Service.DATA,
                Unit.MONEY,
                Decimal("5.00000001"),
                Renewal.ONCE,
                rating_group=20,
                validity=timedelta(days=30),
                currency="USD",
            ),
        ),
        policy=ServicePolicy(
            name="basic",
            download_kbps=10_000,
            upload_kbps=2_000,
            throttle_download_kbps=128,
            hotline_url="http://portal.example/topup",
            apn_ids=("internet", "ims"),
            on_exhaustion=ExhaustionAction.REDIRECT,
            free_rating_groups=frozenset({99, 100}),
            push_events=True,
        ),
        iptv_packages=("news", "sports"),
        ledger_code="600000001",
    )


def add_on(code: str = "DATA-24H") -> Product:
    return Product(
        code=code,
        name="Day pass",
        kind=ProductKind.ADDON,
        services=frozenset({Service.DATA}),
        precedence=Precedence.HIGH,
        validity=timedelta(hours=24),
        price=usd("1.50"),
        quotas=(
            QuotaDefinition(
                "DAY-5G", Service.DATA, Unit.BYTES, Decimal(5 * 1024 * MIB), Renewal.ONCE
            ),
        ),
        policy=ServicePolicy(download_kbps=50_000),
    )


def bucket(owner: Account, definition: QuotaDefinition, **changes: object) -> QuotaBucket:
    made = QuotaBucket.grant(
        id=new_id("bkt"),
        account_id=owner.id,
        product_code="BASIC",
        definition=definition,
        precedence=Precedence.MAIN,
        now=NOW,
    )
    for name, value in changes.items():
        setattr(made, name, value)
    return made
