"""Network access servers (NAS) that speak RADIUS to ratel, and the wire facts
of the broadband sessions they report.

A NAS is known by its source address and shares a secret with ratel. Its
vendor says in which attributes it wants the service policy (rates, hotline)
and whether it accepts dynamic authorization (RFC 5176 CoA / Disconnect).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from ipaddress import ip_address
from typing import Final

from ratel.domain.errors import DomainError


class InvalidNas(DomainError, ValueError):
    """A NAS definition that cannot be used."""

    code = "invalid_nas"


class DuplicateNas(DomainError):
    """A NAS id or address that is already registered."""

    code = "duplicate_nas"


class DuplicateRadiusSession(DomainError):
    """An accounting session that is already recorded (a Start raced itself)."""

    code = "duplicate_radius_session"


class NasVendor(StrEnum):
    """The gateway families of the mission file; each has its own attributes."""

    HUAWEI = "huawei"  # CX600 / ME60 BRAS
    JUNIPER = "juniper"  # MX960 (ERX dictionary)
    ALCATEL = "alcatel"  # Alcatel-Lucent / Nokia service routers
    CISCO = "cisco"  # IOS / ISG broadband (Cisco-AVPair)
    CISCO_PDSN = "cisco_pdsn"  # mobile data, sub-sessions correlated by 3GPP2
    CISCO_ASR5700 = "cisco_asr5700"  # M2M / GGSN: no CoA, no Disconnect
    GENERIC = "generic"  # RFC attributes only


DEFAULT_DAE_PORT = 3799  # RFC 5176


@dataclass(frozen=True, slots=True)
class Nas:
    """A RADIUS client of ratel. ``dae_port`` is where it listens for CoA and
    Disconnect-Request when it accepts them (``accepts_coa`` / ``accepts_disconnect``)."""

    id: str
    name: str
    address: str
    secret: str
    vendor: NasVendor = NasVendor.GENERIC
    accepts_coa: bool = False
    accepts_disconnect: bool = False
    dae_port: int = DEFAULT_DAE_PORT
    require_message_authenticator: bool = False

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidNas("a NAS has a name")
        try:
            object.__setattr__(self, "address", str(ip_address(self.address.strip())))
        except ValueError as exc:
            raise InvalidNas(f"a NAS address is an IP address, not {self.address!r}") from exc
        if not self.secret or len(self.secret.encode()) > 128:
            raise InvalidNas("a NAS shared secret has 1 to 128 octets")
        if not 0 < self.dae_port < 65536:
            raise InvalidNas(f"the dynamic authorization port {self.dae_port} is not a UDP port")
        if self.vendor is NasVendor.CISCO_ASR5700 and (self.accepts_coa or self.accepts_disconnect):
            raise InvalidNas("a Cisco ASR 5700 accepts neither CoA nor Disconnect")

    def changed(self, **fields: object) -> Nas:
        """A copy with ``fields`` replaced, validated again."""
        return replace(self, **fields)  # type: ignore[arg-type]


class RadiusSessionState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Restriction(StrEnum):
    """How an acknowledged CoA restricted a session that ran out of funds or
    quota (the product's final-unit action)."""

    HOTLINE = "hotline"  # web requests redirected to the top-up portal
    THROTTLE = "throttle"  # a lower rate


#: Where a NAS's 32-bit octet counter wraps (RFC 2869 5.1: Acct-*-Gigawords
#: count the wraps, when the NAS sends them).
COUNTER_WRAP: Final = 2**32


def _counted(before: int, now: int) -> int:
    """One direction's octets since ``before``, its 32-bit wrap folded in."""
    if now < before < COUNTER_WRAP and before - now > COUNTER_WRAP // 2:
        return now + COUNTER_WRAP - before
    return now - before


@dataclass(slots=True)
class RadiusSession:
    """What a NAS said about one accounting session (one Acct-Session-Id),
    and which charging session it feeds. ``input_octets`` / ``output_octets``
    / ``session_time`` are the NAS's cumulative counters last charged, and
    ``reports`` how many usage reports were charged (the request number)."""

    nas_address: str
    acct_session_id: str
    charging_session_id: str
    sub_session: str
    account_id: str
    customer_id: str
    user_name: str
    started_at: datetime
    updated_at: datetime
    framed_ip: str | None = None
    input_octets: int = 0
    output_octets: int = 0
    session_time: int = 0
    reports: int = 0
    state: RadiusSessionState = RadiusSessionState.OPEN
    restriction: Restriction | None = None  # the hotline or throttle CoA acknowledged
    last_dae: str | None = None  # the last CoA / Disconnect outcome (ACK, NAK + Error-Cause)

    @property
    def restricted(self) -> bool:
        return self.restriction is not None

    @property
    def octets(self) -> int:
        return self.input_octets + self.output_octets

    def same_counters(self, input_octets: int, output_octets: int, session_time: int) -> bool:
        return (input_octets, output_octets, session_time) == (
            self.input_octets,
            self.output_octets,
            self.session_time,
        )

    def is_stale(self, input_octets: int, output_octets: int) -> bool:
        """Counters below those already charged: an older report that UDP
        delivered late. Charging it from zero would charge its octets twice."""
        return self._since(input_octets, output_octets) < 0

    def usage_since(self, input_octets: int, output_octets: int) -> int:
        """Octets used since the last charged report (never negative)."""
        return max(0, self._since(input_octets, output_octets))

    def _since(self, input_octets: int, output_octets: int) -> int:
        """Octets since the counters last charged; below zero for an older
        report. A NAS that sends no Gigawords wraps its 32-bit counters at
        4 GiB: a counter that fell by more than half that range wrapped (a
        report delivered late is never that far behind)."""
        return _counted(self.input_octets, input_octets) + _counted(
            self.output_octets, output_octets
        )
