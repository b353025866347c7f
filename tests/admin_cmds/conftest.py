"""Fixtures for the admin and management command tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.factories import UserFactory

FIXTURE = Path(__file__).resolve().parents[2] / "games" / "fixtures" / "97th-academy-awards.json"


@pytest.fixture
def superuser(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def ceremony_doc() -> dict[str, Any]:
    """A small valid ceremony document; tests break one field at a time."""
    return {
        "name": "Test Awards",
        "date": "2025-03-02",
        "categories": [
            {
                "name": "Best Picture",
                "points": 5,
                "nominations": [
                    {"title": "Anora", "subtitle": "Sean Baker", "imageUrl": None},
                    {"title": "Conclave"},
                ],
            },
            {"name": "Best Sound", "nominations": [{"title": "Dune: Part Two"}]},
        ],
    }


@pytest.fixture
def write_json(tmp_path):
    """write_json(obj) → path of a file holding obj as UTF-8 JSON."""

    def write(obj: Any, name: str = "ceremony.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
        return path

    return write
