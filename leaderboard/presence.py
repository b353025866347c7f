"""Who is watching a game: users with at least one socket joined to it.

A user with several tabs counts once. Each socket is an entry
`(game, user, channel)` with an expiry; sockets refresh their entries every
REFRESH_SECONDS, so a process that dies without cleaning up leaves no ghost
for longer than TTL_SECONDS. With REDIS_URL the entries live in Redis (shared
by every server process); without it, in a dict of this process.

Redis layout, per game: `envelope:presence:{game}` is a sorted set of user ids
scored by the latest expiry of any of their sockets, and
`envelope:presence:{game}:{user}` a sorted set of that user's channel names
scored by expiry. Join and leave are Lua scripts, so two tabs of one user
joining at once on two processes still announce the user exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from django.conf import settings
from redis.exceptions import RedisError

from config import metrics
from leaderboard.batching import Batcher

logger = logging.getLogger(__name__)

TTL_SECONDS = 60
REFRESH_SECONDS = 20
REFRESH_BATCH = 500  # sockets per Redis pipeline when a process refreshes them


@dataclass(frozen=True, slots=True)
class SocketGames:
    """One socket's presence entries: the games it follows, as `user_id`."""

    game_ids: list[int]
    user_id: int
    channel: str


class SharedRead:
    """Reads of one key asked for in the same turn of the event loop share one
    read. The read starts on the loop's next turn, after every caller asked,
    so it sees whatever each of them wrote before asking (a join sees itself)."""

    def __init__(self, read: Callable[[int], Awaitable[list[int]]]) -> None:
        self._read = read
        # (loop, key) → the result of the read not started yet
        self._pending: dict[tuple[asyncio.AbstractEventLoop, int], asyncio.Future[list[int]]] = {}

    async def read(self, key: int) -> list[int]:
        loop = asyncio.get_running_loop()
        result = self._pending.get((loop, key))
        if result is None:
            result = self._pending[(loop, key)] = loop.create_future()
            loop.call_soon(self._start, loop, key, result)
        # A copy each: callers may change their list.
        return list(await asyncio.shield(result))

    def _start(
        self, loop: asyncio.AbstractEventLoop, key: int, result: asyncio.Future[list[int]]
    ) -> None:
        del self._pending[(loop, key)]  # later callers start a read of their own

        def done(task: asyncio.Task[list[int]]) -> None:
            if result.cancelled():
                return
            if task.cancelled():
                result.cancel()
            elif task.exception() is not None:
                result.set_exception(task.exception())
            else:
                result.set_result(task.result())

        loop.create_task(self._read(key)).add_done_callback(done)


T = TypeVar("T")


def listed(users: list[T]) -> list[T]:
    """The users a frame names: at most ENVELOPE_ONLINE_LIST_LIMIT of them.

    A frame that named everyone made a burst of N joins cost O(N²) bytes (each
    `joined` and each diff listing up to N names); `onlineCount` beside the
    list is always the whole count.
    """
    return users[: settings.ENVELOPE_ONLINE_LIST_LIMIT]


class PresenceStore(Protocol):
    async def join(self, *, game_id: int, user_id: int, channel: str) -> bool:
        """Add a socket; True when it is the user's first live socket in the game."""

    async def join_online(
        self, *, game_id: int, user_id: int, channel: str
    ) -> tuple[bool, list[int]]:
        """`join`, then `online` (which includes this socket's user)."""

    async def leave(self, *, game_id: int, user_id: int, channel: str) -> bool:
        """Remove a socket; True when it was the user's last one in the game."""

    async def online(self, *, game_id: int) -> list[int]:
        """User ids with a live socket in the game."""

    async def online_many(self, game_ids: list[int]) -> dict[int, list[int]]:
        """`online` of several games at once."""

    async def refresh(self, sockets: Iterable[SocketGames]) -> None:
        """Push the expiry of these sockets' entries forward."""


