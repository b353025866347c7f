"""The ceremony file format (README, Configuration): parse and validate the whole document.

A malformed file is rejected whole, before anything is written, with a message
naming the offending path (`categories[3].nominations[0].title: required`).
Optional fields may be absent or null; unknown keys are ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from urllib.parse import urlparse

# Column sizes of games.models: longer values would fail in the database.
NAME_MAX = 200
TITLE_MAX = 300
IMAGE_URL_MAX = 500
# Points beyond this are surely a typo, and stay far from PositiveIntegerField's limit.
POINTS_MAX = 1000
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class CeremonyFileError(ValueError):
    """The file is not a valid ceremony document; the message names the path."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def parse_ceremony(raw: bytes | str) -> dict[str, Any]:
    """Validate a ceremony document and return it normalised for
    `games.services.ceremony_create(data=...)`."""
    return validate_ceremony(_load_json(raw))


def validate_ceremony(document: Any) -> dict[str, Any]:
    """`parse_ceremony` for a document already decoded from JSON (an API
    body's `ceremony` object, a ceremony read from a Wikipedia page)."""
    if not isinstance(document, dict):
        raise CeremonyFileError("", "must be a JSON object")
    # Checked in document order, so the first problem reported is the first in the file.
    name = _required_string(document, "name", "name", NAME_MAX)
    date = _date(document.get("date"))
    categories = _non_empty_list(document.get("categories"), "categories")
    return {
        "name": name,
        "date": date,
        "categories": [
            _category(category, f"categories[{index}]") for index, category in enumerate(categories)
        ],
    }


def ceremony_document(data: dict[str, Any]) -> dict[str, Any]:
    """Validated data back in the file's JSON shape (the date as YYYY-MM-DD)."""
    return {**data, "date": data["date"].isoformat() if data["date"] else None}


def _load_json(raw: bytes | str) -> Any:
    if isinstance(raw, bytes):
        try:
            # utf-8-sig: a byte-order mark written by some editors is harmless.
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CeremonyFileError("", f"not UTF-8 (invalid byte at offset {exc.start})") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CeremonyFileError(
            "", f"not valid JSON (line {exc.lineno} column {exc.colno})"
        ) from None


def _category(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CeremonyFileError(path, "must be an object")
    name = _required_string(value, "name", f"{path}.name", NAME_MAX)
    points = _points(value.get("points"), f"{path}.points")
    nominations = _non_empty_list(value.get("nominations"), f"{path}.nominations")
    return {
        "name": name,
        "points": points,
        "nominations": [
            _nomination(nomination, f"{path}.nominations[{index}]")
            for index, nomination in enumerate(nominations)
        ],
    }


def _nomination(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CeremonyFileError(path, "must be an object")
    title = _required_string(value, "title", f"{path}.title", TITLE_MAX)
    subtitle = _optional_string(value.get("subtitle"), f"{path}.subtitle", TITLE_MAX)
    return {
        "title": title,
        "subtitle": subtitle or "",
        "imageUrl": _image_url(value.get("imageUrl"), f"{path}.imageUrl"),
    }


def _non_empty_list(value: Any, path: str) -> list[Any]:
    if value is None:
        raise CeremonyFileError(path, "required")
    if not isinstance(value, list):
        raise CeremonyFileError(path, "must be a list")
    if not value:
        raise CeremonyFileError(path, "must not be empty")
    return value


def _required_string(container: dict[str, Any], key: str, path: str, max_length: int) -> str:
    value = _optional_string(container.get(key), path, max_length)
    if not value:
        raise CeremonyFileError(path, "required")
    return value


def _optional_string(value: Any, path: str, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CeremonyFileError(path, "must be a string")
    value = value.strip()
    if len(value) > max_length:
        raise CeremonyFileError(path, f"must be at most {max_length} characters")
    return value


def _points(value: Any, path: str) -> int:
    if value is None:
        return 1
    # bool is a subclass of int: `true` must not count as 1 point.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CeremonyFileError(path, "must be a positive integer")
    if value > POINTS_MAX:
        raise CeremonyFileError(path, f"must be at most {POINTS_MAX}")
    return value


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        raise CeremonyFileError("date", "must be YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CeremonyFileError("date", "must be YYYY-MM-DD") from None


def _image_url(value: Any, path: str) -> str | None:
    url = _optional_string(value, path, IMAGE_URL_MAX)
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise CeremonyFileError(path, "must be an http(s) URL")
    return url
