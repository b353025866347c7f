"""Bounded resources, end to end: what a burst costs a server process, and
that it is given back.

Two daphne processes on a redis-server of our own (tests/faults.py; the
shared Redis is never touched) and a database of their own on the shared
PostgreSQL. Each process's connections are counted from the servers' side
(Redis `CLIENT LIST`, PostgreSQL `pg_stat_activity`), attributed to a process
by the client port, which /proc says which process holds; file descriptors
from /proc/PID/fd.

- A burst of 1,000 sockets connecting, joining and leaving at once keeps each
  process within its Redis bound (REDIS_POOL_SIZE + REDIS_CACHE_POOL_SIZE),
  and once it has left, each process's Redis connections and file
  descriptors come back to what they were after a few sockets.
- 1,000 concurrent HTTP requests never hold more than DATABASE_POOL_SIZE
  PostgreSQL connections per process, and none fails with a 5xx.
- After a Redis restart, sockets that stayed connected leave and join again
  at once; the outage costs no traceback in the logs.

The figures each test measures are printed (pytest -rP shows them); the ones
in bench/README.md ("Bounded resources") come from these runs.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
import redis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.conftest import require_service
from tests.e2e.conftest import open_socket, recv
from tests.e2e.fault_watch import bring_up, condensed, log_since, log_size
from tests.faults import PrivateRedis, open_fds, require_redis_server, tcp_local_ports
from tests.liveserver import LiveStack, Server

pytestmark = pytest.mark.e2e

# The servers' bounds, set here rather than left to the defaults so that a
# burst of 1,000 sockets presses against them.
REDIS_POOL_SIZE = 20
REDIS_CACHE_POOL_SIZE = 5
DATABASE_POOL_SIZE = 5
# Every Redis connection a process may hold: its shared pool and its cache's.
REDIS_BOUND = REDIS_POOL_SIZE + REDIS_CACHE_POOL_SIZE

GAMES = 10
PER_GAME = 100  # 1,000 users, one socket each
CONNECTS_IN_FLIGHT = 100
ERROR = "leaderboard:error"  # the type of a refusal's frame (SERVICE_UNAVAILABLE, …)
# After the burst: REDIS_POOL_IDLE_SECONDS (5 s, the default the servers run
# with) for idle connections to be closed, plus room for a loaded machine.
RETURN_WITHIN = 20.0
# What "back to the baseline" allows, per process: a periodic job (presence
# refresh, the hub's check) may hold a connection, and its socket, just when
# we count.
REDIS_SLACK = 2
FD_SLACK = 3


# --- the stack ------------------------------------------------------------------


@dataclass
class Seeded:
    games: list[tuple[int, list[int]]]  # (game id, member user ids), host first
    token: str  # a DRF token of the first game's host

    def sockets(self) -> list[tuple[int, int]]:
        """(game id, user id) of every member."""
        return [(game_id, user_id) for game_id, members in self.games for user_id in members]


_SEED = """
import json
from bench.seed import parties_seed
from rest_framework.authtoken.models import Token
seeded = parties_seed(games={games}, sockets_per_game={per_game}, label="bounded")
host = seeded.games[0][1][0]
token = Token.objects.get_or_create(user_id=host)[0].key
print(json.dumps({{"games": seeded.games, "token": token}}))
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    """Two daphne processes on a private Redis (it is restarted below) and a
    database of their own, with small pools."""
    database_url = require_service("DATABASE_URL", 5432, "PostgreSQL")
    if not database_url.startswith(("postgres://", "postgresql://")):
        pytest.skip("DATABASE_URL is not PostgreSQL")
    binary = require_redis_server()
    with PrivateRedis(binary) as private:
        live = LiveStack(
            processes=2,
            database_url=database_url,
            redis_url=private.url,
            extra_env={
                "REDIS_POOL_SIZE": str(REDIS_POOL_SIZE),
                "REDIS_CACHE_POOL_SIZE": str(REDIS_CACHE_POOL_SIZE),
                "DATABASE_POOL_SIZE": str(DATABASE_POOL_SIZE),
            },
        )
        live.redis = private  # type: ignore[attr-defined]
        try:
            live.start()
            out = live.shell(_SEED.format(games=GAMES, per_game=PER_GAME))
            data = json.loads(out.strip().splitlines()[-1])
            live.seeded = Seeded(  # type: ignore[attr-defined]
                games=[(game_id, members) for game_id, members in data["games"]],
                token=data["token"],
            )
            yield live
            if getattr(live, "failed", False):  # set by tests/e2e/conftest.py's hook
                for index, server in enumerate(live.servers):
                    print(f"--- daphne {index} log ---\n{condensed(server.log())}")
        finally:
            live.close()


