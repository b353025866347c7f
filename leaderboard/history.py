"""Game events as clients see them: rendering stored events and replaying them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.models import User
from games.formatting import iso_utc
from games.models import Game, GameEvent, GameParticipant, GameStatus
from games.selectors import ceremony_last_revealed
from leaderboard.selectors import leaderboard_payload


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def event_payload(event: GameEvent) -> dict[str, Any]:
    """The frame of a stored event, rendering a leaderboard update's standings
    the first time it is needed (after the commit that recorded it)."""
    if event.payload is not None:
        return event.payload
    game = Game.objects.get(pk=event.game_id)
    payload = leaderboard_payload(
        game=game, seq=event.seq, last_revealed=event.data.get("lastRevealed")
    )
    # First renderer wins, so every process replays the very same frame.
    if GameEvent.objects.filter(pk=event.pk, payload__isnull=True).update(payload=payload) == 0:
        event.refresh_from_db(fields=["payload"])
        return event.payload
    event.payload = payload
    return payload


def events_after(*, game_id: int, last_seq: int, current_seq: int) -> list[dict[str, Any]] | None:
    """Every event of the game after `last_seq`, or None when some were pruned
    (or `last_seq` is from the future): the client must take the snapshot."""
    if last_seq > current_seq or last_seq < 0:
        return None
    events = list(
        GameEvent.objects.filter(game_id=game_id, seq__gt=last_seq, seq__lte=current_seq).order_by(
            "seq"
        )
    )
    if len(events) != current_seq - last_seq:
        return None
    return [event_payload(event) for event in events]


def public_names(user_ids: list[int]) -> list[dict[str, Any]]:
    """`[{userId, name}]` for the given users, in the given order."""
    users = {
        row["pk"]: row["display_name"] or row["username"]
        for row in User.objects.filter(pk__in=user_ids).values("pk", "username", "display_name")
    }
    return [{"userId": pk, "name": users[pk]} for pk in user_ids if pk in users]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A `joined` frame whose (possibly large) leaderboard is encoded once."""

    frame: dict[str, Any]  # every field of `joined` but `leaderboard`
    leaderboard_text: str
    replay: list[dict[str, Any]]

    @property
    def seq(self) -> int:
        return self.frame["seq"]

    def text(self, ref: str | None = None) -> str:
        frame = {**self.frame, "ref": ref} if ref is not None else self.frame
        head = encode(frame)
        # Splice the shared, already encoded leaderboard into this socket's frame.
        return f'{head[:-1]},"leaderboard":{self.leaderboard_text}}}'


# Per process: game id → (seq, created, payload, encoded text, made at). A
# burst of joins (thousands of sockets after a restart) then computes and
# encodes a game's standings once per seq, not once per socket.
_boards: dict[int, tuple[int, datetime, dict[str, Any], str, float]] = {}
# While picks are open, standings change without a seq (picks send no event).
OPEN_BOARD_SECONDS = 2.0
clock = time.monotonic  # tests replace it


def _board(game: Game) -> tuple[dict[str, Any], str]:
    cached = _boards.get(game.pk)
    fresh_enough = game.status != GameStatus.OPEN or (
        cached is not None and clock() - cached[4] < OPEN_BOARD_SECONDS
    )
    # created_at guards against a reused id (test databases are flushed).
    if cached is not None and cached[:2] == (game.seq, game.created_at) and fresh_enough:
        return cached[2], cached[3]
    payload = leaderboard_payload(
        game=game,
        seq=game.seq,
        last_revealed=ceremony_last_revealed(ceremony_id=game.ceremony_id),
    )
    text = encode(payload)
    _boards[game.pk] = (game.seq, game.created_at, payload, text, clock())
    return payload, text


def join_snapshot(*, game_id: int, last_seq: int | None, online_user_ids: list[int]) -> Snapshot:
    """The `joined` frame at the game's current seq, and the events to replay
    after it (empty unless `last_seq` was given and all its successors are kept).

    Raises Game.DoesNotExist if the game vanished since the participant check.
    """
    game = Game.objects.get(pk=game_id)
    _, leaderboard_text = _board(game)
    replay = None
    if last_seq is not None:
        replay = events_after(game_id=game.pk, last_seq=last_seq, current_seq=game.seq)
    frame = {
        "type": "joined",
        "gameId": game.pk,
        "seq": game.seq,
        "recovered": replay is not None,
        "game": {
            "status": game.status,
            "picksLockAt": iso_utc(game.picks_lock_at),
            "completedAt": iso_utc(game.completed_at),
            "participantCount": GameParticipant.objects.filter(game=game).count(),
        },
        "online": public_names(online_user_ids),
    }
    return Snapshot(frame=frame, leaderboard_text=leaderboard_text, replay=replay or [])
