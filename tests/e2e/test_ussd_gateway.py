"""A USSD gateway asks `ratel serve` for a balance: real processes (`ratel db
upgrade`, `ratel demo load`, `ratel serve` on a free port), a real HTTP
client, the API key the demo printed."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve import STOP_SECONDS
from tests.serving import LogLines, ratel, ratel_env, serve

BALANCE = '{ ussdBalance(msisdn: "12055550100") { amount currency text } }'


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ratel-ussd")


@pytest.fixture(scope="module")
def env(workdir: Path) -> dict[str, str]:
    return ratel_env(workdir / "ratel.db")


@pytest.fixture(scope="module")
def ussd_key(env: dict[str, str], workdir: Path) -> str:
    """The gateway's key, as `ratel demo load` prints it (once)."""
    upgraded = ratel(env, workdir, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    loaded = ratel(env, workdir, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    match = re.search(r"USSD gateway API key \(shown this once\): (rk_\S+)", loaded.stdout)
    assert match, loaded.stdout
    return match.group(1)


@pytest.fixture(scope="module")
def server_url(ussd_key: str, env: dict[str, str], workdir: Path) -> Iterator[str]:
    process = serve(env, workdir)
    try:
        log = LogLines(process.stderr)
        listening = log.wait_for("listening")
        yield str(listening["url"])
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_ussd_gateway_gets_the_balance_by_msisdn(server_url: str, ussd_key: str) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as http:
        answer = http.post(
            "/graphql",
            json={"query": BALANCE},
            headers={"Authorization": f"Bearer {ussd_key}"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "data": {
            "ussdBalance": {
                "amount": "43.25",
                "currency": "USD",
                "text": "Your current balance is 43.25 USD",
            }
        }
    }


def test_without_the_key_or_with_a_wrong_one_nothing_is_told(
    server_url: str, ussd_key: str
) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as http:
        anonymous = http.post("/graphql", json={"query": BALANCE})
        forged = http.post(
            "/graphql",
            json={"query": BALANCE},
            headers={"Authorization": f"Bearer {ussd_key[:-4]}abcd"},
        )
    assert anonymous.status_code == 200
    assert anonymous.json()["data"] == {"ussdBalance": None}
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert forged.status_code == 401
    assert "43.25" not in forged.text


def test_an_unknown_number_is_null_not_an_error(server_url: str, ussd_key: str) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as http:
        answer = http.post(
            "/graphql",
            json={"query": '{ ussdBalance(msisdn: "19995550000") { text } }'},
            headers={"Authorization": f"Bearer {ussd_key}"},
        )
    assert answer.json() == {"data": {"ussdBalance": None}}


def test_staff_log_in_for_a_token_and_use_it(server_url: str) -> None:
    login = (
        'mutation { staffLogin(login: "admin", password: "ratel-admin-demo")'
        " { token expiresAt errors { code } } }"
    )
    with httpx.Client(base_url=server_url, timeout=30) as http:
        session = http.post("/graphql", json={"query": login}).json()["data"]["staffLogin"]
        assert session["errors"] == [] and session["token"]
        headers = {"Authorization": f"Bearer {session['token']}"}
        found = http.post(
            "/graphql",
            json={"query": '{ customers(filter: {msisdn: "12055550100"}) { nodes { id } } }'},
            headers=headers,
        )
        assert found.json() == {"data": {"customers": {"nodes": [{"id": "cus_demo_alice"}]}}}
        http.post("/graphql", json={"query": "mutation { logout { loggedOut } }"}, headers=headers)
        staff = {"query": "{ staff { nodes { login } } }"}
        after = http.post("/graphql", json=staff, headers=headers)
    assert after.status_code == 401
