"""Auth endpoints: register, login (rate limited), logout, me, ws-ticket."""

from __future__ import annotations

import pytest
from django.contrib.auth.signals import user_logged_out
from django_ratelimit import core as ratelimit
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tickets import ticket_claim
from tests.api.conftest import error_of
from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "violet-lantern-93"


def register(client: APIClient, **overrides: object):
    body = {"username": "newbie", "password": NEW_PASSWORD, "displayName": "New Bie"}
    body.update(overrides)
    return client.post("/api/auth/register", body, format="json")


@pytest.fixture
def logouts():
    """Every user_logged_out signal sent during the test, as user ids."""
    seen: list[int | None] = []

    def receiver(sender, user, **kwargs):
        seen.append(user.pk if user is not None else None)

    user_logged_out.connect(receiver)
    yield seen
    user_logged_out.disconnect(receiver)


def test_register_creates_user_token_and_session(api, db):
    response = register(api)
    assert response.status_code == 201
    user = User.objects.get(username="newbie")
    assert response.json() == {
        "user": {"id": user.pk, "username": "newbie", "displayName": "New Bie", "isStaff": False},
        "token": Token.objects.get(user=user).key,
    }
    assert user.check_password(NEW_PASSWORD)
    # The browser is signed in by the session cookie alone.
    assert api.get("/api/auth/me").json()["user"]["id"] == user.pk


def test_register_token_works(api, db):
    token = register(api).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/auth/me").json()["user"]["username"] == "newbie"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"username": None}, "username"),
        ({"username": 5}, "username"),
        ({"username": "has space"}, "username"),
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),  # too common
        ({"password": "newbie12"}, "password"),  # too similar to the username
        ({"displayName": ""}, "displayName"),
        ({"displayName": "x" * 61}, "displayName"),
    ],
)
def test_register_rejects_bad_fields_naming_them(api, db, overrides, field):
    response = register(api, **overrides)
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["message"].startswith(f"{field}: ")
    assert not User.objects.filter(username="newbie").exists()


def test_register_missing_field_is_named(api, db):
    response = api.post(
        "/api/auth/register", {"username": "newbie", "password": NEW_PASSWORD}, format="json"
    )
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["message"] == "displayName: This field is required."


def test_register_ignores_unknown_fields(api, db):
    response = register(api, isStaff=True, is_staff=True, favouriteFilm="Anora")
    assert response.status_code == 201
    assert User.objects.get(username="newbie").is_staff is False


def test_register_duplicate_username_case_insensitive(api, db):
    UserFactory(username="Newbie")
    response = register(api)
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["message"].startswith("username: ")