def _redis(stack: LiveStack) -> PrivateRedis:
    return stack.redis  # type: ignore[attr-defined]


def _seeded(stack: LiveStack) -> Seeded:
    return stack.seeded  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _healthy(stack: LiveStack) -> None:
    bring_up(stack, _redis(stack))


def _pids(stack: LiveStack) -> list[int]:
    pids = []
    for server in stack.servers:
        assert server.process is not None
        pids.append(server.process.pid)
    return pids


def _database(stack: LiveStack) -> tuple[str, int]:
    """The stack's database name and PostgreSQL's port."""
    parsed = urlparse(stack.env()["DATABASE_URL"])
    return parsed.path.lstrip("/"), parsed.port or 5432


def tickets(stack: LiveStack, user_ids: list[int]) -> list[str]:
    """A fresh one-use WebSocket ticket per user id, minted in one process."""
    out = stack.shell(
        "import json\nfrom accounts.tickets import ticket_issue\n"
        f"print(json.dumps([ticket_issue(user_id=u) for u in {user_ids!r}]))"
    )
    return json.loads(out.strip().splitlines()[-1])


# --- counting ---------------------------------------------------------------------


@dataclass
class Usage:
    """One count per server process."""

    redis: list[int]  # Redis connections, as Redis sees them
    fds: list[int]  # open file descriptors...
    postgres: list[int]  # ...of which TCP connections to PostgreSQL

    def fds_without_postgres(self) -> list[int]:
        # The PostgreSQL pool keeps its connections (bounded by
        # DATABASE_POOL_SIZE, test_http_burst...): the rest must come back.
        return [fds - pg for fds, pg in zip(self.fds, self.postgres, strict=True)]


class Meter:
    """Counts each server process's connections and descriptors."""

    def __init__(self, stack: LiveStack) -> None:
        self.pids = _pids(stack)
        self.redis_port = _redis(stack).port
        self.redis = redis.Redis(port=self.redis_port, socket_timeout=5)
        self.database, self.pg_port = _database(stack)
        admin = urlparse(stack.database_url)._replace(path="/postgres").geturl()
        self.pg = psycopg.connect(admin, autocommit=True)

    def close(self) -> None:
        self.redis.close()
        self.pg.close()

    def redis_per_process(self) -> list[int]:
        clients = {int(c["addr"].rsplit(":", 1)[1]) for c in self.redis.client_list()}
        return [len(clients & tcp_local_ports(pid, self.redis_port)) for pid in self.pids]

    def postgres_per_process(self) -> list[int]:
        rows = self.pg.execute(
            "SELECT client_port FROM pg_stat_activity WHERE datname = %s", (self.database,)
        ).fetchall()
        clients = {port for (port,) in rows if port is not None}
        return [len(clients & tcp_local_ports(pid, self.pg_port)) for pid in self.pids]

    def usage(self) -> Usage:
        return Usage(
            redis=self.redis_per_process(),
            fds=[open_fds(pid) for pid in self.pids],
            postgres=[len(tcp_local_ports(pid, self.pg_port)) for pid in self.pids],
        )


@dataclass
class Peaks:
    """The largest count per process seen by a `Sampler`."""

    values: list[int] = field(default_factory=list)
    samples: int = 0

    def add(self, counts: list[int]) -> None:
        self.values = [max(pair) for pair in zip(self.values or counts, counts, strict=True)]
        self.samples += 1


