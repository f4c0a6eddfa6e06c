"""`ratel` as an operator runs it: real processes on a temporary SQLite file."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving import STARTUP_SECONDS, LogLines, ratel, ratel_env, serve

STOP_SECONDS = 10


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ratel-e2e")


@pytest.fixture(scope="module")
def env(workdir: Path) -> dict[str, str]:
    return ratel_env(workdir / "ratel.db", RATEL_HOUSEKEEPING_INTERVAL="0.5")


def customers_in(output: str) -> int:
    match = re.search(r"customers in the database: (\d+)", output)
    assert match, output
    return int(match.group(1))


@pytest.fixture(scope="module")
def migrated(env: dict[str, str], workdir: Path) -> None:
    done = ratel(env, workdir, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert "database upgraded to head" in done.stdout


def test_help_explains_itself(env: dict[str, str], workdir: Path) -> None:
    done = ratel(env, workdir, "--help")
    assert done.returncode == 0
    for word in ("serve", "db", "demo", "housekeeping", "--config", "RATEL_"):
        assert word in done.stdout


def test_a_bad_setting_stops_with_a_clear_error(env: dict[str, str], workdir: Path) -> None:
    done = ratel({**env, "RATEL_HTTP_PORT": "eighty"}, workdir, "serve")
    assert done.returncode == 2
    assert "RATEL_HTTP_PORT" in done.stderr


def test_demo_loads_once(migrated: None, env: dict[str, str], workdir: Path) -> None:
    first = ratel(env, workdir, "demo", "load")
    assert first.returncode == 0, first.stderr
    assert "demo data loaded" in first.stdout
    assert "43.25 USD" in first.stdout
    assert "12055550100" in first.stdout
    count = customers_in(first.stdout)
    assert count >= 7

    second = ratel(env, workdir, "demo", "load")
    assert second.returncode == 0, second.stderr
    assert "demo data already loaded" in second.stdout
    assert customers_in(second.stdout) == count


def test_demo_bulk_customers(migrated: None, env: dict[str, str], workdir: Path) -> None:
    before = customers_in(ratel(env, workdir, "demo", "load").stdout)
    done = ratel(env, workdir, "demo", "load", "--customers", "200")
    assert done.returncode == 0, done.stderr
    assert "imported 200 customers" in done.stdout
    assert customers_in(done.stdout) == before + 200


def test_housekeeping_prints_its_report(migrated: None, env: dict[str, str], workdir: Path) -> None:
    done = ratel(env, workdir, "housekeeping")
    assert done.returncode == 0, done.stderr
    assert "add ons expired: " in done.stdout
    assert "buckets renewed: " in done.stdout
    assert "sessions released: " in done.stdout


@pytest.fixture
def server(migrated: None, env: dict[str, str], workdir: Path) -> Iterator[subprocess.Popen[str]]:
    process = serve(env, workdir)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_serve_answers_and_stops_cleanly_on_sigterm(server: subprocess.Popen[str]) -> None:
    log = LogLines(server.stderr)
    listening = log.wait_for("listening", STARTUP_SECONDS)
    url = str(listening["url"])
    assert listening["level"] == "info"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)

    deadline = time.monotonic() + STARTUP_SECONDS
    health = httpx.get(f"{url}/healthz", timeout=5)
    while health.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        health = httpx.get(f"{url}/healthz", timeout=5)
    assert health.status_code == 200, health.text
    assert health.json() == {
        "status": "ok",
        "database": "ok",
        # the event relay is a component of every process (the directory sync
        # is one only with RATEL_DIRECTORY=ldap)
        "listeners": {
            "diameter": "up",
            "event-relay": "up",
            "http": "up",
            "radius": "up",
            "scheduler": "up",
        },
    }

    # the scheduler has run housekeeping at least once (every 0.5 s)
    log.wait_for("housekeeping pass done", STARTUP_SECONDS)
    metrics = httpx.get(f"{url}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert "ratel_requests_total" in metrics.text
    assert 'operation="housekeeping"' in metrics.text
    assert "ratel_request_duration_seconds_bucket" in metrics.text

    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=STOP_SECONDS) == 0
    lines = log.drain()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(e["message"] == "stopped" and e["exit_code"] == 0 for e in events), lines
    # every line is one JSON event: nothing unstructured leaked out
    assert all(line.startswith("{") for line in lines), lines


def test_serve_stops_on_sigint_too(server: subprocess.Popen[str]) -> None:
    log = LogLines(server.stderr)
    log.wait_for("listening", STARTUP_SECONDS)
    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=STOP_SECONDS) == 0
