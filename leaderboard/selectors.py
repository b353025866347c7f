"""Reads for the leaderboard: a game's standings and its payload."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Q, Sum

from games.models import Category, Game, GameParticipant, Pick
from leaderboard.scoring import PlayerScore, RankedPlayer, rank_players


@dataclass(frozen=True, slots=True)
class Standings:
    players: list[RankedPlayer]
    revealed_count: int
    category_count: int
    incomplete_count: int


def game_standings(*, game: Game) -> Standings:
    """Standings with one aggregate query over the game's picks.

    Only participants with a pick in every category are ranked; the rest are
    counted in incomplete_count.
    """
    categories = Category.objects.filter(ceremony_id=game.ceremony_id).aggregate(
        total=Count("id"), revealed=Count("id", filter=Q(winner__isnull=False))
    )
    category_count = categories["total"]
    correct = Q(category__winner_id=F("nomination_id"))
    rows = (
        Pick.objects.filter(game_id=game.pk)
        .values("user_id", "user__username", "user__display_name")
        .annotate(
            picked=Count("id"),
            total=Sum("category__points", filter=correct, default=0),
            correct=Count("id", filter=correct),
        )
        .filter(picked=category_count)
        .order_by()
    )
    players = [
        PlayerScore(
            user_id=row["user_id"],
            name=row["user__display_name"] or row["user__username"],
            total_score=row["total"],
            correct_count=row["correct"],
        )
        for row in rows
    ]
    participant_count = GameParticipant.objects.filter(game_id=game.pk).count()
    return Standings(
        players=rank_players(players) if category_count else [],
        revealed_count=categories["revealed"],
        category_count=category_count,
        incomplete_count=participant_count - (len(players) if category_count else 0),
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
