"""Where a roaming user may use which service.

A user whose reported location is one of the restricted ones (by default
AEROSPACE and MARITIME: in-flight and on-ship networks, where data is costly)
loses the restricted services (by default data) but keeps the others (voice,
SMS). The user may lift the block for the current location from self-care;
a new location brings the rule back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

DEFAULT_RESTRICTED_LOCATIONS: Final = frozenset({"AEROSPACE", "MARITIME"})
DEFAULT_RESTRICTED_SERVICES: Final = frozenset({"data"})


def _normalised(values: Iterable[str], what: str, upper: bool) -> frozenset[str]:
    if isinstance(values, str):
        raise ValueError(f"{what} is a set of names, not one string")
    result = set()
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{what} holds non-empty names, got {value!r}")
        result.add(value.strip().upper() if upper else value.strip().lower())
    return frozenset(result)


@dataclass(frozen=True, slots=True)
class LocationPolicy:
    """The operator's configurable location rule. Names compare
    case-insensitively: locations are kept upper-case and services lower-case."""

    restricted_locations: frozenset[str] = field(
        default_factory=lambda: DEFAULT_RESTRICTED_LOCATIONS
    )
    restricted_services: frozenset[str] = field(default_factory=lambda: DEFAULT_RESTRICTED_SERVICES)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "restricted_locations",
            _normalised(self.restricted_locations, "restricted_locations", upper=True),
        )
        object.__setattr__(
            self,
            "restricted_services",
            _normalised(self.restricted_services, "restricted_services", upper=False),
        )

    def is_restricted(self, location: str | None) -> bool:
        """True when ``location`` is one where the restricted services are blocked."""
        return location is not None and location.strip().upper() in self.restricted_locations

    def restricts(self, service: str) -> bool:
        """True when ``service`` is blocked in restricted locations."""
        return service.strip().lower() in self.restricted_services

    def allows(self, service: str, location: str | None, block_lifted: bool) -> bool:
        """May ``service`` be used at ``location``? ``block_lifted`` is the user's
        own choice to lift the block for this location."""
        if block_lifted or not self.restricts(service):
            return True
        return not self.is_restricted(location)
