"""A small broadband operator, a ratel RADIUS server on free ports, and
FreeRADIUS's radclient as the gateway."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from decimal import Decimal

from ratel.config import Settings
from ratel.container import Container
from ratel.domain.catalogue import (
    ExhaustionAction,
    Product,
    ProductKind,
    Service,
    ServicePolicy,
    UsageCharge,
)
from ratel.domain.identifiers import Identifiers, StaticIp
from ratel.domain.money import Money
from ratel.domain.nas import NasVendor
from ratel.domain.rating import DestinationGroup, Rate, Tariff

MIB = 1024 * 1024
SECRET = "testing123"
PASSWORD = "alice-secret-1"
DATA = DestinationGroup("DATA", "Data", "400000006")
POLICY = ServicePolicy(
    name="FIBRE-20M",
    download_kbps=20_000,
    upload_kbps=5_000,
    throttle_download_kbps=128,
    throttle_upload_kbps=64,
    hotline_url="https://topup.example/",
    dpi_policy_name="residential-20M",
    on_exhaustion=ExhaustionAction.REDIRECT,
)


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


@dataclass
class Subscriber:
    customer_id: str
    account_id: str
    login: str


async def define_catalogue(container: Container) -> None:
    await container.define_destination_groups()([DATA])
    tariff = Tariff("DATA", "USD", "Data per MiB")
    tariff.add_custom("DATA", Rate.per_interval(usd("0.01"), MIB), DATA)
    await container.define_tariff()(tariff)
    await container.define_product()(
        Product(
            "BROADBAND",
            "Broadband 20M prepaid",
            ProductKind.MAIN,
            frozenset({Service.DATA}),
            usage_charges=(UsageCharge("DATA", "DATA", Service.DATA),),
            policy=POLICY,
        )
    )


async def subscriber(
    container: Container,
    login: str,
    balance: str = "1.00",
    *,
    static_ip: str | None = None,
    password: str = PASSWORD,
) -> Subscriber:
    customer = await container.open_customer()(f"Owner of {login}", "USD")
    identifiers = Identifiers(
        aliases=frozenset({login}),
        static_ip=StaticIp.parse(static_ip) if static_ip else None,
    )
    account = await container.create_account()(customer.id, "BROADBAND", identifiers=identifiers)
    if Decimal(balance):
        await container.top_up()(customer.id, usd(balance), "initial")
    await container.set_account_password()(account.id, password)
    return Subscriber(customer.id, account.id, login)


async def register_nas(
    container: Container, vendor: NasVendor = NasVendor.HUAWEI, **options: object
) -> None:
    await container.manage_nas().register("bras-1", "127.0.0.1", SECRET, vendor=vendor, **options)
    await container.radius_server().nas.load()  # at once, not at the next refresh


@dataclass
class Reply:
    code: str
    attributes: dict[str, list[str]]
    output: str


async def radclient(
    port: int,
    kind: str,
    attributes: str,
    *,
    secret: str = SECRET,
    extra: tuple[str, ...] = (),
    timeout: float = 2.0,
    retries: int = 1,
) -> Reply:
    """Send one request with radclient; the reply's code and attributes
    ("timeout" when nothing came back)."""
    binary = shutil.which("radclient")
    assert binary, "radclient is installed by scripts/services (freeradius-utils)"
    process = await asyncio.create_subprocess_exec(
        binary,
        "-x",
        "-r",
        str(retries),
        "-t",
        str(timeout),
        *extra,
        f"127.0.0.1:{port}",
        kind,
        secret,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate(attributes.encode())
    text = out.decode(errors="replace")
    code = "timeout"
    values: dict[str, list[str]] = {}
    in_reply = False
    for line in text.splitlines():
        if line.startswith("Received "):
            code = line.split()[1]
            in_reply = True
            continue
        if line.startswith("Sent "):
            in_reply = False
            continue
        if in_reply and "=" in line:
            name, _, value = line.strip().partition(" = ")
            values.setdefault(name.strip(), []).append(value.strip().strip('"'))
    return Reply(code, values, text)


def server_settings(database_url: str) -> Settings:
    """A server on free ports, with short DAE timeouts."""
    return Settings(
        database_url=database_url,
        radius_auth_port=0,
        radius_acct_port=0,
        radius_interim_interval=60,
        radius_dae_timeout=0.3,
        radius_dae_retries=2,
    )
