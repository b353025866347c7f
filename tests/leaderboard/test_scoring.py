"""Ranking rules (docs/api.md, Scoring) and the standings query."""

from __future__ import annotations

import pytest

from games import services
from games.scoring import PlayerScore, rank_players
from games.standings import game_standings, standings_of_games
from tests.factories import GameFactory, ParticipantFactory, UserFactory, make_ceremony, pick_all


def ranks(players):
    return [(p.user_id, p.rank) for p in rank_players(players)]


def test_equal_score_and_correct_share_a_rank_and_the_next_skips():
    players = [
        PlayerScore(1, "Ann", 10, 3),
        PlayerScore(2, "Bob", 10, 3),
        PlayerScore(3, "Cid", 7, 2),
        PlayerScore(4, "Dee", 7, 2),
        PlayerScore(5, "Eve", 1, 1),
    ]
    assert ranks(players) == [(1, 1), (2, 1), (3, 3), (4, 3), (5, 5)]


def test_correct_count_breaks_score_ties_into_different_ranks():
    players = [PlayerScore(1, "Ann", 5, 1), PlayerScore(2, "Bob", 5, 3)]
    assert ranks(players) == [(2, 1), (1, 2)]


def test_names_order_case_insensitively_then_user_id():
    players = [
        PlayerScore(9, "bob", 0, 0),
        PlayerScore(3, "Bob", 0, 0),
        PlayerScore(4, "alice", 0, 0),
        PlayerScore(2, "Zed", 0, 0),
    ]
    ordered = rank_players(players)
    assert [(p.name, p.user_id) for p in ordered] == [
        ("alice", 4),
        ("Bob", 3),
        ("bob", 9),
        ("Zed", 2),
    ]
    assert {p.rank for p in ordered} == {1}


def test_empty_board():
    assert rank_players([]) == []


@pytest.mark.django_db
def test_standings_sum_points_of_revealed_correct_picks_and_skip_incomplete():
    ceremony = make_ceremony(categories=3, nominees=2, points=[5, 2, 1])
    game = GameFactory(ceremony=ceremony, host__display_name="Host")
    right = UserFactory(display_name="Right")
    wrong = UserFactory(display_name="wrong")
    partial = UserFactory(display_name="Partial")
    idle = UserFactory()
    for player in (right, wrong, partial, idle):
        ParticipantFactory(game=game, user=player)
    pick_all(game, right, choose=0)
    pick_all(game, wrong, choose=1)
    pick_all(game, game.host, choose=1)
    first = ceremony.categories.first()
    # `partial` picks only one category: not on the board.
    from games.models import Pick

    Pick.objects.create(
        game=game, user=partial, category=first, nomination=first.nominations.first()
    )

    cats = list(ceremony.categories.all())
    services.category_reveal(category_id=cats[0].pk, nomination_id=cats[0].nominations.first().pk)
    services.category_reveal(category_id=cats[1].pk, nomination_id=cats[1].nominations.last().pk)

    standings = game_standings(game=game)
    board = [(p.name, p.total_score, p.correct_count, p.rank) for p in standings.players]
    assert board == [("Right", 5, 1, 1), ("Host", 2, 1, 2), ("wrong", 2, 1, 2)]
    assert (standings.revealed_count, standings.category_count) == (2, 3)
    assert standings.incomplete_count == 2  # partial + idle


@pytest.mark.django_db
def test_leaderboard_update_payload_has_exactly_the_contract_fields():
    ceremony = make_ceremony(categories=2, nominees=2)
    game = GameFactory(ceremony=ceremony)
    pick_all(game, game.host, choose=0)
    category = ceremony.categories.first()
    winner = category.nominations.first()
    services.category_reveal(category_id=category.pk, nomination_id=winner.pk)
    # Stored with the event, rendered in the reveal's own transaction.
    event = game.events.get(type="leaderboard:update")
    payload = dict(event.payload)
    timestamp = payload.pop("timestamp")
    assert isinstance(timestamp, int) and timestamp > 1_600_000_000_000
    assert payload == {
        "type": "leaderboard:update",
        "gameId": game.pk,
        "seq": event.seq,
        "players": [
            {
                "userId": game.host_id,
                "name": game.host.display_name,
                "totalScore": 1,
                "correctCount": 1,
                "rank": 1,
            }
        ],
        "revealedCount": 1,
        "categoryCount": 2,
        "incompleteCount": 0,
        "lastRevealed": {
            "categoryId": category.pk,
            "categoryName": category.name,
            "nominationId": winner.pk,
            "title": winner.title,
        },
    }


@pytest.mark.django_db
def test_standings_of_a_ceremony_s_games_keep_each_game_s_players_and_counts():
    """The reveal reads every game's standings at once (one statement): each
    game gets its own ranked players, names (the username without a display
    name) and count of participants not ranked, and a game with nobody
    ranked its count alone."""
    ceremony = make_ceremony(categories=2, nominees=2, points=[3, 1])
    first = GameFactory(ceremony=ceremony, host__display_name="First host")
    second = GameFactory(ceremony=ceremony, host__display_name="Second host")
    quiet = GameFactory(ceremony=ceremony, host__display_name="Quiet host")
    nameless = UserFactory(display_name="", username="nameless")
    idle = UserFactory()
    ParticipantFactory(game=first, user=nameless)
    ParticipantFactory(game=first, user=idle)
    pick_all(first, first.host, choose=0)
    pick_all(first, nameless, choose=1)
    pick_all(second, second.host, choose=1)
    category = ceremony.categories.first()
    services.category_reveal(category_id=category.pk, nomination_id=category.nominations.first().pk)

    standings = standings_of_games(
        ceremony_id=ceremony.pk, game_ids=[first.pk, second.pk, quiet.pk]
    )
    boards = {
        game_id: ([(p.name, p.total_score, p.rank) for p in s.players], s.incomplete_count)
        for game_id, s in standings.items()
    }
    assert boards == {
        first.pk: ([("First host", 3, 1), ("nameless", 0, 2)], 1),
        second.pk: ([("Second host", 0, 1)], 0),
        quiet.pk: ([], 1),
    }


@pytest.mark.django_db
def test_before_a_ceremony_has_categories_nobody_is_ranked():
    ceremony = make_ceremony(categories=0)
    game = GameFactory(ceremony=ceremony)
    ParticipantFactory(game=game)
    standings = game_standings(game=game)
    assert standings.players == []
    assert (standings.incomplete_count, standings.category_count) == (2, 0)