class MemoryPresence:
    """One process's presence (the in-memory channel layer serves one process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        # game id → user id → channel name → expiry
        self.games: dict[int, dict[int, dict[str, float]]] = {}

    def _live(self, game_id: int) -> dict[int, dict[str, float]]:
        now = self.clock()
        users = self.games.setdefault(game_id, {})
        for user_id in list(users):
            channels = users[user_id]
            for channel in [c for c, expiry in channels.items() if expiry <= now]:
                del channels[channel]
            if not channels:
                del users[user_id]
        return users

    async def join(self, *, game_id: int, user_id: int, channel: str) -> bool:
        users = self._live(game_id)
        first = user_id not in users
        users.setdefault(user_id, {})[channel] = self.clock() + TTL_SECONDS
        return first

    async def join_online(
        self, *, game_id: int, user_id: int, channel: str
    ) -> tuple[bool, list[int]]:
        first = await self.join(game_id=game_id, user_id=user_id, channel=channel)
        return first, await self.online(game_id=game_id)

    async def leave(self, *, game_id: int, user_id: int, channel: str) -> bool:
        users = self.games.get(game_id, {})
        channels = users.get(user_id)
        if channels is None or channels.pop(channel, None) is None:
            return False
        self._live(game_id)
        last = user_id not in users
        if not users:
            del self.games[game_id]
        return last

    async def online(self, *, game_id: int) -> list[int]:
        return sorted(self._live(game_id))

    async def online_many(self, game_ids: list[int]) -> dict[int, list[int]]:
        return {game_id: sorted(self._live(game_id)) for game_id in game_ids}

    async def refresh(self, sockets: Iterable[SocketGames]) -> None:
        expiry = self.clock() + TTL_SECONDS
        for socket in sockets:
            for game_id in socket.game_ids:
                users = self.games.setdefault(game_id, {})
                users.setdefault(socket.user_id, {})[socket.channel] = expiry


# What an unreachable Redis raises: redis-py's errors (connection refused or
# reset, timeouts, no free connection in the pool) and bare socket errors.
UNREACHABLE = (RedisError, OSError)


class OutageLog:
    """Presence failures while Redis is away, logged as one line when the
    first one happens and one when Redis answers again, with the count in
    between; never a traceback per socket."""

    def __init__(self) -> None:
        self.failures = 0

    def failed(self, what: str, error: BaseException) -> None:
        if self.failures == 0:
            logger.warning(
                "presence: Redis unreachable (%s: %s: %s); further failures are counted",
                what,
                type(error).__name__,
                error,
            )
        self.failures += 1

    def ok(self) -> None:
        if self.failures:
            logger.warning("presence: Redis answers again after %d failed call(s)", self.failures)
            self.failures = 0


_JOIN = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local before = redis.call('ZCARD', KEYS[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if before == 0 then return 1 end
return 0
"""

_LEAVE = """
local had = redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[2]) > 0 or had == 0 then return 0 end
return redis.call('ZREM', KEYS[1], ARGV[3])
"""


