"""The `online` list of `joined`: player names from a per-process cache."""

from __future__ import annotations

import json

import pytest

from accounts.models import User
from games import services
from leaderboard import player_names
from tests.factories import GameFactory, UserFactory

pytestmark = pytest.mark.django_db


def _listed(game, user_ids):
    return json.loads(player_names.online_text(game_id=game.pk, user_ids=user_ids))


def test_lists_players_in_the_given_order_with_their_public_names():
    game = GameFactory()
    player = UserFactory(display_name="", username="zoe")
    services.game_join(access_code=game.access_code, user=player)
    assert _listed(game, [player.pk, game.host_id]) == [
        {"userId": player.pk, "name": "zoe"},
        {"userId": game.host_id, "name": game.host.display_name},
    ]


def test_names_are_loaded_once_then_served_from_the_cache(django_assert_num_queries):
    game = GameFactory()
    with django_assert_num_queries(1):
        _listed(game, [game.host_id])
    with django_assert_num_queries(0):
        for _ in range(5):
            _listed(game, [game.host_id])


def test_a_player_who_joined_after_the_load_is_fetched_alone(django_assert_num_queries):
    game = GameFactory()
    _listed(game, [game.host_id])
    late = UserFactory(display_name="Late")
    services.game_join(access_code=game.access_code, user=late)
    with django_assert_num_queries(1):
        assert _listed(game, [game.host_id, late.pk])[1] == {"userId": late.pk, "name": "Late"}


def test_non_players_are_left_out():
    game = GameFactory()
    stranger = UserFactory()
    assert _listed(game, [stranger.pk, game.host_id]) == [
        {"userId": game.host_id, "name": game.host.display_name}
    ]


def test_a_renamed_player_shows_the_new_name_once_the_cache_expires(monkeypatch):
    game = GameFactory()
    now = [1000.0]
    monkeypatch.setattr(player_names, "clock", lambda: now[0])
    _listed(game, [game.host_id])
    User.objects.filter(pk=game.host_id).update(display_name="Renamed")
    assert _listed(game, [game.host_id])[0]["name"] != "Renamed"
    now[0] += player_names.NAMES_SECONDS
    assert _listed(game, [game.host_id])[0]["name"] == "Renamed"


def test_names_are_encoded_as_json_whatever_they_contain():
    game = GameFactory()
    User.objects.filter(pk=game.host_id).update(display_name='<img onerror="x">\\ "é"')
    assert _listed(game, [game.host_id])[0]["name"] == '<img onerror="x">\\ "é"'
