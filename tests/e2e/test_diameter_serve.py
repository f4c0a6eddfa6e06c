"""`ratel serve` as the OCS of a packet gateway: a data session with a free
and a paid rating group, the high-precedence add-on's quota used before the
medium one, the final units with a redirect to the hotline, a top-up through
GraphQL and the RAR it brings, over real TCP to a real process."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "protocol" / "diameter"))

from gateway import (
    Gateway,
    by_rating_group,
    find,
    granted,
    mscc,
    result_code,
    subscription,
    units,
)

from ratel.adapters.diameter import codec
from ratel.config import Settings
from ratel.container import build_container, dispose
from tests.serving import LogLines, ratel, ratel_env, serve, stop

GIB = 1024**3
ALICE = "12055550100"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], LogLines]]:
    workdir = tmp_path_factory.mktemp("ratel-diameter-e2e")
    # the Diameter port is a free one, announced in the "diameter listening" line
    env = ratel_env(
        workdir / "ratel.db",
        RATEL_DIAMETER_PEERS="pgw1.e2e.test=127.0.0.1",
        RATEL_EVENT_RELAY_INTERVAL="0.1",
    )
    assert ratel(env, workdir, "db", "upgrade").returncode == 0
    loaded = ratel(env, workdir, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    process = serve(env, workdir)
    events = LogLines(process.stderr)
    try:
        diameter = events.wait_for("diameter listening")
        http = events.wait_for("listening")
        env["DIAMETER_ADDRESS"] = str(diameter["address"])
        env["HTTP_URL"] = str(http["url"])
        yield env, events
    finally:
        stop(process)


async def staff_token(env: dict[str, str]) -> str:
    """An administrator's bearer token, through the login use case on the
    same database (the demo's administrator)."""
    container = build_container(Settings(database_url=env["RATEL_DATABASE_URL"]))
    try:
        session = await container.staff_login()("admin", "ratel-admin-demo")
        return session.token
    finally:
        await dispose(container)


async def graphql(env: dict[str, str], token: str, query: str, **variables: object) -> dict:
    async with httpx.AsyncClient(base_url=env["HTTP_URL"], timeout=10) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return body["data"]


QUOTAS = """query($id: String!) {
  quotas(accountId: $id) { nodes { quotaCode used reserved remaining } }
}"""
TOP_UP = """mutation($id: String!) {
  topUp(customerId: $id, amount: {amount: "10", currency: "USD"}, reference: "e2e") {
    errors { message } customer { id }
  }
}"""


async def test_a_data_session_from_turbo_to_regular_to_the_hotline_then_a_top_up_and_a_rar(
    served: tuple[dict[str, str], LogLines],
) -> None:
    env, _ = served
    port = int(env["DIAMETER_ADDRESS"].rsplit(":", 1)[1])
    token = await staff_token(env)
    pgw = Gateway("pgw1.e2e.test", port)
    await asyncio.to_thread(pgw.start)
    try:
        session = pgw.new_session()
        gib = units(codec.REQUESTED_SERVICE_UNIT, total=GIB)  # the largest grant there is
        initial = await pgw.send(
            pgw.ccr(
                session,
                codec.INITIAL,
                0,
                *subscription(ALICE),
                mscc(1),
                mscc(10, requested=gib),
            )
        )
        assert result_code(initial) == codec.SUCCESS
        groups = by_rating_group(initial)
        assert granted(groups[1]) == {"total": 10 * 1024**2}  # the free self-care portal
        assert granted(groups[10]) == {"total": GIB}

        async def quotas() -> dict[str, dict[str, str]]:
            found = await graphql(env, token, QUOTAS, id="acc_demo_alice")
            return {q["quotaCode"]: q for q in found["quotas"]["nodes"]}

        # the high-precedence Turbo (2 GB) holds the grant; Regular (medium) is untouched
        held = await quotas()
        assert float(held["TURBO_2GB"]["reserved"]) == GIB
        assert float(held["REGULAR_5GB"]["reserved"]) == 0

        number, reports, final = 0, [], None
        while final is None and number < 12:
            number += 1
            answer = await pgw.send(
                pgw.ccr(
                    session,
                    codec.UPDATE,
                    number,
                    mscc(1, used=units(codec.USED_SERVICE_UNIT, total=1024**2)),
                    mscc(
                        10,
                        requested=gib,
                        used=units(codec.USED_SERVICE_UNIT, input=GIB // 2, output=GIB // 2),
                    ),
                )
            )
            paid = by_rating_group(answer)[10]
            assert codec.integer(paid, codec.RESULT_CODE) == codec.SUCCESS
            assert granted(paid) == {"total": GIB}
            reports.append({code: float(q["remaining"]) for code, q in (await quotas()).items()})
            found = find(paid, codec.FINAL_UNIT_INDICATION)
            final = codec.group(found) if found is not None else None
        # Turbo was used up before Regular was touched, Regular before the main product
        assert reports[0]["TURBO_2GB"] == GIB and reports[0]["REGULAR_5GB"] == 5 * GIB
        assert reports[1]["TURBO_2GB"] == 0 and reports[1]["REGULAR_5GB"] == 5 * GIB
        assert reports[-1]["REGULAR_5GB"] == 0 and reports[-1]["DATA_1GB"] == GIB
        assert number == 7  # 2 GB + 5 GB used, the main product's 1 GB granted last
        # these are the last units: then the hotline
        assert final is not None
        assert codec.integer(final, codec.FINAL_UNIT_ACTION) == codec.FUA_REDIRECT
        server = codec.group(find(final, codec.REDIRECT_SERVER))
        assert codec.text(server, codec.REDIRECT_SERVER_ADDRESS) == "https://topup.ratel.example/"

        topped = await graphql(env, token, TOP_UP, id="cus_demo_alice")
        assert topped["topUp"]["errors"] == []
        rar = await pgw.server_request(timeout=20)
        assert rar.header.command_code == codec.RE_AUTH
        assert codec.text(rar.avps, codec.SESSION_ID) == session
        assert codec.text(rar.avps, codec.DESTINATION_HOST) == "pgw1.e2e.test"

        end = await pgw.send(
            pgw.ccr(
                session,
                codec.TERMINATE,
                number + 1,
                mscc(10, requested=None, used=units(codec.USED_SERVICE_UNIT, total=GIB)),
            )
        )
        assert result_code(end) == codec.SUCCESS
    finally:
        await asyncio.to_thread(pgw.stop)
