"""The service policy in each vendor's reply attributes, and the dictionary.

Rates in a ``ServicePolicy`` are kbit/s; vendors want bit/s (Huawei, Cisco,
Juniper service parameters) or kbit/s (Alcatel-Lucent QoS overrides).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

from pyrad.dictionary import Dictionary

from ratel.domain.catalogue import ServicePolicy
from ratel.domain.nas import NasVendor

DICTIONARY_PATH: Final = Path(__file__).with_name("dictionary")
_MAX_INTEGER: Final = 2**32 - 1
JUNIPER_RATE_SERVICE: Final = "rate-limit"
JUNIPER_HOTLINE_SERVICE: Final = "hotline"

# Cisco ISG dynamic QoS: shape the download, police the upload (bit/s)
_CISCO_SHAPE: Final = "ip:qos-policy-out=add-class(sub,(class-default),shape({}))"
_CISCO_POLICE: Final = "ip:qos-policy-in=add-class(sub,(class-default),police({}))"

Attributes = list[tuple[str, str | int]]


@cache
def dictionary() -> Dictionary:
    """ratel's RADIUS dictionary (RFC attributes and the vendors' we use)."""
    return Dictionary(str(DICTIONARY_PATH))


def _bps(kbps: int) -> int:
    return min(kbps * 1000, _MAX_INTEGER)


def rate_attributes(
    vendor: NasVendor, download_kbps: int | None, upload_kbps: int | None, name: str | None = None
) -> Attributes:
    """The download / upload rate (and profile name) in ``vendor``'s attributes."""
    out: Attributes = []
    down, up = download_kbps, upload_kbps
    if vendor is NasVendor.HUAWEI:
        if up is not None:
            out += [("Huawei-Input-Average-Rate", _bps(up)), ("Huawei-Input-Peak-Rate", _bps(up))]
        if down is not None:
            out += [
                ("Huawei-Output-Average-Rate", _bps(down)),
                ("Huawei-Output-Peak-Rate", _bps(down)),
            ]
        if name:
            out.append(("Huawei-Qos-Profile-Name", name))
    elif vendor is NasVendor.JUNIPER:
        if down is not None or up is not None:
            # a dynamic service profile with its parameters: rate-limit(down, up) in bit/s
            out.append(
                (
                    "ERX-Service-Activate:1",
                    f"{JUNIPER_RATE_SERVICE}({_bps(down or 0)},{_bps(up or 0)})",
                )
            )
        if name:
            out.append(("ERX-Qos-Profile-Name", name))
    elif vendor is NasVendor.ALCATEL:
        if down is not None:
            out.append(("Alc-Subscriber-QoS-Override", f"e:r:{down}"))  # egress aggregate rate
        if up is not None:
            out.append(("Alc-Subscriber-QoS-Override", f"i:p:1:pir={up}"))  # ingress policer
        if name:
            out.append(("Alc-SLA-Prof-Str", name))
    elif vendor in (NasVendor.CISCO, NasVendor.CISCO_PDSN):
        if down is not None:
            out.append(("Cisco-AVPair", _CISCO_SHAPE.format(_bps(down))))
        if up is not None:
            out.append(("Cisco-AVPair", _CISCO_POLICE.format(_bps(up))))
        if name:
            out.append(("Cisco-AVPair", f"subscriber:service-name={name}"))
    elif name:
        # Cisco ASR 5700 and RFC-only gateways: a rulebase / filter named by the policy
        out.append(("Filter-Id", name))
    return out


def policy_attributes(vendor: NasVendor, policy: ServicePolicy) -> Attributes:
    """The full speed of the effective policy (Access-Accept, restoring CoA)."""
    attributes = rate_attributes(vendor, policy.download_kbps, policy.upload_kbps, policy.name)
    if vendor is NasVendor.JUNIPER:
        attributes.append(("ERX-Service-Deactivate", JUNIPER_HOTLINE_SERVICE))
    return attributes


def throttle_attributes(
    vendor: NasVendor, download_kbps: int | None, upload_kbps: int | None
) -> Attributes:
    """The lower speed of a throttled session; for a NAS whose rates ratel
    does not speak (RFC-only gateways), the filter named ``throttle``."""
    return rate_attributes(vendor, download_kbps, upload_kbps) or [("Filter-Id", "throttle")]


#: Vendors whose hotline is a portal URL attribute: a CoA changes the
#: attributes it carries and keeps the others, so the restoring CoA's rates
#: leave the redirect in place.
_PORTAL_VENDORS: Final = frozenset(
    {NasVendor.HUAWEI, NasVendor.ALCATEL, NasVendor.CISCO, NasVendor.CISCO_PDSN}
)


def coa_lifts_hotline(vendor: NasVendor) -> bool:
    """Whether ``policy_attributes`` in a CoA take the hotline back: Juniper's
    deactivate the hotline service, and an RFC-only gateway's Filter-Id
    replaces the ``hotline`` filter; a portal URL (Huawei, Alcatel-Lucent,
    Cisco) stays."""
    return vendor not in _PORTAL_VENDORS


def hotline_attributes(vendor: NasVendor, url: str) -> Attributes:
    """Redirect every web request to the top-up portal (captive portal)."""
    if vendor is NasVendor.HUAWEI:
        return [("Huawei-PortalURL", url)]
    if vendor is NasVendor.JUNIPER:
        return [("ERX-Service-Activate:1", f"{JUNIPER_HOTLINE_SERVICE}({url})")]
    if vendor is NasVendor.ALCATEL:
        return [("Alc-Portal-Url", url)]
    if vendor in (NasVendor.CISCO, NasVendor.CISCO_PDSN):
        return [("Cisco-AVPair", f"url-redirect={url}")]
    return [("Filter-Id", "hotline")]
