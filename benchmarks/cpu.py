"""CPU time of the processes a benchmark shares the machine with, read from
/proc (Linux): with two cores, the database server's and the load
generator's CPU per request count as much as the server's own."""

from __future__ import annotations

import os
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
