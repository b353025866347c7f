"""Standings and the `leaderboard:update` frame: the one home of a game's board.

Standings come from the participants' score counters, which games.services
keeps in the same transactions that change picks and winners. They are read
for many games at once: a reveal renders the board of every game of its
ceremony inside its transaction, and that must cost the same few queries for
a thousand small parties as for one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, Q

from accounts.models import User
from games.models import Category, Game, GameParticipant
from games.scoring import PlayerScore, RankedPlayer, rank_players
from games.selectors import ceremony_last_revealed, game_participant_count
from games.sql import in_ids


@dataclass(frozen=True, slots=True)
class Standings:
    players: list[RankedPlayer]
    revealed_count: int
    category_count: int
    incomplete_count: int


@dataclass(frozen=True, slots=True)
class CategoryCounts:
    total: int
    revealed: int


def category_counts(*, ceremony_id: int) -> CategoryCounts:
    """How many categories the ceremony has, and how many are revealed."""
    counts = Category.objects.filter(ceremony_id=ceremony_id).aggregate(
        total=Count("id"), revealed=Count("id", filter=Q(winner__isnull=False))
    )
    return CategoryCounts(total=counts["total"], revealed=counts["revealed"])


def standings_of_games(
    *, ceremony_id: int, game_ids: list[int], counts: CategoryCounts | None = None
) -> dict[int, Standings]:
    """Each game's standings (its games all belong to `ceremony_id`): two
    queries however many games, one if the caller read `counts` in the
    same transaction (a reveal needs them to know whether all are revealed).

    Only participants with a pick in every category are ranked; the rest are
    counted in incomplete_count.
    """
    if not game_ids:
        return {}
    if counts is None:
        counts = category_counts(ceremony_id=ceremony_id)
    category_count, revealed = counts.total, counts.revealed
    players: dict[int, list[PlayerScore]] = {game_id: [] for game_id in game_ids}
    incomplete: dict[int, int] = {}
    for game_id, user_id, name, total, correct in _standings_rows(game_ids, category_count):
        if user_id is None:  # the game's count of participants not ranked
            incomplete[game_id] = total
        else:
            players[game_id].append(PlayerScore(user_id, name, total, correct))
    return {
        game_id: Standings(
            players=rank_players(players[game_id]),
            revealed_count=revealed,
            category_count=category_count,
            incomplete_count=incomplete.get(game_id, 0),
        )
        for game_id in game_ids
    }


def _standings_rows(game_ids: list[int], category_count: int) -> list[tuple[Any, ...]]:
    """One statement for the games' standings: a row per ranked participant
    (a pick in every category), with their name, then a row per game
    counting the others (user id NULL, the count as the total).

    Written out: in the ORM's form these were two statements, and building
    them cost a reveal more than running them (bench/README.md, "One trip
    per request"). Only the ranked rows are fetched with their names: in a
    large watch party many participants may not have picked everything, and
    those are only counted. With nothing to pick yet nobody is complete.
    """
    quote = connection.ops.quote_name
    participant = quote(GameParticipant._meta.db_table)
    user = quote(User._meta.db_table)
    in_games, params = in_ids("p.game_id", game_ids)
    complete = "(p.pick_count >= %s AND %s > 0)"
    sql = (
        "SELECT p.game_id, p.user_id, COALESCE(NULLIF(u.display_name, ''), u.username),"
        " p.total_score, p.correct_count"
        f" FROM {participant} p JOIN {user} u ON u.id = p.user_id"
        f" WHERE {in_games} AND {complete}"
        " UNION ALL"
        " SELECT p.game_id, NULL, NULL, COUNT(*), NULL"
        f" FROM {participant} p WHERE {in_games} AND NOT {complete}"
        " GROUP BY p.game_id"
    )
    threshold = [category_count, category_count]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *threshold, *params, *threshold])
        return cursor.fetchall()


def game_standings(*, game: Game) -> Standings:
    return standings_of_games(ceremony_id=game.ceremony_id, game_ids=[game.pk])[game.pk]


def leaderboard_frame(
    *, game_id: int, seq: int, standings: Standings, last_revealed: dict[str, Any] | None
) -> dict[str, Any]:
    """The `leaderboard:update` frame of a game at `seq`."""
    return {
        "type": "leaderboard:update",
        "gameId": game_id,
        "seq": seq,
        "players": [player.as_json() for player in standings.players],
        "revealedCount": standings.revealed_count,
        "categoryCount": standings.category_count,
        "incompleteCount": standings.incomplete_count,
        "lastRevealed": last_revealed,
        "timestamp": int(time.time() * 1000),
    }


@dataclass(frozen=True, slots=True)
class Board:
    """A game's board as of one seq, with what a snapshot shows beside it."""

    game: Game  # as read at `frame["seq"]`
    frame: dict[str, Any]  # the leaderboard:update at that seq
    participant_count: int


# Reads that keep racing writes give up after this many tries and return the
# last one (still a real board; at worst newer than its seq by a write).
_BOARD_TRIES = 5


def game_board(*, game_id: int) -> Board:
    """The board at the game's current seq, for snapshots (`joined`, the API,
    the live page).

    Read without locks, then checked: if an event committed while the
    standings were read, they may already include it, and the board would
    carry later standings under an earlier seq. Then it is read again.

    Raises Game.DoesNotExist for an unknown game.
    """
    for _ in range(_BOARD_TRIES):
        game = Game.objects.get(pk=game_id)
        standings = game_standings(game=game)
        last_revealed = ceremony_last_revealed(ceremony_id=game.ceremony_id)
        participant_count = game_participant_count(game_id=game_id)
        if Game.objects.filter(pk=game_id, seq=game.seq).exists():
            break
    frame = leaderboard_frame(
        game_id=game.pk, seq=game.seq, standings=standings, last_revealed=last_revealed
    )
    return Board(game=game, frame=frame, participant_count=participant_count)