class Sampler:
    """Samples `measure()` every `interval` s on a thread of its own while the
    `with` block runs."""

    def __init__(self, measure: Callable[[], list[int]], interval: float = 0.1) -> None:
        self.measure = measure
        self.interval = interval
        self.peaks = Peaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peaks.add(self.measure())
            self._stop.wait(self.interval)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self.peaks

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# --- sockets ----------------------------------------------------------------------------


async def join(server: Server, ticket: str, game_id: int) -> ClientConnection:
    """A socket that said hello and joined the game; fails on any refusal."""
    socket = await open_socket(server, ticket)
    hello = await recv(socket, 60)
    assert hello["type"] == "hello", hello
    await socket.send(json.dumps({"type": "join", "gameId": game_id}))
    while True:
        frame = await recv(socket, 60)
        assert frame["type"] != ERROR, frame
        if frame["type"] == "joined":
            return socket


async def join_all(
    servers: list[Server], ticket_values: list[str], games: list[int]
) -> list[ClientConnection]:
    """Sockets spread round-robin over the servers, CONNECTS_IN_FLIGHT
    handshakes at a time."""
    gate = asyncio.Semaphore(CONNECTS_IN_FLIGHT)

    async def one(index: int) -> ClientConnection:
        async with gate:
            return await join(servers[index % len(servers)], ticket_values[index], games[index])

    return list(await asyncio.gather(*(one(i) for i in range(len(ticket_values)))))


async def leave_and_close(sockets: list[ClientConnection], games: list[int]) -> None:
    """Every socket leaves its game and closes, all at once (a show's end)."""

    async def one(socket: ClientConnection, game_id: int) -> None:
        await socket.send(json.dumps({"type": "leave", "gameId": game_id}))
        await socket.close()

    await asyncio.gather(*(one(s, g) for s, g in zip(sockets, games, strict=True)))


async def settle(meter: Meter, seconds: float) -> Usage:
    await asyncio.sleep(seconds)
    return await asyncio.to_thread(meter.usage)


async def back_to(meter: Meter, baseline: Usage, within: float) -> tuple[Usage, float | None]:
    """The usage once every process is back to `baseline` (with the slack),
    and how long that took; (the last usage, None) if not within `within` s."""
    start = time.monotonic()
    while True:
        now = await asyncio.to_thread(meter.usage)
        redis_back = all(
            n <= b + REDIS_SLACK for n, b in zip(now.redis, baseline.redis, strict=True)
        )
        fds_back = all(
            n <= b + FD_SLACK
            for n, b in zip(
                now.fds_without_postgres(), baseline.fds_without_postgres(), strict=True
            )
        )
        if redis_back and fds_back:
            return now, time.monotonic() - start
        if time.monotonic() - start > within:
            return now, None
        await asyncio.sleep(0.25)


def problems_in_logs(stack: LiveStack, offsets: list[int]) -> list[str]:
    """Tracebacks and pool exhaustion the servers logged after `offsets`."""
    found = []
    for index, server in enumerate(stack.servers):
        log = log_since(server, offsets[index])
        for marker in ("Traceback", "MaxConnectionsError", "Too many connections"):
            if marker in log:
                lines = [line for line in log.splitlines() if " - - [" not in line]
                found.append(f"daphne {index} logged {marker!r}:\n" + "\n".join(lines[:60]))
    return found


# --- the tests --------------------------------------------------------------------------


