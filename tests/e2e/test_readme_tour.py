"""The README's quick tour, as a user runs it: `ratel db upgrade`, `ratel demo
load`, `ratel serve` with the demo's Diameter peer, then FreeRADIUS's radclient
as the demo BRAS and `scripts/ccr` as the demo packet gateway, each a real
process, and GraphQL showing what they charged."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from ratel.demo import DEMO_NAS, DEMO_PPPOE
from tests.serving import LogLines, ratel, ratel_env, serve, stop

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

# The tour's RADIUS packets, as the README shows them (checked below).
ACCESS_REQUEST = 'User-Name = "bob@fibre.ratel.example", User-Password = "bob-pppoe-demo"'
SESSION = 'User-Name = "bob@fibre.ratel.example", Acct-Session-Id = "tour-1", '
ACCOUNTING = (
    SESSION + "Acct-Status-Type = Start",
    SESSION + "Acct-Status-Type = Interim-Update, "
    "Acct-Input-Octets = 1048576, Acct-Output-Octets = 52428800",
    SESSION + "Acct-Status-Type = Stop, "
    "Acct-Input-Octets = 2097152, Acct-Output-Octets = 104857600",
)


def demo_peers() -> str:
    """The Diameter peer scripts/demo allows by default."""
    found = re.search(r'RATEL_DIAMETER_PEERS:-([^}"]+)', (ROOT / "scripts" / "demo").read_text())
    assert found, "scripts/demo sets a default RATEL_DIAMETER_PEERS"
    return found.group(1)


def free_port(kind: int) -> int:
    """A port free right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Tour:
    """The served demo: ports, the demo load's output, and GraphQL as admin."""

    def __init__(self, env: dict[str, str], loaded: str, http_url: str) -> None:
        self.env = env
        self.loaded = loaded
        self.auth_port = int(env["RATEL_RADIUS_AUTH_PORT"])
        self.acct_port = int(env["RATEL_RADIUS_ACCT_PORT"])
        self.diameter_port = int(env["RATEL_DIAMETER_PORT"])
        self.http_url = http_url
        self.token = ""

    def graphql(self, query: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.post(
            f"{self.http_url}/graphql", json={"query": query}, headers=headers, timeout=10
        )
        body: dict[str, Any] = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    workdir = tmp_path_factory.mktemp("ratel-tour")
    env = ratel_env(
        workdir / "ratel.db",
        # the tour's commands name the ports: fixed for the run, free now
        RATEL_RADIUS_AUTH_PORT=str(free_port(socket.SOCK_DGRAM)),
        RATEL_RADIUS_ACCT_PORT=str(free_port(socket.SOCK_DGRAM)),
        RATEL_DIAMETER_PORT=str(free_port(socket.SOCK_STREAM)),
        RATEL_DIAMETER_PEERS=demo_peers(),
    )
    upgraded = ratel(env, workdir, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    loaded = ratel(env, workdir, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    process = serve(env, workdir)
    events = LogLines(process.stderr)
    try:
        events.wait_for("radius listening")
        events.wait_for("diameter listening")
        http = events.wait_for("listening")
        served = Tour(env, loaded.stdout, str(http["url"]).rstrip("/"))
        login = served.graphql(
            'mutation { staffLogin(login: "admin", password: "ratel-admin-demo") { token } }'
        )
        served.token = login["staffLogin"]["token"]
        yield served
    finally:
        stop(process)


def radclient(port: int, kind: str, packets: str, *options: str) -> str:
    binary = shutil.which("radclient")
    assert binary, "radclient is installed by scripts/services (freeradius-utils)"
    done = subprocess.run(
        [binary, *options, f"127.0.0.1:{port}", kind, DEMO_NAS.secret],
        input=packets,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


def ccr(tour: Tour, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ccr"), "--port", str(tour.diameter_port), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_demo_prints_what_the_tour_uses(tour: Tour) -> None:
    assert f"secret {DEMO_NAS.secret}" in tour.loaded
    assert f"at {DEMO_NAS.address}, vendor HUAWEI" in tour.loaded
    assert f"User-Name {DEMO_PPPOE.user_name}, password {DEMO_PPPOE.password}" in tour.loaded
    readme = (ROOT / "README.md").read_text()
    for line in (ACCESS_REQUEST, *ACCOUNTING):
        assert line in readme, f"the README's tour no longer sends {line!r}"


def test_the_radius_exchange_of_the_tour(tour: Tour) -> None:
    # the server reads its NAS table at start: retries cover a request sent before
    accepted = radclient(tour.auth_port, "auth", ACCESS_REQUEST, "-x", "-r", "5", "-t", "1")
    assert "Received Access-Accept" in accepted, accepted
    # fibre 100/50 in Huawei's attributes, in bit/s
    assert "Huawei-Output-Average-Rate = 100000000" in accepted
    assert "Huawei-Input-Average-Rate = 50000000" in accepted
    assert "Framed-IP-Address = 203.0.113.10" in accepted

    answered = radclient(tour.acct_port, "acct", "\n\n".join(ACCOUNTING) + "\n", "-p", "1")
    assert answered.count("Received Accounting-Response") == 3, answered

    found = tour.graphql(
        '{ xdrs(accountId: "acc_demo_bob_fibre") { edges { node { cause charge { amount }'
        " lines { service units } } } } }"
    )
    [edge] = found["xdrs"]["edges"]
    xdr = edge["node"]
    assert xdr["cause"] == "normal"
    # every octet of the Stop (2 MiB up, 100 MiB down), on the flat fibre tariff
    assert xdr["lines"] == [{"service": "data", "units": 102 * MIB}]
    assert Decimal(xdr["charge"]["amount"]) == 0


QUOTAS = '{ quotas(accountId: "acc_demo_alice") { nodes { quotaCode used reserved } } }'


def test_the_diameter_exchange_of_the_tour_uses_the_turbo_quota(tour: Tour) -> None:
    before = {q["quotaCode"]: q for q in tour.graphql(QUOTAS)["quotas"]["nodes"]}
    done = ccr(
        tour,
        "--msisdn",
        "12055550100",
        "--rating-group",
        "10",
        "--request",
        str(MIB),
        "--use",
        str(5 * MIB),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("CER/CEA: connected to ocs.ratel.local")
    assert done.stdout.count("CCA Result-Code 2001 DIAMETER_SUCCESS") == 3
    assert done.stdout.count(f"rating group 10: 2001 DIAMETER_SUCCESS, granted {MIB} octets") == 2
    assert lines[-1] == "DPR/DPA: disconnected"
    after = {q["quotaCode"]: q for q in tour.graphql(QUOTAS)["quotas"]["nodes"]}
    # the update's and the termination's 5 MiB each, from the high-precedence add-on
    moved = Decimal(after["TURBO_2GB"]["used"]) - Decimal(before["TURBO_2GB"]["used"])
    assert moved == 10 * MIB
    assert Decimal(after["TURBO_2GB"]["reserved"]) == 0
    assert after["DATA_1GB"]["used"] == before["DATA_1GB"]["used"]


def test_the_diameter_exchange_charges_the_iot_sim_past_its_quota(tour: Tour) -> None:
    query = '{ customer(id: "cus_demo_dave") { balance { amount currency } } }'
    before = Decimal(tour.graphql(query)["customer"]["balance"]["amount"])
    done = ccr(tour, "--msisdn", "12055550104", "--request", str(10 * MIB), "--use", str(15 * MIB))
    assert done.returncode == 0, done.stdout + done.stderr
    after = Decimal(tour.graphql(query)["customer"]["balance"]["amount"])
    # 30 MiB used: the 10 MiB quota, then 20 MiB at 0.01 USD per MiB
    assert before - after == Decimal("0.20")


def test_a_gateway_the_demo_does_not_know_is_refused(tour: Tour) -> None:
    done = ccr(tour, "--origin-host", "gw.unknown", "--timeout", "3")
    assert done.returncode == 2
    assert "CER: no connection" in done.stderr
