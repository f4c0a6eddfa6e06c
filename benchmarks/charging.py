"""Credit-control operations per second in the pure domain (no I/O).

Run with ``uv run python -m benchmarks.charging [--sessions N]``. Each
session is a data session of one INITIAL, three UPDATEs and a TERMINATE on
one of 1,000 accounts that have an add-on quota and money; the figure is
credit-control requests answered per second on one core. The baseline, in the
same run, is the bare money movement of each request (``Wallet.reserve`` and
``Wallet.settle``) with no rating, quota or session logic, so the ratio shows
what the charging rules cost on top of arithmetic.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ratel.domain.account import Account
from ratel.domain.catalogue import (
    Precedence,
    Product,
    ProductKind,
    QuotaDefinition,
    Renewal,
    Service,
    ServicePolicy,
    Unit,
    UsageCharge,
)
from ratel.domain.charging import ChargingContext, CreditControlSession, Rater, UsageRequest
from ratel.domain.customer import Customer
from ratel.domain.location import LocationPolicy
from ratel.domain.money import Money
from ratel.domain.quota import QuotaBucket
from ratel.domain.rating import DestinationGroup, Rate, Tariff

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MIB = 1024 * 1024
ACCOUNTS = 1000
REQUESTS_PER_SESSION = 5
RUNS = 3


def build_world() -> tuple[list[tuple[Customer, Account, list[QuotaBucket]]], Rater]:
    tariff = Tariff("DATA", "USD")
    tariff.add_custom(
        "DATA",
        Rate.per_interval(Money.of("0.01", "USD"), MIB),
        DestinationGroup("DATA", "Data", "1"),
    )
    main = Product(
        "BASIC",
        "Basic",
        ProductKind.MAIN,
        frozenset({Service.DATA}),
        usage_charges=(UsageCharge("DATA", "DATA"),),
    )
    rater = Rater([main], {"DATA": tariff})
    quota = QuotaDefinition("TURBO", Service.DATA, Unit.BYTES, Decimal(20 * MIB), Renewal.ONCE)
    world = []
    for n in range(ACCOUNTS):
        customer = Customer.open(f"c{n}", f"Customer {n}", "USD", NOW)
        customer.wallet.credit(Money.of("1000", "USD"))
        account = Account.create(f"a{n}", customer.id, "BASIC", NOW)
        bucket = QuotaBucket.grant(
            id=f"b{n}",
            account_id=account.id,
            product_code="TURBO",
            definition=quota,
            precedence=Precedence.HIGH,
            now=NOW,
            ends_at=NOW + timedelta(days=30),
        )
        world.append((customer, account, [bucket]))
    return world, rater


def charging_run(sessions: int) -> Callable[[], None]:
    world, rater = build_world()
    policy, location = ServicePolicy(), LocationPolicy()

    def run() -> None:
        for n in range(sessions):
            customer, account, buckets = world[n % ACCOUNTS]
            ctx = ChargingContext(account, customer, buckets, rater, policy, location)
            session = CreditControlSession.open(f"s{n}", account, customer, NOW)
            request = UsageRequest(
                Service.DATA, Unit.BYTES, "DATA", rating_group=10, requested=2 * MIB
            )
            session.reserve(ctx, 0, [request], NOW)
            used = UsageRequest(
                Service.DATA, Unit.BYTES, "DATA", rating_group=10, requested=2 * MIB, used=2 * MIB
            )
            for number in (1, 2, 3):
                session.report(ctx, number, [used], NOW)
            session.terminate(ctx, 4, [used], NOW)
            for bucket in buckets:  # keep the workload the same in each run
                bucket.used = Decimal(0)

    return run


def baseline_run(sessions: int) -> Callable[[], None]:
    world, _ = build_world()
    hold, cost = Money.of("0.02", "USD"), Money.of("0.02", "USD")

    def run() -> None:
        for n in range(sessions):
            wallet = world[n % ACCOUNTS][0].wallet
            for _ in range(REQUESTS_PER_SESSION):
                wallet.reserve(hold)
                wallet.settle(hold, cost)

    return run


def best_rate(run: Callable[[], None], operations: int) -> float:
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return operations / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=4000)
    args = parser.parse_args(argv)
    operations = args.sessions * REQUESTS_PER_SESSION
    baseline = best_rate(baseline_run(args.sessions), operations)
    charging = best_rate(charging_run(args.sessions), operations)
    print(f"charging.baseline_wallet_reserve_settle: {baseline:,.0f} ops/s")
    print(
        f"charging.credit_control_requests: {charging:,.0f} requests/s "
        f"({charging / baseline:.2f}x baseline wallet reserve+settle {baseline:,.0f}/s)"
    )


if __name__ == "__main__":
    main()
