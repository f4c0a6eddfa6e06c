# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""The directory sync runs as a connection: newest first, paged by cursor;
a cursor that is not a sync run's starts from the newest."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from ratel.container import Container
from ratel.domain.directory_sync import DirectorySyncRun
from tests.api.graphql_support import GraphQLClient, demo, demo_template, gql  # noqa: F401

RUNS = """
query ($first: Int, $after: String) { directorySyncRuns(first: $first, after: $after) {
  edges { cursor node { id succeeded } }
  pageInfo { hasNextPage hasPreviousPage endCursor }
} }
"""

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def runs(gql: GraphQLClient, **variables: Any) -> dict[str, Any]:
    page: dict[str, Any] = (await gql.data(RUNS, variables, token="administrator"))[
        "directorySyncRuns"
    ]
    return page


def ids(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in page["edges"]]


async def test_sync_runs_are_paged_newest_first(demo: Container, gql: GraphQLClient) -> None:
    log = demo.directory_sync_log()
    for n in range(5):
        run = DirectorySyncRun(id=f"dsr_{n}", started_at=T0 + timedelta(hours=n))
        await log.started(run)
        if n < 4:
            await log.finished(run.finish(run.started_at + timedelta(minutes=1)))

    last = await runs(gql, first=1)
    assert last["edges"][0]["node"] == {"id": "dsr_4", "succeeded": False}  # still running

    seen: list[str] = []
    after: str | None = None
    while True:
        page = await runs(gql, first=2, after=after)
        seen += ids(page)
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["dsr_4", "dsr_3", "dsr_2", "dsr_1", "dsr_0"]


async def test_a_cursor_that_is_not_a_sync_runs_starts_from_the_newest(
    demo: Container, gql: GraphQLClient
) -> None:
    log = demo.directory_sync_log()
    for n in range(2):
        await log.started(DirectorySyncRun(id=f"dsr_{n}", started_at=T0 + timedelta(hours=n)))

    def cursor(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode()

    foreign = [
        "not base64 at all!",
        cursor("staff:admin"),
        cursor("syncrun:yesterday|dsr_1"),
        cursor("syncrun:2026-03-01T10:00:00|dsr_1"),  # no time zone
        cursor("syncrun:2026-03-01T10:00:00+00:00|"),
    ]
    for after in foreign:
        assert ids(await runs(gql, after=after)) == ["dsr_1", "dsr_0"], after
