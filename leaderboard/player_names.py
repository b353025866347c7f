"""Players' names, cached per process: the `online` list of a `joined` frame.

Every `joined` frame lists who is online: in a burst of 2,000 joins, asking
the database for up to 2,000 names per join took a quarter of the server's
time (py-spy). Online users are players of the game, so each process loads a
game's player names once, keeps each entry already encoded, and builds the
list by joining strings.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from games.models import GameParticipant
from leaderboard.protocol import encode

# Names change only in the admin: a minute of staleness is fine on a board.
NAMES_SECONDS = 60.0
clock = time.monotonic  # tests replace it

# game id → (loaded at, user id → encoded {"userId", "name"})
_names: dict[int, tuple[float, dict[int, str]]] = {}


def _load(game_id: int, user_ids: list[int] | None = None) -> dict[int, str]:
    players = GameParticipant.objects.filter(game_id=game_id)
    if user_ids is not None:
        players = players.filter(user_id__in=user_ids)
    rows = players.values_list("user_id", "user__username", "user__display_name")
    return {
        user_id: encode({"userId": user_id, "name": display_name or username})
        for user_id, username, display_name in rows
    }


def online_text(*, game_id: int, user_ids: Iterable[int]) -> str:
    """`[{userId, name}, …]` as JSON text: the given users, in order, who are
    players of the game."""
    user_ids = list(user_ids)
    now = clock()
    cached = _names.get(game_id)
    if cached is None or now - cached[0] >= NAMES_SECONDS:
        cached = _names[game_id] = (now, _load(game_id))
    names = cached[1]
    missing = [user_id for user_id in user_ids if user_id not in names]
    if missing:
        # New players since the load: fetch just them (a removed player still
        # in presence costs this small query until their socket leaves).
        names.update(_load(game_id, missing))
    return "[" + ",".join(names[user_id] for user_id in user_ids if user_id in names) + "]"
