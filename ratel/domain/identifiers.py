"""Identifiers of an account: MSISDN, SIM (IMSI, ICCID), IMEI, aliases, CPE
device and static IP.

Each is a frozen value object that validates and normalises itself on
construction (raising ``InvalidIdentifier``) so that a value in the domain is
always well formed; ``str()`` gives the canonical form that is stored and sent
to the network, and ``parse()`` reads it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import (
    AddressValueError,
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    NetmaskValueError,
    ip_interface,
)
from typing import Any, Final

from ratel.domain.errors import InvalidIdentifier


class Unset(Enum):
    """Sentinel type for "leave this field as it is" in update helpers, where
    ``None`` already means "clear it"."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET

_DIGITS = re.compile(r"[0-9]+")


def luhn_valid(digits: str) -> bool:
    """True when the last digit of ``digits`` is the Luhn check digit of the rest."""
    if not digits or not _DIGITS.fullmatch(digits):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def luhn_check_digit(payload: str) -> str:
    """The Luhn check digit to append to ``payload`` (digits only)."""
    if not _DIGITS.fullmatch(payload):
        raise InvalidIdentifier(f"a Luhn payload is digits only: {payload!r}")
    for candidate in "0123456789":
        if luhn_valid(payload + candidate):
            return candidate
    raise AssertionError("unreachable: one of ten digits always completes a Luhn sum")


