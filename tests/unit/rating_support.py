"""Builders for the rating tests (not a test module), on top of those of
``test_charging``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from test_charging import (  # the charging tests' builders, shared
    DATA,
    DOMESTIC_SMS,
    LOCAL,
    MIB,
    NOW,
    USSD,
    data,
    usd,
)

from ratel.domain.account import Account
from ratel.domain.catalogue import (
    Product,
    ProductKind,
    QuotaDefinition,
    Renewal,
    Service,
    ServicePolicy,
    Unit,
    UsageCharge,
)
from ratel.domain.charging import (
    ChargingContext,
    CreditControlSession,
    Grant,
    Rater,
    UsageRequest,
)
from ratel.domain.customer import Customer
from ratel.domain.location import LocationPolicy
from ratel.domain.money import Money
from ratel.domain.quota import QuotaBucket
from ratel.domain.rating import DialingPlan, Rate, Tariff


def default_tariffs() -> dict[str, Tariff]:
    voice = Tariff("VOICE-STD", "USD")
    voice.add_prefix("1", Rate.per_interval(usd("0.10"), 60, connection_fee=usd("0.05")), LOCAL)
    sms = Tariff("SMS-STD", "USD")
    sms.add_prefix("1", Rate.per_interval(usd("0.05"), 1), DOMESTIC_SMS)
    data = Tariff("DATA-STD", "USD")
    data.add_custom("DATA", Rate.per_interval(usd("0.01"), MIB), DATA)
    ussd = Tariff("USSD-STD", "USD")
    ussd.add_custom("OUTGOING.SI120", Rate.per_interval(usd("0.2"), 20), USSD)
    return {t.code: t for t in (voice, sms, data, ussd)}


def product(policy: ServicePolicy | None = None) -> Product:
    return Product(
        code="BASIC",
        name="Basic",
        kind=ProductKind.MAIN,
        services=frozenset({Service.VOICE, Service.SMS, Service.DATA, Service.USSD}),
        usage_charges=(
            UsageCharge("VOICE", "VOICE-STD"),
            UsageCharge("SMS", "SMS-STD"),
            UsageCharge("DATA", "DATA-STD"),
            UsageCharge(UsageCharge.ussd_access_code(120), "USSD-STD"),
        ),
        policy=policy or ServicePolicy(),
    )


def wallet_bucket(bid: str, service: Service, amount: str, precedence: int = 0) -> QuotaBucket:
    """A service wallet (money bucket)."""
    definition = QuotaDefinition(
        f"{bid}-W", service, Unit.MONEY, Decimal(amount), Renewal.ONCE, currency="USD"
    )
    return QuotaBucket.grant(
        id=bid,
        account_id="a1",
        product_code="BASIC",
        definition=definition,
        precedence=precedence,
        now=NOW,
    )


def unit_bucket(
    bid: str, service: Service, unit: Unit, amount: int, precedence: int = 0
) -> QuotaBucket:
    definition = QuotaDefinition(f"{bid}-Q", service, unit, Decimal(amount), Renewal.MONTHLY)
    return QuotaBucket.grant(
        id=bid,
        account_id="a1",
        product_code="BASIC",
        definition=definition,
        precedence=precedence,
        now=NOW,
    )


class World:
    def __init__(
        self,
        balance: str = "10",
        credit_limit: str = "0",
        policy: ServicePolicy | None = None,
        buckets: list[QuotaBucket] | None = None,
        tariffs: dict[str, Tariff] | None = None,
        dialing: DialingPlan | None = None,
        main: Product | None = None,
    ) -> None:
        self.customer = Customer.open("c1", "Ada", "USD", NOW, credit_limit=usd(credit_limit))
        if Decimal(balance):
            self.customer.wallet.credit(usd(balance))
        self.account = Account.create("a1", "c1", "BASIC", NOW)
        self.buckets = buckets if buckets is not None else []
        self.main = main or product(policy)
        self.policy = self.main.policy
        self.rater = Rater((self.main,), tariffs or default_tariffs(), dialing)

    def ctx(self) -> ChargingContext:
        return ChargingContext(
            account=self.account,
            customer=self.customer,
            buckets=self.buckets,
            rater=self.rater,
            policy=self.policy,
            location_policy=LocationPolicy(),
        )

    def session(self, sid: str = "s1", now: datetime = NOW) -> CreditControlSession:
        return CreditControlSession.open(sid, self.account, self.customer, now)

    @property
    def balance(self) -> Money:
        return self.customer.wallet.balance


def call(
    dest: str | None = "12025550100",
    requested: int | None = None,
    used: int = 0,
    after: int = 0,
) -> UsageRequest:
    return UsageRequest(
        Service.VOICE,
        Unit.SECONDS,
        "VOICE",
        dest,
        requested=requested,
        used=used,
        used_after_change=after,
    )


def sms(dest: str = "12025550100", rg: int | None = None) -> UsageRequest:
    return UsageRequest(Service.SMS, Unit.MESSAGES, "SMS", dest, rating_group=rg, requested=1)


def grant_of(answer: object) -> Grant:
    results = answer.results  # type: ignore[attr-defined]
    assert len(results) == 1 and isinstance(results[0], Grant), results
    return results[0]


__all__ = ["DATA", "DOMESTIC_SMS", "LOCAL", "MIB", "NOW", "USSD", "data", "usd"]
