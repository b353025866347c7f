"""Input validation and JSON shapes of the games API (docs/api.md).

Input field names are the contract's camelCase ones, so a validation error
names the field exactly as the client sent it.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.serializers import StrictCharField
from games.formatting import iso_utc
from games.models import Category, Ceremony, Game, GameStatus

# IDs are bigint primary keys: anything outside this range cannot name a row.
ID_MAX = 2**63 - 1


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: no "5", no 5.0, no true."""

    default_error_messages = {"invalid": "A JSON integer is required."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        # bool is a subclass of int in Python; JSON true is not an id.
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class NominationChoiceSerializer(serializers.Serializer):
    nominationId = StrictIntegerField()


class GameCreateSerializer(serializers.Serializer):
    ceremonyId = StrictIntegerField()
    name = StrictCharField(max_length=120)
    picksLockAt = serializers.DateTimeField(required=False, allow_null=True, default=None)


class GameUpdateSerializer(serializers.Serializer):
    """Every field optional; an absent picksLockAt keeps it, null clears it."""

    name = StrictCharField(max_length=120, required=False)
    picksLockAt = serializers.DateTimeField(required=False, allow_null=True)
    status = serializers.ChoiceField(choices=GameStatus.values, required=False)


class JoinSerializer(serializers.Serializer):
    # Codes are 8 characters; the slack allows spaces pasted around them.
    accessCode = StrictCharField(max_length=32)


def category_json(category: Category) -> dict[str, Any]:
    """A category with its nominations. Precondition: nominations prefetched."""
    return {
        "id": category.pk,
        "name": category.name,
        "order": category.order,
        "points": category.points,
        "isRevealed": category.is_revealed,
        # Null in the database until revealed, so nothing can leak early.
        "winnerId": category.winner_id,
        "nominations": [
            {
                "id": nomination.pk,
                "title": nomination.title,
                "subtitle": nomination.subtitle,
                "imageUrl": nomination.image_url,
            }
            for nomination in category.nominations.all()
        ],
    }


def ceremony_json(ceremony: Ceremony) -> dict[str, Any]:
    """A ceremony with its categories. Precondition: categories prefetched in order."""
    return {
        "id": ceremony.pk,
        "name": ceremony.name,
        "date": ceremony.date.isoformat() if ceremony.date else None,
        "categories": [category_json(category) for category in ceremony.categories.all()],
    }


def game_json(game: Game, *, user_id: int, participant_count: int) -> dict[str, Any]:
    """A game as `user_id` sees it: the access code only for its host."""
    body: dict[str, Any] = {
        "id": game.pk,
        "name": game.name,
        "ceremonyId": game.ceremony_id,
        "status": game.status,
        "picksLockAt": iso_utc(game.picks_lock_at),
        "completedAt": iso_utc(game.completed_at),
        "participantCount": participant_count,
        "isHost": game.host_id == user_id,
    }
    if body["isHost"]:
        body["accessCode"] = game.access_code
    return body
