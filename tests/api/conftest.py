"""Fixtures for the HTTP API tests."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from games.models import Category, Ceremony, Game
from tests.factories import GameFactory, UserFactory


def error_of(response: Any) -> tuple[int, str]:
    """(status, code) of an error response, asserting the contract's exact shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return response.status_code, body["error"]["code"]


@pytest.fixture(autouse=True)
def _ratelimit_clock(monkeypatch):
    """Pin the rate limiter's clock mid-window, so no test straddles a window edge."""
    from django_ratelimit import core

    monkeypatch.setattr(core.time, "time", lambda: 1_000_000 * 3600.0 + 1800)


@pytest.fixture
def categories(ceremony: Ceremony) -> list[Category]:
    return list(ceremony.categories.order_by("order"))


@pytest.fixture
def host(db):
    return UserFactory(username="hosty", display_name="Hosty")


@pytest.fixture
def game(ceremony: Ceremony, host) -> Game:
    return GameFactory(ceremony=ceremony, host=host, name="Oscar night")


@pytest.fixture
def player(db, game: Game):
    """A participant of `game` who is not its host."""
    from games.models import GameParticipant

    user = UserFactory(username="playa", display_name="Playa")
    GameParticipant.objects.create(game=game, user=user)
    return user


@pytest.fixture
def host_api(api_for, host) -> APIClient:
    return api_for(host)


@pytest.fixture
def player_api(api_for, player) -> APIClient:
    return api_for(player)


@pytest.fixture
def staff_api(api_for, staff) -> APIClient:
    return api_for(staff)


@pytest.fixture
def outsider_api(api_for, db) -> APIClient:
    return api_for(UserFactory(username="outsider"))
