"""Picks, pick counts and the leaderboard over HTTP."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from games import services
from games.models import Game, GameParticipant, GameStatus, Pick
from tests.api.conftest import error_of
from tests.factories import UserFactory, make_ceremony, pick_all


def nominee(category, index: int = 0):
    return list(category.nominations.order_by("order"))[index]


def put_pick(client, game, category, nomination_id):
    return client.put(
        f"/api/games/{game.pk}/picks/{category.pk}", {"nominationId": nomination_id}, format="json"
    )


def test_pick_and_change_it(player_api, game, player, categories):
    first = categories[0]
    response = put_pick(player_api, game, first, nominee(first).pk)
    assert response.status_code == 200
    assert response.json() == {"categoryId": first.pk, "nominationId": nominee(first).pk}
    changed = put_pick(player_api, game, first, nominee(first, 2).pk)
    assert changed.json() == {"categoryId": first.pk, "nominationId": nominee(first, 2).pk}
    assert Pick.objects.get(game=game, user=player).nomination_id == nominee(first, 2).pk


def test_my_picks_in_category_order(player_api, host_api, game, player, categories):
    put_pick(player_api, game, categories[2], nominee(categories[2], 1).pk)
    put_pick(player_api, game, categories[0], nominee(categories[0], 3).pk)
    response = player_api.get(f"/api/games/{game.pk}/picks")
    assert response.status_code == 200
    assert response.json() == [
        {"categoryId": categories[0].pk, "nominationId": nominee(categories[0], 3).pk},
        {"categoryId": categories[2].pk, "nominationId": nominee(categories[2], 1).pk},
    ]
    # Only my own picks: the host has none.
    assert host_api.get(f"/api/games/{game.pk}/picks").json() == []


def test_picks_forbidden_for_outsiders(outsider_api, game, categories):
    assert error_of(outsider_api.get(f"/api/games/{game.pk}/picks")) == (403, "NOT_PARTICIPANT")
    refused = put_pick(outsider_api, game, categories[0], nominee(categories[0]).pk)
    assert error_of(refused) == (403, "NOT_PARTICIPANT")
    assert error_of(outsider_api.get("/api/games/424242/picks")) == (404, "NOT_FOUND")
    assert not Pick.objects.exists()


def test_pick_validation(player_api, game, categories):
    url = f"/api/games/{game.pk}/picks/{categories[0].pk}"
    for body in ({}, {"nominationId": "1"}, {"nominationId": False}, {"nominationId": 1.0}):
        response = player_api.put(url, body, format="json")
        assert error_of(response) == (400, "VALIDATION_ERROR")
        assert response.json()["error"]["message"].startswith("nominationId: ")


def test_pick_nominee_from_another_category(player_api, game, categories):
    refused = put_pick(player_api, game, categories[0], nominee(categories[1]).pk)
    assert error_of(refused) == (400, "NOMINATION_NOT_IN_CATEGORY")
    assert not Pick.objects.exists()


def test_pick_category_of_another_ceremony(player_api, game):
    foreign = make_ceremony(categories=1).categories.get()
    refused = put_pick(player_api, game, foreign, nominee(foreign).pk)
    assert error_of(refused) == (404, "NOT_FOUND")
    assert error_of(put_pick(player_api, game, type(foreign)(pk=999999), 1)) == (404, "NOT_FOUND")


def test_pick_in_unknown_game(player_api, categories):
    response = player_api.put(
        f"/api/games/424242/picks/{categories[0].pk}", {"nominationId": 1}, format="json"
    )
    assert error_of(response) == (404, "NOT_FOUND")


def test_live_game_joined_to_watch_but_picks_locked(api_for, game, categories):
    Game.objects.filter(pk=game.pk).update(status=GameStatus.LIVE)
    watcher = api_for(UserFactory())
    joined = watcher.post("/api/games/join", {"accessCode": game.access_code}, format="json")
    assert joined.status_code == 200
    refused = put_pick(watcher, game, categories[0], nominee(categories[0]).pk)
    assert error_of(refused) == (409, "PICKS_LOCKED")
    assert not Pick.objects.exists()


def test_passed_lock_time_refuses_picks_and_goes_live(player_api, game, categories):
    Game.objects.filter(pk=game.pk).update(picks_lock_at=timezone.now() - timedelta(seconds=1))
    refused = put_pick(player_api, game, categories[0], nominee(categories[0]).pk)
    assert error_of(refused) == (409, "PICKS_LOCKED")
    assert player_api.get(f"/api/games/{game.pk}").json()["status"] == "LIVE"
    assert Game.objects.get(pk=game.pk).status == GameStatus.LIVE


def test_reveal_locks_picks(player_api, staff_api, game, categories):
    staff_api.post(
        f"/api/categories/{categories[0].pk}/winner",
        {"nominationId": nominee(categories[0]).pk},
        format="json",
    )
    refused = put_pick(player_api, game, categories[1], nominee(categories[1]).pk)
    assert error_of(refused) == (409, "PICKS_LOCKED")


# --- pick counts ------------------------------------------------------------------------


@pytest.fixture
def counted(game, host, player, categories):
    """host and player both pick nominee 0 of the first category; player also
    picks nominee 1 of the second."""
    for user in (host, player):
        Pick.objects.create(
            game=game, user=user, category=categories[0], nomination=nominee(categories[0])
        )
    Pick.objects.create(
        game=game, user=player, category=categories[1], nomination=nominee(categories[1], 1)
    )
    return {
        str(categories[0].pk): {str(nominee(categories[0]).pk): 2},
        str(categories[1].pk): {str(nominee(categories[1], 1).pk): 1},
    }


def test_pick_counts_for_host_and_staff_while_open(
    host_api, staff_api, game, counted, django_assert_max_num_queries
):
    with django_assert_max_num_queries(4):  # token, game, lock check, one aggregate
        response = host_api.get(f"/api/games/{game.pk}/pick-counts")
    assert response.status_code == 200
    assert response.json() == counted
    assert staff_api.get(f"/api/games/{game.pk}/pick-counts").json() == counted


def test_pick_counts_hidden_from_players_until_live(player_api, outsider_api, game, counted):
    url = f"/api/games/{game.pk}/pick-counts"
    assert error_of(player_api.get(url)) == (403, "FORBIDDEN")
    assert error_of(outsider_api.get(url)) == (403, "NOT_PARTICIPANT")
    Game.objects.filter(pk=game.pk).update(status=GameStatus.LIVE)
    assert player_api.get(url).json() == counted
    assert error_of(outsider_api.get(url)) == (403, "NOT_PARTICIPANT")
    Game.objects.filter(pk=game.pk).update(status=GameStatus.COMPLETED)
    assert player_api.get(url).json() == counted
    assert error_of(player_api.get("/api/games/424242/pick-counts")) == (404, "NOT_FOUND")


def test_pick_counts_shown_once_lock_time_passed(player_api, game, counted):
    Game.objects.filter(pk=game.pk).update(picks_lock_at=timezone.now() - timedelta(seconds=1))
    assert player_api.get(f"/api/games/{game.pk}/pick-counts").json() == counted


# --- leaderboard ---------------------------------------------------------------------------


def test_leaderboard_payload_with_tied_ranks(api_for, staff_api, game, host, player, categories):
    third = UserFactory(username="zed", display_name="Zed")
    late = UserFactory(username="late", display_name="Late")
    for user in (third, late):
        GameParticipant.objects.create(game=game, user=user)
    pick_all(game, host, choose=0)
    pick_all(game, player, choose=0)
    pick_all(game, third, choose=1)  # late picks nothing: not ranked
    winner = nominee(categories[0])
    staff_api.post(
        f"/api/categories/{categories[0].pk}/winner", {"nominationId": winner.pk}, format="json"
    )
    game.refresh_from_db()
    before = int(time.time() * 1000)
    response = api_for(player).get(f"/api/games/{game.pk}/leaderboard")
    assert response.status_code == 200
    body = response.json()
    assert before <= body.pop("timestamp") <= int(time.time() * 1000)
    assert body == {
        "type": "leaderboard:update",
        "gameId": game.pk,
        "seq": game.seq,
        "players": [
            {"userId": host.pk, "name": "Hosty", "totalScore": 5, "correctCount": 1, "rank": 1},
            {"userId": player.pk, "name": "Playa", "totalScore": 5, "correctCount": 1, "rank": 1},
            {"userId": third.pk, "name": "Zed", "totalScore": 0, "correctCount": 0, "rank": 3},
        ],
        "revealedCount": 1,
        "categoryCount": 3,
        "incompleteCount": 1,
        "lastRevealed": {
            "categoryId": categories[0].pk,
            "categoryName": categories[0].name,
            "nominationId": winner.pk,
            "title": winner.title,
        },
    }
    assert game.seq > 0


def test_leaderboard_before_any_reveal(host_api, game, host):
    pick_all(game, host, choose=2)
    body = host_api.get(f"/api/games/{game.pk}/leaderboard").json()
    assert body["players"] == [
        {"userId": host.pk, "name": "Hosty", "totalScore": 0, "correctCount": 0, "rank": 1}
    ]
    assert (body["seq"], body["revealedCount"], body["lastRevealed"]) == (0, 0, None)


def test_leaderboard_locks_due_game_first(host_api, game):
    Game.objects.filter(pk=game.pk).update(picks_lock_at=timezone.now() - timedelta(seconds=1))
    body = host_api.get(f"/api/games/{game.pk}/leaderboard").json()
    # game:status then leaderboard:update were appended by the lock.
    assert body["seq"] == 2


def test_leaderboard_forbidden_for_outsiders(outsider_api, game):
    assert error_of(outsider_api.get(f"/api/games/{game.pk}/leaderboard")) == (
        403,
        "NOT_PARTICIPANT",
    )
    assert error_of(outsider_api.get("/api/games/424242/leaderboard")) == (404, "NOT_FOUND")


def test_removed_player_leaves_leaderboard(host_api, game, host, player):
    pick_all(game, host)
    pick_all(game, player)
    assert len(host_api.get(f"/api/games/{game.pk}/leaderboard").json()["players"]) == 2
    services.participant_remove(game_id=game.pk, actor=host, user_id=player.pk)
    players = host_api.get(f"/api/games/{game.pk}/leaderboard").json()["players"]
    assert [p["userId"] for p in players] == [host.pk]