def _digits(kind: str, raw: object, lengths: range | tuple[int, ...]) -> str:
    if not isinstance(raw, str):
        raise InvalidIdentifier(f"{kind} must be a string, got {type(raw).__name__}")
    value = raw.strip()
    if not _DIGITS.fullmatch(value) or len(value) not in lengths:
        allowed = "-".join(map(str, (min(lengths), max(lengths))))
        raise InvalidIdentifier(f"{kind} must be {allowed} digits: {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class Msisdn:
    """A subscriber number in E.164: country code and national number, 6 to 15
    digits. A leading ``+`` is accepted and dropped: the canonical form is the
    bare digits, as RADIUS Calling-Station-Id and Diameter Subscription-Id carry it."""

    value: str

    def __post_init__(self) -> None:
        raw = self.value.strip() if isinstance(self.value, str) else self.value
        if isinstance(raw, str) and raw.startswith("+"):
            raw = raw[1:]
        object.__setattr__(self, "value", _digits("MSISDN", raw, range(6, 16)))

    @classmethod
    def parse(cls, text: str) -> Msisdn:
        return cls(text)

    @property
    def e164(self) -> str:
        """With the leading ``+``, for people and for SIP/tel URIs."""
        return f"+{self.value}"

    def __str__(self) -> str:
        return self.value


# MCCs whose networks use three-digit MNCs (ITU-T E.212): North America and the
# Caribbean, Mexico, Honduras, Argentina, Colombia. Everywhere else MNCs are two
# digits. India (405) mixes both, so it keeps the two-digit default and callers
# that know better use ``Imsi.split``.
_THREE_DIGIT_MNC_MCCS: Final = frozenset(
    {
        "302", "310", "311", "312", "313", "314", "315", "316", "334", "338", "342",
        "344", "346", "348", "352", "354", "356", "358", "360", "365", "366", "376",
        "708", "722", "732",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Imsi:
    """International Mobile Subscriber Identity: MCC (3 digits), MNC (2 or 3)
    and MSIN; 14 or 15 digits in all."""

    value: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _digits("IMSI", self.value, (14, 15)))

    @classmethod
    def parse(cls, text: str) -> Imsi:
        return cls(text)

    @property
    def mcc(self) -> str:
        """Mobile country code: the first three digits."""
        return self.value[:3]

    @property
    def mnc_length(self) -> int:
        return 3 if self.mcc in _THREE_DIGIT_MNC_MCCS else 2

    @property
    def mnc(self) -> str:
        """Mobile network code (two or three digits, by the MCC's numbering plan)."""
        return self.split()[1]

    @property
    def msin(self) -> str:
        """Mobile subscription identification number: what follows the MNC."""
        return self.split()[2]

    @property
    def plmn(self) -> str:
        """The home network: MCC followed by MNC."""
        mcc, mnc, _ = self.split()
        return mcc + mnc

    def split(self, mnc_length: int | None = None) -> tuple[str, str, str]:
        """``(mcc, mnc, msin)``; ``mnc_length`` overrides the numbering-plan default."""
        length = self.mnc_length if mnc_length is None else mnc_length
        if length not in (2, 3):
            raise InvalidIdentifier(f"an MNC is 2 or 3 digits, not {length}")
        return self.value[:3], self.value[3 : 3 + length], self.value[3 + length :]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Iccid:
    """SIM card serial number (ITU-T E.118): 18 to 20 digits starting with the
    telecom industry prefix 89. The 19- and 20-digit forms end with a Luhn check
    digit, which is verified; the 18-digit form carries none."""

    value: str

    def __post_init__(self) -> None:
        value = _digits("ICCID", self.value, range(18, 21))
        if not value.startswith("89"):
            raise InvalidIdentifier(f"an ICCID starts with 89: {self.value!r}")
        if len(value) >= 19 and not luhn_valid(value):
            raise InvalidIdentifier(f"ICCID check digit is wrong: {self.value!r}")
        object.__setattr__(self, "value", value)

    @classmethod
    def parse(cls, text: str) -> Iccid:
        return cls(text)

    @property
    def has_check_digit(self) -> bool:
        return len(self.value) >= 19

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Imei:
    """Device identity: a 15-digit IMEI whose last digit is a Luhn check, or a
    16-digit IMEISV (IMEI without check digit plus a 2-digit software version),
    which has no check digit."""

    value: str

    def __post_init__(self) -> None:
        value = _digits("IMEI", self.value, (15, 16))
        if len(value) == 15 and not luhn_valid(value):
            raise InvalidIdentifier(f"IMEI check digit is wrong: {self.value!r}")
        object.__setattr__(self, "value", value)

    @classmethod
    def parse(cls, text: str) -> Imei:
        return cls(text)

    @property
    def tac(self) -> str:
        """Type allocation code: the device model (first 8 digits)."""
        return self.value[:8]

    @property
    def serial_number(self) -> str:
        return self.value[8:14]

    @property
    def is_imeisv(self) -> bool:
        return len(self.value) == 16

    @property
    def software_version(self) -> str | None:
        return self.value[14:] if self.is_imeisv else None

    def __str__(self) -> str:
        return self.value


PORT_TYPES: Final = frozenset({"RG", "GE"})
_SERIAL = re.compile(r"[A-Z0-9][A-Z0-9._:-]{0,63}")


@dataclass(frozen=True, slots=True)
class CpeDevice:
    """Customer premises equipment, for example an ONT known by its FSAN serial
    (``CXNK0012AB34``). ``port`` is the service port, or ``None`` for all ports;
    ``port_type`` is the CPE profile's ONT port type, ``"RG"`` (residential
    gateway) or ``"GE"`` (Gigabit Ethernet), which overrides the one of the
    service policy; ``None`` leaves the policy's.

    Canonical string: ``SERIAL``, ``SERIAL/PORT`` or ``SERIAL/PORT/TYPE`` where
    PORT is a number or ``*`` for all ports, e.g. ``CXNK0012AB34/*/GE``.
    """

    serial: str
    port: int | None = None
    port_type: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.serial, str):
            raise InvalidIdentifier("a CPE serial number is a string")
        serial = self.serial.strip().upper()
        if not _SERIAL.fullmatch(serial):
            raise InvalidIdentifier(f"not a CPE serial number: {self.serial!r}")
        object.__setattr__(self, "serial", serial)
        # bool is an int: reject it explicitly so True never means port 1
        if self.port is not None and (
            isinstance(self.port, bool) or not isinstance(self.port, int) or self.port < 1
        ):
            raise InvalidIdentifier(f"a CPE port is a positive number or None: {self.port!r}")
        if self.port_type is not None:
            port_type = self.port_type.strip().upper() if isinstance(self.port_type, str) else ""
            if port_type not in PORT_TYPES:
                raise InvalidIdentifier(f"ONT port type is RG or GE: {self.port_type!r}")
            object.__setattr__(self, "port_type", port_type)

    @classmethod
    def parse(cls, text: str) -> CpeDevice:
        parts = text.strip().split("/")
        if not 1 <= len(parts) <= 3:
            raise InvalidIdentifier(f"not a CPE device: {text!r}")
        port: int | None = None
        if len(parts) >= 2:
            if parts[1] == "*":
                port = None
            elif _DIGITS.fullmatch(parts[1]):
                port = int(parts[1])
            else:
                raise InvalidIdentifier(f"a CPE port is a number or *: {text!r}")
        port_type = parts[2] if len(parts) == 3 else None
        return cls(parts[0], port, port_type)

    @property
    def all_ports(self) -> bool:
        return self.port is None

    def __str__(self) -> str:
        port = "*" if self.port is None else str(self.port)
        if self.port_type is not None:
            return f"{self.serial}/{port}/{self.port_type}"
        if self.port is not None:
            return f"{self.serial}/{port}"
        return self.serial


@dataclass(frozen=True, slots=True)
class StaticIp:
    """A fixed address with its netmask, as a DPI box or an HSS profile needs it.
    Parse ``10.1.2.3/24``, ``10.1.2.3/255.255.255.0``, ``2001:db8::5/64`` or a bare
    address (a host route: /32 or /128). Canonical string: ``address/prefixlen``."""

    interface: IPv4Interface | IPv6Interface

    def __post_init__(self) -> None:
        if not isinstance(self.interface, IPv4Interface | IPv6Interface):
            raise InvalidIdentifier("a static IP is an IPv4Interface or IPv6Interface")

    @classmethod
    def parse(cls, text: str) -> StaticIp:
        try:
            return cls(ip_interface(text.strip()))
        except (AddressValueError, NetmaskValueError, ValueError) as exc:
            raise InvalidIdentifier(f"not an IP address with netmask: {text!r}") from exc

    @classmethod
    def of(cls, address: str, netmask: str | int) -> StaticIp:
        """From the two separate values that provisioning systems often use."""
        return cls.parse(f"{address}/{netmask}")

    @property
    def address(self) -> IPv4Address | IPv6Address:
        return self.interface.ip

    @property
    def netmask(self) -> IPv4Address | IPv6Address:
        return self.interface.netmask

    @property
    def prefixlen(self) -> int:
        return self.interface.network.prefixlen

    @property
    def version(self) -> int:
        return self.interface.version

    def __str__(self) -> str:
        return f"{self.interface.ip}/{self.prefixlen}"


def _alias(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidIdentifier(f"an alias is a non-empty string: {raw!r}")
    return raw.strip()


@dataclass(frozen=True, slots=True)
class Identifiers:
    """Everything by which the network and external systems know an account.
    All optional: a broadband login has none of the mobile ones, a SIM has no CPE.
    ``aliases`` are identifiers given by other systems, for example the modem ID
    a satellite NMS returns."""

    msisdn: Msisdn | None = None
    imsi: Imsi | None = None
    iccid: Iccid | None = None
    imei: Imei | None = None
    aliases: frozenset[str] = field(default_factory=frozenset)
    cpe: CpeDevice | None = None
    static_ip: StaticIp | None = None

    def __post_init__(self) -> None:
        if isinstance(self.aliases, str):
            raise InvalidIdentifier("aliases is a set of strings, not one string")
        object.__setattr__(self, "aliases", frozenset(_alias(a) for a in self.aliases))
        for name, kind in (
            ("msisdn", Msisdn),
            ("imsi", Imsi),
            ("iccid", Iccid),
            ("imei", Imei),
            ("cpe", CpeDevice),
            ("static_ip", StaticIp),
        ):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise InvalidIdentifier(f"{name} must be a {kind.__name__}, got {value!r}")

    def replace(
        self,
        *,
        msisdn: Msisdn | None | Unset = UNSET,
        imsi: Imsi | None | Unset = UNSET,
        iccid: Iccid | None | Unset = UNSET,
        imei: Imei | None | Unset = UNSET,
        aliases: frozenset[str] | Unset = UNSET,
        cpe: CpeDevice | None | Unset = UNSET,
        static_ip: StaticIp | None | Unset = UNSET,
    ) -> Identifiers:
        """A copy with the given fields changed; ``None`` clears a field, an
        omitted one stays as it is."""
        return Identifiers(
            msisdn=self.msisdn if msisdn is UNSET else msisdn,
            imsi=self.imsi if imsi is UNSET else imsi,
            iccid=self.iccid if iccid is UNSET else iccid,
            imei=self.imei if imei is UNSET else imei,
            aliases=self.aliases if aliases is UNSET else aliases,
            cpe=self.cpe if cpe is UNSET else cpe,
            static_ip=self.static_ip if static_ip is UNSET else static_ip,
        )

    def with_alias(self, alias: str) -> Identifiers:
        return self.replace(aliases=self.aliases | {_alias(alias)})

    def changed_fields(self, other: Identifiers) -> tuple[str, ...]:
        """Names of the fields that differ from ``other``, in declaration order."""
        names = ("msisdn", "imsi", "iccid", "imei", "aliases", "cpe", "static_ip")
        return tuple(n for n in names if getattr(self, n) != getattr(other, n))

    def to_dict(self) -> dict[str, Any]:
        """Canonical strings (``None`` for absent ones, sorted aliases), for
        provisioning snapshots and storage."""

        def text(value: object) -> str | None:
            return None if value is None else str(value)

        return {
            "msisdn": text(self.msisdn),
            "imsi": text(self.imsi),
            "iccid": text(self.iccid),
            "imei": text(self.imei),
            "aliases": sorted(self.aliases),
            "cpe": text(self.cpe),
            "static_ip": text(self.static_ip),
        }
