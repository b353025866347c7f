"""The HTTP doors: rate limits on registration, join by code and the admin
login; bodies over 1 MiB; lone surrogates; PostgreSQL or Redis unreachable.

These run through Django's test client. The same doors through a real daphne
(the ASGI body limit, X-Forwarded-For, a Redis and a PostgreSQL that really
stop) are in tests/e2e/test_http_hardening.py.
"""

from __future__ import annotations

import json
import sys

import pytest
from django.db import OperationalError
from django.test import Client, RequestFactory, override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.models import User
from config import outages
from games import pages, selectors
from games.models import GameParticipant
from tests.api.conftest import error_of
from tests.factories import PASSWORD, UserFactory
from tests.faults import closed_port


def _register(client: Client, username: str, ip: str = "10.0.0.1"):
    return client.post(
        "/api/auth/register",
        {"username": username, "password": PASSWORD, "displayName": username},
        content_type="application/json",
        REMOTE_ADDR=ip,
    )


# --- registration -------------------------------------------------------------


def test_registration_is_limited_per_address(db, settings):
    settings.ENVELOPE_REGISTER_IP_LIMIT = 3
    for index in range(3):
        assert _register(Client(), f"guest{index}", ip="10.3.3.3").status_code == 201
    limited = _register(Client(), "guest9", ip="10.3.3.3")
    assert error_of(limited) == (429, "RATE_LIMITED")
    assert int(limited["Retry-After"]) > 0
    assert not User.objects.filter(username="guest9").exists()
    # Another address is unaffected.
    assert _register(Client(), "guest9", ip="10.4.4.4").status_code == 201


def test_registration_is_limited_per_username(db, settings):
    settings.ENVELOPE_REGISTER_LIMIT = 2
    settings.ENVELOPE_REGISTER_IP_LIMIT = 100
    # Attempts at one username from many addresses (probing who exists).
    UserFactory(username="taken")
    for index in range(2):
        assert error_of(_register(Client(), "TAKEN", ip=f"10.5.5.{index}")) == (
            400,
            "VALIDATION_ERROR",
        )
    assert error_of(_register(Client(), "taken", ip="10.5.5.9")) == (429, "RATE_LIMITED")


# --- join by code, per address ----------------------------------------------------


def test_join_by_code_is_limited_per_address(api_for, game, settings):
    settings.ENVELOPE_JOIN_FAILURE_LIMIT = 100
    settings.ENVELOPE_JOIN_IP_FAILURE_LIMIT = 4
    for index in range(4):  # four accounts, one address
        wrong = api_for(UserFactory()).post(
            "/api/games/join", {"accessCode": "WRONGCOD"}, format="json", REMOTE_ADDR="10.6.6.6"
        )
        assert error_of(wrong) == (404, "INVALID_CODE"), index
    newcomer = UserFactory()
    limited = api_for(newcomer).post(
        "/api/games/join", {"accessCode": game.access_code}, format="json", REMOTE_ADDR="10.6.6.6"
    )
    assert error_of(limited) == (429, "RATE_LIMITED")
    assert not GameParticipant.objects.filter(game=game, user=newcomer).exists()
    elsewhere = api_for(newcomer).post(
        "/api/games/join", {"accessCode": game.access_code}, format="json", REMOTE_ADDR="10.7.7.7"
    )
    assert elsewhere.status_code == 200


# --- the admin login ------------------------------------------------------------------


def _admin_login(client: Client, username: str, password: str, ip: str = "10.8.0.1"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
    )


def test_admin_login_is_limited_even_for_the_right_password(staff, settings):
    settings.ENVELOPE_LOGIN_FAILURE_LIMIT = 5
    client = Client()
    for index in range(5):  # from five addresses: the account's counter trips
        assert (
            _admin_login(client, staff.username, "wrong", ip=f"10.8.0.{index}").status_code == 200
        )
    refused = _admin_login(client, staff.username, PASSWORD, ip="10.8.1.1")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert b"Too many sign-in attempts" in refused.content
    assert client.get("/admin/").status_code == 302  # not signed in


def test_admin_login_failures_count_toward_the_api_sign_in(api, staff, settings):
    settings.ENVELOPE_LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        _admin_login(Client(), staff.username, "wrong")
    response = api.post(
        "/api/auth/login",
        {"username": staff.username, "password": PASSWORD},
        format="json",
        REMOTE_ADDR="10.9.0.1",
    )
    assert error_of(response) == (429, "RATE_LIMITED")


def test_admin_login_is_limited_per_address(staff, settings):
    settings.ENVELOPE_LOGIN_IP_FAILURE_LIMIT = 4
    for index in range(4):
        _admin_login(Client(), f"nobody{index}", "wrong", ip="10.8.2.2")
    assert _admin_login(Client(), staff.username, PASSWORD, ip="10.8.2.2").status_code == 429
    client = Client()
    assert _admin_login(client, staff.username, PASSWORD, ip="10.8.3.3").status_code == 302
    assert client.get("/admin/").status_code == 200


