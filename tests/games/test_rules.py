"""The game rules of docs/api.md, game rules, through games.services."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from games import errors, services
from games.models import GameEvent, GameParticipant, GameStatus, Pick
from leaderboard import events as leaderboard_events
from tests.factories import GameFactory, UserFactory, make_ceremony, pick_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def game():
    return GameFactory(ceremony=make_ceremony(categories=3, nominees=3, points=[5, 2, 1]))


def categories(game):
    return list(game.ceremony.categories.all())


def nominee(category, index=0):
    return list(category.nominations.all())[index]


def reveal(category, index=0):
    return services.category_reveal(
        category_id=category.pk, nomination_id=nominee(category, index).pk
    )


def event_types(game):
    return list(GameEvent.objects.filter(game=game).order_by("seq").values_list("seq", "type"))


# --- creating and joining ----------------------------------------------------------


def test_created_game_is_open_with_host_as_participant():
    host = UserFactory()
    ceremony = make_ceremony()
    game = services.game_create(host=host, ceremony_id=ceremony.pk, name="Party")
    assert game.status == GameStatus.OPEN
    assert GameParticipant.objects.filter(game=game, user=host).exists()
    assert len(game.access_code) == 8
    assert not set(game.access_code) & set("01OIL")


def test_create_for_unknown_ceremony_is_not_found():
    with pytest.raises(errors.NotFound):
        services.game_create(host=UserFactory(), ceremony_id=987654, name="Party")


def test_join_is_case_insensitive_and_idempotent(game):
    player = UserFactory()
    services.game_join(user=player, access_code=f"  {game.access_code.lower()} ")
    services.game_join(user=player, access_code=game.access_code)
    assert GameParticipant.objects.filter(game=game, user=player).count() == 1
    # Only the first join is an event.
    assert event_types(game) == [(1, "participant:joined")]
    payload = GameEvent.objects.get(game=game, seq=1).payload
    assert payload == {
        "type": "participant:joined",
        "gameId": game.pk,
        "seq": 1,
        "userId": player.pk,
        "name": player.display_name,
        "participantCount": 2,
    }


def test_join_with_wrong_code():
    with pytest.raises(errors.InvalidCode):
        services.game_join(user=UserFactory(), access_code="ZZZZZZZZ")


def test_completed_game_cannot_be_joined_but_rejoining_is_fine(game):
    member = UserFactory()
    services.game_join(user=member, access_code=game.access_code)
    for category in categories(game):
        reveal(category)
    game.refresh_from_db()
    assert game.status == GameStatus.COMPLETED
    with pytest.raises(errors.GameNotJoinable):
        services.game_join(user=UserFactory(), access_code=game.access_code)
    assert services.game_join(user=member, access_code=game.access_code).pk == game.pk


def test_live_game_can_be_joined_to_watch_not_to_pick(game):
    reveal(categories(game)[0])
    watcher = UserFactory()
    services.game_join(user=watcher, access_code=game.access_code)
    category = categories(game)[1]
    with pytest.raises(errors.PicksLocked):
        services.pick_submit(
            game_id=game.pk,
            user=watcher,
            category_id=category.pk,
            nomination_id=nominee(category).pk,
        )


# --- picks -----------------------------------------------------------------------------


def test_pick_replaces_previous_pick(game):
    category = categories(game)[0]
    for index in (0, 2):
        services.pick_submit(
            game_id=game.pk,
            user=game.host,
            category_id=category.pk,
            nomination_id=nominee(category, index).pk,
        )
    assert list(Pick.objects.filter(game=game).values_list("nomination_id", flat=True)) == [
        nominee(category, 2).pk
    ]


def test_pick_requires_participant(game):
    category = categories(game)[0]
    with pytest.raises(errors.NotParticipant):
        services.pick_submit(
            game_id=game.pk,
            user=UserFactory(),
            category_id=category.pk,
            nomination_id=nominee(category).pk,
        )


def test_pick_nominee_must_belong_to_category(game):
    first, second = categories(game)[:2]
    with pytest.raises(errors.NominationNotInCategory):
        services.pick_submit(
            game_id=game.pk,
            user=game.host,
            category_id=first.pk,
            nomination_id=nominee(second).pk,
        )
    assert not Pick.objects.exists()


def test_pick_category_must_belong_to_the_games_ceremony(game):
    other = make_ceremony(categories=1).categories.get()
    with pytest.raises(errors.NotFound):
        services.pick_submit(
            game_id=game.pk,
            user=game.host,
            category_id=other.pk,
            nomination_id=nominee(other).pk,
        )


def test_picks_lock_at_is_enforced_on_pick_without_any_timer(game):
    game.picks_lock_at = timezone.now() - timedelta(seconds=1)
    game.save()
    category = categories(game)[0]
    with pytest.raises(errors.PicksLocked):
        services.pick_submit(
            game_id=game.pk,
            user=game.host,
            category_id=category.pk,
            nomination_id=nominee(category).pk,
        )
    game.refresh_from_db()
    # The lock that came due is persisted and announced, not just refused.
    assert game.status == GameStatus.LIVE
    assert event_types(game) == [(1, "game:status"), (2, "leaderboard:update")]
    assert not Pick.objects.exists()


def test_future_lock_time_still_accepts_picks(game):
    game.picks_lock_at = timezone.now() + timedelta(hours=1)
    game.save()
    category = categories(game)[0]
    services.pick_submit(
        game_id=game.pk,
        user=game.host,
        category_id=category.pk,
        nomination_id=nominee(category).pk,
    )
    assert Pick.objects.count() == 1


def test_lock_time_passing_at_the_last_moment_is_checked_inside_the_transaction(game):
    """The lock is re-checked under the row lock: a lock time that passes
    between the cheap pre-check and the write still refuses the pick."""
    game.picks_lock_at = timezone.now() + timedelta(minutes=5)
    game.save()
    category = categories(game)[0]
    later = timezone.now() + timedelta(minutes=10)
    real_lock_if_due = services.game_lock_if_due

    def pre_check_then_time_passes(**kwargs):
        result = real_lock_if_due(**kwargs)
        patcher.start()
        return result

    patcher = mock.patch("games.services.timezone.now", return_value=later)
    try:
        with (
            mock.patch("games.services.game_lock_if_due", side_effect=pre_check_then_time_passes),
            pytest.raises(errors.PicksLocked),
        ):
            services.pick_submit(
                game_id=game.pk,
                user=game.host,
                category_id=category.pk,
                nomination_id=nominee(category).pk,
            )
    finally:
        patcher.stop()
    assert not Pick.objects.exists()


def test_host_lock_makes_game_live_and_refuses_picks(game):
    services.game_lock(game_id=game.pk, actor=game.host)
    game.refresh_from_db()
    assert game.status == GameStatus.LIVE
    status_event = GameEvent.objects.get(game=game, type="game:status").payload
    assert status_event == {
        "type": "game:status",
        "gameId": game.pk,
        "seq": 1,
        "status": "LIVE",
        "picksLockAt": None,
    }
    category = categories(game)[0]
    with pytest.raises(errors.PicksLocked):
        services.pick_submit(
            game_id=game.pk,
            user=game.host,
            category_id=category.pk,
            nomination_id=nominee(category).pk,
        )


def test_only_the_host_may_lock_or_edit(game):
    player = UserFactory()
    services.game_join(user=player, access_code=game.access_code)
    with pytest.raises(errors.Forbidden):
        services.game_lock(game_id=game.pk, actor=player)
    with pytest.raises(errors.NotParticipant):
        services.game_lock(game_id=game.pk, actor=UserFactory())


def test_other_transitions_are_refused(game):
    services.game_lock(game_id=game.pk, actor=game.host)
    for status in (GameStatus.OPEN, GameStatus.COMPLETED, GameStatus.SETUP):
        with pytest.raises(errors.InvalidTransition):
            services.game_update(game_id=game.pk, actor=game.host, status=status)
    # Asking for the status it already has changes nothing.
    services.game_update(game_id=game.pk, actor=game.host, status=GameStatus.LIVE)
    assert [t for _, t in event_types(game)] == ["game:status", "leaderboard:update"]


def test_lock_time_can_only_change_while_open(game):
    when = timezone.now() + timedelta(hours=2)
    services.game_update(game_id=game.pk, actor=game.host, picks_lock_at=when)
    game.refresh_from_db()
    assert game.picks_lock_at == when
    services.game_lock(game_id=game.pk, actor=game.host)
    with pytest.raises(errors.InvalidTransition):
        services.game_update(game_id=game.pk, actor=game.host, picks_lock_at=None)


# --- reveal, undo, completion ------------------------------------------------------


def test_first_reveal_locks_every_game_of_the_ceremony(game):
    other = GameFactory(ceremony=game.ceremony)
    unrelated = GameFactory()
    reveal(categories(game)[0])
    for each in (game, other):
        each.refresh_from_db()
        assert each.status == GameStatus.LIVE
        assert [t for _, t in event_types(each)] == ["game:status", "leaderboard:update"]
    unrelated.refresh_from_db()
    assert unrelated.status == GameStatus.OPEN
    assert event_types(unrelated) == []


def test_pick_after_first_reveal_is_refused_even_in_a_game_created_later(game):
    reveal(categories(game)[0])
    late = services.game_create(host=UserFactory(), ceremony_id=game.ceremony_id, name="Late")
    category = categories(game)[1]
    with pytest.raises(errors.PicksLocked):
        services.pick_submit(
            game_id=late.pk,
            user=late.host,
            category_id=category.pk,
            nomination_id=nominee(category).pk,
        )


def test_same_winner_again_changes_nothing(game):
    category = categories(game)[0]
    _, changed = reveal(category)
    before = event_types(game)
    _, changed_again = reveal(category)
    assert (changed, changed_again) == (True, False)
    assert event_types(game) == before


def test_different_winner_on_revealed_category_is_refused(game):
    category = categories(game)[0]
    reveal(category, 0)
    with pytest.raises(errors.AlreadyRevealed):
        reveal(category, 1)
    category.refresh_from_db()
    assert category.winner_id == nominee(category, 0).pk


def test_reveal_with_nominee_of_another_category_is_refused(game):
    first, second = categories(game)[:2]
    with pytest.raises(errors.NominationNotInCategory):
        services.category_reveal(category_id=first.pk, nomination_id=nominee(second).pk)
    with pytest.raises(errors.NotFound):
        services.category_reveal(category_id=999999, nomination_id=nominee(second).pk)


def test_last_reveal_completes_and_undo_reopens(game):
    cats = categories(game)
    for category in cats:
        reveal(category)
    game.refresh_from_db()
    assert game.status == GameStatus.COMPLETED and game.completed_at is not None
    completed = GameEvent.objects.get(game=game, type="game:completed").payload
    assert set(completed) == {"type", "gameId", "seq", "completedAt"}
    assert completed["completedAt"].endswith("Z")

    _, changed = services.category_undo(category_id=cats[1].pk)
    assert changed
    game.refresh_from_db()
    cats[1].refresh_from_db()
    assert game.status == GameStatus.LIVE and game.completed_at is None
    assert cats[1].winner_id is None and not cats[1].is_revealed
    assert [t for _, t in event_types(game)][-2:] == ["game:status", "leaderboard:update"]
    # lastRevealed falls back to the latest category still revealed.
    undo_event = GameEvent.objects.filter(game=game).order_by("-seq").first()
    assert undo_event.payload["lastRevealed"]["categoryId"] == cats[2].pk


def test_undo_of_unrevealed_category_is_a_no_op(game):
    _, changed = services.category_undo(category_id=categories(game)[0].pk)
    assert not changed
    assert event_types(game) == []


def test_seq_is_gapless_across_all_kinds_of_events(game):
    player = UserFactory()
    services.game_join(user=player, access_code=game.access_code)
    cats = categories(game)
    reveal(cats[0])
    services.category_undo(category_id=cats[0].pk)
    for category in cats:
        reveal(category)
    services.participant_remove(game_id=game.pk, actor=game.host, user_id=player.pk)
    seqs = [seq for seq, _ in event_types(game)]
    game.refresh_from_db()
    assert seqs == list(range(1, game.seq + 1))


def test_events_are_delivered_only_after_commit(game, django_capture_on_commit_callbacks):
    with mock.patch.object(leaderboard_events, "_group_send") as send:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            reveal(categories(game)[0])
        assert send.call_count == 0  # nothing left inside the transaction
        assert len(callbacks) == 1
        callbacks[0]()
    # One message for the whole transaction, to the ceremony's group.
    (group, message), *more = [call.args for call in send.call_args_list]
    assert not more
    assert group == f"ceremony.{game.ceremony_id}"
    assert message["type"] == "game.events"
    assert [(game_id, seq) for game_id, seq, _, _ in message["events"]] == [
        (game.pk, 1),
        (game.pk, 2),
    ]


def test_old_events_are_pruned_beyond_retention(game, settings):
    settings.ENVELOPE_EVENT_RETENTION = 60
    for _ in range(50):
        services.game_update(
            game_id=game.pk, actor=game.host, picks_lock_at=timezone.now() + timedelta(days=1)
        )
        services.game_update(game_id=game.pk, actor=game.host, picks_lock_at=None)
    game.refresh_from_db()
    assert game.seq == 100
    kept = list(GameEvent.objects.filter(game=game).values_list("seq", flat=True))
    assert kept[-1] == 100 and kept[0] > 1
    assert len(kept) >= 60


# --- participants --------------------------------------------------------------


def test_host_removes_a_participant_and_their_picks(game):
    player = UserFactory()
    services.game_join(user=player, access_code=game.access_code)
    pick_all(game, player)
    services.participant_remove(game_id=game.pk, actor=game.host, user_id=player.pk)
    assert not GameParticipant.objects.filter(game=game, user=player).exists()
    assert not Pick.objects.filter(game=game, user=player).exists()
    left = GameEvent.objects.get(game=game, type="participant:left").payload
    assert left["userId"] == player.pk and left["participantCount"] == 1


def test_host_cannot_be_removed_and_strangers_are_not_found(game):
    with pytest.raises(errors.Forbidden):
        services.participant_remove(game_id=game.pk, actor=game.host, user_id=game.host_id)
    with pytest.raises(errors.NotFound):
        services.participant_remove(game_id=game.pk, actor=game.host, user_id=UserFactory().pk)


# --- score counters ------------------------------------------------------------------


def _counters(game):
    return {
        p.user_id: (p.pick_count, p.total_score, p.correct_count)
        for p in GameParticipant.objects.filter(game=game)
    }


def test_score_counters_always_match_a_recount_from_the_picks():
    """pick_submit, reveal and undo keep the participants' counters; a full
    recount from the picks must agree after every step."""
    import random

    rng = random.Random(7)
    ceremony = make_ceremony(categories=4, nominees=3, points=[5, 3, 2, 1])
    games = [GameFactory(ceremony=ceremony) for _ in range(2)]
    cats = list(ceremony.categories.all())
    for game in games:
        for _ in range(4):
            services.game_join(user=UserFactory(), access_code=game.access_code)
        for participant in GameParticipant.objects.filter(game=game).select_related("user"):
            for category in cats[: rng.randint(2, 4)]:  # some players stay incomplete
                for _ in range(2):  # a changed pick must not count twice
                    services.pick_submit(
                        game_id=game.pk,
                        user=participant.user,
                        category_id=category.pk,
                        nomination_id=nominee(category, rng.randrange(3)).pk,
                    )

    def assert_counters_exact():
        for game in games:
            kept = _counters(game)
            services.participant_scores_recompute(game_id=game.pk)
            assert kept == _counters(game)

    assert_counters_exact()
    for step in range(12):
        category = rng.choice(cats)
        category.refresh_from_db()
        if category.is_revealed and step % 3:
            services.category_undo(category_id=category.pk)
        elif not category.is_revealed:
            reveal(category, rng.randrange(3))
        assert_counters_exact()
    assert any(total for game in games for _, total, _ in _counters(game).values())


def _reveal_queries(games: int) -> int:
    ceremony = make_ceremony(categories=2, nominees=2)
    for _ in range(games):
        game = GameFactory(ceremony=ceremony)
        pick_all(game, game.host, choose=0)
    category = ceremony.categories.order_by("order").first()
    with CaptureQueriesContext(connection) as captured:
        services.category_reveal(
            category_id=category.pk, nomination_id=category.nominations.first().pk
        )
    assert GameEvent.objects.filter(type="leaderboard:update").count() == games
    return len(captured.captured_queries)


def test_a_reveal_costs_the_same_queries_for_one_game_or_forty():
    """Many parties share a ceremony: a reveal's statements do not grow with
    the number of its games (set-based standings, seqs, statuses, events)."""
    one = _reveal_queries(1)
    GameEvent.objects.all().delete()
    forty = _reveal_queries(40)
    assert forty == one, (one, forty)
