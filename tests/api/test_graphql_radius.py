# ruff: noqa: F811  (pytest fixtures imported from graphql_support)
"""The NAS registry through GraphQL, as an administrator manages it."""

from __future__ import annotations

from datetime import UTC, datetime

from ratel.container import Container
from ratel.domain.nas import RadiusSession, Restriction
from tests.api.graphql_support import GraphQLClient, demo, demo_template, gql  # noqa: F401

REGISTER = """
mutation ($input: NasInput!) {
  registerNas(input: $input) {
    nas { id name address vendor acceptsCoa acceptsDisconnect daePort requireMessageAuthenticator }
    errors { code message }
  }
}
"""


async def test_register_list_change_and_remove_a_nas(gql: GraphQLClient) -> None:
    body = await gql.run(
        REGISTER,
        {
            "input": {
                "name": "bras-lon-1",
                "address": "192.0.2.10",
                "secret": "s3cret",
                "vendor": "JUNIPER",
                "acceptsCoa": True,
                "acceptsDisconnect": True,
                "daePort": 3799,
            }
        },
        token="administrator",
    )
    payload = body["data"]["registerNas"]
    assert payload["errors"] == []
    nas = payload["nas"]
    assert nas["vendor"] == "JUNIPER" and nas["acceptsCoa"] and nas["address"] == "192.0.2.10"

    again = await gql.run(
        REGISTER,
        {"input": {"name": "twin", "address": "192.0.2.10", "secret": "x"}},
        token="administrator",
    )
    assert again["data"]["registerNas"]["errors"][0]["code"] == "duplicate_nas"
    asr = await gql.run(
        REGISTER,
        {
            "input": {
                "name": "asr",
                "address": "192.0.2.11",
                "secret": "x",
                "vendor": "CISCO_ASR5700",
                "acceptsCoa": True,
            }
        },
        token="administrator",
    )
    assert asr["data"]["registerNas"]["errors"][0]["code"] == "invalid_nas"

    listed = await gql.run(
        "{ nasList { nodes { id name } pageInfo { hasNextPage } } }", token="administrator"
    )
    # by name: the new BRAS, then the demo's own (127.0.0.1, for the README's tour)
    [ours, demo_bras] = listed["data"]["nasList"]["nodes"]
    assert ours == {"id": nas["id"], "name": "bras-lon-1"} and demo_bras["name"] == "demo-bras"
    assert listed["data"]["nasList"]["pageInfo"] == {"hasNextPage": False}
    assert "secret" not in str(listed)

    changed = await gql.run(
        'mutation ($id: String!) { changeNas(id: $id, input: {address: "192.0.2.20",'
        " requireMessageAuthenticator: true}) { nas { address requireMessageAuthenticator }"
        " errors { code } } }",
        {"id": nas["id"]},
        token="administrator",
    )
    assert changed["data"]["changeNas"]["nas"] == {
        "address": "192.0.2.20",
        "requireMessageAuthenticator": True,
    }
    bad = await gql.run(
        'mutation ($id: String!) { changeNas(id: $id, input: {address: "not-an-ip"})'
        " { errors { code } } }",
        {"id": nas["id"]},
        token="administrator",
    )
    assert bad["data"]["changeNas"]["errors"] == [{"code": "invalid_nas"}]

    removed = await gql.run(
        "mutation ($id: String!) { removeNas(id: $id) { done errors { code } } }",
        {"id": nas["id"]},
        token="administrator",
    )
    assert removed["data"]["removeNas"] == {"done": True, "errors": []}
    remaining = await gql.run("{ nasList { nodes { id } } }", token="administrator")
    assert remaining["data"]["nasList"] == {"nodes": [{"id": demo_bras["id"]}]}


async def test_open_sessions_show_their_last_coa_outcome(
    demo: Container, gql: GraphQLClient
) -> None:
    store = demo.radius_store()
    now = datetime(2026, 3, 1, tzinfo=UTC)
    async with store() as work:
        await work.sessions.add(
            RadiusSession(
                nas_address="192.0.2.10",
                acct_session_id="s-9",
                charging_session_id="radius:192.0.2.10:s-9",
                sub_session="",
                account_id="acc_demo_alice",
                customer_id="cus_demo_alice",
                user_name="alice@isp",
                started_at=now,
                updated_at=now,
                output_octets=5 * 2**32,
                restriction=Restriction.THROTTLE,
                last_dae="coa hotline: NAK Error-Cause=Session-Context-Not-Found",
            )
        )
        await work.commit()
    body = await gql.run(
        '{ radiusSessions(accountId: "acc_demo_alice") { edges { node { acctSessionId'
        " outputOctets restricted restriction lastDae } } } }",
        token="administrator",
    )
    assert [e["node"] for e in body["data"]["radiusSessions"]["edges"]] == [
        {
            "acctSessionId": "s-9",
            "outputOctets": str(5 * 2**32),
            "restricted": True,
            "restriction": "throttle",
            "lastDae": "coa hotline: NAK Error-Cause=Session-Context-Not-Found",
        }
    ]


NAS_PAGE = """
query ($after: String) { nasList(first: 2, after: $after) {
  edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage endCursor }
} }
"""


async def test_the_nas_list_is_paged_by_cursor(gql: GraphQLClient) -> None:
    for n in (3, 1, 2):
        made = await gql.run(
            REGISTER,
            {"input": {"name": f"bras-{n}", "address": f"192.0.2.{30 + n}", "secret": "x"}},
            token="administrator",
        )
        assert made["data"]["registerNas"]["errors"] == []

    first = (await gql.run(NAS_PAGE, token="administrator"))["data"]["nasList"]
    assert [e["node"]["name"] for e in first["edges"]] == ["bras-1", "bras-2"]
    assert first["pageInfo"]["hasNextPage"] and not first["pageInfo"]["hasPreviousPage"]
    assert first["pageInfo"]["endCursor"] == first["edges"][-1]["cursor"]

    after = first["pageInfo"]["endCursor"]
    second = (await gql.run(NAS_PAGE, {"after": after}, token="administrator"))["data"]
    page = second["nasList"]
    # then the demo's own BRAS (127.0.0.1, for the README's tour)
    assert [e["node"]["name"] for e in page["edges"]] == ["bras-3", "demo-bras"]
    assert page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": page["edges"][-1]["cursor"],
    }
