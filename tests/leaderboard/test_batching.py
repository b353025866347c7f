"""Batched join work: the Batcher, and the connect's and join's batches
(one query for many sockets), and the presence diff windows of a burst."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from accounts.tickets import ticket_claim, ticket_issue
from games import services
from games.models import GameStatus
from leaderboard import presence, snapshots
from leaderboard.auth import check_users
from leaderboard.batching import Batcher
from leaderboard.joining import join_checks
from tests.factories import GameFactory, ParticipantFactory, UserFactory, make_ceremony


class Runs:
    def __init__(self, delay: float = 0.01) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay

    async def run(self, requests: list[int]) -> list[int | BaseException]:
        self.batches.append(requests)
        await asyncio.sleep(self.delay)
        return [ValueError(r) if r < 0 else r * 10 for r in requests]


async def test_requests_of_one_turn_make_one_batch_and_each_gets_its_answer():
    runs = Runs()
    batcher: Batcher[int, int] = Batcher(runs.run)
    answers = await asyncio.gather(*(batcher.ask(n) for n in (1, 2, -3, 4)), return_exceptions=True)
    assert runs.batches == [[1, 2, -3, 4]]
    assert answers[:2] == [10, 20] and answers[3] == 40
    assert isinstance(answers[2], ValueError)  # refuses its own request only


async def test_requests_made_while_batches_run_wait_for_the_next_one():
    runs = Runs(delay=0.05)
    batcher: Batcher[int, int] = Batcher(runs.run, in_flight=1)
    first = asyncio.ensure_future(batcher.ask(1))
    await asyncio.sleep(0.01)  # the first batch is in flight
    later = [asyncio.ensure_future(batcher.ask(n)) for n in (2, 3)]
    await asyncio.sleep(0.01)
    later.append(asyncio.ensure_future(batcher.ask(4)))
    assert await asyncio.gather(first, *later) == [10, 20, 30, 40]
    assert runs.batches == [[1], [2, 3, 4]]


async def test_batches_start_at_least_min_interval_apart_so_a_trickle_is_gathered():
    """Requests trickling in one by one, each after the last batch answered,
    still wait for the interval and go together; after a quiet interval a
    request starts its own batch at once."""
    runs = Runs(delay=0)
    batcher: Batcher[int, int] = Batcher(runs.run, min_interval=0.5)
    assert await batcher.ask(1) == 10
    trickle = []
    for n in (2, 3, 4):
        trickle.append(asyncio.ensure_future(batcher.ask(n)))
        await asyncio.sleep(0.02)  # each alone on a turn, the batch before done
    assert await asyncio.gather(*trickle) == [20, 30, 40]
    assert runs.batches == [[1], [2, 3, 4]]
    await asyncio.sleep(0.55)
    assert await asyncio.wait_for(batcher.ask(5), 0.4) == 50  # no wait after a quiet interval
    assert runs.batches[-1] == [5]


async def test_a_cancelled_caller_leaves_the_batch_and_the_others_answers_alone():
    runs = Runs(delay=0.05)
    batcher: Batcher[int, int] = Batcher(runs.run)
    leaving = asyncio.ensure_future(batcher.ask(1))
    staying = asyncio.ensure_future(batcher.ask(2))
    await asyncio.sleep(0.01)  # both in one batch, in flight
    leaving.cancel()
    assert await staying == 20
    assert leaving.cancelled() and runs.batches == [[1, 2]]
    # The batcher still answers afterwards.
    assert await batcher.ask(3) == 30


async def test_batches_are_cut_at_max_size_and_a_failed_batch_fails_every_caller():
    runs = Runs()
    batcher: Batcher[int, int] = Batcher(runs.run, max_size=2)
    await asyncio.gather(*(batcher.ask(n) for n in range(5)))
    assert sorted(len(batch) for batch in runs.batches) == [1, 2, 2]

    async def down(requests: list[int]) -> list[int]:
        raise DatabaseError("down")

    failing: Batcher[int, int] = Batcher(down)
    outcomes = await asyncio.gather(failing.ask(1), failing.ask(2), return_exceptions=True)
    assert all(isinstance(outcome, DatabaseError) for outcome in outcomes)


# --- the join's participant check ------------------------------------------------


@pytest.mark.django_db
def test_a_batch_of_join_checks_is_one_query():
    game = GameFactory(ceremony=make_ceremony(categories=1), status=GameStatus.LIVE)
    players = [ParticipantFactory(game=game).user for _ in range(20)]
    pairs = [(game.pk, player.pk) for player in players]
    with CaptureQueriesContext(connection) as queries:
        answers = join_checks(pairs)
    assert answers == [game.ceremony_id] * 20
    assert len(queries) == 1


@pytest.mark.django_db
def test_join_checks_refuse_outsiders_and_a_player_removed_since_the_last_join():
    game = GameFactory(ceremony=make_ceremony(categories=1), status=GameStatus.LIVE)
    player, outsider = ParticipantFactory(game=game).user, UserFactory()
    inactive = ParticipantFactory(game=game, user=UserFactory(is_active=False)).user
    pairs = [(game.pk, player.pk), (game.pk, outsider.pk), (game.pk + 1000, player.pk)]
    assert join_checks([*pairs, (game.pk, inactive.pk)]) == [
        game.ceremony_id,
        "NOT_PARTICIPANT",
        "GAME_NOT_FOUND",
        "USER_NOT_FOUND",
    ]
    services.participant_remove(game_id=game.pk, actor=game.host, user_id=player.pk)
    assert join_checks([(game.pk, player.pk)]) == ["NOT_PARTICIPANT"]


@pytest.mark.django_db
def test_join_checks_lock_a_game_that_came_due():
    game = GameFactory(ceremony=make_ceremony(categories=1), status=GameStatus.OPEN)
    game.picks_lock_at = game.created_at
    game.save(update_fields=["picks_lock_at"])
    assert join_checks([(game.pk, game.host_id)]) == [game.ceremony_id]
    game.refresh_from_db()
    assert game.status == GameStatus.LIVE


# --- the join's snapshot -------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_of_snapshots_of_one_game_reads_its_row_once(monkeypatch):
    monkeypatch.setattr(snapshots, "_boards", {})
    game = GameFactory(ceremony=make_ceremony(categories=1), status=GameStatus.LIVE)
    players = [ParticipantFactory(game=game).user.pk for _ in range(10)]
    snapshots.join_snapshot(
        game_id=game.pk, last_seq=None, online_user_ids=players, online_count=10
    )  # warm
    requests = [(game.pk, None, players, 10) for _ in range(10)]
    with CaptureQueriesContext(connection) as queries:
        answers = snapshots.join_snapshots([*requests, (game.pk + 1000, None, [], 0)])
    assert len(queries) == 1
    assert len({answer.online_text for answer in answers[:10]}) == 1  # type: ignore[union-attr]
    assert isinstance(answers[-1], snapshots.Game.DoesNotExist)


# --- the connect's user check ----------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_of_connects_is_one_query_and_tickets_are_used_once():
    users = [UserFactory() for _ in range(5)]
    inactive = UserFactory(is_active=False)
    claims = [ticket_claim(ticket_issue(user_id=user.pk)) for user in [*users, inactive]]
    now = time.time()
    requests = [(claim.user_id, claim.issued_at, claim) for claim in claims if claim]
    replayed = requests[0]
    with CaptureQueriesContext(connection) as queries:
        answers = check_users([*requests, replayed])
    assert len(queries) == 1
    assert answers == [(u.pk, u.public_name) for u in users] + ["USER_NOT_FOUND", "TICKET_USED"]
    assert check_users([(users[0].pk, now, None)]) == [(users[0].pk, users[0].public_name)]


@pytest.mark.django_db
def test_an_outage_in_a_connect_batch_gives_the_tickets_back(monkeypatch):
    claim = ticket_claim(ticket_issue(user_id=UserFactory().pk))
    assert claim is not None

    def down(*args: object, **kwargs: object) -> None:
        raise DatabaseError("down")

    with monkeypatch.context() as patched:
        patched.setattr("django.db.models.query.QuerySet.in_bulk", down)
        [answer] = check_users([(claim.user_id, claim.issued_at, claim)])
    assert isinstance(answer, DatabaseError)
    [retried] = check_users([(claim.user_id, claim.issued_at, claim)])
    assert isinstance(retried, tuple)  # released: the client's retry is its first use


# --- presence diff windows ---------------------------------------------------------------


def test_diff_windows_widen_while_a_burst_goes_on_and_reset_after_it():
    now = [100.0]
    batcher = presence.DiffBatcher(window=0.5, clock=lambda: now[0])
    assert batcher._next_window() == 0.5  # a lone change: the base window
    widths = []
    for _ in range(7):  # each window flushed, and changes keep coming
        batcher._last_flush = now[0]
        now[0] += 0.01
        widths.append(batcher._next_window())
    assert widths == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    now[0] += 0.5  # quiet for a base window
    assert batcher._next_window() == 0.5