async def test_a_burst_of_sockets_stays_bounded_and_is_given_back(stack: LiveStack) -> None:
    seeded = _seeded(stack)
    members = seeded.sockets()
    games = [game_id for game_id, _ in members]
    meter = Meter(stack)
    try:
        # The baseline: each process after a few sockets came and went, once
        # idle connections had time to be closed.
        few = 4 * len(stack.servers)
        warm = await join_all(
            stack.servers,
            await asyncio.to_thread(tickets, stack, [u for _, u in members[:few]]),
            games[:few],
        )
        await leave_and_close(warm, games[:few])
        baseline = await settle(meter, 7.0)

        offsets = [log_size(server) for server in stack.servers]
        ticket_values = await asyncio.to_thread(tickets, stack, [u for _, u in members])
        with Sampler(meter.redis_per_process) as redis_peaks:
            with Sampler(lambda: [open_fds(pid) for pid in meter.pids]) as fd_peaks:
                started = time.monotonic()
                sockets = await join_all(stack.servers, ticket_values, games)
                joined_in = time.monotonic() - started
                await leave_and_close(sockets, games)
            after, returned_in = await back_to(meter, baseline, RETURN_WITHIN)

        print(
            f"burst of {len(sockets)} sockets over {len(stack.servers)} daphne "
            f"(REDIS_POOL_SIZE={REDIS_POOL_SIZE}, REDIS_CACHE_POOL_SIZE={REDIS_CACHE_POOL_SIZE}):"
            f" joined in {joined_in:.1f} s\n"
            f"  redis connections per process: baseline {baseline.redis},"
            f" peak {redis_peaks.values} ({redis_peaks.samples} samples), after {after.redis}\n"
            f"  fds per process: baseline {baseline.fds} (postgres {baseline.postgres}),"
            f" peak {fd_peaks.values}, after {after.fds} (postgres {after.postgres})\n"
            f"  back to the baseline in: "
            + (f"{returned_in:.1f} s" if returned_in is not None else "never")
        )
        assert len(sockets) == len(members)
        assert all(peak <= REDIS_BOUND for peak in redis_peaks.values), redis_peaks.values
        assert returned_in is not None, (
            f"not back to the baseline {RETURN_WITHIN} s after the burst: redis {after.redis} "
            f"(baseline {baseline.redis}), fds without postgres {after.fds_without_postgres()} "
            f"(baseline {baseline.fds_without_postgres()})"
        )
        assert all(pg <= DATABASE_POOL_SIZE for pg in after.postgres), after.postgres
        assert not problems_in_logs(stack, offsets), problems_in_logs(stack, offsets)
    finally:
        meter.close()


