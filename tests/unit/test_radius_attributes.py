"""The service policy in each vendor's attributes, and the duplicate cache."""

from __future__ import annotations

import pytest

from ratel.adapters.radius.attributes import (
    dictionary,
    hotline_attributes,
    policy_attributes,
    throttle_attributes,
)
from ratel.adapters.radius.server import DuplicateCache
from ratel.domain.catalogue import ServicePolicy
from ratel.domain.nas import NasVendor

POLICY = ServicePolicy(name="GOLD", download_kbps=100_000, upload_kbps=20_000)


@pytest.mark.parametrize("vendor", list(NasVendor))
def test_every_attribute_sent_is_in_the_dictionary(vendor: NasVendor) -> None:
    names = {name.split(":")[0] for name, _ in policy_attributes(vendor, POLICY)}
    names |= {name.split(":")[0] for name, _ in hotline_attributes(vendor, "https://top.up/")}
    names |= {name.split(":")[0] for name, _ in throttle_attributes(vendor, 128, 64)}
    assert names
    for name in names:
        assert name in dictionary().attributes, name


def test_rates_are_in_each_vendors_unit() -> None:
    assert ("Huawei-Output-Average-Rate", 100_000_000) in policy_attributes(
        NasVendor.HUAWEI, POLICY
    )
    assert ("Alc-Subscriber-QoS-Override", "e:r:100000") in policy_attributes(
        NasVendor.ALCATEL, POLICY
    )
    juniper = policy_attributes(NasVendor.JUNIPER, POLICY)
    assert ("ERX-Service-Activate:1", "rate-limit(100000000,20000000)") in juniper
    # restoring the policy on Juniper also ends the hotline service
    assert ("ERX-Service-Deactivate", "hotline") in juniper
    assert throttle_attributes(NasVendor.HUAWEI, 128, None) == [
        ("Huawei-Output-Average-Rate", 128_000),
        ("Huawei-Output-Peak-Rate", 128_000),
    ]


def test_a_rate_past_32_bits_is_capped() -> None:
    fast = ServicePolicy(download_kbps=10_000_000)
    assert ("Huawei-Output-Average-Rate", 2**32 - 1) in policy_attributes(NasVendor.HUAWEI, fast)


def test_the_duplicate_cache_answers_a_copy_and_forgets_failures() -> None:
    cache = DuplicateCache(ttl=30)
    key = ("192.0.2.1", 1812, 1, 7, b"a" * 16)
    assert cache.seen(key) == (False, None)
    assert cache.seen(key) == (True, None)  # in flight: drop the copy
    cache.answered(key, b"reply")
    assert cache.seen(key) == (True, b"reply")
    cache.forget(key)
    assert cache.seen(key) == (False, None)


def test_the_duplicate_cache_expires_old_requests() -> None:
    cache = DuplicateCache(ttl=0)
    key = ("192.0.2.1", 1812, 1, 7, b"a" * 16)
    cache.seen(key)
    cache.answered(key, b"reply")
    assert cache.seen(key) == (False, None)
