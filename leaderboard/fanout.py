"""Per-process fan-out: each server process hears a group message once.

The textbook Channels way puts every socket's own channel in a group, so one
reveal becomes one channel-layer message per socket. Here the process holds
ONE channel; it joins the group of a ceremony while at least one local
socket follows a game of it, receives each message once, and hands each
already encoded frame to the local sockets of its game. Per-user messages
(sign-out) reach every process through one group joined at start, and are
routed here by `user_id`: connecting a socket costs no channel-layer call.

Delivery does not depend on the channel layer. Each socket knows the last
seq it was sent per game and takes only the next one; a socket that sees a
gap asks the hub to catch up, and the hub replays what its sockets miss from
the event log (leaderboard.recovery): at once when the channel layer comes
back after an error, and every few seconds in any case, which also covers a
Redis that restarted without the hub noticing, or a process that died
between its commit and its send. Group memberships are renewed on the same
beat, since a Redis restart empties them.

The hub hands a message to a socket's handler named from the message's type
as Channels names consumer handlers (`get_handler_name`: `game.event` →
`game_event`), resolved once per message rather than once per socket.

The socket still owns its lifecycle: its join (leaderboard.joining) checks
the participant before `follow_game`, it filters events by seq, and closes
itself. The hub only routes. Together with leaderboard.events (which sends),
this is the code that talks to the channel layer: the hub joins groups and
receives. See docs/fanout.md.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.consumer import get_handler_name
from channels.layers import get_channel_layer

from config import logs, metrics
from leaderboard import events, recovery
from leaderboard.reactions import ReactionPacer

logger = logging.getLogger(__name__)

# Sockets written to between two turns of the event loop during one delivery.
YIELD_EVERY = 100
# Retrying the channel layer after an error: from this, doubling, up to the check interval.
RECONNECT_FIRST_DELAY = 0.2


class Follower(Protocol):
    """What the hub (and the per-process jobs) need from a socket (the consumer)."""

    socket_id: str
    user_id: int | None
    # game id → the last seq this socket was sent (absent while it joins)
    games: dict[int, int]
    # POSIX time its user was authenticated: a sign-out at or after it closes it
    auth_at: float

    # Handlers of the hub's messages, by Channels' naming of their types.
    async def game_event(self, message: dict[str, Any]) -> None: ...

    async def game_broadcast(self, message: dict[str, Any]) -> None: ...

    async def user_signed_out(self, message: dict[str, Any]) -> None: ...

    async def restart_notice(self) -> None: ...


class Hub:
    """The process's channel, and which local sockets follow what."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.games: dict[int, set[Follower]] = {}
        self.users: dict[int, set[Follower]] = {}
        # ceremony id → the followed games of it (the groups this process is in)
        self.ceremonies: dict[int, set[int]] = {}
        # game id → the newest seq this process knows of (for `pong.seqs`)
        self.latest: dict[int, int] = {}
        self.log = recovery.LogReader()
        self._ids = itertools.count(1)
        self._started = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._periodic: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        self._closing = False
        # group → done when this process's group_add for it has completed
        self._joining: dict[str, asyncio.Future[None]] = {}
        # games whose sockets may miss events, for the catch-up task
        self._behind: set[int] = set()
        self._wake = asyncio.Event()
        self._layer_failing = False
        # Reaction batches from every process, merged per game per window.
        self.reactions = ReactionPacer(self._deliver_reactions)

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        async with self._started:
            if self.channel is not None:
                return
            self.channel = await self.layer.new_channel(prefix="fanout")
            try:
                await self.layer.group_add(events.USERS_GROUP, self.channel)
            except Exception:
                # Redis is down: the check below renews it, and sign-outs are
                # found in the database meanwhile.
                logger.warning("channel layer unreachable at start; retrying in the background")
            self._tasks.append(asyncio.create_task(self._read()))
            self._tasks.append(
                asyncio.create_task(events.send_outbox(self._deliver_events, origin=self.channel))
            )
            self._tasks.append(asyncio.create_task(self._catch_up_when_asked()))
            self._tasks.append(asyncio.create_task(_every(recovery.check_seconds(), self.check)))
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
        await self.log.close()

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

    async def follow_game(self, game_id: int, ceremony_id: int, follower: Follower) -> None:
        await self.start()
        events.game_ceremonies[game_id] = ceremony_id
        self.games.setdefault(game_id, set()).add(follower)
        followed = self.ceremonies.setdefault(ceremony_id, set())
        first = not followed
        followed.add(game_id)
        group = events.ceremony_group(ceremony_id)
        if first:
            joined = self._joining[group] = asyncio.get_running_loop().create_future()
            try:
                await self.layer.group_add(group, self.channel)
            except Exception:
                # Delivery goes on from the event log; the check re-adds the group.
                logger.warning("could not join %s; the recovery check retries", group)
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
        if local:
            return
        del self.games[game_id]
        self.latest.pop(game_id, None)
        ceremony_id = events.game_ceremonies[game_id]
        followed = self.ceremonies.get(ceremony_id, set())
        followed.discard(game_id)
        if not followed:
            self.ceremonies.pop(ceremony_id, None)
            try:
                await self.layer.group_discard(events.ceremony_group(ceremony_id), self.channel)
            except Exception:
                # Left in the group, this process ignores the ceremony's
                # messages until the membership expires.
                logger.warning("could not leave the group of ceremony %s", ceremony_id)

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
                metrics.channel_layer_error("receive")
                logger.warning("channel layer receive failed; rejoining its groups")
                await self._rejoin_groups()
                # Whatever was sent while we could not hear it is in the log.
                self.catch_up()
                continue
            await self.dispatch(message)

    async def _rejoin_groups(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        while not await self._renew_groups():
            await asyncio.sleep(delay)
            delay = min(delay * 2, recovery.check_seconds())

    async def _renew_groups(self) -> bool:
        """(Re-)add this process to its groups; False while the layer fails."""
        groups = [events.USERS_GROUP, *map(events.ceremony_group, list(self.ceremonies))]
        try:
            for group in groups:
                await self.layer.group_add(group, self.channel)
        except Exception:
            metrics.channel_layer_error("group")
            if not self._layer_failing:
                logger.warning("channel layer unreachable; delivering from the event log")
            self._layer_failing = True
            return False
        if self._layer_failing:
            logger.warning("channel layer reachable again")
        self._layer_failing = False
        return True

    async def _deliver_reactions(self, game_id: int, text: str) -> None:
        await self.dispatch({"type": "game.broadcast", "game_id": game_id, "text": text})

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "game.events":
            # A message without a sender is always handed out, also by a hub
            # whose channel is not made yet (None).
            origin = message.get("from")
            if origin is None or origin != self.channel:
                await self._deliver_events(message)
            # else: this process's own, which the outbox delivered here first
            return
        if kind == "game.broadcasts":
            # Frames without seq of many games (presence diffs of a window).
            for game_id, text in message["frames"]:
                await self._hand_out(
                    self.games.get(game_id, ()),
                    {"type": "game.broadcast", "game_id": game_id, "text": text},
                )
            return
        if kind == "game.reactions":
            if message["game_id"] in self.games:
                self.reactions.add(message["game_id"], message["reactions"])
            return
        # Per-user messages carry user_id; everything else is a game's.
        if "user_id" in message:
            await self._hand_out(self.users.get(message["user_id"], ()), message)
        else:
            await self._hand_out(self.games.get(message["game_id"], ()), message)

    async def _deliver_events(self, message: dict[str, Any]) -> None:
        """Hand a `game.events` message's events to the local sockets."""
        written = total = 0
        for game_id, seq, text, removed in message["events"]:
            if game_id in self.games:
                count = await self._deliver_event(game_id, seq, text, removed)
                written, total = written + count, total + count
                if written >= YIELD_EVERY:
                    # A reveal of a thousand small parties: let the
                    # server flush between games, as within a big one.
                    written = 0
                    await asyncio.sleep(0)
        if total:
            _delivered(message, total)

    async def _deliver_event(
        self, game_id: int, seq: int, text: str, removed: int | None, *, resync: bool = False
    ) -> int:
        """Hand one event to the game's local sockets; returns how many."""
        if seq > self.latest.get(game_id, 0):
            self.latest[game_id] = seq
        message: dict[str, Any] = {
            "type": "game.event",
            "game_id": game_id,
            "seq": seq,
            "text": text,
            "removed": removed,
        }
        if resync:
            message["resync"] = True
        return await self._hand_out(self.games.get(game_id, ()), message)

    async def _hand_out(self, targets: Any, message: dict[str, Any]) -> int:
        handler = get_handler_name(message)
        # A snapshot of the set: a socket may leave while we write to others.
        targets = list(targets)
        for count, follower in enumerate(targets, 1):
            try:
                await getattr(follower, handler)(message)
            except Exception:
                logger.exception("delivery to socket %s failed", follower.socket_id)
            if count % YIELD_EVERY == 0:
                # Let the server flush what is written so far: under daphne no
                # byte leaves before the loop turns, and the first sockets
                # would otherwise wait for the last one to be handled.
                await asyncio.sleep(0)
        metrics.handed_out(message, len(targets))  # once per hand-out, not per socket
        return len(targets)

    # --- recovery -------------------------------------------------------------------

    async def catch_up_now(self) -> None:
        """Replay at once what every followed game's sockets miss (the drain)."""
        await self._replay_missed(set(self.games))

    def catch_up(self, game_id: int | None = None) -> None:
        """Replay from the event log what this game's (None: every game's)
        local sockets miss, soon, in the catch-up task."""
        if game_id is None:
            self._behind.update(self.games)
        else:
            self._behind.add(game_id)
        self._wake.set()

    async def check(self) -> None:
        """The periodic check: groups renewed, every followed game caught up,
        signed-out users' sockets closed."""
        await self._renew_groups()
        self.catch_up()
        await self._close_signed_out()

    async def _catch_up_when_asked(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            games, self._behind = self._behind, set()
            try:
                await self._replay_missed(games)
            except Exception as error:
                # The database is away (a restart): the next check retries.
                logger.warning("catching up from the event log failed: %r", error)

    async def _replay_missed(self, game_ids: set[int]) -> None:
        after: dict[int, int] = {}
        for game_id in game_ids:
            # Sockets still joining hold their game's messages back and drop
            # what their snapshot covers: only joined ones set the start.
            seqs = [f.games[game_id] for f in self.games.get(game_id, ()) if game_id in f.games]
            if seqs:
                after[game_id] = min(seqs)
        if not after:
            return
        missed = await self.log.run(recovery.missed_events, after)
        for game_id, seq in missed.current.items():
            if game_id in self.games and seq > self.latest.get(game_id, 0):
                self.latest[game_id] = seq
        previous: int | None = None
        replayed = 0
        for event in missed.events:
            if event.payload is None:
                continue  # written by an old version and never rendered: skipped as pruned
            # Events older than the retention window are gone: sockets that
            # far behind get the rest with a gap, and the client rejoins.
            first = event.game_id != previous
            previous = event.game_id
            wire = events.wire_event(
                game_id=event.game_id, seq=event.seq, type_=event.type, payload=event.payload
            )
            if await self._deliver_event(
                *wire, resync=first and event.seq > after[event.game_id] + 1
            ):
                replayed += 1
        metrics.events_replayed(replayed)

    async def _close_signed_out(self) -> None:
        since: dict[int, float] = {}
        for user_id, followers in self.users.items():
            since[user_id] = min(follower.auth_at for follower in followers)
        if not since:
            return
        try:
            signed_out = await self.log.run(recovery.sign_outs, since)
        except Exception as error:
            logger.warning("checking sign-outs failed: %r", error)
            return
        for user_id, at in signed_out.items():
            for follower in list(self.users.get(user_id, ())):
                if follower.auth_at <= at:
                    await follower.user_signed_out({"type": "user.signed_out", "user_id": user_id})


def _delivered(message: dict[str, Any], frames: int) -> None:
    """A reveal (a message with a `leaderboard:update`: one event per game of
    the ceremony) written out by this process: one log line and one
    histogram sample, commit to last write. Other events are not timed."""
    board = next(
        (e for e in message["events"] if metrics.frame_type(e[2]) == "leaderboard:update"), None
    )
    if board is None:
        return
    elapsed = metrics.events_delivered(message.get("committed_at"))
    logs.reveal_delivered(
        game_id=board[0],
        seq=board[1],
        events=len(message["events"]),
        frames=frames,
        commit_to_last_write_ms=None if elapsed is None else round(elapsed * 1000, 1),
    )


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


def current_hub() -> Hub | None:
    """This loop's hub if one was made, without making one."""
    return _hubs.get(asyncio.get_running_loop())


async def close_hub() -> None:
    """Close this loop's hub, if any (test teardown)."""
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.close()


# Callbacks run for every new hub (leaderboard.process_jobs registers presence
# refresh and the restart notice here), so this module imports no job.
_on_new_hub: list[Callable[[Hub], None]] = []


def on_new_hub(setup: Callable[[Hub], None]) -> Callable[[Hub], None]:
    _on_new_hub.append(setup)
    return setup
