"""Per-process fan-out: each server process hears a group message once.

The textbook Channels way puts every socket's own channel in the game's group,
so one reveal becomes one channel-layer message per socket (2,000 Redis pushes
and 2,000 pops for a 2,000-socket game). Here the process holds ONE channel;
it joins a game's group while at least one local socket follows that game,
receives each message once, and hands the already encoded text to its local
sockets. Per-user messages (sign-out, removal) reach every process through
one group joined at start, and are routed here by `user_id`: connecting a
socket costs no channel-layer call at all.

The consumer still owns its socket's lifecycle: it checks the participant
before `follow_game`, filters events by seq, and closes itself. The hub only
routes. See docs/fanout.md.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.layers import get_channel_layer

from leaderboard import events
from leaderboard.reactions import ReactionPacer

logger = logging.getLogger(__name__)

# The hub renews its group memberships: they expire in the channel layer
# (channels_redis group_expiry, a day) and vanish if Redis restarts empty; a
# minute bounds how long a process could then miss its games' messages.
RENEW_GROUPS_SECONDS = 60.0
# Sockets written to between two turns of the event loop during one delivery.
YIELD_EVERY = 100


class Follower(Protocol):
    """What the hub needs from a socket (the consumer)."""

    socket_id: str

    async def game_message(self, message: dict[str, Any]) -> None: ...

    async def user_message(self, message: dict[str, Any]) -> None: ...


class Hub:
    """The process's channel, and which local sockets follow what."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.games: dict[int, set[Follower]] = {}
        self.users: dict[int, set[Follower]] = {}
        self._ids = itertools.count(1)
        self._started = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._periodic: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        self._closing = False
        # group → done when this process's group_add for it has completed
        self._joining: dict[str, asyncio.Future[None]] = {}
        # Reaction batches from every process, merged per game per window.
        self.reactions = ReactionPacer(self._deliver_reactions)

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        async with self._started:
            if self.channel is not None:
                return
            self.channel = await self.layer.new_channel(prefix="fanout")
            await self.layer.group_add(events.USERS_GROUP, self.channel)
            self._tasks.append(asyncio.create_task(self._read()))
            self._tasks.append(asyncio.create_task(self._renew_groups()))
            for interval, job in self._periodic:
                self._tasks.append(asyncio.create_task(_every(interval, job)))

    async def close(self) -> None:
        """Stop the hub's tasks (tests; a server process just exits)."""
        self._closing = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            # channels_redis may linger in a cancelled BZPOPMIN's cleanup: do
            # not let that hold up the caller.
            await asyncio.wait(tasks, timeout=1)

    def every(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job` every `interval` seconds for as long as the hub lives: one
        task for the whole process instead of a timer per socket."""
        self._periodic.append((interval, job))
        if self.channel is not None:
            self._tasks.append(asyncio.create_task(_every(interval, job)))

    def new_socket_id(self) -> str:
        return f"{self.channel or os.getpid()}#{next(self._ids)}"

    def followers(self) -> set[Follower]:
        """Every local socket that follows a game or is signed in."""
        found: set[Follower] = set()
        for group in (*self.games.values(), *self.users.values()):
            found |= group
        return found

    # --- membership -------------------------------------------------------------

    async def follow_game(self, game_id: int, follower: Follower) -> None:
        await self.start()
        group = events.game_group(game_id)
        local = self.games.setdefault(game_id, set())
        first = not local
        local.add(follower)
        if first:
            joined = self._joining[group] = asyncio.get_running_loop().create_future()
            try:
                await self.layer.group_add(group, self.channel)
            finally:
                del self._joining[group]
                joined.set_result(None)
        elif group in self._joining:
            # Another socket is adding this process to the group right now: a
            # snapshot taken before that completes could miss an event.
            await asyncio.shield(self._joining[group])

    async def unfollow_game(self, game_id: int, follower: Follower) -> None:
        local = self.games.get(game_id)
        if local is None or follower not in local:
            return
        local.discard(follower)
        if not local:
            del self.games[game_id]
            await self.layer.group_discard(events.game_group(game_id), self.channel)

    async def follow_user(self, user_id: int, follower: Follower) -> None:
        # Local only: the process already hears every per-user message.
        await self.start()
        self.users.setdefault(user_id, set()).add(follower)

    def unfollow_user(self, user_id: int, follower: Follower) -> None:
        local = self.users.get(user_id)
        if local is not None:
            local.discard(follower)
            if not local:
                del self.users[user_id]

    # --- delivery -------------------------------------------------------------------

    async def _read(self) -> None:
        assert self.channel is not None
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._closing:
                    return  # redis-py may turn our cancellation into an error
                # A Redis hiccup must not end this process's delivery for good;
                # clients that missed something resume by seq.
                logger.exception("fan-out receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            await self.dispatch(message)

    async def _deliver_reactions(self, game_id: int, text: str) -> None:
        await self.dispatch({"type": "game.broadcast", "game_id": game_id, "text": text})

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] == "game.reactions":
            if message["game_id"] in self.games:
                self.reactions.add(message["game_id"], message["reactions"])
            return
        # Per-user messages carry user_id; everything else is a game's.
        if "user_id" in message:
            targets, handler = self.users.get(message["user_id"], ()), "user_message"
        else:
            targets, handler = self.games.get(message["game_id"], ()), "game_message"
        # A snapshot of the set: a socket may leave while we write to others.
        for count, follower in enumerate(list(targets), 1):
            try:
                await getattr(follower, handler)(message)
            except Exception:
                logger.exception("delivery to socket %s failed", follower.socket_id)
            if count % YIELD_EVERY == 0:
                # Let the server flush what is written so far: under daphne no
                # byte leaves before the loop turns, and the first sockets
                # would otherwise wait for the last one to be handled.
                await asyncio.sleep(0)

    async def _renew_groups(self) -> None:
        while True:
            await asyncio.sleep(RENEW_GROUPS_SECONDS)
            for game_id in list(self.games):
                await self.layer.group_add(events.game_group(game_id), self.channel)
            await self.layer.group_add(events.USERS_GROUP, self.channel)


async def _every(interval: float, job: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await job()
        except Exception:
            logger.exception("periodic fan-out job failed")


# One hub per event loop: a server process has one loop; tests get a new loop
# (and a new channel layer) per test, and must get a new hub with it.
_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def get_hub() -> Hub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not get_channel_layer():
        for stale in [other for other in _hubs if other.is_closed()]:
            del _hubs[stale]
        hub = _hubs[loop] = Hub()
        for setup in _on_new_hub:
            setup(hub)
    return hub


async def close_hub() -> None:
    """Close this loop's hub, if any (test teardown)."""
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.close()


# Callbacks run for every new hub (the consumer registers presence refresh and
# the restart notice here), so this module needs no import of the consumer.
_on_new_hub: list[Callable[[Hub], None]] = []


def on_new_hub(setup: Callable[[Hub], None]) -> Callable[[Hub], None]:
    _on_new_hub.append(setup)
    return setup
