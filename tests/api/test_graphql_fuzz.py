# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""A bounded schemathesis fuzz run of the GraphQL schema: whatever queries
and mutations it makes up, as an administrator (so resolvers really run),
the server answers without a 5xx."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import schemathesis
from graphql import StringValueNode
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ratel.app import create_app
from ratel.container import dispose
from tests.api.graphql_support import demo_container, demo_template  # noqa: F401


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fuzzed_queries_and_mutations_never_crash_the_server(
    demo_template: Path,
    tmp_path: Path,
) -> None:
    # amounts travel as decimal strings; some of them nonsense on purpose
    schemathesis.graphql.scalar(
        "Decimal",
        st.one_of(st.decimals(allow_nan=False, allow_infinity=False), st.text(max_size=8)).map(
            lambda value: StringValueNode(value=str(value))
        ),
    )
    container = demo_container(demo_template, tmp_path)
    app = create_app(container)
    schema = schemathesis.graphql.from_asgi("/graphql", app)
    strategy = schema.as_strategy()
    failures: list[str] = []
    answered: list[int] = []

    @given(case=strategy)
    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers={"Authorization": "Bearer administrator"})
        answered.append(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} for {case.body}: {response.text[:500]}")

    try:
        run()
    finally:
        asyncio.run(dispose(container))
    assert not failures, failures[:3]
    assert answered.count(200) >= 30  # the fuzzer reached the resolvers
