"""Ceremonies and staff reveals over HTTP."""

from __future__ import annotations

from django.db import connection

from games.models import GameEvent, GameStatus
from tests.api.conftest import error_of
from tests.factories import make_ceremony


def expected_category(category, winner_id=None):
    return {
        "id": category.pk,
        "name": category.name,
        "order": category.order,
        "points": category.points,
        "isRevealed": winner_id is not None,
        "winnerId": winner_id,
        "nominations": [
            {"id": n.pk, "title": n.title, "subtitle": n.subtitle, "imageUrl": n.image_url}
            for n in category.nominations.order_by("order")
        ],
    }


def test_ceremony_detail_exact(api_for, user, ceremony, categories):
    response = api_for(user).get(f"/api/ceremonies/{ceremony.pk}")
    assert response.status_code == 200
    assert response.json() == {
        "id": ceremony.pk,
        "name": ceremony.name,
        "date": ceremony.date.isoformat(),
        "categories": [expected_category(c) for c in categories],
    }
    assert [c["points"] for c in response.json()["categories"]] == [5, 2, 1]


def test_ceremony_list_has_categories_in_constant_queries(
    api_for, user, ceremony, django_assert_num_queries
):
    make_ceremony(categories=4, nominees=5)
    client = api_for(user)
    # token lookup + ceremonies + categories + nominations
    with django_assert_num_queries(4):
        response = client.get("/api/ceremonies")
    body = response.json()
    assert len(body) == 2
    assert {len(c["categories"]) for c in body} == {3, 4}
    mine = next(c for c in body if c["id"] == ceremony.pk)
    assert [c["order"] for c in mine["categories"]] == [1, 2, 3]
    assert all(len(c["nominations"]) == 4 for c in mine["categories"])


