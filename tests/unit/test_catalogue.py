"""The catalogue: precedence, product rules, service policies and their merge."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

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
    by_precedence,
    effective_policy,
    services_of,
)
from ratel.domain.errors import DomainError, InvalidCatalogue
from ratel.domain.money import Money

# -- precedence ------------------------------------------------------------------


def test_named_levels_are_ordered_above_the_main_product() -> None:
    assert Precedence.HIGH > Precedence.MEDIUM > Precedence.LOW > Precedence.MAIN


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("high", Precedence.HIGH),
        ("HIGH", Precedence.HIGH),
        (" High ", Precedence.HIGH),
        ("medium", Precedence.MEDIUM),
        ("Medium", Precedence.MEDIUM),
        ("low", Precedence.LOW),
        ("1", 1),
        ("250", 250),
        (" 42 ", 42),
        (7, 7),
        (1, 1),
        (1000, 1000),
    ],
)
def test_precedence_parse(value: str | int, expected: int) -> None:
    assert Precedence.parse(value) == expected


@pytest.mark.parametrize(
    "value", ["", "  ", "highest", "med", "0", "-1", "1.5", "+3", "1e2", "²", "½", 0, -5]
)
def test_precedence_parse_refuses_anything_else(value: str | int) -> None:
    with pytest.raises(InvalidCatalogue):
        Precedence.parse(value)


def test_a_number_between_levels_sorts_between_them() -> None:
    assert Precedence.MEDIUM < Precedence.parse("250") < Precedence.HIGH


# -- products ----------------------------------------------------------------------


def main_product(**kwargs: Any) -> Product:
    values: dict[str, Any] = {"code": "BASIC", "name": "Basic", "kind": ProductKind.MAIN}
    values.update(kwargs)
    return Product(**values)


def add_on(code: str, precedence: int, **kwargs: Any) -> Product:
    return Product(
        code=code, name=code.title(), kind=ProductKind.ADDON, precedence=precedence, **kwargs
    )


def test_a_valid_main_product_and_add_on() -> None:
    main = main_product(services=frozenset({Service.DATA, Service.VOICE}))
    turbo = add_on("TURBO", Precedence.HIGH, validity=timedelta(hours=24), price=Money("3", "USD"))
    assert not main.is_add_on
    assert turbo.is_add_on
    assert main.precedence == Precedence.MAIN
    assert main.offers(Service.DATA)
    assert main.offers("voice")
    assert not main.offers(Service.SMS)


def test_offers_an_unknown_service_name_is_refused() -> None:
    with pytest.raises(ValueError):
        main_product().offers("fax")


def usage(access_code: str, tariff: str = "T") -> UsageCharge:
    return UsageCharge(access_code, tariff)


def quota(code: str) -> QuotaDefinition:
    return QuotaDefinition(code, Service.DATA, Unit.BYTES, Decimal(10**9))


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"code": ""}, id="no code"),
        pytest.param({"precedence": Precedence.HIGH}, id="main with precedence"),
        pytest.param({"precedence": 1}, id="main with precedence 1"),
        pytest.param({"precedence": -1}, id="main with negative precedence"),
        pytest.param({"kind": ProductKind.ADDON}, id="add-on without precedence"),
        pytest.param({"kind": ProductKind.ADDON, "precedence": 0}, id="add-on precedence 0"),
        pytest.param({"kind": ProductKind.ADDON, "precedence": -3}, id="add-on negative"),
        pytest.param({"validity": timedelta(0)}, id="zero validity"),
        pytest.param({"validity": timedelta(hours=-1)}, id="negative validity"),
        pytest.param(
            {"usage_charges": (usage("OUTGOING.SI120", "A"), usage("OUTGOING.SI120", "B"))},
            id="duplicate access code",
        ),
        pytest.param(
            {"usage_charges": (usage("VOICE"), usage("VOICE"))},
            id="duplicate access code same tariff",
        ),
        pytest.param({"quotas": (quota("DATA"), quota("DATA"))}, id="duplicate quota code"),
    ],
)
def test_product_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidCatalogue):
        main_product(**kwargs)


def test_invalid_catalogue_is_a_domain_error() -> None:
    with pytest.raises(DomainError):
        add_on("X", 0)


def test_tariff_for_maps_an_access_code_to_its_tariff() -> None:
    product = main_product(
        usage_charges=(
            UsageCharge(UsageCharge.ussd_access_code(120), "USSD-20S", Service.USSD),
            UsageCharge("VOICE", "LOCAL", Service.VOICE),
        )
    )
    assert product.tariff_for("OUTGOING.SI120") == "USSD-20S"
    assert product.tariff_for("VOICE") == "LOCAL"
    assert product.tariff_for("OUTGOING.SI121") is None
    assert product.tariff_for("voice") is None


@pytest.mark.parametrize(
    ("identifier", "code"),
    [(120, "OUTGOING.SI120"), ("120", "OUTGOING.SI120"), (7, "OUTGOING.SI7")],
)
def test_ussd_access_code(identifier: int | str, code: str) -> None:
    assert UsageCharge.ussd_access_code(identifier) == code


# -- subscriptions and quota definitions ------------------------------------------------


def test_subscription() -> None:
    sub = Subscription("MONTHLY", "Monthly fee", Money("19.99", "USD"), "400000001")
    assert sub.period == "monthly"
    assert Subscription("D", "Daily", Money("0", "USD"), "400000001", "daily").period == "daily"


@pytest.mark.parametrize(
    ("fee", "period"), [("-0.01", "monthly"), ("1", "weekly"), ("1", "Monthly")]
)
def test_subscription_validation(fee: str, period: str) -> None:
    with pytest.raises(InvalidCatalogue):
        Subscription("S", "S", Money(fee, "USD"), "400000001", period)


def test_quota_definition_defaults() -> None:
    q = QuotaDefinition(
        "SMS", Service.SMS, Unit.MESSAGES, Decimal(100), destination_group="DOMESTIC"
    )
    assert q.renewal is Renewal.MONTHLY
    assert q.rating_group is None
    assert q.validity is None


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"allowance": Decimal(0)}, id="zero allowance"),
        pytest.param({"allowance": Decimal(-1)}, id="negative allowance"),
        pytest.param({"allowance": Decimal("1.5")}, id="half a message"),
        pytest.param({"unit": Unit.MONEY}, id="money without currency"),
        pytest.param({"unit": Unit.MONEY, "currency": ""}, id="money with empty currency"),
    ],
)
def test_quota_definition_validation(kwargs: dict[str, Any]) -> None:
    values: dict[str, Any] = {
        "code": "Q",
        "service": Service.SMS,
        "unit": Unit.MESSAGES,
        "allowance": Decimal(100),
    }
    values.update(kwargs)
    with pytest.raises(InvalidCatalogue):
        QuotaDefinition(**values)


def test_a_money_quota_may_have_cents() -> None:
    wallet = QuotaDefinition(
        "WALLET", Service.VOICE, Unit.MONEY, Decimal("5.50"), Renewal.ONCE, currency="USD"
    )
    assert wallet.allowance == Decimal("5.50")


# -- service policies -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"download_kbps": -1},
        {"upload_kbps": -1},
        {"throttle_download_kbps": -1},
        {"throttle_upload_kbps": -64},
        {"ont_port_type": "XX"},
        {"ont_port_type": "rg"},
    ],
)
def test_service_policy_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidCatalogue):
        ServicePolicy(**kwargs)


def test_over_takes_the_upper_fields_and_the_lower_where_the_upper_is_silent() -> None:
    upper = ServicePolicy(download_kbps=50000, push_events=False)
    lower = ServicePolicy(download_kbps=10000, upload_kbps=2000, push_events=True, name="base")
    merged = upper.over(lower)
    assert merged.download_kbps == 50000
    assert merged.upload_kbps == 2000
    assert merged.name == "base"
    # False is a setting, not silence
    assert merged.push_events is False


def test_over_an_empty_policy_changes_nothing() -> None:
    policy = ServicePolicy(download_kbps=1, hotline_url="http://portal")
    assert policy.over(ServicePolicy()) == policy
    assert ServicePolicy().over(policy) == policy


MAIN_POLICY = ServicePolicy(
    name="internet",
    download_kbps=10000,
    upload_kbps=2000,
    hotline_url="https://topup.example.net",
    ont_port_type="RG",
    on_exhaustion=ExhaustionAction.REDIRECT,
)
TURBO = add_on("TURBO", Precedence.HIGH, policy=ServicePolicy(download_kbps=50000))
REGULAR = add_on(
    "REGULAR", Precedence.MEDIUM, policy=ServicePolicy(download_kbps=20000, pakid="PAK-7")
)
MAIN = main_product(policy=MAIN_POLICY, services=frozenset({Service.DATA}))


def test_effective_policy_merges_by_precedence() -> None:
    policy = effective_policy(MAIN, [TURBO, REGULAR])
    assert policy.download_kbps == 50000  # Turbo (high) wins over Regular (medium)
    assert policy.pakid == "PAK-7"  # only Regular sets it
    assert policy.upload_kbps == 2000  # from the main product
    assert policy.hotline_url == "https://topup.example.net"
    assert policy.on_exhaustion is ExhaustionAction.REDIRECT
    assert policy.name == "internet"


def test_effective_policy_does_not_depend_on_the_order_add_ons_are_listed() -> None:
    assert effective_policy(MAIN, [REGULAR, TURBO]) == effective_policy(MAIN, [TURBO, REGULAR])


def test_effective_policy_without_turbo_takes_regular_speed() -> None:
    policy = effective_policy(MAIN, [REGULAR])
    assert policy.download_kbps == 20000
    assert policy.pakid == "PAK-7"


def test_effective_policy_of_the_main_product_alone() -> None:
    assert effective_policy(MAIN) == MAIN_POLICY


def test_a_numeric_precedence_between_levels() -> None:
    middle = add_on("MIDDLE", 250, policy=ServicePolicy(download_kbps=30000, pakid="PAK-9"))
    policy = effective_policy(MAIN, [TURBO, REGULAR, middle])
    assert policy.download_kbps == 50000
    assert policy.pakid == "PAK-9"  # 250 beats medium (200)


def test_cpe_port_type_overrides_the_policy() -> None:
    assert effective_policy(MAIN, [TURBO]).ont_port_type == "RG"
    policy = effective_policy(MAIN, [TURBO, REGULAR], cpe_port_type="GE")
    assert policy.ont_port_type == "GE"
    assert policy.download_kbps == 50000


def test_cpe_port_type_overrides_even_an_add_on() -> None:
    ge_addon = add_on("GE", Precedence.HIGH, policy=ServicePolicy(ont_port_type="GE"))
    assert effective_policy(MAIN, [ge_addon], cpe_port_type="RG").ont_port_type == "RG"


def test_an_invalid_cpe_port_type_is_refused() -> None:
    with pytest.raises(InvalidCatalogue):
        effective_policy(MAIN, [], cpe_port_type="FE")


def test_by_precedence_puts_add_ons_first_highest_first_stable() -> None:
    low_a = add_on("LOW_A", Precedence.LOW)
    low_b = add_on("LOW_B", Precedence.LOW)
    ordered = by_precedence([MAIN, low_a, REGULAR, TURBO, low_b])
    assert [p.code for p in ordered] == ["TURBO", "REGULAR", "LOW_A", "LOW_B", "BASIC"]


def test_services_of_unites_main_and_add_ons() -> None:
    iptv = add_on("IPTV", Precedence.LOW, services=frozenset({Service.IPTV}))
    sms = add_on("SMS", Precedence.LOW, services=frozenset({Service.SMS, Service.DATA}))
    assert services_of(MAIN) == frozenset({Service.DATA})
    assert services_of(MAIN, [iptv, sms]) == frozenset({Service.DATA, Service.IPTV, Service.SMS})


# -- service policy serialization ---------------------------------------------------------

FULL_POLICY = ServicePolicy(
    name="gold",
    download_kbps=50000,
    upload_kbps=10000,
    throttle_download_kbps=256,
    throttle_upload_kbps=128,
    hotline_url="https://topup.example.net",
    pakid="PAK-1",
    apn_ids=("internet", "ims"),
    roaming_profile_id="ROAM-EU",
    ont_port_type="GE",
    bandwidth_profile_id="BW-100",
    satellite_default_profile_id="SAT-D",
    satellite_restricted_profile_id="SAT-R",
    dpi_policy_name="gold-dpi",
    provision_translated_number=True,
    raise_mscc_result_code=False,
    push_events=True,
    on_exhaustion=ExhaustionAction.THROTTLE,
    free_rating_groups=frozenset({30, 10, 20}),
)


@pytest.mark.parametrize(
    "policy", [FULL_POLICY, ServicePolicy(), MAIN_POLICY], ids=["full", "empty", "main"]
)
def test_to_dict_from_dict_round_trip(policy: ServicePolicy) -> None:
    assert ServicePolicy.from_dict(policy.to_dict()) == policy
    # and through JSON, as it is stored
    assert ServicePolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_to_dict_is_plain_data() -> None:
    data = FULL_POLICY.to_dict()
    assert data["apn_ids"] == ["internet", "ims"]
    assert data["free_rating_groups"] == [10, 20, 30]
    assert data["on_exhaustion"] == "throttle"
    assert data["download_kbps"] == 50000
    assert data["raise_mscc_result_code"] is False
    assert ServicePolicy().to_dict()["hotline_url"] is None
    assert json.loads(json.dumps(data))["on_exhaustion"] == "throttle"


def test_from_dict_of_a_partial_dict() -> None:
    policy = ServicePolicy.from_dict(
        {"download_kbps": 1024, "on_exhaustion": "redirect", "free_rating_groups": ["10", 20]}
    )
    assert policy.download_kbps == 1024
    assert policy.on_exhaustion is ExhaustionAction.REDIRECT
    assert policy.free_rating_groups == frozenset({10, 20})
    assert policy.upload_kbps is None


@pytest.mark.parametrize(
    "data",
    [{"downlaod_kbps": 1}, {"speed": 1, "download_kbps": 2}, {"name": "x", "Name": "y"}],
)
def test_from_dict_refuses_unknown_fields(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidCatalogue, match="unknown"):
        ServicePolicy.from_dict(data)


def test_from_dict_validates_values() -> None:
    with pytest.raises(InvalidCatalogue):
        ServicePolicy.from_dict({"ont_port_type": "XX"})
    with pytest.raises(InvalidCatalogue):
        ServicePolicy.from_dict({"upload_kbps": -5})
