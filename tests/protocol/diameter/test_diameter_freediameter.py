"""Interop with an independent Diameter implementation: freeDiameter sends
CCR-I/U/T with Subscription-Id and MSCC and answers ratel's RAR; tshark
decodes what ratel sent with no malformed or warning expert items."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from fdgateway import FreeDiameterGateway

from ratel.container import Container
from ratel.domain.money import Money
from ratel.ports.store import IdentifierKind

ALICE = "12055550100"


async def wait_for(gateway: FreeDiameterGateway, prefix: str, timeout: float = 30) -> str:
    for _ in range(int(timeout * 10)):
        for line in gateway.lines():
            if line.startswith(prefix):
                return line
        if gateway.process.poll() is not None and not any(
            line.startswith(prefix) for line in gateway.lines()
        ):
            break
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {prefix!r}: {gateway.lines()}\n{gateway.output()[-3000:]}")


@pytest.fixture
def capture(tmp_path: Path, port: int):
    """tshark capturing the test port on the loopback interface."""
    pcap = tmp_path / "diameter.pcap"
    process = subprocess.Popen(
        ["tshark", "-i", "lo", "-f", f"tcp port {port}", "-w", str(pcap), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # dumpcap says "Capturing on" once it listens
    assert process.stderr is not None
    for line in process.stderr:
        if "Capturing on" in line:
            break
    yield pcap
    process.terminate()
    process.wait(10)


async def test_freediameter_gateway_charges_and_answers_a_rar(
    ocs: Container, port: int, tmp_path: Path, capture: Path
) -> None:
    gateway = FreeDiameterGateway(
        tmp_path, port, f"mode=test ocs=ocs.ratel.local realm=ratel.local msisdn={ALICE}"
    )
    try:
        opened = await wait_for(gateway, "OPEN ")
        session = opened.split(" ", 1)[1]
        view = await ocs.balance_enquiry()(IdentifierKind.MSISDN, ALICE)
        await ocs.top_up()(view.customer_id, Money.of("5", "USD"), "interop")
        assert await wait_for(gateway, "RAR ") == f"RAR {session}"
        await wait_for(gateway, "DONE")
    finally:
        await asyncio.to_thread(gateway.stop)  # it says DPR to the node on this loop
    ccas = [line.split() for line in gateway.lines() if line.startswith("CCA")]
    # CCA <type> <result> <rg>:<mscc result>:<granted octets> ...
    assert [c[1:3] for c in ccas] == [["1", "2001"], ["2", "2001"], ["3", "2001"]]
    assert ccas[0][3:] == ["1:2001:10485760", "10:2001:10485760"]
    assert ccas[1][3:] == ["1:2001:10485760", "10:2001:10485760"]
    assert ccas[2][3:] == []

    # tshark: everything ratel sent decodes as Diameter, without expert warnings
    await asyncio.sleep(0.5)
    decode = ["tshark", "-r", str(capture), "-d", f"tcp.port=={port},diameter"]
    fields = subprocess.run(
        [
            *decode,
            "-Y",
            f"diameter && tcp.srcport=={port}",
            "-T",
            "fields",
            "-e",
            "diameter.cmd.code",
            "-e",
            "diameter.flags.request",
            "-e",
            "diameter.Result-Code",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    sent = [line.split("\t") for line in fields if line]
    commands = {(int(c), r in ("1", "True")) for c, r, *_ in sent}
    assert {(257, False), (272, False), (258, True)} <= commands  # CEA, CCAs, the RAR
    # expert items of warning level or worse in what ratel sent (TCP's own
    # items, like the RST that closes a connection, are not about Diameter)
    expert = subprocess.run(
        [*decode, "-q", "-z", f"expert,warn,diameter && tcp.srcport=={port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    items = [line for line in expert.splitlines() if "Diameter" in line or "Malformed" in line]
    assert items == [], expert
    # the RAA came back from freeDiameter, decoded
    answers = subprocess.run(
        [
            *decode,
            "-Y",
            "diameter.cmd.code == 258 && diameter.flags.request == 0",
            "-T",
            "fields",
            "-e",
            "diameter.Result-Code",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert answers == ["2001"]