def test_winner_hidden_until_revealed_then_shown(api_for, user, staff_api, ceremony, categories):
    first = categories[0]
    winner = first.nominations.last()
    client = api_for(user)
    before = client.get(f"/api/ceremonies/{ceremony.pk}").json()["categories"][0]
    assert (before["isRevealed"], before["winnerId"]) == (False, None)
    response = staff_api.post(
        f"/api/categories/{first.pk}/winner", {"nominationId": winner.pk}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == expected_category(first, winner_id=winner.pk)
    after = client.get(f"/api/ceremonies/{ceremony.pk}").json()["categories"]
    assert (after[0]["isRevealed"], after[0]["winnerId"]) == (True, winner.pk)
    assert (after[1]["isRevealed"], after[1]["winnerId"]) == (False, None)


def test_reveal_requires_staff(api_for, user, ceremony, categories):
    category = categories[0]
    response = api_for(user).post(
        f"/api/categories/{category.pk}/winner",
        {"nominationId": category.nominations.first().pk},
        format="json",
    )
    assert error_of(response) == (403, "FORBIDDEN")
    category.refresh_from_db()
    assert category.winner_id is None
    assert error_of(api_for(user).delete(f"/api/categories/{category.pk}/winner")) == (
        403,
        "FORBIDDEN",
    )


def test_reveal_validation(staff_api, ceremony, categories):
    url = f"/api/categories/{categories[0].pk}/winner"
    missing = staff_api.post(url, {}, format="json")
    assert error_of(missing) == (400, "VALIDATION_ERROR")
    assert missing.json()["error"]["message"] == "nominationId: This field is required."
    wrong_type = staff_api.post(url, {"nominationId": "12"}, format="json")
    assert error_of(wrong_type) == (400, "VALIDATION_ERROR")
    assert wrong_type.json()["error"]["message"].startswith("nominationId: ")
    other = categories[1].nominations.first()
    assert error_of(staff_api.post(url, {"nominationId": other.pk}, format="json")) == (
        400,
        "NOMINATION_NOT_IN_CATEGORY",
    )
    assert error_of(staff_api.post(url, {"nominationId": 10**9}, format="json")) == (
        400,
        "NOMINATION_NOT_IN_CATEGORY",
    )
    unknown = staff_api.post(
        "/api/categories/999999/winner", {"nominationId": other.pk}, format="json"
    )
    assert error_of(unknown) == (404, "NOT_FOUND")
    assert error_of(staff_api.delete("/api/categories/999999/winner")) == (404, "NOT_FOUND")


def test_same_winner_twice_is_a_silent_no_op(staff_api, game, categories):
    category = categories[0]
    winner = category.nominations.first()
    url = f"/api/categories/{category.pk}/winner"
    assert staff_api.post(url, {"nominationId": winner.pk}, format="json").status_code == 200
    events = GameEvent.objects.filter(game=game).count()
    seq = type(game).objects.get(pk=game.pk).seq
    again = staff_api.post(url, {"nominationId": winner.pk}, format="json")
    assert again.status_code == 200
    assert again.json()["winnerId"] == winner.pk
    assert GameEvent.objects.filter(game=game).count() == events
    assert type(game).objects.get(pk=game.pk).seq == seq


def test_different_winner_refused_until_undo(staff_api, game, categories):
    category = categories[0]
    first, second = list(category.nominations.all())[:2]
    url = f"/api/categories/{category.pk}/winner"
    staff_api.post(url, {"nominationId": first.pk}, format="json")
    refused = staff_api.post(url, {"nominationId": second.pk}, format="json")
    assert error_of(refused) == (409, "ALREADY_REVEALED")
    undo = staff_api.delete(url)
    assert undo.status_code == 200
    assert undo.json() == expected_category(category)
    changed = staff_api.post(url, {"nominationId": second.pk}, format="json")
    assert changed.status_code == 200
    assert changed.json()["winnerId"] == second.pk


def test_reveal_locks_games_and_undo_of_last_reopens_completion(staff_api, game, categories):
    for category in categories:
        staff_api.post(
            f"/api/categories/{category.pk}/winner",
            {"nominationId": category.nominations.first().pk},
            format="json",
        )
    game.refresh_from_db()
    assert game.status == GameStatus.COMPLETED
    staff_api.delete(f"/api/categories/{categories[-1].pk}/winner")
    game.refresh_from_db()
    assert game.status == GameStatus.LIVE
    assert game.completed_at is None


def test_undo_of_unrevealed_category_is_a_no_op(staff_api, game, categories):
    response = staff_api.delete(f"/api/categories/{categories[0].pk}/winner")
    assert response.status_code == 200
    assert response.json()["winnerId"] is None
    assert not GameEvent.objects.filter(game=game).exists()


def test_a_reveal_costs_the_same_few_queries_and_answers_without_reading_again(
    staff_api, game, player, categories, django_assert_num_queries
):
    """The reveal's own path is as short as the database allows: the staff's
    token, the ceremony and the category locked (the ceremony found through
    the category in the same statement), the nominees, the winner, the
    category counts (all revealed?), the games locked, the scores, the
    standings in one read, the seqs and the events; the answer is built from
    what the transaction holds, not read again after it."""
    first, second = categories[0], categories[1]
    opening = staff_api.post(
        f"/api/categories/{first.pk}/winner",
        {"nominationId": first.nominations.first().pk},
        format="json",
    )
    assert opening.status_code == 200  # the game goes live: one write more than the next
    winner = second.nominations.last()
    # The events go in one COPY on PostgreSQL, which the count does not see,
    # and in one INSERT on SQLite.
    expected = 12 if connection.vendor == "postgresql" else 13
    with django_assert_num_queries(expected):
        response = staff_api.post(
            f"/api/categories/{second.pk}/winner", {"nominationId": winner.pk}, format="json"
        )
    assert response.json() == expected_category(second, winner_id=winner.pk)
    assert (
        GameEvent.objects.filter(game=game).latest("seq").payload["lastRevealed"]["nominationId"]
        == winner.pk
    )
