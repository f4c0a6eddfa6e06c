"""Running `ratel` as an operator does, for the tests that start real
processes: the environment of an isolated instance, one-off commands, and
the JSON log lines of `ratel serve` read as they come."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

#: How long a server may take to say it listens (a busy CI machine is slow).
STARTUP_SECONDS = 60


def ratel_env(database: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any RATEL_* setting of the machine,
    for an instance on the SQLite file ``database`` with JSON logs and every
    listener on a free port (never 1812/1813/3868: other runs share the
    machine), then ``settings``."""
    values = {k: v for k, v in os.environ.items() if not k.startswith("RATEL_")}
    values.update(
        RATEL_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        RATEL_HTTP_PORT="0",  # a free port, announced in the "listening" log line
        RATEL_RADIUS_AUTH_PORT="0",
        RATEL_RADIUS_ACCT_PORT="0",
        RATEL_DIAMETER_PORT="0",
        RATEL_LOG_FORMAT="json",
        COLUMNS="200",  # rich tables: no truncation in a pipe
    )
    values.update(settings)
    return values


def ratel(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``ratel ARGS`` to its end, with no standard input, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "ratel.cli", *args],
        env=env,
        cwd=cwd,
        input="",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def serve(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """``ratel serve`` started, its log on the returned process's stderr."""
    return subprocess.Popen(
        [sys.executable, "-m", "ratel.cli", "serve"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str], seconds: float = 20) -> None:
    """SIGTERM, then SIGKILL if it is still running after ``seconds``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class LogLines:
    """A process's log (one JSON object per line), read in a thread."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self.lines.put(line)

    def wait_for(self, message: str, timeout: float = STARTUP_SECONDS) -> dict[str, object]:
        """The next log event whose message is ``message``; fails the test
        with what was logged if none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("message") == message:
                return event  # type: ignore[no-any-return]
        raise AssertionError(f"no {message!r} log line; got:\n{''.join(self.seen)}")

    def drain(self) -> list[str]:
        """Every line logged, once the process has ended."""
        self._thread.join(timeout=5)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen
