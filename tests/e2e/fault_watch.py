"""Watching real clients through a fault: the helpers the end-to-end fault tests
(test_delivery_faults.py: Redis and server processes; test_database_restart.py:
PostgreSQL) share.

- Sockets that only read (`watch`, `sockets_on_both`): each records every frame
  it receives with its arrival time, and never sends anything of its own.
- Waiting for them (`wait_until`, `wait_for_seq`) and checking what they got
  (`check_delivery`, built on `delivery_problems` and `report`): every socket
  must receive exactly the game's events, in seq order, once, each by its
  deadline (`Due`).
- The servers' logs around a test (`server_logs`, `condensed`, `log_digest`),
  printed when it fails.
- The faults' reveals: one through the API (`reveal`), one committed by a
  process whose channel layer cannot reach Redis (`reveal_without_redis`).
- `bring_up`: each test starts with its services and both servers running.
"""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import Party, Player, http, joined
from tests.faults import closed_port
from tests.liveserver import ROOT, LiveStack, Server

# After the expected frames arrived: how long a late duplicate gets to show up.
SETTLE = 1.5


# --- the stack's processes ----------------------------------------------------------


class PrivateService(Protocol):
    """A private redis-server or PostgreSQL cluster (tests/faults.py)."""

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...


def bring_up(stack: LiveStack, *services: PrivateService) -> None:
    """Start whichever of `services`, then of the stack's servers, is down
    (an earlier test may have stopped or killed it)."""
    for service in services:
        if not service.running:
            service.start()
    for server in stack.servers:
        if server.process is None or server.process.poll() is not None:
            server.start()


# --- server logs ---------------------------------------------------------------------

Test = Callable[..., Awaitable[None]]


def server_logs(
    service_log: Callable[[LiveStack], Callable[[], str]], *, digest: bool = False
) -> Callable[[Test], Test]:
    """A decorator for a module's async tests (they take the `stack` fixture).
    When a test fails, it prints what each daphne process logged during the
    test, condensed, then the private service's log: `service_log(stack)` is
    called as the test starts, and what it returns is called for that text.
    With `digest`, a test that passes prints one line a server: the warnings
    and tracebacks it logged. pytest shows either under "Captured stdout call"
    (-rP for passed tests)."""

    def decorate(test: Test) -> Test:
        @functools.wraps(test)
        async def wrapper(**kwargs: Any) -> None:
            live: LiveStack = kwargs["stack"]
            offsets = [log_size(server) for server in live.servers]
            service_tail = service_log(live)
            try:
                await test(**kwargs)
            except BaseException:  # pytest.fail's exception is a BaseException
                for index, server in enumerate(live.servers):
                    print(f"--- daphne {index} log during the test ---")
                    print(condensed(log_since(server, offsets[index])))
                print(service_tail())
                raise
            if digest:
                for index, server in enumerate(live.servers):
                    during = log_digest(log_since(server, offsets[index]))
                    print(f"daphne {index} during the test: {during}")

        return wrapper

    return decorate


def log_size(server: Server) -> int:
    try:
        return server.log_path.stat().st_size
    except OSError:
        return 0


def log_since(server: Server, offset: int) -> str:
    """What the server logged after `offset` (a `log_size`)."""
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
    joined: dict[str, Any]
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

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [frame for _, frame in self.frames if frame.get("type") == type_]

    def state(self) -> str:
        if self.closed_at is None:
            return "socket open"
        return f"socket closed with {self.socket.close_code} {self.socket.close_reason!r}"


async def watch(server: Server, player: Player, game_id: int, label: str, **fields: Any) -> Watch:
    """Join the game on `server` as `player` (`fields` go into the join frame)
    and record what comes after `joined`."""
    socket, frame = await joined(server, player, game_id, **fields)
    found = Watch(label, player, socket, game_id, seq=frame["seq"], joined=frame)
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


