"""Races that only a real database can show: row locks around seq and picks."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from games import errors, services
from games.models import Game, GameEvent, GameStatus, Pick
from tests.factories import GameFactory, UserFactory, make_ceremony

pytestmark = pytest.mark.django_db(transaction=True)


def _in_thread(fn):
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return run


def test_concurrent_reveals_never_share_a_seq(postgres_url):
    ceremony = make_ceremony(categories=8, nominees=2)
    games = [GameFactory(ceremony=ceremony) for _ in range(3)]
    categories = list(ceremony.categories.all())

    @_in_thread
    def reveal(category):
        services.category_reveal(
            category_id=category.pk, nomination_id=category.nominations.first().pk
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(reveal, categories))

    for game in games:
        game.refresh_from_db()
        seqs = list(GameEvent.objects.filter(game=game).values_list("seq", flat=True))
        # 1 status + 8 updates + 1 completion, numbered 1..10 without gaps.
        assert seqs == list(range(1, 11))
        assert game.status == GameStatus.COMPLETED


def test_a_pick_racing_the_first_reveal_cannot_slip_in_after_it(postgres_url):
    assert connection.vendor == "postgresql"
    ceremony = make_ceremony(categories=2, nominees=2)
    game = GameFactory(ceremony=ceremony)
    player = UserFactory()
    services.game_join(user=player, access_code=game.access_code)
    first, second = ceremony.categories.all()
    reveal_holds_lock = threading.Event()
    release_reveal = threading.Event()
    original = services._ceremony_games_locked

    def slow_lock(*args, **kwargs):
        games = original(*args, **kwargs)
        reveal_holds_lock.set()  # the reveal now holds the game rows
        release_reveal.wait(10)
        return games

    @_in_thread
    def do_reveal():
        services.category_reveal(category_id=first.pk, nomination_id=first.nominations.first().pk)

    @_in_thread
    def do_pick():
        try:
            services.pick_submit(
                game_id=game.pk,
                user=player,
                category_id=second.pk,
                nomination_id=second.nominations.first().pk,
            )
        except errors.PicksLocked:
            return "locked"
        return "saved"

    services._ceremony_games_locked = slow_lock
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            revealing = pool.submit(do_reveal)
            assert reveal_holds_lock.wait(10)
            picking = pool.submit(do_pick)
            # The pick waits on the game row; let the reveal commit.
            release_reveal.set()
            revealing.result(20)
            assert picking.result(20) == "locked"
    finally:
        services._ceremony_games_locked = original
    assert not Pick.objects.filter(game=game, user=player).exists()
    assert Game.objects.get(pk=game.pk).status == GameStatus.LIVE
