"""The only module that talks to the channel layer.

Game events are encoded once and sent to the game's group; every process
with sockets following the game receives the message once (leaderboard.fanout)
and writes the same text to each of them. Per-user messages go to every
process and carry `user_id`, which is how each hub routes them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from games.models import GameEvent
from leaderboard.history import event_payload
from leaderboard.protocol import encode

logger = logging.getLogger(__name__)


def game_group(game_id: int) -> str:
    return f"game.{game_id}"


# Per-user messages (sign-out, removal) are rare: they go to one group that
# every server process joins, and each process routes them by `user_id`. A
# group per user cost a Redis write for every socket that connected.
USERS_GROUP = "users"


def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - always configured in settings
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        # Delivery is at most once: a client that misses this converges via
        # seq + resume. The write that caused it has committed and must stand.
        logger.exception("channel layer send to %s failed", group)


def deliver_game_events(event_ids: Iterable[int]) -> None:
    """Send committed game events to their games' groups, in seq order."""
    events = (
        GameEvent.objects.filter(pk__in=list(event_ids))
        .select_related("game")  # a leaderboard update renders its game's standings
        .order_by("game_id", "seq")
    )
    for event in events:
        text = encode(event_payload(event))
        _group_send(
            game_group(event.game_id),
            {"type": "game.event", "game_id": event.game_id, "seq": event.seq, "text": text},
        )


def notify_participant_removed(*, game_id: int, user_id: int) -> None:
    _group_send(USERS_GROUP, {"type": "game.removed", "user_id": user_id, "game_id": game_id})


def close_user_sockets(*, user_id: int) -> None:
    """Close every socket of the user, on every process (sign-out)."""
    _group_send(USERS_GROUP, {"type": "user.signed_out", "user_id": user_id})


# --- frames without seq (presence, reactions), sent from the event loop --------


async def _agroup_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - always configured in settings
        return
    try:
        await layer.group_send(group, message)
    except Exception:
        # At most once, like game events: presence refreshes and reactions are
        # ephemeral, and a lost one must not break the socket that caused it.
        logger.exception("channel layer send to %s failed", group)


async def _send_broadcast(game_id: int, payload: dict[str, Any]) -> None:
    await _agroup_send(
        game_group(game_id), {"type": "game.broadcast", "game_id": game_id, "text": encode(payload)}
    )


async def send_presence_diff(
    *,
    game_id: int,
    joins: list[dict[str, Any]],
    leaves: list[dict[str, Any]],
    online_count: int,
) -> None:
    await _send_broadcast(
        game_id,
        {
            "type": "presence:diff",
            "gameId": game_id,
            "joins": joins,
            "leaves": leaves,
            "onlineCount": online_count,
        },
    )


async def send_reactions(*, game_id: int, reactions: list[dict[str, Any]]) -> None:
    # Not encoded here: each receiving process merges the batches of every
    # process into one frame (leaderboard.reactions.ReactionPacer).
    await _agroup_send(
        game_group(game_id), {"type": "game.reactions", "game_id": game_id, "reactions": reactions}
    )
