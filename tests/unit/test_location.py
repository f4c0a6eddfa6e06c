"""The location policy: data is blocked in AEROSPACE and MARITIME unless lifted."""

from __future__ import annotations

import pytest

from ratel.domain.location import LocationPolicy

DEFAULT = LocationPolicy()


@pytest.mark.parametrize(
    ("location", "restricted"),
    [
        ("MARITIME", True),
        ("AEROSPACE", True),
        ("maritime", True),  # case-insensitive
        (" Aerospace ", True),
        ("TERRESTRIAL", False),
        ("GB", False),
        ("", False),
        (None, False),
    ],
)
def test_is_restricted(location: str | None, restricted: bool) -> None:
    assert DEFAULT.is_restricted(location) is restricted


@pytest.mark.parametrize(
    ("service", "location", "lifted", "allowed"),
    [
        # the mission's example: at sea, data is lost, voice and SMS are kept
        ("data", "MARITIME", False, False),
        ("voice", "MARITIME", False, True),
        ("sms", "MARITIME", False, True),
        ("data", "AEROSPACE", False, False),
        ("DATA", "aerospace", False, False),
        # the user lifted the block for this location
        ("data", "MARITIME", True, True),
        ("voice", "MARITIME", True, True),
        # anywhere else everything is allowed
        ("data", "TERRESTRIAL", False, True),
        ("data", None, False, True),
        ("voice", None, False, True),
    ],
)
def test_allows(service: str, location: str | None, lifted: bool, allowed: bool) -> None:
    assert DEFAULT.allows(service, location, lifted) is allowed


def test_configurable_lists_are_normalised() -> None:
    policy = LocationPolicy(
        restricted_locations=frozenset({"maritime", " Polar "}),
        restricted_services=frozenset({"Data", "IPTV"}),
    )
    assert policy.restricted_locations == frozenset({"MARITIME", "POLAR"})
    assert policy.restricted_services == frozenset({"data", "iptv"})
    assert not policy.is_restricted("AEROSPACE")
    assert not policy.allows("iptv", "polar", False)
    assert policy.allows("voice", "polar", False)
    assert policy.restricts("IPTV")


def test_empty_lists_restrict_nothing() -> None:
    policy = LocationPolicy(restricted_locations=frozenset(), restricted_services=frozenset())
    assert policy.allows("data", "MARITIME", False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"restricted_locations": frozenset({""})},
        {"restricted_services": frozenset({"  "})},
        {"restricted_locations": "MARITIME"},
    ],
)
def test_invalid_policy(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LocationPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_is_a_hashable_value() -> None:
    assert LocationPolicy() == LocationPolicy(
        restricted_locations=frozenset({"maritime", "aerospace"}),
        restricted_services=frozenset({"DATA"}),
    )
    assert hash(LocationPolicy()) == hash(LocationPolicy())