class RedisPresence:
    """Presence shared by every process through Redis (wall-clock expiries,
    since the processes share no monotonic clock).

    Its connections are the process's shared, bounded pool
    (leaderboard.redis_pool), the channel layer's. While Redis is away a
    leave or a refresh is given up (the entries expire by themselves) and a
    join or a read fails to its caller; either way the outage is logged once
    (`OutageLog`), not once per socket."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.clock = clock
        # redis.asyncio connections belong to the loop that made them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._online_reads = SharedRead(self._read_online)
        self._joins: Batcher[tuple[int, int, str], tuple[bool, list[int]]] = Batcher(
            self._join_many
        )
        self.outage = OutageLog()

    def _client(self) -> Any:  # redis.asyncio.Redis
        import redis.asyncio as aioredis

        from leaderboard.redis_pool import async_pool

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = aioredis.Redis(connection_pool=async_pool(self.url))
            client.presence_join = client.register_script(_JOIN)
            client.presence_leave = client.register_script(_LEAVE)
            self._clients[loop] = client
        return client

    @staticmethod
    def _keys(game_id: int, user_id: int) -> list[str]:
        return [f"envelope:presence:{game_id}", f"envelope:presence:{game_id}:{user_id}"]

    async def join(self, *, game_id: int, user_id: int, channel: str) -> bool:
        return (await self.join_online(game_id=game_id, user_id=user_id, channel=channel))[0]

    async def join_online(
        self, *, game_id: int, user_id: int, channel: str
    ) -> tuple[bool, list[int]]:
        # The joins of a burst go to Redis together, with the read of who is
        # online after them: one pipeline per batch, not round trips per socket.
        first, online = await self._joins.ask((game_id, user_id, channel))
        return first, list(online)  # a copy each: callers may change their list

    async def _join_many(self, joins: list[tuple[int, int, str]]) -> list[tuple[bool, list[int]]]:
        client = self._client()
        now = self.clock()
        game_ids = list(dict.fromkeys(game_id for game_id, _, _ in joins))
        try:
            async with client.pipeline(transaction=False) as pipe:
                for game_id, user_id, channel in joins:
                    args = [now, now + TTL_SECONDS, channel, user_id, TTL_SECONDS * 2]
                    await client.presence_join(
                        keys=self._keys(game_id, user_id), args=args, client=pipe
                    )
                for game_id in game_ids:  # after the joins: each sees itself
                    pipe.zrangebyscore(self._keys(game_id, 0)[0], now, "+inf")
                replies = await pipe.execute()
        except UNREACHABLE as error:
            # The consumer answers SERVICE_UNAVAILABLE: the client joins again.
            self.outage.failed("join", error)
            raise
        self.outage.ok()
        firsts, reads = replies[: len(joins)], replies[len(joins) :]
        online = {
            game_id: sorted(int(member) for member in members)
            for game_id, members in zip(game_ids, reads, strict=True)
        }
        return [
            (bool(first), online[game_id])
            for first, (game_id, _, _) in zip(firsts, joins, strict=True)
        ]

    async def leave(self, *, game_id: int, user_id: int, channel: str) -> bool:
        client = self._client()
        args = [self.clock(), channel, user_id]
        try:
            last = await client.presence_leave(keys=self._keys(game_id, user_id), args=args)
        except UNREACHABLE as error:
            # Given up: the entry expires within TTL_SECONDS, as a dead
            # process's do. Thousands of sockets leave at once when Redis is
            # away at a show's end; each must not log a traceback.
            self.outage.failed("leave", error)
            return False
        self.outage.ok()
        return bool(last)

    async def online(self, *, game_id: int) -> list[int]:
        # Every join reads the whole set: in a burst, joins asking together
        # share one read (2,000 joins by 2,000 members was seconds of parsing).
        return await self._online_reads.read(game_id)

    async def _read_online(self, game_id: int) -> list[int]:
        return (await self.online_many([game_id]))[game_id]

    async def online_many(self, game_ids: list[int]) -> dict[int, list[int]]:
        # One pipeline: a night's end disconnects every game's sockets at once.
        now = self.clock()
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                for game_id in game_ids:
                    pipe.zrangebyscore(self._keys(game_id, 0)[0], now, "+inf")
                replies = await pipe.execute()
        except UNREACHABLE as error:
            self.outage.failed("read", error)
            raise
        self.outage.ok()
        return {
            game_id: sorted(int(member) for member in members)
            for game_id, members in zip(game_ids, replies, strict=True)
        }

    async def refresh(self, sockets: Iterable[SocketGames]) -> None:
        try:
            await self._refresh(sockets)
        except UNREACHABLE as error:
            # The next refresh, REFRESH_SECONDS later, is well within the TTL.
            self.outage.failed("refresh", error)
            return
        self.outage.ok()

    async def _refresh(self, sockets: Iterable[SocketGames]) -> None:
        # A process refreshes all its sockets at once: one pipeline per
        # REFRESH_BATCH sockets instead of one round trip per socket.
        client = self._client()
        expiry = self.clock() + TTL_SECONDS
        sockets = list(sockets)
        for start in range(0, len(sockets), REFRESH_BATCH):
            batch = sockets[start : start + REFRESH_BATCH]
            async with client.pipeline(transaction=False) as pipe:
                for socket in batch:
                    for game_id in socket.game_ids:
                        game_key, user_key = self._keys(game_id, socket.user_id)
                        pipe.zadd(user_key, {socket.channel: expiry})
                        pipe.zadd(game_key, {str(socket.user_id): expiry}, gt=True)
                        pipe.expire(user_key, TTL_SECONDS * 2)
                        pipe.expire(game_key, TTL_SECONDS * 2)
                if len(pipe):
                    await pipe.execute()


_store: PresenceStore | None = None


def get_presence() -> PresenceStore:
    """The process's presence store, chosen by settings.REDIS_URL."""
    global _store
    if _store is None:
        _store = RedisPresence(settings.REDIS_URL) if settings.REDIS_URL else MemoryPresence()
    return _store


