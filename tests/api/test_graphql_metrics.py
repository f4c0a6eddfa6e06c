# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""GraphQL operations in /metrics: counted per root field and outcome."""

from __future__ import annotations

import logging

import pytest

from tests.api.graphql_support import GraphQLClient, demo, demo_template, gql  # noqa: F401

BALANCE = '{ ussdBalance(msisdn: "12055550100") { text } }'


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly these labels (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_operations_are_counted_with_their_outcome(gql: GraphQLClient) -> None:
    await gql.data(BALANCE, token="ussd")
    await gql.data(BALANCE, token="ussd")
    await gql.run(BALANCE)  # anonymous: refused by the matrix
    await gql.run("{ noSuchField4711 }", token="ussd")
    await gql.data("mutation { logout { loggedOut } }")

    metrics = (await gql.http.get("/metrics")).text
    graphql = {"protocol": "graphql"}
    balance = {**graphql, "operation": "query.ussdBalance"}
    assert sample(metrics, "ratel_requests_total", **balance, outcome="ok") == 2
    assert sample(metrics, "ratel_requests_total", **balance, outcome="rejected") == 1
    assert (
        sample(
            metrics,
            "ratel_errors_total",
            **balance,
            outcome="rejected",
            code="UNAUTHENTICATED",
        )
        == 1
    )
    invalid = {**graphql, "operation": "invalid", "outcome": "rejected"}
    assert sample(metrics, "ratel_errors_total", **invalid, code="invalid_query") == 1
    assert "noSuchField4711" not in metrics  # a bad query names no label
    logout = {**graphql, "operation": "mutation.logout", "outcome": "ok"}
    assert sample(metrics, "ratel_requests_total", **logout) == 1
    assert 'ratel_request_duration_seconds_count{operation="query.ussdBalance"' in metrics


async def test_a_refusal_is_one_info_line_without_a_trace(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await gql.run(BALANCE)
    refused = [r for r in caplog.records if r.getMessage() == "graphql request refused"]
    assert len(refused) == 1
    assert refused[0].levelno == logging.INFO and refused[0].exc_info is None
    assert refused[0].code == "UNAUTHENTICATED"  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
