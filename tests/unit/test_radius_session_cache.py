"""The accounting sessions a process keeps in memory between reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ratel.application.radius import RadiusSessionCache
from ratel.domain.identifiers import UNSET
from ratel.domain.nas import RadiusSession, RadiusSessionState, Restriction

NOW = datetime(2026, 3, 1, tzinfo=UTC)


BASE = RadiusSession(
    "192.0.2.1", "s-1", "radius:192.0.2.1:s-1", "", "acc_1", "cus_1", "alice@isp", NOW, NOW
)


def session(acct_id: str = "s-1", **fields: object) -> RadiusSession:
    return replace(BASE, acct_session_id=acct_id, **fields)  # type: ignore[arg-type]


def test_the_cache_hands_out_copies_of_what_was_stored() -> None:
    cache = RadiusSessionCache()
    assert cache.get("192.0.2.1", "s-1") is None
    stored = session(reports=2, output_octets=100)
    cache.stored(stored)
    stored.reports = 99  # the caller's object is not the cache's
    copy = cache.get("192.0.2.1", "s-1")
    assert copy is not None and copy.reports == 2
    copy.reports = 7  # nor is the copy handed out
    again = cache.get("192.0.2.1", "s-1")
    assert again is not None and again.reports == 2


def test_a_dae_outcome_survives_a_report_charged_meanwhile() -> None:
    cache = RadiusSessionCache()
    cache.stored(session(reports=1))
    being_charged = cache.get("192.0.2.1", "s-1")
    assert being_charged is not None
    # the hotline CoA is acknowledged while the report is in its batch
    cache.dae_outcome("192.0.2.1", "s-1", "coa hotline: ACK", Restriction.HOTLINE)
    cache.stored(replace(being_charged, reports=2, state=RadiusSessionState.OPEN))
    now = cache.get("192.0.2.1", "s-1")
    assert now is not None
    assert (now.reports, now.restricted, now.last_dae) == (2, True, "coa hotline: ACK")
    cache.dae_outcome("192.0.2.1", "s-1", "coa restore: ACK", None)
    restored = cache.get("192.0.2.1", "s-1")
    assert restored is not None and not restored.restricted
    cache.dae_outcome("192.0.2.1", "unknown", "disconnect: ACK", UNSET)  # not kept: ignored
    assert cache.get("192.0.2.1", "unknown") is None


def test_the_least_recently_used_sessions_are_forgotten_beyond_the_size() -> None:
    cache = RadiusSessionCache(size=2)
    cache.stored(session("a"))
    cache.stored(session("b"))
    assert cache.get("192.0.2.1", "a") is not None  # a is now the most recent
    cache.stored(session("c"))
    assert len(cache) == 2
    assert cache.get("192.0.2.1", "b") is None
    assert cache.get("192.0.2.1", "a") is not None
    cache.forget("192.0.2.1", "a")
    assert cache.get("192.0.2.1", "a") is None