# --- batching diffs -------------------------------------------------------------

# A burst of N sockets joining one game would otherwise send N diffs to N
# sockets (N² frames); within a window the diffs of a game become one frame.
DIFF_SECONDS = 0.5
# While diffs keep coming (a burst of joins), each window is twice the last,
# up to this many base windows: a socket gets a few frames per burst
# (log₂ of the burst's length), not one per base window; a lone join is
# still announced within DIFF_SECONDS.
DIFF_WIDEST = 16


class DiffBatcher:
    """Collects which users of each game joined or left in this process and
    sends, once per window, one `presence:diff` per changed game — all of them
    in one read of who is online and one channel-layer message per ceremony
    (when a show ends, every party's sockets leave at once: a send per game
    ran the Redis pool out of connections).

    The diff states each changed user as they are when it is sent (a join if
    online, else a leave), never a net of the window's changes: a user who
    left and came back within the window (a page navigation) is still
    announced, since a socket that joined in between may not have them yet.
    Clients apply joins and leaves idempotently.
    """

    def __init__(
        self, window: float = DIFF_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self.clock = clock
        # The window being waited (widened while a burst goes on), and when
        # the last one ended.
        self.current = window
        self._last_flush = float("-inf")
        # game id → user id → name, for users whose presence changed
        self._pending: dict[int, dict[int, str]] = {}
        self._flusher: asyncio.Task[None] | None = None

    def add(self, game_id: int, *, user_id: int, name: str) -> None:
        self._pending.setdefault(game_id, {})[user_id] = name
        task = self._flusher
        # A flusher from a loop that is gone (tests run one loop each) never runs.
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            self._flusher = asyncio.create_task(self._flush_later())

    def _next_window(self) -> float:
        # A change within a base window of the last flush: the burst goes on.
        if self.clock() - self._last_flush < self.window:
            self.current = min(self.current * 2, self.window * DIFF_WIDEST)
        else:
            self.current = self.window
        return self.current

    async def _flush_later(self) -> None:
        from leaderboard import events

        await asyncio.sleep(self._next_window())
        changed, self._pending = self._pending, {}
        self._flusher = None
        self._last_flush = self.clock()
        if not changed:
            return
        try:
            online = await get_presence().online_many(list(changed))
        except UNREACHABLE:
            # Logged by the store. Kept for the next window, in which the
            # users are stated as they are then (as any diff states them).
            for game_id, users in changed.items():
                self._pending.setdefault(game_id, {}).update(users)
            if self._flusher is None:  # else a socket's add() started one meanwhile
                self._flusher = asyncio.create_task(self._flush_later())
            return
        diffs = []
        for game_id, users in changed.items():
            here = set(online[game_id])
            diffs.append(
                {
                    "type": "presence:diff",
                    "gameId": game_id,
                    "joins": listed(
                        [{"userId": u, "name": n} for u, n in users.items() if u in here]
                    ),
                    "leaves": listed(
                        [{"userId": u, "name": n} for u, n in users.items() if u not in here]
                    ),
                    "onlineCount": len(here),
                }
            )
        metrics.presence_batch()
        await events.send_presence_diffs(diffs)


diffs = DiffBatcher()
