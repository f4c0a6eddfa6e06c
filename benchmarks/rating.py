"""Rating lookup throughput: longest-prefix match against a dict.get baseline.

Run with ``uv run python -m benchmarks.rating [--prefixes N] [--lookups M]``.
Builds a tariff of N random distinct digit prefixes (3-8 digits, fixed seed)
and M random 11-15 digit numbers, half of them starting with a stored prefix,
then times (best of 3, one core):

1. baseline: ``dict.get`` of an exact stored prefix string, M times;
2. ``PrefixTrie.longest_match`` on the numbers;
3. ``Tariff.rate_for`` on the numbers (custom lookup, normalization check,
   trie, RatingFailed for the numbers nothing matches).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

from ratel.domain.errors import RatingFailed
from ratel.domain.money import Money
from ratel.domain.rating import DestinationGroup, PrefixTrie, Rate, RatedDestination, Tariff

SEED = 20240601
DIGITS = "0123456789"
RUNS = 3


def _digits(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(DIGITS, k=length))


def build_prefixes(rng: random.Random, count: int) -> list[str]:
    prefixes: set[str] = set()
    while len(prefixes) < count:
        prefixes.add(_digits(rng, rng.randint(3, 8)))
    return sorted(prefixes)


def build_numbers(rng: random.Random, prefixes: Sequence[str], count: int) -> list[str]:
    numbers = []
    for index in range(count):
        length = rng.randint(11, 15)
        if index % 2:
            prefix = rng.choice(prefixes)
            numbers.append(prefix + _digits(rng, length - len(prefix)))
        else:
            numbers.append(_digits(rng, length))
    return numbers


def best_rate(run: Callable[[], None], count: int) -> float:
    """Operations per second of the fastest of RUNS runs."""
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prefixes", type=int, default=50_000)
    parser.add_argument("--lookups", type=int, default=300_000)
    args = parser.parse_args(argv)

    rng = random.Random(SEED)
    prefixes = build_prefixes(rng, args.prefixes)
    numbers = build_numbers(rng, prefixes, args.lookups)
    baseline_keys = rng.choices(prefixes, k=args.lookups)

    group = DestinationGroup("INTERNATIONAL", "International calls", "400000002")
    tariff = Tariff("BENCH", "USD", "benchmark tariff")
    trie: PrefixTrie[RatedDestination] = PrefixTrie()
    exact: dict[str, RatedDestination] = {}
    for position, prefix in enumerate(prefixes):
        rate = Rate.per_interval(Money(Decimal(position % 997 + 1).scaleb(-5), "USD"), 60)
        tariff.add_prefix(prefix, rate, group)
        rated = RatedDestination(prefix, rate, group)
        trie.insert(prefix, rated)
        exact[prefix] = rated

    matched = sum(trie.longest_match(number) is not None for number in numbers)
    print(
        f"rating: {len(prefixes):,} prefixes, {len(numbers):,} numbers "
        f"({matched:,} match a prefix), best of {RUNS}"
    )

    def baseline() -> None:
        get = exact.get
        for key in baseline_keys:
            get(key)

    def trie_lookup() -> None:
        longest_match = trie.longest_match
        for number in numbers:
            longest_match(number)

    def tariff_rate_for() -> None:
        rate_for = tariff.rate_for
        for number in numbers:
            try:  # noqa: SIM105  (contextlib.suppress would be timed too)
                rate_for(number)
            except RatingFailed:
                pass

    base = best_rate(baseline, len(baseline_keys))
    print(f"rating.baseline_dict_get: {base:,.0f} lookups/s")
    for name, run in (("trie_lookup", trie_lookup), ("tariff_rate_for", tariff_rate_for)):
        speed = best_rate(run, len(numbers))
        print(
            f"rating.{name}: {speed:,.0f} lookups/s "
            f"({speed / base:.2f}x baseline dict.get {base:,.0f}/s)"
        )


if __name__ == "__main__":
    main()
