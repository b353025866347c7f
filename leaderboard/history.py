"""Game events as clients see them: rendering stored events and replaying them."""

from __future__ import annotations

from typing import Any

from games.models import Game, GameEvent
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
