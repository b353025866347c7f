"""Fault injection for end-to-end tests: a private redis-server to kill and
restart, never the shared one (other suites and live servers use that).

    with PrivateRedis() as redis:
        LiveStack(processes=2, redis_url=redis.url)
        redis.stop()    # SIGKILL: what a crash or an OOM kill looks like
        redis.start()   # the same port, empty, as a real restart without persistence
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from config.processes import pid_alive
from tests.liveserver import LiveStack, free_port

REDIS_SERVER = "/usr/bin/redis-server"


def missing_service(reason: str) -> NoReturn:
    """Skip the test for `reason`: a private service cannot be started here.
    In CI, which must exercise the real services, fail it instead."""
    # Imported here: tests.conftest needs Django set up, and the benchmarks
    # import this module before they set it up.
    from tests.conftest import IN_CI

    if IN_CI:
        pytest.fail(f"CI must exercise the real services: {reason}")
    pytest.skip(reason)


def require_redis_server(binary: str = REDIS_SERVER) -> str:
    """The redis-server binary, or skip with a reason; in CI its absence fails."""
    if os.path.isfile(binary) and os.access(binary, os.X_OK):
        return binary
    missing_service(
        f"fault tests start a private Redis and need {binary} (apt-get install redis-server)"
    )


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


# --- a private PostgreSQL ----------------------------------------------------------

POSTGRES_BIN = "/usr/lib/postgresql/15/bin"
# As root, the cluster runs as this OS user (postgres refuses to run as root).
POSTGRES_OS_USER = "postgres"


def _runuser() -> str | None:
    for candidate in ("/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _postgres_reason(bindir: str) -> str | None:
    missing = [
        name
        for name in ("initdb", "pg_ctl", "postgres")
        if not os.access(os.path.join(bindir, name), os.X_OK)
    ]
    if missing:
        return (
            f"fault tests start a private PostgreSQL and need {', '.join(missing)} in {bindir} "
            "(apt-get install postgresql-15)"
        )
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam(POSTGRES_OS_USER)
        except KeyError:
            return f"as root, a private PostgreSQL runs as the OS user {POSTGRES_OS_USER!r}: none"
        if _runuser() is None:
            return "as root, a private PostgreSQL is started with runuser, which is missing"
    return None


def require_postgres(bindir: str = POSTGRES_BIN) -> str:
    """The PostgreSQL binaries' directory, or skip with a reason; in CI their
    absence fails."""
    reason = _postgres_reason(bindir)
    if reason is None:
        return bindir
    missing_service(reason)


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in a temporary directory, trust
    auth, fsync off) on a free loopback port. `stop()` then `start()` is a
    restart on the same port that keeps the data, as a real one does.

        with PrivatePostgres() as pg:
            LiveStack(processes=2, database_url=pg.url, redis_url=...)
            pg.stop()       # fast shutdown: every client connection is terminated
            pg.start()
    """

    def __init__(self, bindir: str = POSTGRES_BIN, port: int | None = None) -> None:
        self.bindir = bindir
        self.port = port or free_port()
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def directory(self) -> Path:
        assert self._dir is not None
        return Path(self._dir.name)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    def _pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError, AssertionError):
            return None

    @property
    def running(self) -> bool:
        pid = self._pid()
        return pid is not None and pid_alive(pid)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [os.path.join(self.bindir, args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = [_runuser() or "runuser", "-u", POSTGRES_OS_USER, "--", *command]
        return subprocess.run(
            command,
            cwd=self.directory,  # readable by the postgres user, unlike the caller's
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _init(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="envelope-pg-")
        if os.geteuid() == 0:
            import pwd

            owner = pwd.getpwnam(POSTGRES_OS_USER)
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        result = self._run(
            "initdb",
            *("-D", str(self.data_dir), "-U", "postgres", "--auth=trust"),
            *("--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"),
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")

    def start(self, timeout: float = 30) -> None:
        if self._dir is None:
            self._init()
        if self.running:
            return
        options = " ".join(
            [
                f"-p {self.port} -k {self.directory}",
                "-c listen_addresses=127.0.0.1 -c max_connections=50",
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                "-c shared_buffers=32MB",
            ]
        )
        result = self._run(
            "pg_ctl",
            *("-D", str(self.data_dir), "-o", options, "-l", str(self.log_path)),
            *("start", "-w", "-t", str(int(timeout))),
            timeout=timeout + 10,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed ({result.returncode}):\n{result.stdout[-1000:]}"
                f"\n{result.stderr[-1000:]}\n{self.log()[-3000:]}"
            )

    def stop(self, mode: str = "fast", timeout: float = 30) -> None:
        """Shut the server down (`fast`: roll back and disconnect every client;
        `immediate`: no clean shutdown at all, like a crash) and wait until it
        is gone."""
        if self._dir is None or not self.running:
            return
        result = self._run(
            "pg_ctl",
            *("-D", str(self.data_dir), "-m", mode, "-w", "-t", str(int(timeout))),
            "stop",
            timeout=timeout + 10,
        )
        if result.returncode != 0 and self.running:
            pid = self._pid()
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    return  # gone meanwhile
                deadline = time.monotonic() + 10
                while self.running and time.monotonic() < deadline:
                    time.sleep(0.05)

    def restart(self, mode: str = "fast", down: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down)
        self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""

    def close(self) -> None:
        if self._dir is None:
            return
        try:
            self.stop("immediate")
        finally:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> PrivatePostgres:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- what a server process holds open ------------------------------------------------


def open_fds(pid: int) -> int:
    """How many file descriptors the process has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def tcp_local_ports(pid: int, remote_port: int) -> set[int]:
    """The local ports of the process's TCP connections to `remote_port` on
    this host (every state but LISTEN), matched by socket inode between
    /proc/PID/fd and the namespace's /proc/PID/net/tcp{,6} tables."""
    inodes: set[str] = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode not in inodes or state == "0A":  # 0A: LISTEN
                continue
            if int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


# --- a whole stack on private services ----------------------------------------------


@contextlib.contextmanager
def private_stack(
    processes: int, *, postgres: bool, extra_env: dict[str, str] | None = None
) -> Iterator[LiveStack]:
    """`processes` daphne servers on a redis-server of their own and, with
    `postgres`, a PostgreSQL cluster of their own, so a test may stop either
    (as `stack.redis` / `stack.postgres`). Prints the servers' logs when a
    test marked the stack failed (tests/e2e/conftest.py's hook)."""
    with contextlib.ExitStack() as services:
        database = services.enter_context(PrivatePostgres(require_postgres())) if postgres else None
        redis = services.enter_context(PrivateRedis(require_redis_server()))
        live = LiveStack(
            processes=processes,
            database_url=database.url if database else "",
            redis_url=redis.url,
            extra_env=extra_env or {},
        )
        live.postgres = database  # type: ignore[attr-defined]
        live.redis = redis  # type: ignore[attr-defined]
        try:
            # Not `with`: a server that fails to start must not leave the
            # others behind.
            live.start()
            yield live
        finally:
            if getattr(live, "failed", False):
                for server in live.servers:
                    print(f"--- {server.log_path.name} ---\n{server.log()[-6000:]}")
            try:
                # LiveStack.close drops its database: PostgreSQL must be up.
                if database is not None and not database.running:
                    database.start()
                live.close()
            finally:
                for server in live.servers:
                    server.stop()
