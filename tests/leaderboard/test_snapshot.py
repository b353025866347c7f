"""The `joined` snapshot: standings computed and encoded once per seq."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from games import services
from games.models import GameStatus
from leaderboard import snapshots
from tests.factories import GameFactory, make_ceremony, pick_all

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch):
    monkeypatch.setattr(snapshots, "_boards", {})


def test_snapshot_text_is_the_whole_joined_frame_with_ref():
    game = GameFactory(ceremony=make_ceremony(categories=2))
    pick_all(game, game.host)
    snapshot = snapshots.join_snapshot(
        game_id=game.pk, last_seq=None, online_user_ids=[game.host_id], online_count=1
    )
    frame = json.loads(snapshot.text("r1"))
    assert frame["ref"] == "r1" and frame["type"] == "joined" and frame["recovered"] is False
    assert frame["leaderboard"]["type"] == "leaderboard:update"
    assert frame["leaderboard"]["seq"] == frame["seq"] == snapshot.seq
    assert [p["userId"] for p in frame["leaderboard"]["players"]] == [game.host_id]
    assert frame["online"] == [{"userId": game.host_id, "name": game.host.display_name}]
    assert "ref" not in json.loads(snapshot.text())


def test_live_game_standings_are_computed_once_per_seq():
    game = GameFactory(ceremony=make_ceremony(categories=2))
    pick_all(game, game.host)
    services.game_lock(game_id=game.pk, actor=game.host)
    with mock.patch.object(snapshots, "game_board", wraps=snapshots.game_board) as computed:
        for _ in range(3):
            snapshots.join_snapshot(
                game_id=game.pk, last_seq=None, online_user_ids=[], online_count=0
            )
        assert computed.call_count == 1
        category = game.ceremony.categories.first()
        services.category_reveal(
            category_id=category.pk, nomination_id=category.nominations.first().pk
        )
        snapshot = snapshots.join_snapshot(
            game_id=game.pk, last_seq=None, online_user_ids=[], online_count=0
        )
        assert computed.call_count == 2
    board = json.loads(snapshot.leaderboard_text)
    assert board["revealedCount"] == 1 and board["players"][0]["totalScore"] == 1


def test_open_game_board_is_recomputed_after_a_short_while(monkeypatch):
    """Picks change an OPEN game's board without an event: the cache only
    holds for OPEN_BOARD_SECONDS."""
    game = GameFactory(ceremony=make_ceremony(categories=1))
    assert game.status == GameStatus.OPEN
    now = [100.0]
    monkeypatch.setattr(snapshots, "clock", lambda: now[0])
    first = snapshots.join_snapshot(
        game_id=game.pk, last_seq=None, online_user_ids=[], online_count=0
    )
    pick_all(game, game.host)
    now[0] = 101.5
    cached = snapshots.join_snapshot(
        game_id=game.pk, last_seq=None, online_user_ids=[], online_count=0
    )
    assert cached.leaderboard_text == first.leaderboard_text
    now[0] = 102.5
    later = snapshots.join_snapshot(
        game_id=game.pk, last_seq=None, online_user_ids=[], online_count=0
    )
    assert json.loads(later.leaderboard_text)["players"][0]["userId"] == game.host_id