async def wait_for_seq(
    watches: list[Watch], count: int, deadline: float, settle: float = SETTLE
) -> None:
    """Until every socket got an event at seq (its joined seq + count) or
    closed, or the deadline; then `settle` more for duplicates."""
    await wait_until(
        lambda: all(w.closed_at is not None or w.has_seq(w.seq + count) for w in watches),
        deadline,
    )
    await asyncio.sleep(settle)


# --- did every socket get the game's events? ----------------------------------------


@dataclass(frozen=True)
class Due:
    """An expected event: its type, and the time by which it must arrive."""

    type: str
    by: float


def first_reveal_due(by: float) -> list[Due]:
    """The events of a game's first reveal, both due by `by`."""
    return [Due("game:status", by), Due("leaderboard:update", by)]


def delivery_problems(
    watches: list[Watch], expected: list[Due], since: float, skip: int = 0
) -> list[str]:
    """For each socket: its game events after the first `skip` ones following
    `joined` must be exactly `expected` (seq joined+skip+1, +2, …), each
    arriving by its deadline. Times in the report are seconds after `since`
    (when the fault ended)."""
    problems = []
    for w in watches:
        start = w.seq + skip
        got = [(at, frame) for at, frame in w.events() if frame["seq"] > start]
        want = [(start + index, due.type) for index, due in enumerate(expected, 1)]
        received = [(frame["seq"], frame["type"]) for _, frame in got]
        issues = []
        if received != want:
            seqs = [seq for seq, _ in received]
            missing = sorted({seq for seq, _ in want} - set(seqs))
            duplicated = sorted({seq for seq in seqs if seqs.count(seq) > 1})
            if missing:
                issues.append(f"missing seq {missing}")
            if duplicated:
                issues.append(f"duplicated seq {duplicated}")
            if seqs != sorted(seqs):
                issues.append("out of order")
            extra = sorted(set(seqs) - {seq for seq, _ in want})
            if extra:
                issues.append(f"unexpected seq {extra}")
            if not issues:
                issues.append("wrong types")
        else:
            for (at, frame), due in zip(got, expected, strict=True):
                if at > due.by:
                    issues.append(f"seq {frame['seq']} late by {at - due.by:.2f}s")
        if issues:
            wanted = ", ".join(f"{seq} {type_}" for seq, type_ in want)
            arrived = ", ".join(
                f"{frame['seq']} {frame['type']} at {at - since:+.2f}s" for at, frame in got
            )
            problems.append(
                f"{w.label} (last seq {start}; {w.state()}): {'; '.join(issues)}. "
                f"Expected [{wanted}], by {expected[-1].by - since:+.1f}s at the latest; "
                f"received [{arrived or 'nothing'}]"
            )
    return problems


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
        f"{len(problems)} socket(s) did not get exactly the game's events in order:\n  "
        + "\n  ".join(problems)
        + f"\nDatabase: {stored_events(stack, game_id, after)}"
    )


async def check_delivery(
    stack: LiveStack, watches: list[Watch], expected: list[Due], since: float, what: str
) -> None:
    """Wait until every socket (all following one game) got as many events as
    `expected`, or closed, or the last deadline passed, then SETTLE more; fail
    the test, `what` first, unless each got exactly `expected` after `joined`
    (times in the report: seconds after `since`)."""
    await wait_for_seq(watches, len(expected), max(due.by for due in expected))
    problems = delivery_problems(watches, expected, since)
    if problems:
        first = watches[0]
        pytest.fail(what + report(stack, problems, first.game_id, first.seq))


# --- the reveals --------------------------------------------------------------------


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


async def reveal_without_redis(stack: LiveStack, party: Party) -> float:
    """Reveal the party's first category (winner: its nominee 1) in a process
    of its own whose REDIS_URL is a closed port: the reveal commits, its
    channel-layer send fails, and only the servers' reads of the event log can
    bring its events to the sockets. Returns when that process exited
    (monotonic)."""
    category_id, _, nominations = party.categories[0]
    code = (
        "from games import services\n"
        f"services.category_reveal(category_id={category_id}, nomination_id={nominations[1]})\n"
        "print('revealed')\n"
    )
    env = {**stack.env(), "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
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
    return committed
