"""The error shape for everything that can go wrong over HTTP (docs/api.md)."""

from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from games import services
from games.models import Game
from tests.api.conftest import error_of


@pytest.mark.parametrize(
    "path", ["/api/nope", "/api/games/", "/api/auth/nope", "/api/games/1/nope", "/api/"]
)
def test_unknown_api_path_is_json_404(db, path):
    api = APIClient(enforce_csrf_checks=True)
    assert error_of(api.get(path)) == (404, "NOT_FOUND")
    # Any method, and no CSRF or sign-in needed to learn it does not exist.
    assert error_of(api.post(path, {}, format="json")) == (404, "NOT_FOUND")


def test_unauthenticated_is_401_everywhere(api, db):
    for method, path in [
        ("get", "/api/auth/me"),
        ("get", "/api/ceremonies"),
        ("get", "/api/ceremonies/1"),
        ("post", "/api/categories/1/winner"),
        ("get", "/api/games"),
        ("post", "/api/games/join"),
        ("get", "/api/games/1"),
        ("patch", "/api/games/1"),
        ("delete", "/api/games/1/participants/2"),
        ("get", "/api/games/1/picks"),
        ("put", "/api/games/1/picks/1"),
        ("get", "/api/games/1/leaderboard"),
        ("get", "/api/games/1/pick-counts"),
    ]:
        response = getattr(api, method)(path)
        assert error_of(response) == (401, "AUTH_REQUIRED"), path
        assert response["WWW-Authenticate"] == "Token"


def test_malformed_json(host_api, ceremony):
    response = host_api.post("/api/games", data='{"name": "x",', content_type="application/json")
    assert error_of(response) == (400, "VALIDATION_ERROR")


def test_body_not_an_object(host_api, ceremony):
    response = host_api.post("/api/games", data="[1, 2]", content_type="application/json")
    assert error_of(response) == (400, "VALIDATION_ERROR")


def test_empty_body_names_missing_fields(host_api, ceremony):
    response = host_api.post("/api/games", data="", content_type="application/json")
    assert error_of(response) == (400, "VALIDATION_ERROR")
    message = response.json()["error"]["message"]
    assert "ceremonyId: This field is required." in message
    assert "name: This field is required." in message


def test_not_json_content_type(host_api, ceremony):
    response = host_api.post("/api/games", data="name=x", content_type="text/plain")
    assert error_of(response) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_method_not_allowed(host_api, db):
    assert error_of(host_api.put("/api/games", {}, format="json")) == (405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize("bad", ["5", 5.0, 5.5, True, None, [5], {"id": 5}, 0, -3, 2**63])
def test_ids_must_be_json_integers(host_api, ceremony, bad):
    response = host_api.post("/api/games", {"ceremonyId": bad, "name": "x"}, format="json")
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["message"].startswith("ceremonyId: ")
    assert not Game.objects.exists()


@pytest.mark.parametrize("path", ["/api/games/99999999999999999999999", "/api/ceremonies/2"])
def test_unknown_or_huge_ids_are_404(host_api, db, path):
    assert error_of(host_api.get(path)) == (404, "NOT_FOUND")


def test_unexpected_exception_is_json_500_and_logged(host_api, ceremony, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "game_create", explode)
    with caplog.at_level(logging.ERROR, logger="config.errors"):
        response = host_api.post(
            "/api/games", {"ceremonyId": ceremony.pk, "name": "x"}, format="json"
        )
    assert error_of(response) == (500, "SERVER_ERROR")
    assert "secret" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert any(
        record.exc_info and "secret internals" in str(record.exc_info[1])
        for record in caplog.records
    )
