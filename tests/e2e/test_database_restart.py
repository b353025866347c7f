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
the shared services are never touched. The sockets here only read; they, the
checks of what they got and the server-log reports are in
tests/e2e/fault_watch.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e import fault_watch
from tests.e2e.conftest import Party, make_party
from tests.e2e.fault_watch import (
    Watch,
    bring_up,
    check_delivery,
    close_all,
    first_reveal_due,
    log_since,
    log_size,
    reveal,
    reveal_without_redis,
    sockets_on_both,
)
from tests.faults import PrivatePostgres, PrivateRedis, private_stack
from tests.liveserver import LiveStack

pytestmark = pytest.mark.e2e

# "Within 10 s": the reveal's events must reach every socket by then.
DELIVERY = 10.0
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
    with private_stack(2, postgres=True) as live:
        yield live


def _postgres(stack: LiveStack) -> PrivatePostgres:
    return stack.postgres  # type: ignore[attr-defined]


def _redis(stack: LiveStack) -> PrivateRedis:
    return stack.redis  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _healthy(stack: LiveStack) -> None:
    """Each test starts with PostgreSQL, Redis and both servers up, whatever an
    earlier one left behind."""
    bring_up(stack, _postgres(stack), _redis(stack))


def _postgres_log(stack: LiveStack) -> Callable[[], str]:
    """For a failed test's report: the last 30 lines of what the private
    PostgreSQL logs from now on."""
    offset = len(_postgres(stack).log())

    def tail() -> str:
        during = _postgres(stack).log()[offset:].splitlines()[-30:]
        return "--- private PostgreSQL log during the test (tail) ---\n" + "\n".join(during)

    return tail


# On failure, print what the servers (and PostgreSQL) logged during the test;
# on success, a summary of the servers' warnings and tracebacks (-rP shows it).
server_logs = fault_watch.server_logs(_postgres_log, digest=True)


def arrivals(watches: list[Watch], since: float) -> str:
    """When the last socket got its last event, in seconds after `since`."""
    times = [at for w in watches for at, frame in w.events() if frame["seq"] > w.seq]
    if not times:
        return "no event arrived"
    return f"first at {min(times) - since:+.2f}s, last at {max(times) - since:+.2f}s"


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


async def postgres_stop(stack: LiveStack) -> tuple[float, float]:
    """Stop the private PostgreSQL (fast: every client connection is
    terminated). Returns (when the stop began, when it was down), monotonic."""
    postgres = _postgres(stack)
    began = time.monotonic()
    await asyncio.to_thread(postgres.stop, "fast")
    stopped = time.monotonic()
    assert not postgres.running
    return began, stopped


async def postgres_start(stack: LiveStack, began: float, stopped: float) -> Restart:
    """Start the private PostgreSQL again (same port, same data) after
    `postgres_stop`, which returned `began` and `stopped`."""
    again = time.monotonic()
    await asyncio.to_thread(_postgres(stack).start)
    back = time.monotonic()
    return Restart(stopped, back, stopped - began, back - again)


async def postgres_restart(stack: LiveStack, down: float = 0.0) -> Restart:
    """Stop the private PostgreSQL (fast: every client connection is
    terminated), keep it down `down` s, start it again (same port, same data)."""
    began, stopped = await postgres_stop(stack)
    await asyncio.sleep(down)
    return await postgres_start(stack, began, stopped)


@dataclass
class Attempt:
    status: int
    body: Any
    at: float  # seconds after PostgreSQL was back, when the answer came
    took: float

    def __str__(self) -> str:
        body = json.dumps(self.body)[:300] if self.body is not None else "no body"
        return f"{self.status} at {self.at:+.2f}s (took {self.took:.2f}s): {body}"


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
            stacklevel=3,  # the test, which called reveal_reaches_every_socket
        )
    assert attempts[-1].status == 200, (
        f"POST /winner after {what} never answered 200 in {len(attempts)} tries "
        f"(+0 = PostgreSQL back):\n  {tried}"
    )
    return attempts


async def reveal_reaches_every_socket(
    stack: LiveStack, party: Party, watches: list[Watch], restart: Restart, what: str
) -> None:
    """The first reveal after PostgreSQL came back (`reveal_after_the_fault`,
    `what` the fault) must reach every socket within DELIVERY of its 200."""
    attempts = await reveal_after_the_fault(stack, party, restart.back, what)
    answered = restart.back + attempts[-1].at
    await check_delivery(
        stack,
        watches,
        first_reveal_due(answered + DELIVERY),
        restart.back,
        f"{restart}; the reveal answered 200 at {attempts[-1].at:+.2f}s (+0 = PostgreSQL back): ",
    )
    print(f"{restart}; events after PostgreSQL was back: {arrivals(watches, restart.back)}")


def recovery_failures(stack: LiveStack, offsets: list[int]) -> list[int]:
    """How many failed event-log reads each server logged since `offsets`."""
    return [
        sum(
            "catching up from the event log failed" in line or "checking sign-outs failed" in line
            for line in log_since(server, offsets[index]).splitlines()
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
        await reveal_reaches_every_socket(stack, party, watches, restart, "a PostgreSQL restart")
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
    offsets = [log_size(server) for server in stack.servers]
    try:
        restart = await postgres_restart(stack)
        # Each hub's periodic check (every 2 s) meets its dead connection.
        await asyncio.sleep(3)
        failed = recovery_failures(stack, offsets)
        committed = await reveal_without_redis(stack, party)
        await check_delivery(
            stack,
            watches,
            first_reveal_due(committed + DELIVERY),
            committed,
            f"{restart}; failed event-log reads logged before the reveal, per server: "
            f"{failed}; a reveal committed {committed - restart.back:.2f}s after PostgreSQL "
            "was back by a process whose channel-layer send failed (+0 = that process "
            "exited): ",
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
        began, stopped = await postgres_stop(stack)
        await asyncio.sleep(3)
        closed = [
            f"{w.label}: {w.state()} at {w.closed_at - stopped:+.2f}s"
            for w in watches
            if w.closed_at is not None
        ]
        restart = await postgres_start(stack, began, stopped)
        assert not closed, (
            f"the server closed sockets while PostgreSQL was down ({restart}; "
            "+0 = it stopped):\n  " + "\n  ".join(closed)
        )
        await reveal_reaches_every_socket(stack, party, watches, restart, "PostgreSQL was down 3 s")
    finally:
        await close_all(watches)
