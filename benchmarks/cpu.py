"""CPU time of the processes a benchmark shares the machine with, read from
/proc (Linux): with two cores, the database server's and the load
generator's CPU per request count as much as the server's own."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _seconds(stat: str, children: bool = False) -> float:
    """utime + stime of a /proc/PID/stat line; with ``children``, also the
    time of its children that ended (cutime + cstime)."""
    fields = stat.rpartition(") ")[2].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def process_cpu(pid: int) -> float:
    """CPU seconds process ``pid`` used so far (0 once it is gone)."""
    try:
        return _seconds(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return 0.0


def postgres_cpu() -> float:
    """CPU seconds used so far by this machine's ``postgres`` processes,
    those still running and (counted by the postmaster that waited for them)
    those that ended: a pool closes connections during a run."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        if text.partition(") ")[0].endswith("(postgres"):
            total += _seconds(text, children=True)
    return total


def _chase_ns(entries: int, steps: int) -> float:
    """Nanoseconds per step of a walk through ``entries`` list slots in a
    random cycle: each step reads a slot and the integer it holds."""
    order = list(range(entries))
    random.Random(entries).shuffle(order)
    following = [0] * entries
    for here, there in zip(order, order[1:] + order[:1], strict=True):
        following[here] = there
    at = 0
    started = time.perf_counter()
    for _ in range(steps):
        at = following[at]
    return (time.perf_counter() - started) / steps * 1e9


def memory_probe(steps: int = 1_000_000) -> str:
    """How this machine's memory answers now, to read a run's figures by.
    The same walk through 2,000 slots (a core's own cache) and through
    100,000 (about 4 MB with their integers: within the shared L3 cache of
    this machine kind's CPUs, 32 MB). While the L3 cache is free the second
    walk costs a small multiple of the first; when other machines on the
    host take the cache, every step goes to memory and a server process,
    whose objects are spread over far more than 4 MB, slows down with it."""
    small = _chase_ns(2_000, steps)
    large = _chase_ns(100_000, steps)
    return (
        f"machine: memory probe {small:.0f} ns/step in a core's cache, "
        f"{large:.0f} ns/step over 4 MB ({large / small:.1f}x)"
    )
