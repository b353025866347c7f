"""A socket joining and leaving a game: the `join` sequence (docs/protocol.md).

1. The participant check, before any group membership.
2. Follow the game (the hub joins the ceremony's group, or waits for the
   join already under way), then read the snapshot. In this order an event
   committed at any moment is in the snapshot, or reaches the hub after
   the follow; never neither.
3. While the `joined` frame and its replay are written, the hub's messages
   for the game are held back (`hold_back`) and handed to the socket after
   them. The socket's seq filter then drops what the snapshot covered. So
   every event is sent once, in order, after `joined`, also when it
   committed while the join was being answered.

Leaving undoes the follow and the presence entry, and announces a user's
last tab leaving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import DatabaseError
from redis.exceptions import RedisError

from accounts.models import User
from games import errors as game_errors
from games import selectors
from games.models import Game
from games.services import game_lock_if_due
from leaderboard import presence
from leaderboard.batching import Batcher
from leaderboard.db_threads import on_db_threads
from leaderboard.fanout import Hub
from leaderboard.protocol import MAX_ID, Inbound, encode, wire_text
from leaderboard.snapshots import Snapshot, SnapshotRequest, join_snapshots
from leaderboard.top import top_payload

logger = logging.getLogger(__name__)

# Refusals of a `join`, each an error frame with this message. (USER_NOT_FOUND
# is not among them: the consumer closes the socket for it.)
JOIN_REFUSALS = {
    "GAME_NOT_FOUND": "No game with that id.",
    "NOT_PARTICIPANT": "You are not a player in this game.",
    "SERVICE_UNAVAILABLE": "The service is briefly unavailable: join again in a moment.",
}


class JoiningSocket(Protocol):
    """What the join sequence needs from a socket (the consumer)."""

    user_id: int | None
    name: str
    socket_id: str
    hub: Hub
    # game id → the last seq sent to this socket for that game
    games: dict[int, int]
    # game id → the hub's messages held back while that game's join is answered
    joining: dict[int, list[dict[str, Any]]]
    # games followed with `board: "top"` (leaderboard.top)
    top_games: frozenset[int]

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None: ...

    async def dispatch(self, message: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a join was refused: a key of JOIN_REFUSALS, or USER_NOT_FOUND."""

    code: str
    # The error frame's gameId. None for a game that vanished after its
    # check: that error has always gone out without one.
    game_id: int | None


def _join_check(game_id: int, user_id: int) -> int | str:
    """The game's ceremony id when the user may follow the game, else the
    refusal code, for one join (a refusal looking closer for its reason)."""
    try:
        # Persist a lock that came due, so the snapshot shows the game LIVE.
        game_lock_if_due(game_id=game_id)
        game_found = True
    except game_errors.NotFound:
        game_found = False
    if game_found:
        ceremony_id = selectors.game_participant_ceremony(game_id=game_id, user_id=user_id)
        if ceremony_id is not None:
            return ceremony_id
    if not User.objects.filter(pk=user_id, is_active=True).exists():
        return "USER_NOT_FOUND"
    return "NOT_PARTICIPANT" if game_found else "GAME_NOT_FOUND"


def join_checks(pairs: list[tuple[int, int]]) -> list[int | str | BaseException]:
    """`_join_check` of many joins (game id, user id) in one trip to a
    database thread and one query when every answer is yes; each refusal
    looks closer on its own, as `_join_check` does."""
    try:
        games = selectors.participants_games(pairs=pairs)
        # The lock's write path only for a game that is due (rare): the check
        # is made on the row just read.
        for game in {game.pk: game for game in games.values()}.values():
            game_lock_if_due(game_id=game.pk, game=game)
    except DatabaseError as error:
        return [error] * len(pairs)
    answers: list[int | str | BaseException] = []
    for pair in pairs:
        game = games.get(pair)
        if game is not None:
            answers.append(game.ceremony_id)
            continue
        try:
            answers.append(_join_check(*pair))
        except DatabaseError as error:
            answers.append(error)
    return answers


# In a burst, the joins asking while a batch is on its way go in the next.
_join_check_batcher: Batcher[tuple[int, int], int | str] = Batcher(on_db_threads(join_checks))
# Asked after the socket follows the game: a batch starts after every follow
# of the joins in it, as the join sequence requires of the snapshot.
_snapshot_batcher: Batcher[SnapshotRequest, Snapshot] = Batcher(on_db_threads(join_snapshots))


async def _snapshot(
    *, game_id: int, last_seq: int | None, online_user_ids: list[int], online_count: int
) -> Snapshot:
    """The join's snapshot (snapshots.join_snapshot), read in one batch with
    the other joins asking meanwhile."""
    return await _snapshot_batcher.ask((game_id, last_seq, online_user_ids, online_count))


