"""Delivery across a PostgreSQL restart, end to end, as real clients see it.

The guarantee (docs/delivery.md): every event of a game reaches every socket
that follows it, in seq order, exactly once per socket, also when PostgreSQL
restarts. Each daphne process's hub reads the event log every
ENVELOPE_RECOVERY_SECONDS (2 s) on a database connection of its own thread; a
restart breaks that connection, the check fails, is logged, and the next one
must succeed. The sockets themselves do not need the database: they stay open
while it is away.

The module runs two daphne processes on a PostgreSQL cluster and a
redis-server of its own (tests/faults.py), which the tests stop and restart;
the shared services are never touched. The sockets here only read.
"""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import Party, Player, http, joined, make_party
from tests.faults import (
    PrivatePostgres,
    PrivateRedis,
    closed_port,
    require_postgres,
    require_redis_server,
)
from tests.liveserver import ROOT, LiveStack, Server

pytestmark = pytest.mark.e2e

# "Within 10 s": the reveal's events must reach every socket by then.
DELIVERY = 10.0
# After the expected frames arrived: how long a late duplicate gets to show up.
SETTLE = 1.5
# A reveal answered otherwise than 200 just after the restart is tried again
# up to this many times, this far apart.
RETRIES = 3
RETRY_PAUSE = 1.5


# --- the stack: two daphne processes on a private PostgreSQL and Redis -----------


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    """Overrides tests/e2e/conftest.py's `stack` for this module: two daphne
    processes on a PostgreSQL cluster and a Redis of our own (DATABASE_URL and
    REDIS_URL are neither needed nor used), so the tests may stop them."""
    bindir = require_postgres()
    redis_binary = require_redis_server()
    with PrivatePostgres(bindir) as postgres, PrivateRedis(redis_binary) as redis:
        live = LiveStack(processes=2, database_url=postgres.url, redis_url=redis.url)
        live.postgres = postgres  # type: ignore[attr-defined]
        live.redis = redis  # type: ignore[attr-defined]
        try:
            # Not `with`: a server that fails to start must not leave the
            # other server behind.
            live.start()
            yield live
        finally:
            try:
                # LiveStack.close drops its database: PostgreSQL must be up.
                if not postgres.running:
                    postgres.start()
                live.close()
            finally:
                for server in live.servers:
                    server.stop()


@pytest.fixture(autouse=True)
def _healthy(stack: LiveStack) -> None:
    """Each test starts with PostgreSQL, Redis and both servers up, whatever an
    earlier one left behind."""
    postgres: PrivatePostgres = stack.postgres  # type: ignore[attr-defined]
    redis: PrivateRedis = stack.redis  # type: ignore[attr-defined]
    if not postgres.running:
        postgres.start()
    if not redis.running:
        redis.start()
    for server in stack.servers:
        if server.process is None or server.process.poll() is not None:
            server.start()


def _postgres(stack: LiveStack) -> PrivatePostgres:
    return stack.postgres  # type: ignore[attr-defined]


# --- server logs ---------------------------------------------------------------------


