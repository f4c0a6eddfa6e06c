# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""An HTTP request body past 1 MiB is refused (413) before it is read:
/graphql read and parsed a body of any size from an anonymous caller
(the token limit bounds the document, not its variables)."""

from __future__ import annotations

from tests.api.graphql_support import GraphQLClient, demo, demo_template, gql  # noqa: F401

LOGIN = """
mutation ($password: String!) {
  selfCareLogin(accountId: "acc_demo_alice", password: $password) { errors { code } }
}"""


async def test_an_oversized_request_body_is_refused_with_413_before_it_is_parsed(
    gql: GraphQLClient,
) -> None:
    """An anonymous request with a 16 MiB body must be refused (413). Now:
    the whole body is read, parsed and the 16 MiB "password" handed to
    argon2; the answer is 200 with authentication_failed."""
    response = await gql.post(LOGIN, {"password": "x" * (16 * 1024 * 1024)})
    assert response.status_code == 413, (response.status_code, response.text[:200])
