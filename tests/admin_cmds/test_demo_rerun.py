"""`manage.py demo` run again always leaves a night that can be played: once
the demo ceremony has begun (or its game is locked) it sets up a fresh copy
with a new game whose picks are open, and prints that game's URLs."""

from __future__ import annotations

import re
from io import StringIO

from django.core.management import call_command

from accounts.models import User
from games import services
from games.models import Ceremony, Game, GameStatus, Pick
from games.standings import game_standings

BASE = "https://party.example"


def run_demo() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("demo", "--base-url", BASE, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def printed_game(out: str) -> Game:
    """The game the printed URLs point to (they must all agree)."""
    ids = {int(n) for n in re.findall(rf"{BASE}/games/(\d+)/", out)}
    assert len(ids) == 1, out
    game = Game.objects.get(pk=ids.pop())
    assert f"{BASE}/join/{game.access_code}" in out
    assert f"Access code:  {game.access_code}" in out
    return game


def reveal_first(game: Game) -> None:
    category = game.ceremony.categories.get(order=1)
    services.category_reveal(category_id=category.pk, nomination_id=category.nominations.first().pk)


def assert_playable(game: Game) -> None:
    """Picks open, the whole demo party in it with complete picks."""
    game.refresh_from_db()
    assert game.status == GameStatus.OPEN
    assert not game.ceremony.categories.filter(winner__isnull=False).exists()
    standings = game_standings(game=game)
    assert (len(standings.players), standings.incomplete_count) == (13, 0)


def test_rerun_after_a_reveal_sets_up_a_fresh_playable_night(db):
    first_out, _ = run_demo()
    first = printed_game(first_out)
    assert_playable(first)
    reveal_first(first)
    first_picks = set(Pick.objects.filter(game=first).values_list("user_id", "nomination_id"))

    out, err = run_demo()
    second = printed_game(out)
    assert second.pk != first.pk
    assert_playable(second)
    assert second.ceremony.name == "97th Academy Awards · demo night 2"
    assert second.ceremony.categories.count() == first.ceremony.categories.count()
    assert "status OPEN" in out and "Picks are open" in out
    assert "has begun (1 of 23 revealed)" in err
    # The night that began is kept as it is.
    first.refresh_from_db()
    assert first.status == GameStatus.LIVE
    assert set(Pick.objects.filter(game=first).values_list("user_id", "nomination_id")) == (
        first_picks
    )
    assert User.objects.count() == 13

    # Run again while night 2 is still open: reused, nothing new.
    again_out, again_err = run_demo()
    assert printed_game(again_out).pk == second.pk
    assert "Reusing game" in again_err
    assert (Ceremony.objects.count(), Game.objects.count()) == (2, 2)


def test_rerun_after_the_host_locked_picks_sets_up_a_fresh_night(db):
    first = printed_game(run_demo()[0])
    services.game_lock(game_id=first.pk, actor=first.host)
    second = printed_game(run_demo()[0])
    assert second.pk != first.pk
    assert_playable(second)


def test_rerun_after_a_finished_night_and_a_begun_one_goes_to_night_three(db):
    first = printed_game(run_demo()[0])
    for category in first.ceremony.categories.all():
        services.category_reveal(
            category_id=category.pk, nomination_id=category.nominations.first().pk
        )
    first.refresh_from_db()
    assert first.status == GameStatus.COMPLETED
    second = printed_game(run_demo()[0])
    reveal_first(second)
    third = printed_game(run_demo()[0])
    assert third.ceremony.name == "97th Academy Awards · demo night 3"
    assert_playable(third)
