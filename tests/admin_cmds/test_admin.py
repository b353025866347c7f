"""The Django admin: winners go through the services, so they are validated
and broadcast like API calls; service-owned fields stay read-only."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib import admin
from django.urls import reverse

from games import errors, services
from games.models import Category, Ceremony, Game, GameEvent, GameStatus, Nomination
from leaderboard.events import ceremony_group
from tests.factories import (
    GameFactory,
    ParticipantFactory,
    UserFactory,
    make_ceremony,
    pick_all,
)


@pytest.fixture
def party(db):
    """A ceremony of two categories and an OPEN game with two complete players."""
    ceremony = make_ceremony(categories=2, nominees=3, points=[5, 1])
    game = GameFactory(ceremony=ceremony)
    player = UserFactory()
    ParticipantFactory(game=game, user=player)
    pick_all(game, game.host, choose=0)
    pick_all(game, player, choose=1)
    return game


def category_form(category: Category, winner: Nomination | None, **changes) -> dict:
    """The POST of the category change page, nomination inline included."""
    nominations = list(category.nominations.all())
    data = {
        "name": category.name,
        "order": category.order,
        "points": category.points,
        "winner": winner.pk if winner else "",
        "nominations-TOTAL_FORMS": len(nominations),
        "nominations-INITIAL_FORMS": len(nominations),
        "nominations-MIN_NUM_FORMS": 0,
        "nominations-MAX_NUM_FORMS": 1000,
        **changes,
    }
    for index, nomination in enumerate(nominations):
        data.update(
            {
                f"nominations-{index}-id": nomination.pk,
                f"nominations-{index}-category": category.pk,
                f"nominations-{index}-order": nomination.order,
                f"nominations-{index}-title": nomination.title,
                f"nominations-{index}-subtitle": nomination.subtitle,
                f"nominations-{index}-image_url": "",
            }
        )
    return data


# The participants inline is read-only; its management form must still be posted.
GAME_INLINE = {
    "participants-TOTAL_FORMS": 0,
    "participants-INITIAL_FORMS": 0,
    "participants-MIN_NUM_FORMS": 0,
    "participants-MAX_NUM_FORMS": 1000,
}


async def receive_frames(layer, channel: str, count: int) -> list[dict]:
    frames = []
    while len(frames) < count:
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        frames.extend(json.loads(text) for _, _, text, _ in message["events"])
    return frames


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def test_marking_a_winner_reveals_and_broadcasts(
    staff_client, party, django_capture_on_commit_callbacks
):
    category = party.ceremony.categories.get(order=1)
    winner = category.nominations.all()[1]
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(ceremony_group(party.ceremony_id), channel)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            change_url(category), category_form(category, winner, points=7)
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    category.refresh_from_db()
    assert category.winner == winner and category.revealed_at is not None
    assert category.points == 7  # other fields are saved normally
    party.refresh_from_db()
    assert party.status == GameStatus.LIVE
    update = GameEvent.objects.get(
        game=party, type="leaderboard:update", payload__lastRevealed__categoryId=category.pk
    )
    # Rendered in the reveal's transaction, with the new points.
    assert update.payload["lastRevealed"]["nominationId"] == winner.pk
    assert [(p["totalScore"], p["rank"]) for p in update.payload["players"]] == [(7, 1), (0, 2)]
    # And sent to the ceremony's group, like a reveal from the API.
    frames = async_to_sync(receive_frames)(layer, channel, 2)
    assert [(f["type"], f["seq"]) for f in frames] == [
        ("game:status", 1),
        ("leaderboard:update", 2),
    ]
    assert frames[1] == update.payload
    async_to_sync(layer.group_discard)(ceremony_group(party.ceremony_id), channel)


def test_winner_choices_are_the_category_nominations(staff_client, party):
    first, second = party.ceremony.categories.order_by("order")
    response = staff_client.get(change_url(first))
    assert response.status_code == 200
    choices = {pk for pk, _ in response.context["adminform"].form.fields["winner"].choices if pk}
    assert {int(str(pk)) for pk in choices} == set(first.nominations.values_list("pk", flat=True))
    foreign = second.nominations.first()
    response = staff_client.post(change_url(first), category_form(first, foreign))
    assert response.status_code == 200
    assert "winner" in response.context["adminform"].form.errors
    first.refresh_from_db()
    assert first.winner is None


def test_different_winner_on_revealed_category_is_refused(
    staff_client, party, django_capture_on_commit_callbacks
):
    category = party.ceremony.categories.get(order=1)
    first, second = category.nominations.all()[:2]
    with django_capture_on_commit_callbacks(execute=True):
        services.category_reveal(category_id=category.pk, nomination_id=first.pk)
    events = GameEvent.objects.count()
    revealed_at = Category.objects.get(pk=category.pk).revealed_at
    response = staff_client.post(change_url(category), category_form(category, second))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["winner"] == [
        "This category already has a different winner: undo it first."
    ]
    category.refresh_from_db()
    assert (category.winner, category.revealed_at) == (first, revealed_at)
    assert GameEvent.objects.count() == events


def test_same_winner_again_changes_nothing(staff_client, party):
    category = party.ceremony.categories.get(order=1)
    winner = category.nominations.first()
    services.category_reveal(category_id=category.pk, nomination_id=winner.pk)
    events = GameEvent.objects.count()
    response = staff_client.post(change_url(category), category_form(category, winner))
    assert response.status_code == 302
    assert GameEvent.objects.count() == events


def test_clearing_the_winner_undoes_through_the_service(
    staff_client, party, django_capture_on_commit_callbacks
):
    for category in party.ceremony.categories.all():
        services.category_reveal(
            category_id=category.pk, nomination_id=category.nominations.first().pk
        )
    party.refresh_from_db()
    assert party.status == GameStatus.COMPLETED
    category = party.ceremony.categories.get(order=2)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(change_url(category), category_form(category, None))
    assert response.status_code == 302
    category.refresh_from_db()
    assert category.winner is None and category.revealed_at is None
    party.refresh_from_db()
    assert party.status == GameStatus.LIVE
    assert GameEvent.objects.filter(game=party).latest("seq").type == "leaderboard:update"


def test_undo_action(staff_client, party, django_capture_on_commit_callbacks):
    revealed, unrevealed = party.ceremony.categories.order_by("order")
    services.category_reveal(category_id=revealed.pk, nomination_id=revealed.nominations.first().pk)
    seq = Game.objects.get(pk=party.pk).seq
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:games_category_changelist"),
            {"action": "undo_winner", "_selected_action": [revealed.pk, unrevealed.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert "Undid the winner of 1 category(ies)." in response.content.decode()
    revealed.refresh_from_db()
    assert revealed.winner is None
    last = GameEvent.objects.get(game=party, seq=seq + 1)
    assert last.type == "leaderboard:update"
    assert last.payload["revealedCount"] == 0


def test_lock_action(staff_client, db, django_capture_on_commit_callbacks):
    ceremony = make_ceremony(categories=1)
    open_game = GameFactory(ceremony=ceremony)
    live_game = GameFactory(ceremony=ceremony, status=GameStatus.LIVE)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:games_game_changelist"),
            {"action": "lock_picks", "_selected_action": [open_game.pk, live_game.pk]},
            follow=True,
        )
    body = response.content.decode()
    assert "Locked 1 game(s)." in body and "Skipped 1 game(s)" in body
    open_game.refresh_from_db()
    assert open_game.status == GameStatus.LIVE
    assert list(GameEvent.objects.filter(game=open_game).values_list("type", flat=True)) == [
        "game:status",
        "leaderboard:update",
    ]
    assert not GameEvent.objects.filter(game=live_game).exists()


def test_game_change_goes_through_the_service(staff_client, db):
    game = GameFactory(ceremony=make_ceremony(categories=1))
    response = staff_client.post(
        change_url(game),
        {
            "name": "Renamed party",
            "picks_lock_at_0": "2099-01-01",
            "picks_lock_at_1": "20:00:00",
            # Read-only fields are ignored even when posted.
            "status": "COMPLETED",
            "seq": "99",
            **GAME_INLINE,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    game.refresh_from_db()
    assert game.name == "Renamed party"
    assert game.picks_lock_at.year == 2099
    assert game.status == GameStatus.OPEN
    assert list(GameEvent.objects.filter(game=game).values_list("seq", "type")) == [
        (1, "game:status")
    ]


def test_lock_time_of_a_live_game_cannot_change(staff_client, db):
    game = GameFactory(ceremony=make_ceremony(categories=1), status=GameStatus.LIVE)
    response = staff_client.post(
        change_url(game),
        {
            "name": game.name,
            "picks_lock_at_0": "2099-01-01",
            "picks_lock_at_1": "20:00:00",
            **GAME_INLINE,
        },
    )
    assert response.status_code == 200
    assert "picks_lock_at" in response.context["adminform"].form.errors
    game.refresh_from_db()
    assert game.picks_lock_at is None


def test_every_registered_model_renders(staff_client, party):
    category = party.ceremony.categories.first()
    services.category_reveal(category_id=category.pk, nomination_id=category.nominations.first().pk)
    assert len(admin.site._registry) >= 8
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        response = staff_client.get(changelist)
        assert response.status_code == 200, changelist
        # Search and filters render too.
        if model_admin.search_fields:
            assert staff_client.get(changelist, {"q": "x"}).status_code == 200, changelist
        obj = model.objects.first()
        if obj is not None:
            assert staff_client.get(change_url(obj)).status_code == 200, meta.label
        if model_admin.has_add_permission(response.wsgi_request):
            add = reverse(f"admin:{meta.app_label}_{meta.model_name}_add")
            assert staff_client.get(add).status_code == 200, add
    assert staff_client.get(reverse("admin:index")).status_code == 200
    filtered = staff_client.get(reverse("admin:games_category_changelist"), {"revealed": "yes"})
    assert list(filtered.context["cl"].result_list) == [category]


def test_admin_requires_staff(client, db):
    client.force_login(UserFactory())
    response = client.get(reverse("admin:games_category_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_concurrent_change_is_reported_not_a_500(staff_client, party, monkeypatch):
    category = party.ceremony.categories.get(order=1)

    def lost_race(**kwargs):
        raise errors.AlreadyRevealed()

    monkeypatch.setattr(services, "category_reveal", lost_race)
    response = staff_client.post(
        change_url(category), category_form(category, category.nominations.first()), follow=True
    )
    assert response.status_code == 200
    assert "ALREADY_REVEALED: This category already has a different winner" in (
        response.content.decode()
    )
    category.refresh_from_db()
    assert category.winner is None


def test_new_category_has_no_winner_field(staff_client, db):
    ceremony = make_ceremony(categories=1)
    add = reverse("admin:games_category_add")
    assert "winner" not in staff_client.get(add).context["adminform"].form.fields
    response = staff_client.post(
        add,
        {
            "ceremony": ceremony.pk,
            "name": "Best Sound",
            "order": 2,
            "points": 1,
            "nominations-TOTAL_FORMS": 1,
            "nominations-INITIAL_FORMS": 0,
            "nominations-MIN_NUM_FORMS": 0,
            "nominations-MAX_NUM_FORMS": 1000,
            "nominations-0-order": 1,
            "nominations-0-title": "Dune: Part Two",
            "nominations-0-subtitle": "",
            "nominations-0-image_url": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    created = ceremony.categories.get(order=2)
    assert created.winner is None
    assert list(created.nominations.values_list("title", flat=True)) == ["Dune: Part Two"]


def test_order_taken_by_another_category_is_a_form_error(staff_client, party):
    first = party.ceremony.categories.get(order=1)
    response = staff_client.post(change_url(first), category_form(first, None, order=2))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["order"] == [
        "Another category of this ceremony has this order."
    ]
    response = staff_client.post(change_url(first), category_form(first, None, order=3))
    assert response.status_code == 302
    assert sorted(party.ceremony.categories.values_list("order", flat=True)) == [2, 3]


def ceremony_form(ceremony: Ceremony, categories: list[Category], **changes) -> dict:
    """The POST of the ceremony change page, categories inline included."""
    data = {
        "name": ceremony.name,
        "date": ceremony.date.isoformat(),
        "categories-TOTAL_FORMS": len(categories),
        "categories-INITIAL_FORMS": len(categories),
        "categories-MIN_NUM_FORMS": 0,
        "categories-MAX_NUM_FORMS": 1000,
    }
    for index, category in enumerate(categories):
        data.update(
            {
                f"categories-{index}-id": category.pk,
                f"categories-{index}-ceremony": ceremony.pk,
                f"categories-{index}-name": category.name,
            }
        )
    return data | changes


def test_ceremony_page_edits_category_names(staff_client, party):
    ceremony = party.ceremony
    categories = list(ceremony.categories.order_by("order"))
    data = ceremony_form(ceremony, categories, name="Renamed Awards")
    for index, category in enumerate(categories):
        data.update(
            {
                f"categories-{index}-name": category.name.upper(),
                f"categories-{index}-points": 4,  # read-only here
                # Read-only in the inline: posting it changes nothing.
                f"categories-{index}-order": 9 - index,
            }
        )
    response = staff_client.post(change_url(ceremony), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    ceremony.refresh_from_db()
    assert ceremony.name == "Renamed Awards"
    assert list(ceremony.categories.values_list("order", "name", "points")) == [
        (c.order, c.name.upper(), c.points) for c in categories
    ]


def test_points_of_a_revealed_category_are_read_only(staff_client, party):
    category = party.ceremony.categories.get(order=1)
    services.category_reveal(category_id=category.pk, nomination_id=category.nominations.first().pk)
    response = staff_client.post(
        change_url(category), category_form(category, category.winner, points=50, name="Renamed")
    )
    assert response.status_code == 302
    category.refresh_from_db()
    assert (category.name, category.points) == ("Renamed", 5)


# --- no side doors: every admin write goes through a service ----------------------

NO_NOMINATIONS = {
    "nominations-TOTAL_FORMS": 0,
    "nominations-INITIAL_FORMS": 0,
    "nominations-MIN_NUM_FORMS": 0,
    "nominations-MAX_NUM_FORMS": 1000,
}


def delete_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_delete", args=[obj.pk])


def counters(game: Game) -> list[tuple[int, int]]:
    """(user id, pick count) of each player, in join order."""
    return list(game.participants.values_list("user_id", "pick_count"))


def lock(game: Game) -> None:
    services.game_update(game_id=game.pk, actor=game.host, status=GameStatus.LIVE)


def spy_on_services(monkeypatch, *names: str) -> list[str]:
    """The names of these services, in the order the admin calls them."""
    calls: list[str] = []

    def spy(service_name: str):
        write = getattr(services, service_name)

        def call(**kwargs):
            calls.append(service_name)
            return write(**kwargs)

        return call

    for service_name in names:
        monkeypatch.setattr(services, service_name, spy(service_name))
    return calls


def add_category(staff_client, game: Game, order: int = 3):
    return staff_client.post(
        reverse("admin:games_category_add"),
        {"ceremony": game.ceremony_id, "name": "Best Sound", "order": order, "points": 2}
        | NO_NOMINATIONS,
    )


def test_adding_a_category_goes_through_the_service(
    staff_client, party, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = add_category(staff_client, party)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert party.ceremony.categories.filter(name="Best Sound", order=3, points=2).exists()
    # Both players had picked everything; with a third category nobody has.
    board = GameEvent.objects.get(game=party, type="leaderboard:update")
    assert (board.seq, board.payload["categoryCount"], board.payload["incompleteCount"]) == (
        1,
        3,
        2,
    )
    assert board.payload["players"] == []


def test_adding_a_category_once_picks_are_locked_is_refused(staff_client, party):
    lock(party)
    events = GameEvent.objects.count()
    response = add_category(staff_client, party)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["ceremony"] == [services.CATEGORY_ADD_REFUSED]
    assert party.ceremony.categories.count() == 2
    assert GameEvent.objects.count() == events


def test_the_category_service_refuses_once_picks_are_locked(party):
    """The form's check is for the message; the service decides under lock."""
    lock(party)
    with pytest.raises(errors.PicksLocked):
        services.category_create(ceremony_id=party.ceremony_id, name="Late", order=3)
    first = party.ceremony.categories.get(order=1)
    with pytest.raises(errors.PicksLocked):
        services.category_delete(category_id=first.pk)
    with pytest.raises(errors.PicksLocked):
        services.nomination_delete(nomination_id=first.nominations.first().pk)


