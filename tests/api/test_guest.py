"""Guest join (name + PIN, no account), its rate limits, and claiming a
guest's account (docs/api.md, Auth)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.hashers import check_password
from django.db import connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import GuestPass, User
from games import services
from games.models import Game, GameParticipant, GameStatus, Pick
from tests.api.conftest import error_of
from tests.factories import GameFactory, ParticipantFactory, UserFactory

NEW_PASSWORD = "violet-lantern-93"


def guest(client: APIClient, game: Game | str, name: str = "Alice", pin: str = "1234", **extra):
    code = game if isinstance(game, str) else game.access_code
    body = {"accessCode": code, "displayName": name, "pin": pin}
    body.update(extra.pop("body", {}))
    return client.post("/api/auth/guest", body, format="json", **extra)


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


# --- joining ----------------------------------------------------------------------


def test_a_new_name_makes_a_guest_joined_and_signed_in(api, game):
    response = guest(api, game, name="  Alice  ", pin="0042")
    assert response.status_code == 201
    body = response.json()
    user = User.objects.get(pk=body["user"]["id"])
    assert body == {
        "user": {
            "id": user.pk,
            "username": user.username,
            "displayName": "Alice",
            "isStaff": False,
        },
        "token": Token.objects.get(user=user).key,
        "game": {
            "id": game.pk,
            "name": "Oscar night",
            "ceremonyId": game.ceremony_id,
            "status": "OPEN",
            "picksLockAt": None,
            "completedAt": None,
            "participantCount": 2,
            "isHost": False,
        },
    }
    assert user.is_guest and user.username.startswith("guest-")
    assert not user.has_usable_password()
    assert GameParticipant.objects.filter(game=game, user=user).exists()
    # The PIN is stored hashed, never as typed.
    guest_pass = GuestPass.objects.get(user=user)
    assert guest_pass.game == game and guest_pass.name_key == "alice"
    assert "0042" not in guest_pass.pin_hash and check_password("0042", guest_pass.pin_hash)
    # The browser is signed in by the session alone, and the token works too.
    assert api.get("/api/auth/me").json()["user"]["id"] == user.pk
    assert token_client(body["token"]).get(f"/api/games/{game.pk}").status_code == 200


def test_the_same_name_and_pin_on_another_phone_signs_back_in_with_the_picks(api, game):
    first = guest(api, game, name="Alice", pin="2468").json()
    category = game.ceremony.categories.order_by("order").first()
    nominee = category.nominations.first()
    picked = token_client(first["token"]).put(
        f"/api/games/{game.pk}/picks/{category.pk}", {"nominationId": nominee.pk}, format="json"
    )
    assert picked.status_code == 200, picked.json()

    phone_two = APIClient()
    again = guest(phone_two, game, name="ALICE", pin="2468")  # any case
    assert again.status_code == 200
    body = again.json()
    assert body["user"]["id"] == first["user"]["id"]
    assert body["user"]["displayName"] == "Alice"  # the name as first chosen
    assert body["game"]["id"] == game.pk and body["game"]["participantCount"] == 2
    assert phone_two.get("/api/auth/me").json()["user"]["id"] == first["user"]["id"]
    picks = phone_two.get(f"/api/games/{game.pk}/picks").json()
    assert [(p["categoryId"], p["nominationId"]) for p in picks] == [(category.pk, nominee.pk)]
    assert User.objects.filter(is_guest=True).count() == 1


def test_a_wrong_pin_is_refused_and_signs_nobody_in(api, game):
    guest(APIClient(), game, name="Alice", pin="1234")
    response = guest(api, game, name="alice", pin="4321")
    assert error_of(response) == (401, "INVALID_CREDENTIALS")
    assert response["WWW-Authenticate"] == "Token"
    assert error_of(api.get("/api/auth/me")) == (401, "AUTH_REQUIRED")


@pytest.mark.parametrize("name", ["Playa", "PLAYA", "playa"])
def test_a_name_another_player_has_is_taken(api, game, player, name):
    response = guest(api, game, name=name)
    assert error_of(response) == (409, "NAME_TAKEN")
    assert not User.objects.filter(is_guest=True).exists()
    assert error_of(api.get("/api/auth/me")) == (401, "AUTH_REQUIRED")


def test_a_player_without_display_name_holds_their_username(api, game):
    ParticipantFactory(game=game, user=UserFactory(username="Zed", display_name=""))
    assert error_of(guest(api, game, name="zed")) == (409, "NAME_TAKEN")


def test_the_host_name_is_taken_and_casefolding_counts(api, game):
    assert error_of(guest(api, game, name="HOSTY")) == (409, "NAME_TAKEN")
    ParticipantFactory(game=game, user=UserFactory(display_name="Straße"))
    assert error_of(guest(api, game, name="STRASSE")) == (409, "NAME_TAKEN")


def test_a_name_is_per_game(api, game, ceremony):
    other = GameFactory(ceremony=ceremony)
    first = guest(APIClient(), game, name="Alice", pin="1111").json()
    second = guest(api, other, name="Alice", pin="2222")
    assert second.status_code == 201
    assert second.json()["user"]["id"] != first["user"]["id"]


def test_a_completed_game_cannot_be_joined_by_a_new_guest(api, game):
    Game.objects.filter(pk=game.pk).update(status=GameStatus.COMPLETED)
    assert error_of(guest(api, game)) == (409, "GAME_NOT_JOINABLE")
    assert not User.objects.filter(is_guest=True).exists()


def test_a_guest_of_a_completed_game_can_still_sign_back_in(api, game):
    first = guest(APIClient(), game, pin="1234").json()
    Game.objects.filter(pk=game.pk).update(status=GameStatus.COMPLETED)
    again = guest(api, game, pin="1234")
    assert again.status_code == 200 and again.json()["user"]["id"] == first["user"]["id"]


def test_a_code_is_matched_as_typed_on_a_phone(api, game):
    response = guest(api, f"  {game.access_code.lower()} ")
    assert response.status_code == 201 and response.json()["game"]["id"] == game.pk


def test_an_unknown_code_is_invalid(api, db):
    assert error_of(guest(api, "ZZZZZZZZ")) == (404, "INVALID_CODE")
    assert not User.objects.filter(is_guest=True).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"accessCode": None}, "accessCode"),
        ({"accessCode": 12345678}, "accessCode"),
        ({"displayName": ""}, "displayName"),
        ({"displayName": "   "}, "displayName"),
        ({"displayName": "x" * 61}, "displayName"),
        ({"displayName": 7}, "displayName"),
        ({"pin": "123"}, "pin"),
        ({"pin": "1234567"}, "pin"),
        ({"pin": "12a4"}, "pin"),
        ({"pin": "١٢٣٤"}, "pin"),  # digits, but not 0-9
        ({"pin": 1234}, "pin"),  # a number would lose leading zeros
        ({"pin": ""}, "pin"),
    ],
)
def test_bad_fields_are_named(api, game, body, field):
    response = guest(api, game, body=body)
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["message"].startswith(f"{field}: ")
    assert not User.objects.filter(is_guest=True).exists()


@pytest.mark.parametrize("field", ["accessCode", "displayName", "pin"])
def test_a_missing_field_is_named(api, game, field):
    body = {"accessCode": game.access_code, "displayName": "Alice", "pin": "1234"}
    del body[field]
    response = api.post("/api/auth/guest", body, format="json")
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["message"] == f"{field}: This field is required."


def test_a_body_that_is_not_an_object_is_refused(api, db):
    response = api.post("/api/auth/guest", ["Alice"], format="json")
    assert error_of(response) == (400, "VALIDATION_ERROR")


def test_six_digit_pins_work(api, game):
    assert guest(APIClient(), game, name="Bo", pin="000000").status_code == 201
    assert guest(api, game, name="Bo", pin="000000").status_code == 200
    assert error_of(guest(api, game, name="Bo", pin="0000")) == (401, "INVALID_CREDENTIALS")


# --- the host and the guest's own session ---------------------------------------


def test_the_host_can_remove_a_guest(api, game, host_api):
    guest_id = guest(api, game).json()["user"]["id"]
    response = host_api.delete(f"/api/games/{game.pk}/participants/{guest_id}")
    assert response.status_code == 204
    assert not GameParticipant.objects.filter(game=game, user_id=guest_id).exists()
    assert error_of(api.get(f"/api/games/{game.pk}")) == (403, "NOT_PARTICIPANT")


def test_a_guest_signs_out_like_anyone(api, game):
    token = guest(api, game).json()["token"]
    client = token_client(token)
    assert client.post("/api/auth/logout").status_code == 204
    assert error_of(client.get("/api/auth/me")) == (401, "AUTH_REQUIRED")


def test_a_guest_cannot_sign_in_by_password(api, game):
    username = guest(APIClient(), game).json()["user"]["username"]
    for password in ("", "1234", "!"):
        response = api.post(
            "/api/auth/login", {"username": username, "password": password}, format="json"
        )
        assert response.status_code in (400, 401)
        assert error_of(api.get("/api/auth/me")) == (401, "AUTH_REQUIRED")


def test_registration_keeps_guest_usernames_for_guests(api, db):
    response = api.post(
        "/api/auth/register",
        {"username": "Guest-abc", "password": NEW_PASSWORD, "displayName": "G"},
        format="json",
    )
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["message"].startswith("username: ")


# --- the join page ------------------------------------------------------------------


def test_the_join_link_offers_guest_join_and_accounts_when_signed_out(client, db):
    # Not looked up: the page says nothing about which codes exist.
    response = client.get("/join/ZZZZZZZZ")
    assert response.status_code == 200
    page = response.content.decode()
    for form in ('id="guest-form"', 'id="signin-form"', 'id="register-form"'):
        assert form in page
    assert "data-join>" not in page
    assert '<script id="next-url" type="application/json">"/join/ZZZZZZZZ"</script>' in page
    assert "js/join.js" in page and "css/join.css" in page


def test_the_join_link_joins_at_once_when_signed_in(client, user, game):
    client.force_login(user)
    page = client.get(f"/join/{game.access_code}").content.decode()
    assert "data-join>" in page and 'id="guest-form"' not in page


def test_the_admin_lists_guests_without_their_pin(client, api, game):
    guest(api, game, name="Alice", pin="8642")
    guest_pass = GuestPass.objects.get()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listing = client.get("/admin/accounts/guestpass/")
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    change = client.get(f"/admin/accounts/guestpass/{guest_pass.pk}/change/")
    assert change.status_code == 200
    assert guest_pass.pin_hash not in change.content.decode()
    assert client.get("/admin/accounts/guestpass/add/").status_code == 403
    users = client.get("/admin/accounts/user/?is_guest__exact=1").content.decode()
    assert guest_pass.user.username in users


# --- rate limits --------------------------------------------------------------------


def test_wrong_pins_are_limited_per_name_even_with_the_right_pin(api, game, settings):
    settings.ENVELOPE_GUEST_PIN_FAILURE_LIMIT = 3
    guest(APIClient(), game, name="Alice", pin="1234")
    for attempt in range(3):  # each from another address: the name's counter trips
        wrong = guest(api, game, name="ALICE", pin="9999", REMOTE_ADDR=f"10.0.0.{attempt}")
        assert error_of(wrong) == (401, "INVALID_CREDENTIALS")
    right = guest(api, game, name="Alice", pin="1234", REMOTE_ADDR="10.9.9.9")
    assert error_of(right) == (429, "RATE_LIMITED")
    assert int(right["Retry-After"]) > 0
    # Another name, and the same name in another game, are unaffected.
    assert guest(api, game, name="Bob", REMOTE_ADDR="10.9.9.9").status_code == 201
    other = GameFactory(ceremony=game.ceremony)
    assert guest(api, other, name="Alice", REMOTE_ADDR="10.9.9.9").status_code == 201


def test_wrong_pins_are_limited_per_address(api, game, settings):
    settings.ENVELOPE_GUEST_PIN_IP_FAILURE_LIMIT = 3
    for name in ("Ann", "Ben", "Cat"):
        guest(APIClient(), game, name=name, pin="1234", REMOTE_ADDR="10.2.2.2")
    for name in ("Ann", "Ben", "Cat"):
        wrong = guest(api, game, name=name, pin="0000", REMOTE_ADDR="10.1.1.1")
        assert error_of(wrong) == (401, "INVALID_CREDENTIALS")
    shut = guest(api, game, name="Ann", pin="1234", REMOTE_ADDR="10.1.1.1")
    assert error_of(shut) == (429, "RATE_LIMITED")
    assert guest(api, game, name="Ann", pin="1234", REMOTE_ADDR="10.3.3.3").status_code == 200


def test_right_pins_and_new_names_are_not_failures(api, game, player, settings):
    settings.ENVELOPE_GUEST_PIN_FAILURE_LIMIT = 2
    settings.ENVELOPE_GUEST_PIN_IP_FAILURE_LIMIT = 2
    guest(api, game, name="Alice", pin="1234")
    for _ in range(4):
        assert guest(api, game, name="Alice", pin="1234").status_code == 200
    assert error_of(guest(api, game, name="Playa")) == (409, "NAME_TAKEN")
    assert error_of(guest(api, game, name="Playa")) == (409, "NAME_TAKEN")
    assert error_of(guest(api, game, name="Alice", pin="0000")) == (401, "INVALID_CREDENTIALS")
    assert error_of(guest(api, game, name="Alice", pin="0000")) == (401, "INVALID_CREDENTIALS")
    assert error_of(guest(api, game, name="Alice", pin="1234")) == (429, "RATE_LIMITED")


def test_new_guests_are_limited_per_address(api, game, settings):
    settings.ENVELOPE_GUEST_IP_LIMIT = 2
    assert guest(api, game, name="Ann", REMOTE_ADDR="10.4.4.4").status_code == 201
    assert guest(api, game, name="Ben", REMOTE_ADDR="10.4.4.4").status_code == 201
    assert error_of(guest(api, game, name="Cat", REMOTE_ADDR="10.4.4.4")) == (
        429,
        "RATE_LIMITED",
    )
    assert User.objects.filter(is_guest=True).count() == 2
    assert guest(api, game, name="Cat", REMOTE_ADDR="10.5.5.5").status_code == 201


def test_wrong_codes_count_toward_the_join_by_code_limit(api, api_for, game, settings):
    settings.ENVELOPE_JOIN_IP_FAILURE_LIMIT = 3
    for _ in range(3):
        wrong = guest(api, "WRONGCOD", REMOTE_ADDR="10.6.6.6")
        assert error_of(wrong) == (404, "INVALID_CODE")
    assert error_of(guest(api, game, REMOTE_ADDR="10.6.6.6")) == (429, "RATE_LIMITED")
    # The same door as join by code: a signed-in player there is shut out too.
    joined = api_for(UserFactory()).post(
        "/api/games/join", {"accessCode": game.access_code}, format="json", REMOTE_ADDR="10.6.6.6"
    )
    assert error_of(joined) == (429, "RATE_LIMITED")
    assert guest(api, game, REMOTE_ADDR="10.7.7.7").status_code == 201


# --- claiming the account -------------------------------------------------------------


def claim(client: APIClient, **overrides: object):
    body = {"username": "alice", "password": NEW_PASSWORD}
    body.update(overrides)
    return client.post("/api/auth/claim", body, format="json")


def test_a_guest_claims_a_full_account_keeping_id_games_and_picks(api, game):
    joined = guest(api, game, name="Alice", pin="1234").json()
    category = game.ceremony.categories.order_by("order").first()
    nominee = category.nominations.first()
    services.pick_submit(
        game_id=game.pk,
        user=User.objects.get(pk=joined["user"]["id"]),
        category_id=category.pk,
        nomination_id=nominee.pk,
    )
    client = token_client(joined["token"])
    response = claim(client, displayName="Alice B.")
    assert response.status_code == 200
    assert response.json() == {
        "user": {
            "id": joined["user"]["id"],
            "username": "alice",
            "displayName": "Alice B.",
            "isStaff": False,
        },
        "token": joined["token"],
    }
    user = User.objects.get(pk=joined["user"]["id"])
    assert not user.is_guest and user.check_password(NEW_PASSWORD)
    assert Pick.objects.filter(game=game, user=user).count() == 1
    assert GameParticipant.objects.filter(game=game, user=user).exists()
    # From now on: username and password; the name and PIN no longer sign in.
    login = APIClient().post(
        "/api/auth/login", {"username": "alice", "password": NEW_PASSWORD}, format="json"
    )
    assert login.status_code == 200 and login.json()["user"]["id"] == user.pk
    assert not GuestPass.objects.filter(user=user).exists()
    assert error_of(guest(APIClient(), game, name="Alice B.", pin="1234")) == (409, "NAME_TAKEN")


def test_a_claim_in_the_browser_keeps_its_session_and_ends_the_others(api, game):
    guest(api, game, name="Alice", pin="1234")
    other_phone = APIClient()
    guest(other_phone, game, name="Alice", pin="1234")
    with_csrf_checks = APIClient(enforce_csrf_checks=True)
    with_csrf_checks.cookies = api.cookies  # the session cookie alone: CSRF applies
    assert error_of(claim(with_csrf_checks)) == (403, "FORBIDDEN")
    assert User.objects.get(username__startswith="guest-").is_guest
    assert claim(api).status_code == 200  # the test client skips CSRF checks
    assert api.get("/api/auth/me").json()["user"]["username"] == "alice"
    # The password changed: the guest's session on the other phone is over.
    assert error_of(other_phone.get("/api/auth/me")) == (401, "AUTH_REQUIRED")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"username": "has space"}, "username"),
        ({"username": "guest-me"}, "username"),
        ({"username": "Playa"}, "username"),  # taken, in any case
        ({"username": None}, "username"),
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
        ({"password": "alice123"}, "password"),  # too similar to the username
        ({"displayName": ""}, "displayName"),
        ({"displayName": "x" * 61}, "displayName"),
    ],
)
def test_a_claim_is_validated_as_registration(api, game, overrides, field):
    UserFactory(username="playa")
    joined = guest(api, game).json()
    response = claim(token_client(joined["token"]), **overrides)
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["message"].startswith(f"{field}: ")
    assert User.objects.get(pk=joined["user"]["id"]).is_guest


def test_only_a_guest_can_claim(api_for, api, user):
    assert error_of(claim(api_for(user))) == (403, "FORBIDDEN")
    assert error_of(claim(api)) == (401, "AUTH_REQUIRED")


def test_claims_count_as_registrations(api, game, settings):
    settings.ENVELOPE_REGISTER_LIMIT = 2
    client = token_client(guest(api, game).json()["token"])
    for _ in range(2):
        assert error_of(claim(client, password="short")) == (400, "VALIDATION_ERROR")
    assert error_of(claim(client)) == (429, "RATE_LIMITED")


# --- races --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_phones_racing_for_one_new_name_make_one_guest(postgres_url, ceremony):
    game = GameFactory(ceremony=ceremony)

    def join(pin: str) -> int:
        try:
            return guest(APIClient(), game, name="Racer", pin=pin).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(join, ["1111", "1111", "2222", "2222"]))
    assert User.objects.filter(is_guest=True).count() == 1
    assert GuestPass.objects.filter(game=game).count() == 1
    # The winner's PIN signs in (201 once, 200 for its twin); the other PIN is wrong.
    assert statuses == [200, 201, 401, 401]
