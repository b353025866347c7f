"""What this project sends on the channel layer, and to which group; the
receiving side is the hub's (leaderboard.fanout).

Group messages are per ceremony, not per game: many parties share one
ceremony, and one reveal appends an event to every one of them. After commit
the events of a transaction go out as ONE message to the ceremony's group,
each frame already encoded; every process following a game of the ceremony
receives it once (leaderboard.fanout) and writes each frame to the sockets
of its game. Presence diffs and reactions go to the same group with their
game id. Per-user messages go to every process and carry `user_id`, which is
how each hub routes them.

This is the fast path only: the event log in the database is the truth, and
each hub catches up from it when a message is lost (leaderboard.recovery).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from config import metrics
from games.event_log import RecordedEvent
from leaderboard.protocol import encode

logger = logging.getLogger(__name__)


def ceremony_group(ceremony_id: int) -> str:
    return f"ceremony.{ceremony_id}"


# game id → ceremony id, learnt when a local socket follows the game (a
# game's ceremony never changes), so ephemeral frames of a game find its group.
game_ceremonies: dict[int, int] = {}


def game_group(game_id: int) -> str:
    """The group a game's messages go to. Precondition: a socket of this
    process followed the game (so its ceremony is known here)."""
    return ceremony_group(game_ceremonies[game_id])


# Per-user messages (sign-out) are rare: they go to one group that every
# server process joins, and each process routes them by `user_id`. A group
# per user cost a Redis write for every socket that connected.
USERS_GROUP = "users"

# One event as it travels: (game id, seq, frame text, removed user id or None).
# The removed user is what the hub needs to answer a `participant:left` with
# `game:removed` to that user's sockets without parsing the frame.
WireEvent = tuple[int, int, str, int | None]


def _removed_user(type_: str, payload: dict[str, Any]) -> int | None:
    return payload.get("userId") if type_ == "participant:left" else None


def wire_event(*, game_id: int, seq: int, type_: str, payload: dict[str, Any]) -> WireEvent:
    """A stored event (read back from the log) as it travels."""
    return (game_id, seq, encode(payload), _removed_user(type_, payload))


def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - always configured in settings
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception as error:
        # The write that caused it has committed and must stand; every
        # process catches up from the event log (leaderboard.recovery).
        metrics.channel_layer_error("send")
        logger.warning("channel layer send to %s failed: %r", group, error)


def publish_game_events(events: Iterable[RecordedEvent]) -> None:
    """Send committed events to their ceremonies' groups: one message per
    ceremony, each frame the text the transaction encoded."""
    by_ceremony: dict[int, list[WireEvent]] = {}
    for e in events:
        by_ceremony.setdefault(e.ceremony_id, []).append(
            (e.game_id, e.seq, e.text, _removed_user(e.type, e.payload))
        )
    # After commit: each process times a reveal from here to its last write.
    committed_at = time.time()
    for ceremony_id, wire_events in by_ceremony.items():
        _send_soon(
            ceremony_group(ceremony_id),
            {"type": "game.events", "events": wire_events, "committed_at": committed_at},
        )


# --- the outbox: sends from request threads without holding up the request -------

# Set while a server process's hub runs: the loop it runs on, the queue of
# messages request threads queued, and the queue of what goes to the channel
# layer, both in the order they were queued.
Outgoing = tuple[str, dict[str, Any]]
_outbox: (
    tuple[asyncio.AbstractEventLoop, asyncio.Queue[Outgoing], asyncio.Queue[Outgoing]] | None
) = None


async def send_outbox(
    deliver_here: Callable[[dict[str, Any]], Awaitable[None]], *, origin: str
) -> None:
    """Send what request threads queued, one message after another: run by
    the hub on the server's loop for as long as it lives.

    Game events also go straight to this process's own sockets
    (`deliver_here`), while the channel layer carries them to the other
    processes: neither the round trip through Redis nor a slow layer is on
    the path of the sockets of the process that committed them. The message
    is marked `from` = `origin`, so the hub ignores it when the layer brings
    it back."""
    global _outbox
    queue: asyncio.Queue[Outgoing] = asyncio.Queue()
    to_layer: asyncio.Queue[Outgoing] = asyncio.Queue()
    mine = _outbox = (asyncio.get_running_loop(), queue, to_layer)
    sender = asyncio.create_task(_send_in_order(to_layer))
    try:
        while True:
            group, message = await queue.get()
            game_events = message["type"] == "game.events"
            if game_events:
                message["from"] = origin
            # Queued first: the other processes do not wait for this one's
            # writes, which yield to the sender as they go.
            to_layer.put_nowait((group, message))
            if game_events:
                try:
                    await deliver_here(message)
                except Exception:
                    # The event log has them: the hub's check catches up.
                    logger.exception("delivering to this process's sockets failed")
            queue.task_done()  # for outbox_flushed
    finally:
        sender.cancel()
        if _outbox is mine:
            _outbox = None


async def _send_in_order(to_layer: asyncio.Queue[Outgoing]) -> None:
    while True:
        group, message = await to_layer.get()
        await _agroup_send(group, message)
        to_layer.task_done()


async def outbox_flushed() -> None:
    """Until every message queued so far was delivered here and handed to
    the channel layer (the drain, leaderboard.process_jobs)."""
    outbox = _outbox
    if outbox is not None and outbox[0] is _running_loop():
        await outbox[1].join()
        await outbox[2].join()


def _send_soon(group: str, message: dict[str, Any]) -> None:
    """Queue the message for the server's loop and return at once, so the
    staff's request answers as soon as its transaction committed, not after
    the channel layer (and this process's own sockets) had it. A message
    lost by a process that dies now is caught up from the event log, like
    any other. Without a running hub (a management command), send it here."""
    outbox = _outbox
    if outbox is not None and outbox[0].is_running():
        loop, queue, _ = outbox
        if _running_loop() is loop:
            queue.put_nowait((group, message))
        else:
            loop.call_soon_threadsafe(queue.put_nowait, (group, message))
        return
    _group_send(group, message)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def close_user_sockets(*, user_id: int) -> None:
    """Close every socket of the user, on every process (sign-out). The fast
    path: the hubs' recovery check also finds it in the database."""
    _group_send(USERS_GROUP, {"type": "user.signed_out", "user_id": user_id})


# --- frames without seq (presence, reactions), sent from the event loop --------


async def _agroup_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - always configured in settings
        return
    try:
        await layer.group_send(group, message)
    except Exception as error:
        # Game events are caught up from the event log; presence diffs and
        # reactions are ephemeral. A lost one must not break what sent it.
        metrics.channel_layer_error("send")
        logger.warning("channel layer send to %s failed: %r", group, error)


async def send_presence_diffs(diffs: list[dict[str, Any]]) -> None:
    """`presence:diff` frames of many games: one message per ceremony."""
    by_group: dict[str, list[tuple[int, str]]] = {}
    for diff in diffs:
        game_id = diff["gameId"]
        by_group.setdefault(game_group(game_id), []).append((game_id, encode(diff)))
    for group, frames in by_group.items():
        await _agroup_send(group, {"type": "game.broadcasts", "frames": frames})


async def send_reactions(*, game_id: int, reactions: list[dict[str, Any]]) -> None:
    # Not encoded here: each receiving process merges the batches of every
    # process into one frame (leaderboard.reactions.ReactionPacer).
    await _agroup_send(
        game_group(game_id), {"type": "game.reactions", "game_id": game_id, "reactions": reactions}
    )
