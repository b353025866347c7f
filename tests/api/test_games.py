"""Games over HTTP: create, list, detail, update, join, remove a participant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from games.models import Game, GameEvent, GameParticipant, GameStatus
from tests.api.conftest import error_of
from tests.factories import GameFactory, UserFactory


def game_body(game: Game, *, count: int, host: bool) -> dict:
    body = {
        "id": game.pk,
        "name": game.name,
        "ceremonyId": game.ceremony_id,
        "status": game.status,
        "picksLockAt": None,
        "completedAt": None,
        "participantCount": count,
        "isHost": host,
    }
    if host:
        body["accessCode"] = game.access_code
    return body


def test_create_game(host_api, host, ceremony):
    response = host_api.post(
        "/api/games",
        {"ceremonyId": ceremony.pk, "name": "  Oscars at Sam's  ", "extra": 1},
        format="json",
    )
    assert response.status_code == 201
    game = Game.objects.get()
    assert response.json() == game_body(game, count=1, host=True)
    assert response.json()["name"] == "Oscars at Sam's"
    assert response.json()["status"] == "OPEN"
    assert len(game.access_code) == 8
    assert GameParticipant.objects.filter(game=game, user=host).exists()


def test_create_game_with_lock_time(host_api, ceremony):
    response = host_api.post(
        "/api/games",
        {"ceremonyId": ceremony.pk, "name": "Late", "picksLockAt": "2030-03-02T23:00:00+01:00"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["picksLockAt"] == "2030-03-02T22:00:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "ceremonyId"),
        ({"ceremonyId": "CEREMONY", "name": "x"}, "ceremonyId"),
        ({"ceremonyId": 1}, "name"),
        ({"ceremonyId": 1, "name": ""}, "name"),
        ({"ceremonyId": 1, "name": 7}, "name"),
        ({"ceremonyId": 1, "name": "x" * 121}, "name"),
        ({"ceremonyId": 1, "name": "x", "picksLockAt": "tomorrow"}, "picksLockAt"),
        ({"ceremonyId": 1, "name": "x", "picksLockAt": 1700000000}, "picksLockAt"),
    ],
)
def test_create_game_validation(host_api, db, body, field):
    response = host_api.post("/api/games", body, format="json")
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["message"].startswith(f"{field}: ")


def test_create_game_after_ceremony_began_is_live(host_api, staff_api, ceremony, categories):
    category = categories[0]
    staff_api.post(
        f"/api/categories/{category.pk}/winner",
        {"nominationId": category.nominations.first().pk},
        format="json",
    )
    response = host_api.post("/api/games", {"ceremonyId": ceremony.pk, "name": "x"}, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "LIVE"


def test_create_game_with_past_lock_time_is_live(host_api, ceremony):
    response = host_api.post(
        "/api/games",
        {"ceremonyId": ceremony.pk, "name": "x", "picksLockAt": "2001-01-01T00:00:00Z"},
        format="json",
    )
    assert response.json()["status"] == "LIVE"


def test_list_shows_games_of_a_begun_ceremony_as_live(host_api, game, categories):
    category = categories[0]
    # Set directly, as an old row would be: no service locked this game.
    type(category).objects.filter(pk=category.pk).update(
        winner=category.nominations.first(), revealed_at=timezone.now()
    )
    assert host_api.get("/api/games").json()[0]["status"] == "LIVE"


def test_create_game_unknown_ceremony(host_api, db):
    response = host_api.post("/api/games", {"ceremonyId": 424242, "name": "x"}, format="json")
    assert error_of(response) == (404, "NOT_FOUND")


def test_list_my_games(api_for, host, game, player, ceremony):
    GameFactory(ceremony=ceremony)  # someone else's
    mine = GameFactory(ceremony=ceremony, host=player, name="Mine")
    response = api_for(player).get("/api/games")
    assert response.status_code == 200
    assert response.json() == [
        game_body(mine, count=1, host=True),
        game_body(game, count=2, host=False),
    ]
    assert api_for(UserFactory()).get("/api/games").json() == []


def test_list_shows_due_lock_as_live(host_api, game):
    Game.objects.filter(pk=game.pk).update(picks_lock_at=timezone.now() - timedelta(seconds=1))
    assert host_api.get("/api/games").json()[0]["status"] == "LIVE"
    assert Game.objects.get(pk=game.pk).status == GameStatus.LIVE


def test_detail_for_host_and_player(host_api, player_api, game, player):
    assert host_api.get(f"/api/games/{game.pk}").json() == game_body(game, count=2, host=True)
    as_player = player_api.get(f"/api/games/{game.pk}").json()
    assert as_player == game_body(game, count=2, host=False)
    assert "accessCode" not in as_player


def test_detail_forbidden_for_outsiders(outsider_api, staff_api, game):
    assert error_of(outsider_api.get(f"/api/games/{game.pk}")) == (403, "NOT_PARTICIPANT")
    assert error_of(staff_api.get(f"/api/games/{game.pk}")) == (403, "NOT_PARTICIPANT")
    assert error_of(outsider_api.get("/api/games/424242")) == (404, "NOT_FOUND")


def test_detail_shows_passed_lock_as_live(player_api, game, player):
    past = timezone.now() - timedelta(minutes=1)
    Game.objects.filter(pk=game.pk).update(picks_lock_at=past)
    body = player_api.get(f"/api/games/{game.pk}").json()
    assert body["status"] == "LIVE"
    assert body["picksLockAt"].endswith("Z")
    assert list(GameEvent.objects.filter(game=game).values_list("type", flat=True)) == [
        "game:status",
        "leaderboard:update",
    ]


def test_patch_name_and_lock_time(host_api, game):
    response = host_api.patch(
        f"/api/games/{game.pk}",
        {"name": "Renamed", "picksLockAt": "2031-01-01T20:00:00Z"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["picksLockAt"] == "2031-01-01T20:00:00Z"
    game.refresh_from_db()
    assert game.picks_lock_at == datetime(2031, 1, 1, 20, tzinfo=UTC)
    # Absent keeps it; null clears it.
    kept = host_api.patch(f"/api/games/{game.pk}", {"name": "Again"}, format="json")
    assert kept.json()["picksLockAt"] == "2031-01-01T20:00:00Z"
    cleared = host_api.patch(f"/api/games/{game.pk}", {"picksLockAt": None}, format="json")
    assert cleared.json()["picksLockAt"] is None


def test_patch_lock_time_in_past_locks(host_api, game):
    past = (timezone.now() - timedelta(minutes=5)).isoformat()
    response = host_api.patch(f"/api/games/{game.pk}", {"picksLockAt": past}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "LIVE"


def test_patch_open_to_live_then_no_way_back(host_api, game):
    response = host_api.patch(f"/api/games/{game.pk}", {"status": "LIVE"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "LIVE"
    for status in ("OPEN", "COMPLETED", "SETUP"):
        refused = host_api.patch(f"/api/games/{game.pk}", {"status": status}, format="json")
        assert error_of(refused) == (409, "INVALID_TRANSITION")
    # Same status again is no change at all.
    assert (
        host_api.patch(f"/api/games/{game.pk}", {"status": "LIVE"}, format="json").status_code
        == 200
    )
    refused = host_api.patch(
        f"/api/games/{game.pk}", {"picksLockAt": "2031-01-01T20:00:00Z"}, format="json"
    )
    assert error_of(refused) == (409, "INVALID_TRANSITION")


def test_patch_open_to_completed_refused(host_api, game):
    refused = host_api.patch(f"/api/games/{game.pk}", {"status": "COMPLETED"}, format="json")
    assert error_of(refused) == (409, "INVALID_TRANSITION")
    game.refresh_from_db()
    assert game.status == GameStatus.OPEN


def test_patch_validation_and_permissions(host_api, player_api, outsider_api, game, player):
    bogus = host_api.patch(f"/api/games/{game.pk}", {"status": "PAUSED"}, format="json")
    assert error_of(bogus) == (400, "VALIDATION_ERROR")
    assert bogus.json()["error"]["message"].startswith("status: ")
    blank = host_api.patch(f"/api/games/{game.pk}", {"name": ""}, format="json")
    assert error_of(blank) == (400, "VALIDATION_ERROR")
    assert error_of(player_api.patch(f"/api/games/{game.pk}", {"name": "x"}, format="json")) == (
        403,
        "FORBIDDEN",
    )
    assert error_of(outsider_api.patch(f"/api/games/{game.pk}", {"name": "x"}, format="json")) == (
        403,
        "NOT_PARTICIPANT",
    )
    assert error_of(host_api.patch("/api/games/424242", {"name": "x"}, format="json")) == (
        404,
        "NOT_FOUND",
    )
    game.refresh_from_db()
    assert game.name == "Oscar night"


def test_join_case_insensitive_and_idempotent(api_for, game):
    joiner = UserFactory()
    client = api_for(joiner)
    code = f"  {game.access_code.lower()} "
    response = client.post("/api/games/join", {"accessCode": code}, format="json")
    assert response.status_code == 200
    assert response.json() == game_body(game, count=2, host=False)
    again = client.post("/api/games/join", {"accessCode": game.access_code}, format="json")
    assert again.status_code == 200
    assert again.json()["participantCount"] == 2
    assert GameParticipant.objects.filter(game=game, user=joiner).count() == 1
    assert list(GameEvent.objects.filter(game=game).values_list("type", flat=True)) == [
        "participant:joined"
    ]


def test_join_errors(api_for, game, ceremony):
    client = api_for(UserFactory())
    assert error_of(client.post("/api/games/join", {}, format="json")) == (400, "VALIDATION_ERROR")
    assert error_of(client.post("/api/games/join", {"accessCode": 12345678}, format="json")) == (
        400,
        "VALIDATION_ERROR",
    )
    assert error_of(client.post("/api/games/join", {"accessCode": "ZZZZZZZZ"}, format="json")) == (
        404,
        "INVALID_CODE",
    )
    done = GameFactory(ceremony=ceremony, status=GameStatus.COMPLETED)
    assert error_of(
        client.post("/api/games/join", {"accessCode": done.access_code}, format="json")
    ) == (409, "GAME_NOT_JOINABLE")


def test_live_game_can_be_joined(api_for, game):
    Game.objects.filter(pk=game.pk).update(status=GameStatus.LIVE)
    response = api_for(UserFactory()).post(
        "/api/games/join", {"accessCode": game.access_code}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "LIVE"


def test_join_rate_limited_after_wrong_codes(api_for, game, settings):
    settings.ENVELOPE_JOIN_FAILURE_LIMIT = 10
    guesser = api_for(UserFactory())
    for _ in range(10):
        wrong = guesser.post("/api/games/join", {"accessCode": "WRONGCOD"}, format="json")
        assert error_of(wrong) == (404, "INVALID_CODE")
    limited = guesser.post("/api/games/join", {"accessCode": game.access_code}, format="json")
    assert error_of(limited) == (429, "RATE_LIMITED")
    assert not GameParticipant.objects.filter(game=game).exclude(user=game.host).exists()
    # The limit is per user: someone else joins fine.
    other = api_for(UserFactory())
    assert (
        other.post("/api/games/join", {"accessCode": game.access_code}, format="json").status_code
        == 200
    )


def test_right_codes_do_not_count_toward_the_limit(api_for, game, settings):
    settings.ENVELOPE_JOIN_FAILURE_LIMIT = 2
    client = api_for(UserFactory())
    for _ in range(3):
        assert (
            client.post(
                "/api/games/join", {"accessCode": game.access_code}, format="json"
            ).status_code
            == 200
        )


def test_remove_participant(host_api, player_api, game, player, host):
    url = f"/api/games/{game.pk}/participants/{player.pk}"
    response = host_api.delete(url)
    assert response.status_code == 204
    assert response.content == b""
    assert not GameParticipant.objects.filter(game=game, user=player).exists()
    assert error_of(player_api.get(f"/api/games/{game.pk}")) == (403, "NOT_PARTICIPANT")
    assert error_of(host_api.delete(url)) == (404, "NOT_FOUND")


def test_remove_participant_refusals(host_api, player_api, outsider_api, game, player, host):
    assert error_of(host_api.delete(f"/api/games/{game.pk}/participants/{host.pk}")) == (
        403,
        "FORBIDDEN",
    )
    assert error_of(player_api.delete(f"/api/games/{game.pk}/participants/{host.pk}")) == (
        403,
        "FORBIDDEN",
    )
    assert error_of(outsider_api.delete(f"/api/games/{game.pk}/participants/{player.pk}")) == (
        403,
        "NOT_PARTICIPANT",
    )
    assert error_of(host_api.delete(f"/api/games/424242/participants/{player.pk}")) == (
        404,
        "NOT_FOUND",
    )
    assert GameParticipant.objects.filter(game=game).count() == 2