async def join_game(socket: JoiningSocket, message: Inbound) -> Refusal | None:
    """Answer a `join`: the `joined` frame and its replay are sent, or the
    refusal returned for the caller to send."""
    game_id = message.game_id
    assert game_id is not None and socket.user_id is not None
    checked: int | str = "GAME_NOT_FOUND" if not 1 <= game_id <= MAX_ID else 0
    if checked == 0:
        try:
            checked = await _join_check_batcher.ask((game_id, socket.user_id))
        except DatabaseError:
            checked = "SERVICE_UNAVAILABLE"
    if isinstance(checked, str):
        return Refusal(checked, game_id)
    try:
        return await _follow(socket, message, ceremony_id=checked)
    except (DatabaseError, RedisError, OSError):
        logger.warning("join of game %s failed: a service is unreachable", game_id)
        await _undo_follow(socket, game_id)
        return Refusal("SERVICE_UNAVAILABLE", game_id)


async def _follow(socket: JoiningSocket, message: Inbound, *, ceremony_id: int) -> Refusal | None:
    game_id = message.game_id
    user_id = socket.user_id
    assert game_id is not None and user_id is not None
    first_tab = False
    socket.joining.setdefault(game_id, [])
    try:
        await socket.hub.follow_game(game_id, ceremony_id, socket)
        store = presence.get_presence()
        if game_id not in socket.games:  # a second `join` of a game is not a new tab
            first_tab, online = await store.join_online(
                game_id=game_id, user_id=user_id, channel=socket.socket_id
            )
        else:
            online = await store.online(game_id=game_id)
        try:
            # `online` is sorted: the listed users are the lowest ids, a list
            # that barely changes during a burst (its text is encoded once).
            snapshot = await _snapshot(
                game_id=game_id,
                last_seq=message.last_seq,
                online_user_ids=presence.listed(online),
                online_count=len(online),
            )
        except Game.DoesNotExist:
            await _undo_follow(socket, game_id)
            return Refusal("GAME_NOT_FOUND", None)
        await _send_snapshot(socket, snapshot, message)
    finally:
        held = socket.joining.pop(game_id, [])
    for held_message in held:
        await socket.dispatch(held_message)
    if first_tab:
        presence.diffs.add(game_id, user_id=user_id, name=socket.name)
    return None


async def _send_snapshot(socket: JoiningSocket, snapshot: Snapshot, message: Inbound) -> None:
    """The `joined` frame and the replay, then the socket follows from the
    snapshot's seq on."""
    game_id = message.game_id
    assert game_id is not None
    top = message.board == "top"
    text = snapshot.text(message.ref, top=top)
    if message.ref is not None and not message.ref.isascii():
        # The ref is the one client value in the text: scan the (large)
        # text for lone surrogates only when it may hold one.
        text = wire_text(text)
    await socket.send(text_data=text)
    for frame in snapshot.replay:
        await socket.send(text_data=encode(top_payload(frame) if top else frame))
    if top:
        socket.top_games |= {game_id}
    elif game_id in socket.top_games:
        socket.top_games -= {game_id}
    socket.games[game_id] = max(socket.games.get(game_id, 0), snapshot.seq)


def hold_back(socket: JoiningSocket, message: dict[str, Any]) -> bool:
    """Keep a hub message of a game whose join is being answered, for after
    the `joined` frame; False when the game is not joining."""
    held = socket.joining.get(message["game_id"])
    if held is None:
        return False
    held.append(message)
    return True


def take_in_order(socket: JoiningSocket, message: dict[str, Any]) -> bool:
    """Whether the hub's `game.event` message is the next one this socket
    (or stream) must deliver; if so it now counts as delivered.

    Held back while the game's join is answered; ignored when the game is
    not followed or the seq is already covered (by the snapshot, the replay
    or a catch-up). A gap means something between was lost on the way: the
    hub replays it from the event log, then this one, in order.
    """
    if hold_back(socket, message):
        return False
    game_id = message["game_id"]
    last_seq = socket.games.get(game_id)
    if last_seq is None:
        return False
    seq = message["seq"]
    if seq <= last_seq:
        return False
    if seq > last_seq + 1 and not message.get("resync"):
        socket.hub.catch_up(game_id)
        return False
    socket.games[game_id] = seq
    return True


async def _undo_follow(socket: JoiningSocket, game_id: int) -> None:
    # Marked followed (at seq 0, unless it was already) so leave_game undoes
    # the hub's follow and the presence entry this join made.
    socket.games.setdefault(game_id, 0)
    await leave_game(socket, game_id)


async def leave_game(socket: JoiningSocket, game_id: int) -> None:
    """Stop following a game: the hub, presence (announcing a last tab
    leaving). Never raises: a socket that closes must leave its other games."""
    if game_id in socket.top_games:
        socket.top_games -= {game_id}
    if socket.games.pop(game_id, None) is None or socket.user_id is None:
        return
    try:
        await socket.hub.unfollow_game(game_id, socket)
        last_tab = await presence.get_presence().leave(
            game_id=game_id, user_id=socket.user_id, channel=socket.socket_id
        )
        if last_tab:
            presence.diffs.add(game_id, user_id=socket.user_id, name=socket.name)
    except Exception:
        logger.exception("leaving game %s failed", game_id)
