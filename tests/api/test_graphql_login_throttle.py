# ruff: noqa: F811  (pytest fixtures imported from graphql_support / test_graphql_identity)
"""Login throttling and credentials, with the real identity use cases."""

from __future__ import annotations

import httpx

from ratel.app import create_app
from ratel.container import Container
from tests.api.graphql_support import GraphQLClient, demo_template  # noqa: F401
from tests.api.test_graphql_identity import (  # noqa: F401
    api,
    clock,
    real,
    staff_login,
)


async def test_leading_spaces_do_not_escape_the_per_login_throttle(
    real: Container, api: GraphQLClient
) -> None:
    """Three failures lock "admin" (login_max_failures=3). The same login
    with a space in front is the same user (StaffLogin strips it), so it
    must be throttled too, from any address."""
    for _ in range(3):
        failed = await staff_login(api, "admin", "not-the-password")
        assert failed["errors"][0]["code"] == "authentication_failed"
    assert (await staff_login(api, "admin", "ratel-admin-demo"))["errors"][0][
        "code"
    ] == "too_many_attempts"

    # another client address (so the per-address budget is not what stops it)
    transport = httpx.ASGITransport(app=create_app(real), client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ratel.test") as http:
        elsewhere = GraphQLClient(http)
        assert (await staff_login(elsewhere, "admin", "ratel-admin-demo"))["errors"][0][
            "code"
        ] == "too_many_attempts"
        # ... but " admin" is a fresh budget: guessing goes on, and the right
        # password logs the locked user in
        variant = await staff_login(elsewhere, " admin", "ratel-admin-demo")
    assert variant["token"] is None, "the locked login got a token through ' admin'"
    assert variant["errors"][0]["code"] == "too_many_attempts"
