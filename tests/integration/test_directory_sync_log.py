"""The record of directory sync runs on SQLite and PostgreSQL: newest first,
paged by a run's start and id (runs starting at the same instant included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from ratel.adapters.db.directory_sync import SqlDirectorySyncLog
from ratel.domain.directory_sync import DirectorySyncRun

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def test_runs_are_listed_newest_first_and_paged_after_a_run(engine: AsyncEngine) -> None:
    log = SqlDirectorySyncLog(engine)
    # two runs started at the same instant: their ids order them
    starts = {"run_a": T0, "run_b": T0 + timedelta(hours=1), "run_c": T0 + timedelta(hours=1)}
    starts |= {"run_d": T0 + timedelta(hours=2), "run_e": T0 + timedelta(hours=3)}
    for run_id, started_at in starts.items():
        run = DirectorySyncRun(id=run_id, started_at=started_at)
        await log.started(run)
        if run_id != "run_e":  # the newest is still running
            await log.finished(run.finish(started_at + timedelta(minutes=1), created=1))

    newest = await log.recent(2)
    assert [r.id for r in newest] == ["run_e", "run_d"]
    assert newest[0].finished_at is None and newest[1].created == 1

    seen: list[str] = []
    before: tuple[datetime, str] | None = None
    while page := await log.recent(2, before=before):
        seen += [r.id for r in page]
        before = (page[-1].started_at, page[-1].id)
    assert seen == ["run_e", "run_d", "run_c", "run_b", "run_a"]

    # a run starting now does not shift the pages after a known run
    await log.started(DirectorySyncRun(id="run_f", started_at=T0 + timedelta(hours=4)))
    after_c = await log.recent(10, before=(T0 + timedelta(hours=1), "run_c"))
    assert [r.id for r in after_c] == ["run_b", "run_a"]
    assert await log.recent(10, before=(T0, "run_a")) == []
