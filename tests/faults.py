"""Fault injection for end-to-end tests: a private redis-server to kill and
restart, never the shared one (other suites and live servers use that).

    with PrivateRedis() as redis:
        LiveStack(processes=2, redis_url=redis.url)
        redis.stop()    # SIGKILL: what a crash or an OOM kill looks like
        redis.start()   # the same port, empty, as a real restart without persistence
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.liveserver import free_port

REDIS_SERVER = "/usr/bin/redis-server"


def require_redis_server(binary: str = REDIS_SERVER) -> str:
    """The redis-server binary, or skip with a reason; in CI its absence fails."""
    if os.path.isfile(binary) and os.access(binary, os.X_OK):
        return binary
    reason = f"fault tests start a private Redis and need {binary} (apt-get install redis-server)"
    if IN_CI:
        pytest.fail(f"CI must exercise the real services: {reason}")
    pytest.skip(reason)


class PrivateRedis:
    """A redis-server of our own on a free loopback port, without persistence:
    `stop()` then `start()` is a restart that loses every key, on the same port."""

    def __init__(self, binary: str = REDIS_SERVER, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        assert self._dir is not None
        return Path(self._dir.name) / "redis.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10) -> None:
        if self.running:
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="envelope-redis-")
        command = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            *("--dir", self._dir.name),
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self._dir.name, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited early:\n{self.log()[-3000:]}")
            if self.ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING in {timeout}s:\n{self.log()[-3000:]}")

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Kill the server (SIGKILL by default: no goodbye to its clients) and
        wait until it is gone and its port no longer answers."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def restart(self, down: float = 0.0) -> None:
        self.stop()
        time.sleep(down)
        self.start()

    def ping(self, timeout: float = 0.5) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""

    def close(self) -> None:
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closed_port() -> int:
    """A loopback port nothing listens on (a Redis that cannot be reached)."""
    return free_port()
