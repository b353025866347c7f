"""Races that only a real database can show: row locks around seq and picks."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from games import errors, services
from games.models import Game, GameEvent, GameStatus, Pick
from tests.factories import GameFactory, UserFactory, make_ceremony, pick_all

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


def test_frames_stored_under_racing_reveals_show_the_board_as_of_their_seq(postgres_url):
    """Each leaderboard:update is rendered in its reveal's transaction: under
    racing reveals, the frame stored under seq N scores exactly the categories
    revealed by then (rendered after commit from live counters, an earlier
    seq could carry a later reveal's points)."""
    points = [1, 2, 4, 8, 16, 32]
    ceremony = make_ceremony(categories=len(points), nominees=2, points=points)
    games = [GameFactory(ceremony=ceremony) for _ in range(3)]
    for game in games:
        pick_all(game, game.host, choose=0)  # right wherever nominee 0 wins
    categories = list(ceremony.categories.order_by("order"))

    @_in_thread
    def reveal(category):
        services.category_reveal(
            category_id=category.pk, nomination_id=category.nominations.first().pk
        )

    with ThreadPoolExecutor(max_workers=len(categories)) as pool:
        list(pool.map(reveal, categories))

    points_of = {category.pk: category.points for category in categories}
    for game in games:
        frames = [
            event.payload
            for event in GameEvent.objects.filter(game=game, type="leaderboard:update").order_by(
                "seq"
            )
        ]
        assert len(frames) == len(categories)
        revealed: list[int] = []
        for frame in frames:
            revealed.append(frame["lastRevealed"]["categoryId"])
            assert frame["revealedCount"] == len(revealed)
            # Distinct powers of two: the total names exactly which were revealed.
            assert frame["players"][0]["totalScore"] == sum(points_of[c] for c in revealed)