# --- bodies: size and text --------------------------------------------------------------


def test_a_body_over_one_mebibyte_is_refused_with_413(api, settings):
    body = json.dumps({"username": "x" * settings.MAX_REQUEST_BODY_BYTES, "password": "p"})
    response = api.post("/api/auth/login", body, content_type="application/json")
    assert error_of(response) == (413, "PAYLOAD_TOO_LARGE")


def test_a_body_just_under_the_limit_is_read(db, api, settings):
    padding = "x" * (settings.MAX_REQUEST_BODY_BYTES - 100)
    body = json.dumps({"username": "nobody", "password": "p", "pad": padding})
    assert len(body) <= settings.MAX_REQUEST_BODY_BYTES
    response = api.post("/api/auth/login", body, content_type="application/json")
    assert error_of(response) == (401, "INVALID_CREDENTIALS")


@pytest.mark.parametrize(
    "body",
    [
        '{"username": "\\ud800", "password": "%s", "displayName": "Lone"}',
        '{"username": "lone", "password": "%s", "displayName": "a\\udfffb"}',
        '{"username": "lone", "password": "%s", "displayName": "x", "\\ud83d": 1}',
    ],
)
def test_a_lone_surrogate_is_a_validation_error_and_nothing_is_written(db, body):
    response = Client().post("/api/auth/register", body % PASSWORD, content_type="application/json")
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert "surrogate" in response.json()["error"]["message"]
    assert not User.objects.exists()


def test_a_surrogate_pair_is_ordinary_text(db):
    body = '{"username": "star", "password": "%s", "displayName": "\\ud83c\\udf1f Star"}'
    response = Client().post("/api/auth/register", body % PASSWORD, content_type="application/json")
    assert response.status_code == 201
    assert response.json()["user"]["displayName"] == "🌟 Star"


# --- outages: 503 in the contract's shape ---------------------------------------------------


def _redis_down() -> override_settings:
    """The cache (rate limits) on a Redis that cannot be reached."""
    return override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            }
        }
    )


def test_sign_in_answers_503_while_redis_is_away(api, user):
    with _redis_down():
        response = api.post(
            "/api/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
        )
    assert error_of(response) == (503, "SERVICE_UNAVAILABLE")
    assert int(response["Retry-After"]) > 0


def test_registration_answers_503_and_creates_nobody_while_redis_is_away(db):
    with _redis_down():
        response = _register(Client(), "during-outage")
    assert error_of(response) == (503, "SERVICE_UNAVAILABLE")
    assert not User.objects.filter(username="during-outage").exists()


def test_join_by_code_answers_503_while_redis_is_away(api_for, game):
    newcomer = UserFactory()
    with _redis_down():
        response = api_for(newcomer).post(
            "/api/games/join", {"accessCode": game.access_code}, format="json"
        )
    assert error_of(response) == (503, "SERVICE_UNAVAILABLE")
    assert not GameParticipant.objects.filter(game=game, user=newcomer).exists()


def _database_away(*args, **kwargs):
    raise OperationalError("connection refused")


def test_an_api_view_answers_503_when_the_database_is_away(player_api, game, monkeypatch):
    monkeypatch.setattr(selectors, "game_get", _database_away)
    response = player_api.get(f"/api/games/{game.pk}")
    assert error_of(response) == (503, "SERVICE_UNAVAILABLE")


def test_a_page_answers_a_friendly_503_when_the_database_is_away(
    api_for, player, game, monkeypatch
):
    client = Client()
    client.force_login(player)
    monkeypatch.setattr(pages, "game_board", _database_away)
    response = client.get(f"/games/{game.pk}/live")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert b"Back in a moment" in response.content
    assert b"Traceback" not in response.content


@pytest.mark.parametrize(
    ("path", "error", "status", "content_type"),
    [
        ("/api/games", RedisConnectionError("down"), 503, "application/json"),
        ("/games/1/live", OperationalError("down"), 503, "text/html"),
        ("/api/games", ValueError("a bug"), 500, "application/json"),
    ],
)
def test_the_500_handler_answers_an_outage_outside_a_view_with_503(
    db, path, error, status, content_type
):
    request = RequestFactory().get(path)
    try:
        raise error
    except Exception:  # handler500 runs while the exception is handled
        assert sys.exc_info()[1] is error
        response = outages.server_error(request)
    assert response.status_code == status
    assert response["Content-Type"].startswith(content_type)
    if content_type == "application/json":
        code = "SERVICE_UNAVAILABLE" if status == 503 else "SERVER_ERROR"
        assert json.loads(response.content)["error"]["code"] == code
