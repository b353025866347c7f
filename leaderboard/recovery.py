"""What a hub reads from the database to catch its sockets up.

The channel layer is the fast path and may lose a message: a Redis restart
empties every group, a process can die between its commit and its send, a
group over capacity drops what does not fit. The event log in the database
is the truth: each hub asks it, for the games its sockets follow, which
events they are missing (periodically, whenever the channel layer comes
back, and whenever a socket sees a gap in its seqs), and replays them. The
same check finds users who signed out, so their sockets close even when the
sign-out's own message was lost.

The reads run on one thread of the hub's own: one database connection per
process for all of it, and reads that never overlap.
"""

from __future__ import annotations

import asyncio
import functools
import operator
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Q

from accounts.models import User
from games.models import Game, GameEvent
from games.sql import id_set

T = TypeVar("T")


def check_seconds() -> float:
    """How often each hub checks the log: bounds how late a lost event is."""
    return settings.ENVELOPE_RECOVERY_SECONDS


@dataclass(frozen=True, slots=True)
class StoredEvent:
    game_id: int
    seq: int
    type: str
    payload: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Missed:
    current: dict[int, int]  # game id → its seq in the database now
    events: list[StoredEvent]  # after the asked seq, by game then seq


def missed_events(after: dict[int, int]) -> Missed:
    """For each game, the stored events after `after[game]`: one query for
    the games' seqs, and one more only when some game is behind."""
    current = dict(Game.objects.filter(pk__in=id_set(list(after))).values_list("pk", "seq"))
    behind = {game_id: seq for game_id, seq in after.items() if current.get(game_id, 0) > seq}
    if not behind:
        return Missed(current, [])
    condition = functools.reduce(
        operator.or_, (Q(game_id=game_id, seq__gt=seq) for game_id, seq in behind.items())
    )
    rows = (
        GameEvent.objects.filter(condition)
        .order_by("game_id", "seq")
        .values_list("game_id", "seq", "type", "payload")
    )
    return Missed(current, [StoredEvent(*row) for row in rows])


def sign_outs(since: dict[int, float]) -> dict[int, float]:
    """Users among `since` (user id → a POSIX time) who signed out at or after
    that time: user id → when (POSIX time)."""
    if not since:
        return {}
    earliest = datetime.fromtimestamp(min(since.values()), tz=UTC)
    rows = User.objects.filter(pk__in=id_set(list(since)), signed_out_at__gte=earliest).values_list(
        "pk", "signed_out_at"
    )
    return {user_id: at.timestamp() for user_id, at in rows if at.timestamp() >= since[user_id]}


class LogReader:
    """Runs a hub's database reads on one thread of its own."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envelope-recovery")

    async def run(self, read: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(_fresh, read, *args))

    async def close(self) -> None:
        """Close the thread's connection (a test database must be droppable)."""
        try:
            await self.run(connections.close_all)
        finally:
            self._executor.shutdown(wait=False)


def _fresh(read: Callable[..., T], *args: Any) -> T:
    # Around each read, as Django does around each request: a connection
    # broken by a database restart is replaced, and one past its age (or a
    # pooled one) is given back.
    close_old_connections()
    try:
        return read(*args)
    finally:
        close_old_connections()
