"""USSD balance queries per second and their latency against `ratel serve`.

Run with ``uv run python -m benchmarks.ussd [--seconds S] [--connections C]``.
It makes a SQLite database in a temporary directory, loads the demo
(``ratel db upgrade``, ``ratel demo load``: the USSD gateway's key is read
from its output), starts ``ratel serve`` on a free port and drives it with
``wrk`` (one thread, C keep-alive connections, a Lua script POSTing
``{ ussdBalance(msisdn: "12055550100") { amount currency text } }`` with the
key). The baseline, in the same run, is a Starlette route that answers a
constant of the same size to the same POST, served by uvicorn the same way
(one process, no access log): the ratio is what ratel's GraphQL, key check
and store reads cost on top of HTTP. wrk costs little CPU, but it shares the
machine with the server: figures are for comparison within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

QUERY = '{ ussdBalance(msisdn: "12055550100") { amount currency text } }'
EXPECTED = {
    "data": {
        "ussdBalance": {
            "amount": "43.25",
            "currency": "USD",
            "text": "Your current balance is 43.25 USD",
        }
    }
}
STARTUP_SECONDS = 60

# wrk: POST the query with the key; print exact figures as JSON when done.
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.body = %(body)s
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests": %%d, "seconds": %%f, "errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration / 1e6, errors,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal here


def _ratel(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ratel.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"ratel {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def _listening_url(line: str) -> str | None:
    """The URL of a "listening" log line (ratel's JSON or the baseline's text)."""
    match = re.search(r"baseline listening on (http://\S+)", line)
    if match:
        return match.group(1)
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    if isinstance(event, dict) and event.get("message") == "listening":
        return str(event["url"])
    return None


def _wait_for_url(process: subprocess.Popen[str]) -> str:
    """The URL the server announces on stderr; the rest of stderr is then
    drained in a thread, so that a full pipe never stalls the server."""
    assert process.stderr is not None
    stderr = process.stderr
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        line = stderr.readline()
        if not line:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}")
            continue
        url = _listening_url(line)
        if url:
            threading.Thread(target=lambda: [None for _ in stderr], daemon=True).start()
            return url
    raise SystemExit("the server did not say where it listens")


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wrk(url: str, key: str, seconds: int, connections: int, workdir: Path) -> dict[str, Any]:
    script = workdir / "ussd.lua"
    body = json.dumps({"query": QUERY})
    script.write_text(LUA % {"key": key, "body": _lua_string(body)}, encoding="utf-8")
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"{url}/graphql",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    figures: dict[str, Any] = json.loads(lines[-1])
    if figures["errors"]:
        raise SystemExit(f"{figures['errors']} requests failed:\n{done.stdout}")
    return figures


def _check(url: str, key: str, expected: dict[str, Any]) -> None:
    """One request by hand: the server answers what a gateway needs."""
    answer = httpx.post(
        f"{url}/graphql",
        json={"query": QUERY},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    if answer.status_code != 200 or answer.json() != expected:
        raise SystemExit(f"unexpected answer {answer.status_code}: {answer.text}")


# -- the baseline server ------------------------------------------------------------------


def serve_constant() -> None:
    """A Starlette app answering the same POST with a constant, on a free
    port announced on stderr (run as ``python -m benchmarks.ussd --baseline-server``)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def constant(request: Request) -> Response:
        await request.body()
        return JSONResponse(EXPECTED)

    app = Starlette(routes=[Route("/graphql", constant, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    server = uvicorn.Server(config)

    async def run() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        print(f"baseline listening on http://{host}:{port}", file=sys.stderr, flush=True)
        await serving

    asyncio.run(run())


# -- the run --------------------------------------------------------------------------------


def _report(name: str, figures: dict[str, Any]) -> float:
    rate = figures["requests"] / figures["seconds"]
    print(
        f"ussd.{name}: {rate:,.0f} requests/s, p50 {figures['p50_us'] / 1000:.2f} ms, "
        f"p99 {figures['p99_us'] / 1000:.2f} ms ({figures['requests']:,} requests)"
    )
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_server:
        serve_constant()
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (bash scripts/services installs it)")

    with tempfile.TemporaryDirectory(prefix="ratel-ussd-bench-") as directory:
        workdir = Path(directory)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RATEL_")}
        env.update(
            RATEL_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'ratel.db'}",
            RATEL_HTTP_PORT="0",
            RATEL_LOG_FORMAT="json",
            RATEL_ENVIRONMENT="production",
            RATEL_SECRET="benchmark-secret-0123456789abcdef",
            COLUMNS="200",
        )
        _ratel(env, workdir, "db", "upgrade")
        loaded = _ratel(env, workdir, "demo", "load")
        match = re.search(r"USSD gateway API key \(shown this once\): (rk_\S+)", loaded)
        if not match:
            raise SystemExit(f"no USSD key in the demo's output:\n{loaded}")
        key = match.group(1)

        baseline = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.ussd", "--baseline-server"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = _wait_for_url(baseline)
            _check(url, key, EXPECTED)
            figures = _wrk(url, key, args.seconds, args.connections, workdir)
            base = _report("baseline_constant_route", figures)
        finally:
            _stop(baseline)

        server = subprocess.Popen(
            [sys.executable, "-m", "ratel.cli", "serve"],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = _wait_for_url(server)
            _check(url, key, EXPECTED)
            figures = _wrk(url, key, args.seconds, args.connections, workdir)
        finally:
            _stop(server)
        rate = _report("balance_query", figures)
        print(f"ussd.balance_query: {rate / base:.3f}x baseline constant route {base:,.0f}/s")


if __name__ == "__main__":
    main()
