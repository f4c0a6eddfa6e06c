"""What the use-case tests share: a clock the test moves, and the operator's
voice, data and SMS tariffs with the usage charges that name them."""

from __future__ import annotations

from datetime import UTC, datetime

from store_builders import DATA, LOCAL, MIB, usd

from ratel.application.base import Dependencies
from ratel.application.catalogue import DefineDestinationGroups, DefineTariff
from ratel.domain.catalogue import Service, UsageCharge
from ratel.domain.rating import DestinationGroup, Rate, Tariff

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
SMS = DestinationGroup("DOMESTIC_SMS", "Domestic SMS", "400000004")
#: The usage charges of a product that sells all three services.
CHARGES = (
    UsageCharge("VOICE", "VOICE"),
    UsageCharge("DATA", "DATA"),
    UsageCharge("SMS", "SMS"),
)
SERVICES = frozenset({Service.VOICE, Service.DATA, Service.SMS})


class Clock:
    """The test moves time; the store and everything else is real."""

    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at


async def define_tariffs(deps: Dependencies) -> None:
    """Local calls at 0.10 a minute plus a 0.05 connection fee, data at 0.01
    a MiB, domestic SMS at 0.05 each."""
    await DefineDestinationGroups(deps)([LOCAL, DATA, SMS])
    voice = Tariff("VOICE", "USD")
    voice.add_prefix("1", Rate.per_interval(usd("0.10"), 60, connection_fee=usd("0.05")), LOCAL)
    data = Tariff("DATA", "USD")
    data.add_custom("DATA", Rate.per_interval(usd("0.01"), MIB), DATA)
    sms = Tariff("SMS", "USD")
    sms.add_prefix("1", Rate.per_interval(usd("0.05"), 1), SMS)
    for tariff in (voice, data, sms):
        await DefineTariff(deps)(tariff)
