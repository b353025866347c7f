"""Real servers for end-to-end tests: a fresh database, N daphne processes
(or uvicorn ones, the benchmarks' comparison).

The stack runs production-like settings (DEBUG off) on loopback. With more
than one process the processes share REDIS_URL, as in a real deployment.
Setup that has no API (staff users) goes through `manage.py shell`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin_url(database_url: str) -> str:
    parsed = urlparse(database_url)
    return urlunparse(parsed._replace(path="/postgres"))


SERVERS = ("daphne", "uvicorn")


def server_command(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        # A comparison only (bench/fanout.py --server uvicorn): production is
        # daphne. The same asyncio loop as daphne's, the `websockets` protocol.
        return [
            *("-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)),
            *("--backlog", "1024", "--loop", "asyncio", "--ws", "websockets"),
            *("--lifespan", "off", "--no-access-log", "config.asgi:application"),
        ]
    return [
        # daphne's command line with Envelope's server classes (server/).
        "-m",
        "server",
        # Twisted listens with a backlog of 50 by default: a burst of
        # connects overflows it and handshakes stall in SYN retries.
        "-e",
        f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
        # daphne drops a handshake the application has not accepted in
        # 5 s; a burst of thousands of connects takes longer to accept.
        "--websocket_connect_timeout",
        "30",
        "config.asgi:application",
    ]


@dataclass
class Server:
    port: int
    env: dict[str, str]
    log_path: Path
    kind: str = "daphne"
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def start(self, timeout: float = 30) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [sys.executable, *server_command(self.kind, self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log_path.read_text()[-3000:]
                raise RuntimeError(f"{self.kind} exited early:\n{log}")
            try:
                urllib.request.urlopen(f"{self.url}/api/auth/me", timeout=1)
            except urllib.error.HTTPError:
                return  # 401: the server answers
            except OSError:
                time.sleep(0.1)
                continue
            return
        raise RuntimeError(
            f"{self.kind} did not start in {timeout}s:\n{self.log_path.read_text()[-3000:]}"
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class LiveStack:
    """A database of its own and `processes` servers (daphne unless
    `server` says otherwise) sharing it."""

    processes: int = 1
    server: str = "daphne"
    database_url: str = ""
    redis_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    servers: list[Server] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory | None = None
    _db_name: str = ""

    def __post_init__(self) -> None:
        self.database_url = self.database_url or os.environ.get("DATABASE_URL", "")
        self.redis_url = self.redis_url or os.environ.get("REDIS_URL", "")
        if self.processes > 1 and not self.redis_url:
            raise RuntimeError("more than one server process needs REDIS_URL")

    def env(self) -> dict[str, str]:
        ports = [server.port for server in self.servers]
        origins = ",".join(
            f"http://{host}:{port}" for port in ports for host in ("127.0.0.1", "localhost")
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "0",
            "SECRET_KEY": "e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": origins,
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0",
            "SECURE_HSTS_SECONDS": "0",
            "DATABASE_URL": self._stack_database_url(),
            "REDIS_URL": self.redis_url,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        return env

    def _stack_database_url(self) -> str:
        if self.database_url.startswith(("postgres://", "postgresql://")):
            parsed = urlparse(self.database_url)
            return urlunparse(parsed._replace(path=f"/{self._db_name}"))
        assert self._tmp is not None
        return f"sqlite:///{self._tmp.name}/e2e.sqlite3"

    def __enter__(self) -> LiveStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="envelope-e2e-")
        if self.database_url.startswith(("postgres://", "postgresql://")):
            self._db_name = f"envelope_e2e_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(_admin_url(self.database_url), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self._db_name}"')
        if self.redis_url:
            # A fresh Redis database for the stack: no groups or presence from earlier runs.
            import redis

            redis.Redis.from_url(self.redis_url).flushdb()
        for index in range(self.processes):
            self.servers.append(
                Server(
                    port=free_port(),
                    env={},
                    log_path=Path(self._tmp.name) / f"{self.server}{index}.log",
                    kind=self.server,
                )
            )
        env = self.env()
        for server in self.servers:
            server.env = env
        self.manage("migrate", "--noinput")
        for server in self.servers:
            server.start()

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        if self._db_name:
            with psycopg.connect(_admin_url(self.database_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self._db_name}" WITH (FORCE)')
        if self._tmp is not None:
            self._tmp.cleanup()

    def manage(self, *args: str, timeout: float = 120) -> str:
        """Run manage.py against the stack's database; returns stdout."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def create_user(
        self, username: str, password: str, *, staff: bool = False, display_name: str = ""
    ) -> int:
        out = self.shell(
            "from accounts.models import User\n"
            f"u = User.objects.create_user({username!r}, password={password!r}, "
            f"display_name={display_name!r}, is_staff={staff!r})\n"
            "print(u.pk)"
        )
        return int(out.strip().splitlines()[-1])

    @property
    def url(self) -> str:
        return self.servers[0].url
