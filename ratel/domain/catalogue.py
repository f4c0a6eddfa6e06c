"""The catalogue: products, add-ons, services, quotas and service policies.

A product bundles services, subscriptions (recurring fees), quotas, usage
charges (access code -> tariff) and a service policy. An account has one main
product and any number of add-ons; the effective service policy merges them
by precedence (highest first), and a CPE profile's ONT port type overrides the
policy's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from ratel.domain.errors import InvalidCatalogue
from ratel.domain.money import Money


class Service(StrEnum):
    VOICE = "voice"
    SMS = "sms"
    DATA = "data"
    IPTV = "iptv"
    USSD = "ussd"
    MOBILE_NETWORK = "mobile_network"


class ProductKind(StrEnum):
    MAIN = "main"
    ADDON = "addon"


class Unit(StrEnum):
    """What a quota or a request counts."""

    BYTES = "bytes"
    SECONDS = "seconds"
    MESSAGES = "messages"
    MONEY = "money"


class Renewal(StrEnum):
    DAILY = "daily"
    MONTHLY = "monthly"
    ONCE = "once"  # granted once, expires after the quota's validity


class ExhaustionAction(StrEnum):
    """What happens when quota and money run out in a session (final units)."""

    TERMINATE = "terminate"  # end the session
    REDIRECT = "redirect"  # hotline: redirect to the policy's hotline URL
    RESTRICT = "restrict"  # restrict access (only free rating groups)
    THROTTLE = "throttle"  # lower the speed to the policy's throttle rates


class Precedence:
    """Named add-on precedence levels; any integer is allowed too (higher wins)."""

    HIGH = 300
    MEDIUM = 200
    LOW = 100
    MAIN = 0  # the main product: always after every add-on

    _NAMES: ClassVar[dict[str, int]] = {"high": HIGH, "medium": MEDIUM, "low": LOW}

    @classmethod
    def parse(cls, value: str | int) -> int:
        if isinstance(value, int):
            if value < 1:
                raise InvalidCatalogue("an add-on precedence is a positive number")
            return value
        text = value.strip().lower()
        if text in cls._NAMES:
            return cls._NAMES[text]
        if text.isascii() and text.isdigit() and int(text) > 0:  # "²" is a digit int() refuses
            return int(text)
        raise InvalidCatalogue(f"precedence is high, medium, low or a number, not {value!r}")


@dataclass(frozen=True, slots=True)
class ServicePolicy:
    """What the network needs to deliver a service. ``None`` means "not set
    here", so an add-on can override only some fields of the main product."""

    name: str | None = None
    download_kbps: int | None = None
    upload_kbps: int | None = None
    throttle_download_kbps: int | None = None
    throttle_upload_kbps: int | None = None
    hotline_url: str | None = None
    pakid: str | None = None
    apn_ids: tuple[str, ...] | None = None
    roaming_profile_id: str | None = None
    ont_port_type: str | None = None  # "RG" (residential gateway) or "GE" (Gigabit Ethernet)
    bandwidth_profile_id: str | None = None
    satellite_default_profile_id: str | None = None
    satellite_restricted_profile_id: str | None = None
    dpi_policy_name: str | None = None
    provision_translated_number: bool | None = None
    raise_mscc_result_code: bool | None = None
    push_events: bool | None = None
    on_exhaustion: ExhaustionAction | None = None
    free_rating_groups: frozenset[int] | None = None  # granted without charge (self-care portal)

    def __post_init__(self) -> None:
        for name in (
            "download_kbps",
            "upload_kbps",
            "throttle_download_kbps",
            "throttle_upload_kbps",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidCatalogue(f"{name} cannot be negative")
        if self.ont_port_type is not None and self.ont_port_type not in ("RG", "GE"):
            raise InvalidCatalogue("ONT port type is RG or GE")

    def over(self, lower: ServicePolicy) -> ServicePolicy:
        """This policy's set fields, and ``lower``'s where this one is silent."""
        merged: dict[str, Any] = {}
        for f in fields(self):
            mine = getattr(self, f.name)
            merged[f.name] = mine if mine is not None else getattr(lower, f.name)
        return ServicePolicy(**merged)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServicePolicy:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidCatalogue(f"unknown service policy fields: {sorted(unknown)}")
        values = dict(data)
        try:
            if values.get("apn_ids") is not None:
                values["apn_ids"] = tuple(str(v) for v in values["apn_ids"])
            if values.get("free_rating_groups") is not None:
                values["free_rating_groups"] = frozenset(
                    int(v) for v in values["free_rating_groups"]
                )
            if values.get("on_exhaustion") is not None:
                values["on_exhaustion"] = ExhaustionAction(values["on_exhaustion"])
            return cls(**values)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidCatalogue):
                raise
            raise InvalidCatalogue(f"invalid service policy: {exc}") from exc