def test_deleting_a_nomination_inline_takes_back_its_picks(staff_client, party):
    category = party.ceremony.categories.get(order=1)
    host_choice = category.nominations.all()[0]  # pick_all(choose=0)
    data = category_form(category, None, **{"nominations-0-DELETE": "on"})
    response = staff_client.post(change_url(category), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Nomination.objects.filter(pk=host_choice.pk).exists()
    player = party.participants.exclude(user=party.host).get()
    # The host's pick went with the nominee: one pick fewer, picks still open.
    assert counters(party) == [(party.host_id, 1), (player.user_id, 2)]
    services.pick_submit(
        game_id=party.pk,
        user=party.host,
        category_id=category.pk,
        nomination_id=category.nominations.first().pk,
    )
    assert counters(party) == [(party.host_id, 2), (player.user_id, 2)]


def test_deleting_a_nomination_inline_once_picks_are_locked_is_refused(staff_client, party):
    lock(party)
    category = party.ceremony.categories.get(order=1)
    data = category_form(category, None, **{"nominations-0-DELETE": "on"})
    response = staff_client.post(change_url(category), data, follow=True)
    assert response.status_code == 200
    assert "PICKS_LOCKED: Picks are locked in a game of this ceremony" in response.content.decode()
    assert category.nominations.count() == 3
    assert [count for _, count in counters(party)] == [2, 2]


def test_deleting_a_winning_nomination_is_refused(party):
    category = party.ceremony.categories.get(order=1)
    winner = category.nominations.first()
    services.category_reveal(category_id=category.pk, nomination_id=winner.pk)
    with pytest.raises(errors.InvalidTransition, match="undo the winner first"):
        services.nomination_delete(nomination_id=winner.pk)


def test_nominations_are_added_and_edited_inline_through_the_services(
    staff_client, party, monkeypatch
):
    category = party.ceremony.categories.get(order=1)
    calls = spy_on_services(monkeypatch, "nomination_create", "nomination_update")
    data = category_form(category, None)
    data.update(
        {
            "nominations-1-title": "Renamed",
            "nominations-TOTAL_FORMS": 4,
            "nominations-3-order": 4,
            "nominations-3-title": "Added",
            "nominations-3-subtitle": "",
            "nominations-3-image_url": "",
        }
    )
    response = staff_client.post(change_url(category), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert calls == ["nomination_update", "nomination_create"]
    assert list(category.nominations.values_list("order", "title"))[1:] == [
        (2, "Renamed"),
        (3, category.nominations.get(order=3).title),
        (4, "Added"),
    ]


def test_deleting_a_category_takes_back_its_picks_and_updates_the_boards(
    staff_client, party, django_capture_on_commit_callbacks
):
    category = party.ceremony.categories.get(order=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(delete_url(category), {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Category.objects.filter(pk=category.pk).exists()
    assert [count for _, count in counters(party)] == [1, 1]
    board = GameEvent.objects.get(game=party, type="leaderboard:update")
    assert (board.payload["categoryCount"], len(board.payload["players"])) == (1, 2)


def test_deleting_a_category_once_picks_are_locked_is_refused(staff_client, party):
    lock(party)
    category = party.ceremony.categories.get(order=1)
    response = staff_client.post(delete_url(category), {"post": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == change_url(category)
    assert "PICKS_LOCKED: Picks are locked in a game of this ceremony" in response.content.decode()
    assert Category.objects.filter(pk=category.pk).exists()
    assert [count for _, count in counters(party)] == [2, 2]


def test_deleting_a_category_inline_goes_through_the_service(staff_client, party):
    ceremony = party.ceremony
    categories = list(ceremony.categories.order_by("order"))
    data = ceremony_form(ceremony, categories, **{"categories-1-DELETE": "on"})
    lock(party)
    response = staff_client.post(change_url(ceremony), data, follow=True)
    assert "PICKS_LOCKED" in response.content.decode()
    assert ceremony.categories.count() == 2
    party.status = GameStatus.OPEN  # as if picks were still open
    party.save(update_fields=["status"])
    response = staff_client.post(change_url(ceremony), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(ceremony.categories.all()) == categories[:1]
    assert [count for _, count in counters(party)] == [1, 1]


def test_bulk_delete_is_not_offered(staff_client, party):
    """Django's bulk delete counts as deleted the rows a service refused."""
    for name in ("ceremony", "category", "game"):
        response = staff_client.get(reverse(f"admin:games_{name}_changelist"))
        form = response.context["action_form"]
        actions = [action for action, _ in form.fields["action"].choices] if form else []
        assert "delete_selected" not in actions, name


def test_games_are_not_deleted_in_the_admin(staff_client, party):
    """A game always has players, whose rows the admin never deletes."""
    response = staff_client.post(delete_url(party), {"post": "yes"})
    assert response.status_code == 403
    assert Game.objects.filter(pk=party.pk).exists()


def test_ceremonies_are_written_through_the_services(staff_client, party, monkeypatch):
    calls = spy_on_services(monkeypatch, "ceremony_create", "ceremony_update", "ceremony_delete")
    empty = {
        "categories-TOTAL_FORMS": 0,
        "categories-INITIAL_FORMS": 0,
        "categories-MIN_NUM_FORMS": 0,
        "categories-MAX_NUM_FORMS": 1000,
    }
    response = staff_client.post(
        reverse("admin:games_ceremony_add"), {"name": "Globes", "date": "2026-01-11"} | empty
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    globes = Ceremony.objects.get(name="Globes")
    response = staff_client.post(
        change_url(globes), {"name": "Golden Globes", "date": "2026-01-11"} | empty
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    response = staff_client.post(delete_url(globes), {"post": "yes"})
    assert response.status_code == 302
    assert calls == ["ceremony_create", "ceremony_update", "ceremony_delete"]
    assert not Ceremony.objects.filter(pk=globes.pk).exists()
    # A ceremony with games cannot go: Django shows what protects it, and the
    # service refuses as well.
    with pytest.raises(errors.InvalidTransition):
        services.ceremony_delete(ceremony_id=party.ceremony_id)