def server_logs(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """On failure, print what the servers (and PostgreSQL) logged during the
    test; on success, a summary of the servers' warnings and tracebacks.
    pytest shows either under "Captured stdout call" (-rP for passed tests)."""

    @functools.wraps(test)
    async def wrapper(**kwargs: Any) -> None:
        live: LiveStack = kwargs["stack"]
        offsets = [_size(server) for server in live.servers]
        pg_offset = len(_postgres(live).log())
        try:
            await test(**kwargs)
        except BaseException:  # pytest.fail's exception is a BaseException
            for index, server in enumerate(live.servers):
                print(f"--- daphne {index} log during the test ---")
                print(condensed(_since(server, offsets[index])))
            print("--- private PostgreSQL log during the test (tail) ---")
            print("\n".join(_postgres(live).log()[pg_offset:].splitlines()[-30:]))
            raise
        for index, server in enumerate(live.servers):
            print(f"daphne {index} during the test: {log_digest(_since(server, offsets[index]))}")

    return wrapper


def _size(server: Server) -> int:
    try:
        return server.log_path.stat().st_size
    except OSError:
        return 0


def _since(server: Server, offset: int) -> str:
    try:
        return server.log_path.read_bytes()[offset:].decode(errors="replace")
    except OSError:
        return ""


def _messages(log: str) -> list[str]:
    # Access-log lines drown the tracebacks: leave them out.
    return [line for line in log.splitlines() if " - - [" not in line]


_TRACEBACK_GLUE = ("Traceback", "During handling", "The above exception")


def _distinct(lines: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in lines:
        if line and not line[0].isspace() and not line.startswith(_TRACEBACK_GLUE):
            counts[line[:300]] = counts.get(line[:300], 0) + 1
    return counts


def condensed(log: str) -> str:
    """A server log, short: its first lines (the first traceback in full), how
    often each distinct message came, and its last lines."""
    lines = _messages(log)
    if len(lines) <= 120:
        return "\n".join(lines)
    summary = "\n".join(f"  {n} x {line}" for line, n in list(_distinct(lines).items())[:40])
    return (
        "\n".join(lines[:60])
        + f"\n[... {len(lines) - 100} lines; distinct messages in the whole log:]\n{summary}\n"
        + "[... the last lines:]\n"
        + "\n".join(lines[-40:])
    )


def log_digest(log: str) -> str:
    """One line: the tracebacks and each distinct message with its count."""
    lines = _messages(log)
    tracebacks = sum(1 for line in lines if line.startswith("Traceback"))
    distinct = _distinct(lines)
    if not distinct and not tracebacks:
        return "nothing logged"
    return f"{tracebacks} traceback(s); " + "; ".join(
        f"{n} x {line[:160]}" for line, n in distinct.items()
    )


# --- sockets that only read ------------------------------------------------------


@dataclass
class Watch:
    """A joined socket and every frame it received after `joined`, with the
    monotonic time each arrived. It never sends anything."""

    label: str
    player: Player
    socket: ClientConnection
    game_id: int
    seq: int  # joined.seq
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    closed_at: float | None = None
    task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            async for text in self.socket:
                self.frames.append((time.monotonic(), json.loads(text)))
        except ConnectionClosed:
            pass
        finally:
            self.closed_at = time.monotonic()

    def events(self) -> list[tuple[float, dict[str, Any]]]:
        """(arrival, frame) of this socket's game events (frames with a seq)."""
        return [
            (at, frame)
            for at, frame in self.frames
            if "seq" in frame and frame.get("gameId") == self.game_id
        ]

    def has_seq(self, seq: int) -> bool:
        return any(frame["seq"] >= seq for _, frame in self.events())

    def state(self) -> str:
        if self.closed_at is None:
            return "socket open"
        return f"socket closed with {self.socket.close_code} {self.socket.close_reason!r}"


async def watch(server: Server, player: Player, game_id: int, label: str) -> Watch:
    socket, frame = await joined(server, player, game_id)
    found = Watch(label, player, socket, game_id, seq=frame["seq"])
    found.task = asyncio.create_task(found._read())
    return found


async def sockets_on_both(party: Party, stack: LiveStack) -> list[Watch]:
    """A socket for each player of the party on each server process."""
    return [
        await watch(server, player, party.game_id, f"player{k}@daphne{index}")
        for index, server in enumerate(stack.servers)
        for k, player in enumerate(party.players)
    ]


async def close_all(watches: list[Watch]) -> None:
    await asyncio.gather(*(w.socket.close() for w in watches), return_exceptions=True)
    tasks = [w.task for w in watches if w.task is not None]
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    for task in tasks:
        task.cancel()


async def wait_until(done: Callable[[], bool], deadline: float) -> None:
    while True:
        if done() or time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.05)


async def wait_for_seq(watches: list[Watch], count: int, deadline: float) -> None:
    """Until every socket got an event at seq (its joined seq + count) or
    closed, or the deadline; then SETTLE more for duplicates."""
    await wait_until(
        lambda: all(w.closed_at is not None or w.has_seq(w.seq + count) for w in watches),
        deadline,
    )
    await asyncio.sleep(SETTLE)


def delivery_problems(
    watches: list[Watch], types: list[str], deadline: float, since: float
) -> list[str]:
    """For each socket: its game events after `joined` must be exactly `types`
    at seq joined+1, +2, …, each arriving by `deadline`. Times in the report
    are seconds after `since`."""
    problems = []
    for w in watches:
        got = [(at, frame) for at, frame in w.events() if frame["seq"] > w.seq]
        want = [(w.seq + index, type_) for index, type_ in enumerate(types, 1)]
        received = [(frame["seq"], frame["type"]) for _, frame in got]
        issues = []
        if received != want:
            seqs = [seq for seq, _ in received]
            missing = sorted({seq for seq, _ in want} - set(seqs))
            duplicated = sorted({seq for seq in seqs if seqs.count(seq) > 1})
            extra = sorted(set(seqs) - {seq for seq, _ in want})
            if missing:
                issues.append(f"missing seq {missing}")
            if duplicated:
                issues.append(f"duplicated seq {duplicated}")
            if seqs != sorted(seqs):
                issues.append("out of order")
            if extra:
                issues.append(f"unexpected seq {extra}")
            if not issues:
                issues.append("wrong types")
        else:
            issues.extend(
                f"seq {frame['seq']} late by {at - deadline:.2f}s"
                for at, frame in got
                if at > deadline
            )
        if issues:
            wanted = ", ".join(f"{seq} {type_}" for seq, type_ in want)
            arrived = ", ".join(
                f"{frame['seq']} {frame['type']} at {at - since:+.2f}s" for at, frame in got
            )
            problems.append(
                f"{w.label} (joined at seq {w.seq}; {w.state()}): {'; '.join(issues)}. "
                f"Expected [{wanted}] by {deadline - since:+.1f}s; "
                f"received [{arrived or 'nothing'}]"
            )
    return problems


def arrivals(watches: list[Watch], since: float) -> str:
    """When the last socket got its last event, in seconds after `since`."""
    times = [at for w in watches for at, frame in w.events() if frame["seq"] > w.seq]
    if not times:
        return "no event arrived"
    return f"first at {min(times) - since:+.2f}s, last at {max(times) - since:+.2f}s"


def stored_events(stack: LiveStack, game_id: int, after: int) -> str:
    """What the database holds for the game after `after` (failure reports)."""
    try:
        out = stack.shell(
            "from games.models import Game, GameEvent\n"
            f"game = Game.objects.get(pk={game_id})\n"
            f"rows = GameEvent.objects.filter(game=game, seq__gt={after}).order_by('seq')\n"
            "print(f'game seq {game.seq}; stored events', [(e.seq, e.type) for e in rows])"
        )
        return out.strip().splitlines()[-1]
    except Exception as error:  # pragma: no cover - a report only
        return f"(could not read the database: {error})"


def report(stack: LiveStack, problems: list[str], game_id: int, after: int) -> str:
    return (
        f"{len(problems)} socket(s) did not get exactly the reveal's events, in order, once:\n  "
        + "\n  ".join(problems)
        + f"\nDatabase: {stored_events(stack, game_id, after)}"
    )


# --- the faults and the reveal -----------------------------------------------------------


@dataclass
class Restart:
    stopped: float  # monotonic: PostgreSQL is down
    back: float  # monotonic: PostgreSQL accepts connections again
    stop_took: float
    start_took: float

    def __str__(self) -> str:
        return (
            f"PostgreSQL stopped (fast) in {self.stop_took:.2f}s, "
            f"down {self.back - self.stopped:.2f}s, started in {self.start_took:.2f}s"
        )


async def postgres_restart(stack: LiveStack, down: float = 0.0) -> Restart:
    """Stop the private PostgreSQL (fast: every client connection is
    terminated), keep it down `down` s, start it again (same port, same data)."""
    postgres = _postgres(stack)
    began = time.monotonic()
    await asyncio.to_thread(postgres.stop, "fast")
    stopped = time.monotonic()
    assert not postgres.running
    await asyncio.sleep(down)
    again = time.monotonic()
    await asyncio.to_thread(postgres.start)
    back = time.monotonic()
    return Restart(stopped, back, stopped - began, back - again)


@dataclass
class Attempt:
    status: int
    body: Any
    at: float  # seconds after PostgreSQL was back, when the answer came
    took: float

    def __str__(self) -> str:
        body = json.dumps(self.body)[:300] if self.body is not None else "no body"
        return f"{self.status} at {self.at:+.2f}s (took {self.took:.2f}s): {body}"


def reveal(server: Server, party: Party, index: int, nominee: int) -> tuple[int, Any, float]:
    """Reveal category `index` (winner: its nominee `nominee`) through `server`:
    (status, body, seconds the call took)."""
    category_id, _, nominations = party.categories[index]
    started = time.monotonic()
    status, body = http(
        server,
        "POST",
        f"/api/categories/{category_id}/winner",
        token=party.staff_token,
        body={"nominationId": nominations[nominee]},
    )
    return status, body, time.monotonic() - started


async def reveal_after_the_fault(
    stack: LiveStack, party: Party, back: float, what: str
) -> list[Attempt]:
    """Reveal the party's first category through server 0: the first request
    after PostgreSQL came back. Another answer than 200 is a finding (a
    warning in the test summary); the same reveal is tried again up to
    RETRIES times, and one of them must answer 200."""
    attempts: list[Attempt] = []
    for _ in range(1 + RETRIES):
        status, body, took = await asyncio.to_thread(reveal, stack.servers[0], party, 0, 0)
        attempts.append(Attempt(status, body, time.monotonic() - back, took))
        if status == 200:
            break
        await asyncio.sleep(RETRY_PAUSE)
    tried = "\n  ".join(str(attempt) for attempt in attempts)
    print(f"POST /winner after {what} (+0 = PostgreSQL back):\n  {tried}")
    if attempts[0].status != 200:
        warnings.warn(
            f"the first POST /winner after {what} answered {attempts[0]}",
            UserWarning,
            stacklevel=2,
        )
    assert attempts[-1].status == 200, (
        f"POST /winner after {what} never answered 200 in {len(attempts)} tries "
        f"(+0 = PostgreSQL back):\n  {tried}"
    )
    return attempts


def recovery_failures(stack: LiveStack, offsets: list[int]) -> list[int]:
    """How many failed event-log reads each server logged since `offsets`."""
    return [
        sum(
            "catching up from the event log failed" in line or "checking sign-outs failed" in line
            for line in _since(server, offsets[index]).splitlines()
        )
        for index, server in enumerate(stack.servers)
    ]


# --- 1. PostgreSQL restarts between reveals ---------------------------------------------


@server_logs
async def test_postgres_restart_then_a_reveal_reaches_every_socket(stack):
    party = make_party(stack, "pg-restart", 4, [5, 3, 2])
    watches = await sockets_on_both(party, stack)
    try:
        restart = await postgres_restart(stack)
        attempts = await reveal_after_the_fault(stack, party, restart.back, "a PostgreSQL restart")
        answered = restart.back + attempts[-1].at
        deadline = answered + DELIVERY
        await wait_for_seq(watches, 2, deadline)
        problems = delivery_problems(
            watches, ["game:status", "leaderboard:update"], deadline, restart.back
        )
        if problems:
            pytest.fail(
                f"{restart}; the reveal answered 200 at {attempts[-1].at:+.2f}s "
                f"(+0 = PostgreSQL back): " + report(stack, problems, party.game_id, watches[0].seq)
            )
        print(f"{restart}; events after PostgreSQL was back: {arrivals(watches, restart.back)}")
        for w in watches:
            update = w.events()[-1][1]
            assert update["lastRevealed"]["categoryId"] == party.categories[0][0], (w.label, update)
    finally:
        await close_all(watches)


# --- 2. Recovery from the event log after the restart ------------------------------------


@server_logs
async def test_recovery_reads_survive_a_postgres_restart(stack):
    """After the restart, each hub's recovery connection is dead, and its
    periodic check has failed on it at least once. The reveal is committed by
    a process whose channel-layer send cannot reach Redis: the only way the
    sockets get its events is each hub's recovery read from the restarted
    database."""
    party = make_party(stack, "pg-recovery", 4, [5, 3, 2])
    watches = await sockets_on_both(party, stack)
    offsets = [_size(server) for server in stack.servers]
    category_id, _, nominations = party.categories[0]
    code = (
        "from games import services\n"
        f"services.category_reveal(category_id={category_id}, nomination_id={nominations[1]})\n"
        "print('revealed')\n"
    )
    env = {**stack.env(), "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    try:
        restart = await postgres_restart(stack)
        # Each hub's periodic check (every 2 s) meets its dead connection.
        await asyncio.sleep(3)
        failed = recovery_failures(stack, offsets)
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "manage.py", "shell", "-c", code],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        committed = time.monotonic()
        assert result.returncode == 0 and "revealed" in result.stdout, (
            f"the reveal in a process without Redis failed ({result.returncode}):\n"
            f"{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
        )
        deadline = committed + DELIVERY
        await wait_for_seq(watches, 2, deadline)
        problems = delivery_problems(
            watches, ["game:status", "leaderboard:update"], deadline, committed
        )
        if problems:
            pytest.fail(
                f"{restart}; failed event-log reads logged before the reveal, per server: "
                f"{failed}; a reveal committed {committed - restart.back:.2f}s after PostgreSQL "
                "was back by a process whose channel-layer send failed (+0 = that process "
                "exited): " + report(stack, problems, party.game_id, watches[0].seq)
            )
        print(
            f"{restart}; failed event-log reads logged in the 3 s after, per server: {failed}; "
            f"reveal committed at {committed - restart.back:+.2f}s; events after the commit: "
            f"{arrivals(watches, committed)}"
        )
    finally:
        await close_all(watches)


# --- 3. PostgreSQL down for a few seconds while sockets are open -------------------------


@server_logs
async def test_sockets_stay_open_while_postgres_is_down(stack):
    party = make_party(stack, "pg-down", 4, [5, 3, 2])
    watches = await sockets_on_both(party, stack)
    try:
        postgres = _postgres(stack)
        began = time.monotonic()
        await asyncio.to_thread(postgres.stop, "fast")
        stopped = time.monotonic()
        assert not postgres.running
        await asyncio.sleep(3)
        closed = [
            f"{w.label}: {w.state()} at {w.closed_at - stopped:+.2f}s"
            for w in watches
            if w.closed_at is not None
        ]
        again = time.monotonic()
        await asyncio.to_thread(postgres.start)
        back = time.monotonic()
        restart = Restart(stopped, back, stopped - began, back - again)
        assert not closed, (
            f"the server closed sockets while PostgreSQL was down ({restart}; "
            "+0 = it stopped):\n  " + "\n  ".join(closed)
        )
        attempts = await reveal_after_the_fault(
            stack, party, restart.back, "PostgreSQL was down 3 s"
        )
        answered = restart.back + attempts[-1].at
        deadline = answered + DELIVERY
        await wait_for_seq(watches, 2, deadline)
        problems = delivery_problems(
            watches, ["game:status", "leaderboard:update"], deadline, restart.back
        )
        if problems:
            pytest.fail(
                f"{restart}; the reveal answered 200 at {attempts[-1].at:+.2f}s "
                f"(+0 = PostgreSQL back): " + report(stack, problems, party.game_id, watches[0].seq)
            )
        print(f"{restart}; events after PostgreSQL was back: {arrivals(watches, restart.back)}")
    finally:
        await close_all(watches)
