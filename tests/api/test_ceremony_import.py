"""`POST /api/ceremonies/import` (docs/api.md): staff import a ceremony from
a Wikipedia page (through a local stand-in for the MediaWiki API), its
wikitext, or a ceremony-file object; a preview writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from games.models import Category, Ceremony, Nomination
from tests.admin_cmds.test_import_wikipedia import OLDER, RECENT, StandInWikipedia, page, wikitext
from tests.api.conftest import error_of

URL = "/api/ceremonies/import"
RECENT_URL = "https://en.wikipedia.org/wiki/96th_Academy_Awards"


@pytest.fixture
def wikipedia(settings) -> Iterator[StandInWikipedia]:
    stand_in = StandInWikipedia({"96th Academy Awards": wikitext(RECENT)}).start()
    settings.WIKIPEDIA_API_URL = stand_in.api_url
    settings.WIKIPEDIA_TIMEOUT = 0.5
    try:
        yield stand_in
    finally:
        stand_in.stop()


def nothing_written() -> bool:
    return not (
        Ceremony.objects.exists() or Category.objects.exists() or Nomination.objects.exists()
    )


def test_anonymous_gets_401(api, db, wikipedia) -> None:
    response = api.post(URL, {"wikipediaUrl": RECENT_URL}, format="json")
    assert error_of(response) == (401, "AUTH_REQUIRED")
    assert wikipedia.requests == [] and nothing_written()


def test_non_staff_gets_403(api_for, user, wikipedia) -> None:
    response = api_for(user).post(URL, {"wikipediaUrl": RECENT_URL}, format="json")
    assert error_of(response) == (403, "FORBIDDEN")
    assert wikipedia.requests == [] and nothing_written()


def test_preview_of_a_url_answers_the_ceremony_file_and_writes_nothing(
    staff_api, wikipedia
) -> None:
    response = staff_api.post(URL, {"wikipediaUrl": RECENT_URL, "preview": True}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"name", "date", "categories"}
    assert (body["name"], body["date"]) == ("96th Academy Awards", "2024-03-10")
    assert len(body["categories"]) == 23
    assert body["categories"][1] == {
        "name": "Best Director",
        "points": 1,
        "nominations": [
            {"title": "Christopher Nolan", "subtitle": "Oppenheimer", "imageUrl": None},
            {"title": "Jonathan Glazer", "subtitle": "The Zone of Interest", "imageUrl": None},
            {"title": "Justine Triet", "subtitle": "Anatomy of a Fall", "imageUrl": None},
            {
                "title": "Martin Scorsese",
                "subtitle": "Killers of the Flower Moon",
                "imageUrl": None,
            },
            {"title": "Yorgos Lanthimos", "subtitle": "Poor Things", "imageUrl": None},
        ],
    }
    assert len(wikipedia.requests) == 1
    assert nothing_written()


def test_import_of_a_url_creates_an_upcoming_ceremony(staff_api, wikipedia) -> None:
    response = staff_api.post(URL, {"wikipediaUrl": RECENT_URL}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    ceremony = Ceremony.objects.get()
    assert body["id"] == ceremony.pk and body["name"] == "96th Academy Awards"
    assert len(body["categories"]) == 23
    # No winner from the page's marks: every category still to be revealed.
    assert all(not c["isRevealed"] and c["winnerId"] is None for c in body["categories"])
    assert not Category.objects.filter(winner__isnull=False).exists()
    # The same ceremony as GET answers.
    assert staff_api.get(f"/api/ceremonies/{ceremony.pk}").json() == body


def test_import_of_wikitext(staff_api, db) -> None:
    response = staff_api.post(URL, {"wikitext": wikitext(OLDER)}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == "72nd Academy Awards"
    assert Ceremony.objects.get().categories.count() == 8


def test_import_of_a_ceremony_object_keeps_its_points(staff_api, db) -> None:
    ceremony = {
        "name": "Test Awards",
        "date": "2025-03-02",
        "categories": [{"name": "Best Picture", "points": 5, "nominations": [{"title": "Anora"}]}],
    }
    preview = staff_api.post(URL, {"ceremony": ceremony, "preview": True}, format="json")
    assert preview.status_code == 200
    assert preview.json()["categories"][0] == {
        "name": "Best Picture",
        "points": 5,
        "nominations": [{"title": "Anora", "subtitle": "", "imageUrl": None}],
    }
    assert nothing_written()
    created = staff_api.post(URL, {"ceremony": ceremony}, format="json")
    assert created.status_code == 201
    assert created.json()["categories"][0]["points"] == 5


def test_reimporting_the_same_ceremony_is_import_invalid(staff_api, db) -> None:
    assert staff_api.post(URL, {"wikitext": wikitext(OLDER)}, format="json").status_code == 201
    response = staff_api.post(URL, {"wikitext": wikitext(OLDER)}, format="json")
    assert error_of(response) == (400, "IMPORT_INVALID")
    assert "already exists" in response.json()["error"]["message"]
    assert Ceremony.objects.count() == 1


def message_of(response: Any) -> str:
    assert error_of(response) == (400, "IMPORT_INVALID")
    return response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"wikitext": page(right="No bullets here.")}, "Best Sound: no nominees"),
        ({"wikitext": "just some text"}, "categories: no table of {{Award category}}"),
        (
            {"ceremony": {"name": "X", "categories": [{"name": "Y", "nominations": []}]}},
            "ceremony.categories[0].nominations: must not be empty",
        ),
        ({"ceremony": ["not", "an", "object"]}, "ceremony: must be a JSON object"),
        ({"wikipediaUrl": "https://example.com/wiki/96th_Academy_Awards"}, "wikipediaUrl: must be"),
        ({"wikipediaUrl": "http://169.254.169.254/latest/meta-data/"}, "wikipediaUrl: must be"),
        ({"wikipediaUrl": "https://en.wikipedia.org/wiki/Slow"}, "did not answer within 0.5"),
        ({"wikipediaUrl": "https://en.wikipedia.org/wiki/Broken"}, "answered HTTP 503"),
        ({"wikipediaUrl": "https://en.wikipedia.org/wiki/Nope"}, "doesn't exist"),
    ],
)
def test_what_cannot_be_parsed_is_import_invalid_and_writes_nothing(
    staff_api, wikipedia, body: dict[str, Any], named: str
) -> None:
    for preview in (True, False):
        response = staff_api.post(URL, {**body, "preview": preview}, format="json")
        assert named in message_of(response)
    assert nothing_written()
    # A refused URL never reaches the network.
    if "example.com" in str(body) or "169.254" in str(body):
        assert wikipedia.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"preview": True},
        {"wikitext": "x", "ceremony": {}},
        {"wikipediaUrl": 5},
        {"wikitext": ["a"]},
        {"wikitext": "x", "preview": "yes"},
    ],
)
def test_a_malformed_body_is_a_validation_error(staff_api, db, body: dict[str, Any]) -> None:
    response = staff_api.post(URL, body, format="json")
    assert error_of(response) == (400, "VALIDATION_ERROR")
    assert nothing_written()
