"""`manage.py demo` and `manage.py lock_due_games`."""

from __future__ import annotations

import datetime as dt
from io import StringIO

from django.contrib.auth import authenticate
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from games.models import Ceremony, Game, GameEvent, GameParticipant, GameStatus, Pick
from games.standings import game_standings
from tests.factories import GameFactory, make_ceremony


def run(name: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_demo_creates_a_complete_party_and_can_run_twice(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("demo", "--base-url", "https://party.example/")
    game = Game.objects.get(name="Oscars Night Demo")
    assert game.status == GameStatus.OPEN
    assert game.ceremony.name == "97th Academy Awards"
    assert game.ceremony.categories.count() == 23
    host = User.objects.get(username="host")
    assert game.host == host and host.is_staff and host.is_superuser
    assert authenticate(username="host", password="envelope-host") == host
    players = User.objects.filter(username__startswith="player").order_by("pk")
    assert [p.username for p in players] == [f"player{n}" for n in range(1, 13)]
    assert authenticate(username="player12", password="envelope-player") is not None
    assert "Zoë" in {p.display_name for p in players}
    assert not players.filter(is_staff=True).exists()
    assert GameParticipant.objects.filter(game=game).count() == 13
    # Complete picks for everyone: all 13 ranked, none incomplete.
    standings = game_standings(game=game)
    assert (len(standings.players), standings.incomplete_count) == (13, 0)
    assert Pick.objects.filter(game=game).count() == 13 * 23
    # Joins went through the service: one participant:joined event per player.
    assert GameEvent.objects.filter(game=game, type="participant:joined").count() == 12
    for path in ("/", "/live", "/picks", "/host"):
        expected = "https://party.example/" if path == "/" else f"/games/{game.pk}{path}"
        assert expected in out
    assert f"https://party.example/join/{game.access_code}" in out
    assert "https://party.example/admin/" in out
    assert "host / envelope-host" in out and "envelope-player" in out

    picks_before = set(Pick.objects.values_list("user_id", "category_id", "nomination_id"))
    out_again, err_again = run("demo")
    assert Ceremony.objects.count() == 1 and Game.objects.count() == 1
    assert User.objects.count() == 13
    assert set(Pick.objects.values_list("user_id", "category_id", "nomination_id")) == picks_before
    assert "Reusing game" in err_again
    assert f"/join/{game.access_code}" in out_again


# A re-run after the demo has begun sets up a fresh night:
# tests/admin_cmds/test_demo_rerun.py.


def test_lock_due_games_locks_only_games_past_their_lock(db, django_capture_on_commit_callbacks):
    ceremony = make_ceremony(categories=2)
    past = timezone.now() - dt.timedelta(minutes=1)
    due = GameFactory(ceremony=ceremony, picks_lock_at=past)
    later = GameFactory(ceremony=ceremony, picks_lock_at=timezone.now() + dt.timedelta(hours=1))
    unset = GameFactory(ceremony=ceremony)
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("lock_due_games")
    assert out == "Locked 1 game(s).\n"
    statuses = dict(Game.objects.values_list("pk", "status"))
    assert statuses == {
        due.pk: GameStatus.LIVE,
        later.pk: GameStatus.OPEN,
        unset.pk: GameStatus.OPEN,
    }
    assert list(GameEvent.objects.filter(game=due).values_list("type", flat=True)) == [
        "game:status",
        "leaderboard:update",
    ]
    # Running again finds nothing more to do.
    assert run("lock_due_games")[0] == "Locked 0 game(s).\n"
