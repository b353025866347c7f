"""A game made on a ceremony that has begun starts LIVE (watch only), and the
home page's create form says so before the host submits; a ceremony that is
over takes no new game (docs/api.md, Games)."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest
from django.utils import timezone

from games import errors, services
from games.models import Ceremony, Game, GameEvent, GameStatus
from games.selectors import CeremonyStage, ceremonies_progress
from tests.factories import UserFactory, make_ceremony


def reveal(ceremony: Ceremony, *orders: int) -> None:
    for order in orders:
        category = ceremony.categories.get(order=order)
        services.category_reveal(
            category_id=category.pk, nomination_id=category.nominations.first().pk
        )


def first_pick(game: Game) -> tuple[int, int]:
    category = game.ceremony.categories.order_by("order").last()
    return category.pk, category.nominations.first().pk


@pytest.fixture
def host(db):
    return UserFactory(username="hostess", display_name="Hostess")


def test_upcoming_ceremony_game_is_open_and_takes_picks(host):
    ceremony = make_ceremony(categories=2)
    game = services.game_create(host=host, ceremony_id=ceremony.pk, name="Early")
    assert game.status == GameStatus.OPEN
    category_id, nomination_id = first_pick(game)
    services.pick_submit(
        game_id=game.pk, user=host, category_id=category_id, nomination_id=nomination_id
    )


def test_begun_ceremony_game_is_created_live_without_a_lock_event(host):
    ceremony = make_ceremony(categories=3)
    reveal(ceremony, 1)
    game = services.game_create(host=host, ceremony_id=ceremony.pk, name="Late")
    # Stored LIVE by the create itself, not locked afterwards by a read.
    assert Game.objects.get(pk=game.pk).status == GameStatus.LIVE
    assert (game.seq, GameEvent.objects.filter(game=game).count()) == (0, 0)
    # Joinable to watch, not to pick.
    guest = UserFactory()
    assert services.game_join(user=guest, access_code=game.access_code).pk == game.pk
    category_id, nomination_id = first_pick(game)
    with pytest.raises(errors.PicksLocked):
        services.pick_submit(
            game_id=game.pk, user=guest, category_id=category_id, nomination_id=nomination_id
        )


def test_past_lock_time_game_is_created_live(host):
    ceremony = make_ceremony(categories=2)
    past = timezone.now() - dt.timedelta(minutes=5)
    game = services.game_create(host=host, ceremony_id=ceremony.pk, name="Past", picks_lock_at=past)
    assert Game.objects.get(pk=game.pk).status == GameStatus.LIVE


def test_over_ceremony_refuses_a_new_game(host):
    ceremony = make_ceremony(categories=2)
    reveal(ceremony, 1, 2)
    with pytest.raises(errors.InvalidTransition, match="the night is over"):
        services.game_create(host=host, ceremony_id=ceremony.pk, name="Too late")
    assert not Game.objects.filter(name="Too late").exists()


def test_ceremony_without_categories_is_upcoming(host):
    ceremony = make_ceremony(categories=0)
    game = services.game_create(host=host, ceremony_id=ceremony.pk, name="Empty")
    assert game.status == GameStatus.OPEN


def test_unknown_ceremony_is_not_found(host):
    with pytest.raises(errors.NotFound):
        services.game_create(host=host, ceremony_id=987654, name="Nowhere")


def test_ceremony_stages(db):
    upcoming, begun, over = (make_ceremony(categories=3) for _ in range(3))
    reveal(begun, 2)
    reveal(over, 1, 2, 3)
    stages = {p.id: (p.stage, p.revealed_count, p.category_count) for p in ceremonies_progress()}
    assert stages == {
        upcoming.pk: (CeremonyStage.UPCOMING, 0, 3),
        begun.pk: (CeremonyStage.BEGUN, 1, 3),
        over.pk: (CeremonyStage.OVER, 3, 3),
    }


# --- the API ------------------------------------------------------------------------


def test_api_creates_live_game_on_begun_ceremony_and_refuses_an_over_one(api_for, host):
    begun, over = make_ceremony(categories=2), make_ceremony(categories=2)
    reveal(begun, 1)
    reveal(over, 1, 2)
    api = api_for(host)
    created = api.post("/api/games", {"ceremonyId": begun.pk, "name": "Watch"}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "LIVE"
    refused = api.post("/api/games", {"ceremonyId": over.pk, "name": "Over"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "INVALID_TRANSITION"
    assert "the night is over" in refused.json()["error"]["message"]


# --- the home page's create form ---------------------------------------------------------


def _options(body: str) -> list[dict[str, str]]:
    select = re.search(r"<select name=\"ceremonyId\".*?</select>", body, re.S).group(0)
    return [
        {
            "value": m.group(1),
            "stage": m.group(2),
            "disabled": "disabled" in m.group(3),
            "selected": "selected" in m.group(3),
            "text": html.unescape(m.group(4)),
        }
        for m in re.finditer(
            r'<option value="(\d+)" data-stage="(\w+)"([^>]*)>([^<]*)</option>', select
        )
    ]


def _warning(body: str) -> re.Match:
    return re.search(r"<p [^>]*data-create-warning([^>]*)>([^<]*)</p>", body)


def test_create_form_lists_stages_and_preselects_an_upcoming_ceremony(client, host):
    upcoming, begun, over = (make_ceremony(categories=3) for _ in range(3))
    reveal(begun, 1, 2)
    reveal(over, 1, 2, 3)
    client.force_login(host)
    body = client.get("/").content.decode()
    options = {o["value"]: o for o in _options(body)}
    assert options[str(upcoming.pk)]["text"] == f"{upcoming.name} · upcoming"
    assert options[str(begun.pk)]["text"] == f"{begun.name} · 2 of 3 revealed"
    assert options[str(over.pk)]["text"] == f"{over.name} · over"
    assert [o["value"] for o in options.values() if o["disabled"]] == [str(over.pk)]
    assert [o["value"] for o in options.values() if o["selected"]] == [str(upcoming.pk)]
    # Upcoming preselected: the warning is there for the script, but hidden.
    assert "hidden" in _warning(body).group(1)
    block = re.search(r'<script id="initial-data" type="application/json">(.*?)</script>', body)
    data = json.loads(block.group(1))
    stages = {c["id"]: (c["stage"], c["label"]) for c in data["ceremonies"]}
    assert stages[begun.pk] == ("begun", "2 of 3 revealed")


def test_create_form_warns_when_only_a_begun_ceremony_is_left(client, host):
    begun = make_ceremony(categories=3)
    reveal(begun, 1)
    client.force_login(host)
    body = client.get("/").content.decode()
    warning = _warning(body)
    assert "hidden" not in warning.group(1)
    assert "starts live" in warning.group(2) and "1 of 3 revealed" in warning.group(2)