def test_an_http_burst_holds_at_most_the_database_pool(stack: LiveStack) -> None:
    seeded = _seeded(stack)
    game_id = seeded.games[0][0]
    token = seeded.token
    api = [
        "/api/auth/me",
        "/api/games",
        f"/api/games/{game_id}",
        f"/api/games/{game_id}/leaderboard",
        f"/api/games/{game_id}/pick-counts",
    ]
    pages = ["/", f"/games/{game_id}/live", "/no-such-page"]
    requests = [(api + pages)[i % (len(api) + len(pages))] for i in range(1000)]
    meter = Meter(stack)
    offsets = [log_size(server) for server in stack.servers]

    def one(index: int) -> tuple[str, int]:
        server = stack.servers[index % len(stack.servers)]
        path = requests[index]
        headers = {"Authorization": f"Token {token}"} if path.startswith("/api/") else {}
        request = urllib.request.Request(f"{server.url}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
                return path, response.status
        except urllib.error.HTTPError as error:
            return path, error.code

    try:
        with (
            Sampler(meter.postgres_per_process, interval=0.05) as pg_peaks,
            ThreadPoolExecutor(max_workers=32) as pool,
        ):
            answers = list(pool.map(one, range(len(requests))))
        print(
            f"{len(answers)} HTTP requests, 32 at a time, over {len(stack.servers)} daphne "
            f"(DATABASE_POOL_SIZE={DATABASE_POOL_SIZE}): PostgreSQL connections per process "
            f"peaked at {pg_peaks.values} ({pg_peaks.samples} samples)"
        )
        failed = [(path, status) for path, status in answers if status >= 500]
        assert not failed, failed[:20]
        refused = [(p, s) for p, s in answers if p.startswith("/api/") and s != 200]
        assert not refused, refused[:20]
        assert pg_peaks.samples > 10
        assert all(peak <= DATABASE_POOL_SIZE for peak in pg_peaks.values), pg_peaks.values
        assert not problems_in_logs(stack, offsets), problems_in_logs(stack, offsets)
    finally:
        meter.close()


async def rejoin(socket: ClientConnection, game_id: int) -> list[Any]:
    """Leave the game and join it again on the same socket: the frames up to
    `joined` or an error, ending with a description of the failure if the
    server did not answer or closed the socket."""
    frames: list[Any] = []
    await socket.send(json.dumps({"type": "leave", "gameId": game_id}))
    await socket.send(json.dumps({"type": "join", "gameId": game_id}))
    try:
        while not frames or frames[-1]["type"] not in {"joined", ERROR}:
            frames.append(await recv(socket, 20))
    except (TimeoutError, ConnectionClosed) as error:
        frames.append(repr(error))
    return frames


def assert_rejoined(answers: list[list[Any]]) -> None:
    for frames in answers:
        kinds = [frame["type"] if isinstance(frame, dict) else frame for frame in frames]
        assert ERROR not in kinds, frames  # SERVICE_UNAVAILABLE
        assert "left" in kinds and kinds[-1] == "joined", frames


async def still_open(sockets: list[ClientConnection]) -> None:
    """Each socket answers a ping (none was closed, with 1011 or otherwise)."""
    for socket in sockets:
        await socket.send(json.dumps({"type": "ping"}))
    for socket in sockets:
        while (await recv(socket, 10))["type"] != "pong":
            pass


def presence_lines(stack: LiveStack, offsets: list[int]) -> list[list[str]]:
    """Per server process, the lines presence logged after `offsets`."""
    return [
        [line for line in log_since(server, offsets[i]).splitlines() if "presence" in line]
        for i, server in enumerate(stack.servers)
    ]


async def test_sockets_join_again_at_once_after_a_redis_restart(stack: LiveStack) -> None:
    game_id, members = _seeded(stack).games[1]
    users = members[:24]
    ticket_values = await asyncio.to_thread(tickets, stack, users)
    sockets = await join_all(stack.servers, ticket_values, [game_id] * len(users))
    # All at once again: each process's pool now holds several connections,
    # which the restart leaves stale (nothing uses them while Redis is away).
    assert_rejoined(await asyncio.gather(*(rejoin(socket, game_id) for socket in sockets)))
    meter = Meter(stack)
    try:
        pooled = await asyncio.to_thread(meter.redis_per_process)
    finally:
        meter.close()
    offsets = [log_size(server) for server in stack.servers]

    await asyncio.to_thread(_redis(stack).restart, 0.5)
    answers = await asyncio.gather(*(rejoin(socket, game_id) for socket in sockets))
    try:
        print(f"Redis connections per process before the restart: {pooled}")
        assert_rejoined(answers)
        await still_open(sockets)
        await asyncio.sleep(1.0)  # what the restart made the servers log, logged
        assert not problems_in_logs(stack, offsets), problems_in_logs(stack, offsets)
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))


async def test_presence_failures_in_an_outage_are_logged_once(stack: LiveStack) -> None:
    game_id, members = _seeded(stack).games[2]
    users = members[:24]
    ticket_values = await asyncio.to_thread(tickets, stack, users)
    sockets = await join_all(stack.servers, ticket_values, [game_id] * len(users))
    staying, leaving = sockets[:8], sockets[8:]
    offsets = [log_size(server) for server in stack.servers]

    private = _redis(stack)
    await asyncio.to_thread(private.stop)
    # Sockets that close while Redis is away: each one's presence leave fails.
    await leave_and_close(leaving, [game_id] * len(leaving))
    await asyncio.sleep(1.0)
    await asyncio.to_thread(private.start)
    answers = await asyncio.gather(*(rejoin(socket, game_id) for socket in staying))
    try:
        assert_rejoined(answers)
        await still_open(staying)
        await asyncio.sleep(1.0)
        assert not problems_in_logs(stack, offsets), problems_in_logs(stack, offsets)
        for lines in presence_lines(stack, offsets):
            # One line when the outage is noticed, one when Redis answers again.
            assert len(lines) <= 2, lines
            assert any("unreachable" in line for line in lines), lines
    finally:
        await asyncio.gather(*(socket.close() for socket in staying))