def test_login_returns_user_and_token_and_session(api, user):
    response = api.post(
        "/api/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    token = Token.objects.get(user=user)
    assert response.json() == {
        "user": {
            "id": user.pk,
            "username": user.username,
            "displayName": user.display_name,
            "isStaff": False,
        },
        "token": token.key,
    }
    assert api.get("/api/auth/me").status_code == 200
    # Signing in again hands out the same token.
    again = APIClient().post(
        "/api/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert again.json()["token"] == token.key


def test_login_wrong_password(api, user):
    response = api.post(
        "/api/auth/login", {"username": user.username, "password": "nope-nope"}, format="json"
    )
    assert error_of(response) == (401, "INVALID_CREDENTIALS")
    assert api.get("/api/auth/me").status_code == 401


def test_login_unknown_user_and_inactive_user(api, db):
    inactive = UserFactory(is_active=False)
    for username in ("ghost", inactive.username):
        response = api.post(
            "/api/auth/login", {"username": username, "password": PASSWORD}, format="json"
        )
        assert error_of(response) == (401, "INVALID_CREDENTIALS")


def test_login_missing_password(api, user):
    response = api.post("/api/auth/login", {"username": user.username}, format="json")
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["message"] == "password: This field is required."


def _fail_login(client: APIClient, username: str, ip: str = "10.0.0.1"):
    return client.post(
        "/api/auth/login",
        {"username": username, "password": "wrong-password"},
        format="json",
        REMOTE_ADDR=ip,
    )


def test_login_rate_limited_per_username_even_with_right_password(api, user, settings):
    settings.ENVELOPE_LOGIN_FAILURE_LIMIT = 5
    for attempt in range(5):  # each from another address: the username counter trips
        assert _fail_login(api, user.username, ip=f"10.0.0.{attempt}").status_code == 401
    right = api.post(
        "/api/auth/login",
        {"username": user.username.upper(), "password": PASSWORD},
        format="json",
        REMOTE_ADDR="10.9.9.9",
    )
    assert error_of(right) == (429, "RATE_LIMITED")
    assert int(right["Retry-After"]) > 0
    right = api.post(
        "/api/auth/login",
        {"username": user.username, "password": PASSWORD},
        format="json",
        REMOTE_ADDR="10.9.9.9",
    )
    assert error_of(right) == (429, "RATE_LIMITED")
    # Someone else, from elsewhere, is unaffected.
    other = UserFactory()
    ok = api.post(
        "/api/auth/login",
        {"username": other.username, "password": PASSWORD},
        format="json",
        REMOTE_ADDR="10.8.8.8",
    )
    assert ok.status_code == 200


def test_login_rate_limited_per_address(api, user, settings):
    settings.ENVELOPE_LOGIN_FAILURE_LIMIT = 5
    settings.ENVELOPE_LOGIN_IP_FAILURE_LIMIT = 8
    for attempt in range(8):
        assert _fail_login(api, f"guess{attempt}", ip="10.1.1.1").status_code == 401
    response = api.post(
        "/api/auth/login",
        {"username": user.username, "password": PASSWORD},
        format="json",
        REMOTE_ADDR="10.1.1.1",
    )
    assert error_of(response) == (429, "RATE_LIMITED")
    ok = api.post(
        "/api/auth/login",
        {"username": user.username, "password": PASSWORD},
        format="json",
        REMOTE_ADDR="10.2.2.2",
    )
    assert ok.status_code == 200


def test_login_limit_ends_with_its_window(api, user, settings, monkeypatch):
    settings.ENVELOPE_LOGIN_FAILURE_LIMIT = 2
    settings.ENVELOPE_FAILURE_WINDOW = 600
    start = 1_000_000 * 600.0
    monkeypatch.setattr(ratelimit.time, "time", lambda: start)
    _fail_login(api, user.username)
    _fail_login(api, user.username)
    assert _fail_login(api, user.username).status_code == 429
    monkeypatch.setattr(ratelimit.time, "time", lambda: start + 600)
    assert _fail_login(api, user.username).status_code == 401


def test_a_successful_sign_in_does_not_count_as_a_failure(api, user, settings):
    settings.ENVELOPE_LOGIN_FAILURE_LIMIT = 3
    _fail_login(api, user.username, ip="10.0.0.1")
    _fail_login(api, user.username, ip="10.0.0.2")
    ok = api.post(
        "/api/auth/login",
        {"username": user.username, "password": PASSWORD},
        format="json",
        REMOTE_ADDR="10.0.0.3",
    )
    assert ok.status_code == 200
    assert _fail_login(api, user.username, ip="10.0.0.4").status_code == 401
    assert _fail_login(api, user.username, ip="10.0.0.5").status_code == 429


def test_logout_kills_token_and_signals_once(api_for, user, logouts):
    client = api_for(user)
    assert client.get("/api/auth/me").status_code == 200
    response = client.post("/api/auth/logout")
    assert response.status_code == 204
    assert logouts == [user.pk]
    assert not Token.objects.filter(user=user).exists()
    assert error_of(client.get("/api/auth/me")) == (401, "AUTH_REQUIRED")


def test_logout_by_session_ends_session_and_signals_once(api, user, logouts):
    api.force_login(user)
    assert api.post("/api/auth/logout").status_code == 204
    assert logouts == [user.pk]
    assert error_of(api.get("/api/auth/me")) == (401, "AUTH_REQUIRED")


def test_logout_requires_sign_in(api, db, logouts):
    assert error_of(api.post("/api/auth/logout")) == (401, "AUTH_REQUIRED")
    assert logouts == []


def test_me(api_for, staff):
    response = api_for(staff).get("/api/auth/me")
    assert response.json() == {
        "user": {"id": staff.pk, "username": "staffer", "displayName": "Staff", "isStaff": True}
    }


def test_me_display_name_falls_back_to_username(api_for, db):
    user = UserFactory(username="plain", display_name="")
    assert api_for(user).get("/api/auth/me").json()["user"]["displayName"] == "plain"


def test_ws_ticket(api_for, user):
    response = api_for(user).post("/api/auth/ws-ticket")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ticket", "expiresIn"}
    assert body["expiresIn"] == 60
    assert ticket_claim(body["ticket"]).user_id == user.pk


def test_ws_ticket_requires_sign_in(api, db):
    response = api.post("/api/auth/ws-ticket")
    assert error_of(response) == (401, "AUTH_REQUIRED")
    assert response["WWW-Authenticate"] == "Token"


def test_session_requests_need_csrf(db):
    client = APIClient(enforce_csrf_checks=True)
    # Register and login need no CSRF token: the browser has no session yet.
    response = register(client)
    assert response.status_code == 201
    assert client.get("/api/auth/me").status_code == 200  # safe method: no token needed
    refused = client.post("/api/auth/ws-ticket")
    assert error_of(refused) == (403, "FORBIDDEN")
    assert "CSRF" in refused.json()["error"]["message"]
    csrf = client.cookies["csrftoken"].value
    assert client.post("/api/auth/ws-ticket", HTTP_X_CSRFTOKEN=csrf).status_code == 200
    # Login works with a stale session and no CSRF token, too.
    again = client.post(
        "/api/auth/login", {"username": "newbie", "password": NEW_PASSWORD}, format="json"
    )
    assert again.status_code == 200


def test_token_requests_need_no_csrf(api_for, user):
    client = api_for(user)
    client.handler.enforce_csrf_checks = True
    assert client.post("/api/auth/ws-ticket").status_code == 200


def test_bad_token_is_auth_required(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert error_of(client.get("/api/auth/me")) == (401, "AUTH_REQUIRED")
