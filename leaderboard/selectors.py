"""Reads for the leaderboard: a game's standings and its payload."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q

from games.models import Category, Game, GameParticipant
from leaderboard.scoring import PlayerScore, RankedPlayer, rank_players


@dataclass(frozen=True, slots=True)
class Standings:
    players: list[RankedPlayer]
    revealed_count: int
    category_count: int
    incomplete_count: int


def game_standings(*, game: Game) -> Standings:
    """Standings from the participants' score counters (kept by games.services).

    Only participants with a pick in every category are ranked; the rest are
    counted in incomplete_count.
    """
    categories = Category.objects.filter(ceremony_id=game.ceremony_id).aggregate(
        total=Count("id"), revealed=Count("id", filter=Q(winner__isnull=False))
    )
    category_count = categories["total"]
    participants = GameParticipant.objects.filter(game_id=game.pk)
    if not category_count:  # nothing to pick yet: nobody is complete
        return Standings([], categories["revealed"], 0, participants.count())
    # Only the ranked rows are fetched, with their names: in a large watch
    # party many participants may not have picked everything, and those are
    # only counted.
    complete = Q(pick_count__gte=category_count)
    incomplete = participants.aggregate(count=Count("id", filter=~complete))["count"]
    rows = participants.filter(complete).values_list(
        "user_id", "user__username", "user__display_name", "total_score", "correct_count"
    )
    players = [
        PlayerScore(user_id, display_name or username, total, correct)
        for user_id, username, display_name, total, correct in rows
    ]
    return Standings(
        players=rank_players(players),
        revealed_count=categories["revealed"],
        category_count=category_count,
        incomplete_count=incomplete,
    )


def leaderboard_payload(
    *, game: Game, seq: int, last_revealed: dict[str, Any] | None
) -> dict[str, Any]:
    """The `leaderboard:update` frame (CONTRACT §4) for a game at `seq`."""
    standings = game_standings(game=game)
    return {
        "type": "leaderboard:update",
        "gameId": game.pk,
        "seq": seq,
        "players": [player.as_json() for player in standings.players],
        "revealedCount": standings.revealed_count,
        "categoryCount": standings.category_count,
        "incompleteCount": standings.incomplete_count,
        "lastRevealed": last_revealed,
        "timestamp": int(time.time() * 1000),
    }
