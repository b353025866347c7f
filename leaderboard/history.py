"""Game events as clients see them: rendering stored events and replaying them."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from games.formatting import iso_utc
from games.models import Game, GameEvent, GameParticipant
from games.selectors import ceremony_last_revealed
from leaderboard.selectors import leaderboard_payload


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


def join_snapshot(
    *, game_id: int, last_seq: int | None, online_user_ids: list[int]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `joined` frame at the game's current seq, and the events to replay
    after it (empty unless `last_seq` was given and all its successors are kept).

    Raises Game.DoesNotExist if the game vanished since the participant check.
    """
    game = Game.objects.get(pk=game_id)
    leaderboard = leaderboard_payload(
        game=game,
        seq=game.seq,
        last_revealed=ceremony_last_revealed(ceremony_id=game.ceremony_id),
    )
    replay = None
    if last_seq is not None:
        replay = events_after(game_id=game.pk, last_seq=last_seq, current_seq=game.seq)
    joined = {
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
        "leaderboard": leaderboard,
        "online": public_names(online_user_ids),
    }
    return joined, replay or []
