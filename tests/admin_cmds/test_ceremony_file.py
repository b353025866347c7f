"""games.ceremony_file.parse_ceremony: the whole document is validated, and
every error names the offending path (README, Configuration)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from games.ceremony_file import CeremonyFileError, parse_ceremony
from tests.admin_cmds.conftest import FIXTURE


def broken(doc: dict[str, Any], change) -> str:
    doc = copy.deepcopy(doc)
    change(doc)
    return json.dumps(doc)


def error_of(raw: bytes | str) -> str:
    with pytest.raises(CeremonyFileError) as excinfo:
        parse_ceremony(raw)
    return str(excinfo.value)


def test_valid_document_is_normalised(ceremony_doc):
    ceremony_doc["extra"] = "ignored"
    ceremony_doc["categories"][0]["nominations"][1]["unknown"] = 1
    data = parse_ceremony(json.dumps(ceremony_doc).encode())
    assert data == {
        "name": "Test Awards",
        "date": dt.date(2025, 3, 2),
        "categories": [
            {
                "name": "Best Picture",
                "points": 5,
                "nominations": [
                    {"title": "Anora", "subtitle": "Sean Baker", "imageUrl": None},
                    {"title": "Conclave", "subtitle": "", "imageUrl": None},
                ],
            },
            {
                "name": "Best Sound",
                "points": 1,
                "nominations": [{"title": "Dune: Part Two", "subtitle": "", "imageUrl": None}],
            },
        ],
    }


def test_optional_fields_may_be_null_or_absent(ceremony_doc):
    del ceremony_doc["date"]
    ceremony_doc["categories"][0]["points"] = None
    nomination = ceremony_doc["categories"][0]["nominations"][0]
    nomination.update(subtitle=None, imageUrl="https://example.com/anora.jpg")
    data = parse_ceremony(json.dumps(ceremony_doc))
    assert data["date"] is None
    assert data["categories"][0]["points"] == 1
    assert data["categories"][0]["nominations"][0] == {
        "title": "Anora",
        "subtitle": "",
        "imageUrl": "https://example.com/anora.jpg",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("name"), "name: required"),
        (lambda d: d.update(name="   "), "name: required"),
        (lambda d: d.update(name=7), "name: must be a string"),
        (lambda d: d.update(name="x" * 201), "name: must be at most 200 characters"),
        (lambda d: d.update(date="2025-3-2"), "date: must be YYYY-MM-DD"),
        (lambda d: d.update(date="2025-02-30"), "date: must be YYYY-MM-DD"),
        (lambda d: d.update(date=20250302), "date: must be YYYY-MM-DD"),
        (lambda d: d.pop("categories"), "categories: required"),
        (lambda d: d.update(categories={}), "categories: must be a list"),
        (lambda d: d.update(categories=[]), "categories: must not be empty"),
        (lambda d: d["categories"].append("Best Sound"), "categories[2]: must be an object"),
        (lambda d: d["categories"][1].pop("name"), "categories[1].name: required"),
        (
            lambda d: d["categories"][0].update(points=0),
            "categories[0].points: must be a positive integer",
        ),
        (
            lambda d: d["categories"][0].update(points=-2),
            "categories[0].points: must be a positive integer",
        ),
        (
            lambda d: d["categories"][0].update(points=True),
            "categories[0].points: must be a positive integer",
        ),
        (
            lambda d: d["categories"][0].update(points=2.5),
            "categories[0].points: must be a positive integer",
        ),
        (
            lambda d: d["categories"][0].update(points="5"),
            "categories[0].points: must be a positive integer",
        ),
        (
            lambda d: d["categories"][0].update(points=10**12),
            "categories[0].points: must be at most 1000",
        ),
        (lambda d: d["categories"][1].pop("nominations"), "categories[1].nominations: required"),
        (
            lambda d: d["categories"][1].update(nominations=[]),
            "categories[1].nominations: must not be empty",
        ),
        (
            lambda d: d["categories"][1].update(nominations="Dune"),
            "categories[1].nominations: must be a list",
        ),
        (
            lambda d: d["categories"][0]["nominations"][1].pop("title"),
            "categories[0].nominations[1].title: required",
        ),
        (
            lambda d: d["categories"][0]["nominations"][0].update(title=""),
            "categories[0].nominations[0].title: required",
        ),
        (
            lambda d: d["categories"][0]["nominations"][0].update(title=["Anora"]),
            "categories[0].nominations[0].title: must be a string",
        ),
        (
            lambda d: d["categories"][0]["nominations"][0].update(subtitle=3),
            "categories[0].nominations[0].subtitle: must be a string",
        ),
        (
            lambda d: d["categories"][0]["nominations"][0].update(imageUrl=False),
            "categories[0].nominations[0].imageUrl: must be a string",
        ),
        (
            lambda d: d["categories"][0]["nominations"][0].update(imageUrl="javascript:alert(1)"),
            "categories[0].nominations[0].imageUrl: must be an http(s) URL",
        ),
        (
            lambda d: d["categories"][1]["nominations"].append(None),
            "categories[1].nominations[1]: must be an object",
        ),
    ],
)
def test_malformed_document_names_the_path(ceremony_doc, change, message):
    assert error_of(broken(ceremony_doc, change)) == message


def test_first_problem_in_document_order_is_reported(ceremony_doc):
    def two_problems(doc):
        doc["categories"][0]["nominations"][0]["title"] = ""
        doc["categories"][1]["points"] = 0

    assert error_of(broken(ceremony_doc, two_problems)) == (
        "categories[0].nominations[0].title: required"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"name": "x",\n  "categories": [}', ": not valid JSON (line 2 column 18)"),
        (b"", ": not valid JSON (line 1 column 1)"),
        (b'{"name": "\xff"}', ": not UTF-8 (invalid byte at offset 10)"),
        (b"[1, 2]", ": must be a JSON object"),
        (b"null", ": must be a JSON object"),
    ],
)
def test_unreadable_document(raw, message):
    assert error_of(raw) == message


def test_error_exposes_path_and_problem_separately():
    with pytest.raises(CeremonyFileError) as excinfo:
        parse_ceremony('{"categories": []}')
    assert (excinfo.value.path, excinfo.value.problem) == ("name", "required")


def test_byte_order_mark_is_accepted(ceremony_doc):
    raw = "\ufeff".encode() + json.dumps(ceremony_doc).encode()
    assert parse_ceremony(raw)["name"] == "Test Awards"


def test_shipped_oscars_fixture():
    data = parse_ceremony(FIXTURE.read_bytes())
    assert data["name"] == "97th Academy Awards"
    assert data["date"] == dt.date(2025, 3, 2)
    categories = {category["name"]: category for category in data["categories"]}
    assert len(data["categories"]) == len(categories) == 23
    picture = data["categories"][0]
    assert picture["name"] == "Best Picture" and picture["points"] == 5
    assert len(picture["nominations"]) == 10
    assert {n["title"] for n in picture["nominations"]} >= {"Anora", "The Brutalist", "Wicked"}
    assert all(len(c["nominations"]) == 5 for c in data["categories"][1:])
    assert {name: c["points"] for name, c in categories.items() if c["points"] > 1} == {
        "Best Picture": 5,
        "Best Director": 3,
        "Best Actor": 3,
        "Best Actress": 3,
        "Best Supporting Actor": 3,
        "Best Supporting Actress": 3,
        "Best Original Screenplay": 2,
        "Best Adapted Screenplay": 2,
    }
    actress = [n["title"] for n in categories["Best Actress"]["nominations"]]
    assert "Mikey Madison" in actress