@dataclass(frozen=True, slots=True)
class QuotaDefinition:
    """An allowance a product gives: units of one service, for one destination
    group or rating group (or all of the service when both are None)."""

    code: str
    service: Service
    unit: Unit
    allowance: Decimal
    renewal: Renewal = Renewal.MONTHLY
    destination_group: str | None = None
    rating_group: int | None = None
    validity: timedelta | None = None  # for Renewal.ONCE: how long the allowance lasts
    currency: str | None = None  # for Unit.MONEY (a service wallet)

    def __post_init__(self) -> None:
        if self.allowance <= 0:
            raise InvalidCatalogue(f"quota {self.code}: the allowance is positive")
        if self.unit is Unit.MONEY and not self.currency:
            raise InvalidCatalogue(f"quota {self.code}: a money quota names its currency")
        if self.unit is not Unit.MONEY and self.allowance != self.allowance.to_integral_value():
            raise InvalidCatalogue(f"quota {self.code}: {self.unit} are whole numbers")


@dataclass(frozen=True, slots=True)
class Subscription:
    """A recurring fee."""

    code: str
    name: str
    fee: Money
    ledger_code: str
    period: str = "monthly"  # "monthly" or "daily"

    def __post_init__(self) -> None:
        if self.fee.is_negative():
            raise InvalidCatalogue(f"subscription {self.code}: the fee cannot be negative")
        if self.period not in ("monthly", "daily"):
            raise InvalidCatalogue(f"subscription {self.code}: period is monthly or daily")


@dataclass(frozen=True, slots=True)
class UsageCharge:
    """Usage under ``access_code`` is rated by ``tariff_code``. For USSD from a
    CAMEL gateway the access code is ``OUTGOING.SI<Service-Identifier>``."""

    access_code: str
    tariff_code: str
    service: Service | None = None

    @staticmethod
    def ussd_access_code(service_identifier: int | str) -> str:
        return f"OUTGOING.SI{service_identifier}"


@dataclass(frozen=True, slots=True)
class Product:
    """A main product or an add-on."""

    code: str
    name: str
    kind: ProductKind
    services: frozenset[Service] = frozenset()
    precedence: int = Precedence.MAIN
    validity: timedelta | None = None  # add-ons: 24 hours, 30 days ...
    price: Money | None = None  # add-ons: what buying one costs
    subscriptions: tuple[Subscription, ...] = ()
    usage_charges: tuple[UsageCharge, ...] = ()
    quotas: tuple[QuotaDefinition, ...] = ()
    policy: ServicePolicy = field(default_factory=ServicePolicy)
    iptv_packages: tuple[str, ...] = ()
    ledger_code: str | None = None

    def __post_init__(self) -> None:
        if not self.code:
            raise InvalidCatalogue("a product has a code")
        if self.kind is ProductKind.MAIN and self.precedence != Precedence.MAIN:
            raise InvalidCatalogue(f"{self.code}: a main product has no add-on precedence")
        if self.kind is ProductKind.ADDON and self.precedence < 1:
            raise InvalidCatalogue(f"{self.code}: an add-on has a positive precedence")
        if self.validity is not None and self.validity <= timedelta(0):
            raise InvalidCatalogue(f"{self.code}: validity is positive")
        codes = [u.access_code for u in self.usage_charges]
        if len(codes) != len(set(codes)):
            raise InvalidCatalogue(f"{self.code}: an access code maps to one tariff")
        quota_codes = [q.code for q in self.quotas]
        if len(quota_codes) != len(set(quota_codes)):
            raise InvalidCatalogue(f"{self.code}: quota codes are unique within a product")

    @property
    def is_add_on(self) -> bool:
        return self.kind is ProductKind.ADDON

    def offers(self, service: Service | str) -> bool:
        return Service(service) in self.services

    def tariff_for(self, access_code: str) -> str | None:
        for charge in self.usage_charges:
            if charge.access_code == access_code:
                return charge.tariff_code
        return None


def by_precedence(products: Iterable[Product]) -> list[Product]:
    """Products in consumption order: add-ons by precedence (highest first),
    then main products. Stable for equal precedence."""
    return sorted(products, key=lambda p: -p.precedence)


def effective_policy(
    main: Product, add_ons: Sequence[Product] = (), cpe_port_type: str | None = None
) -> ServicePolicy:
    """The policy the network gets: the highest-precedence add-on's fields over
    lower add-ons' over the main product's; the CPE profile's port type last."""
    merged = main.policy
    for add_on in sorted(add_ons, key=lambda p: p.precedence):
        merged = add_on.policy.over(merged)
    if cpe_port_type is not None:
        merged = replace(merged, ont_port_type=cpe_port_type)
    return merged


def services_of(main: Product, add_ons: Sequence[Product] = ()) -> frozenset[Service]:
    """Every service the account's products bundle."""
    result = set(main.services)
    for add_on in add_ons:
        result |= add_on.services
    return frozenset(result)
