"""Reads of the games domain."""

from __future__ import annotations

from typing import Any

from games.models import Category


def ceremony_last_revealed(*, ceremony_id: int) -> dict[str, Any] | None:
    """The most recently revealed category of a ceremony, as `lastRevealed`."""
    category = (
        Category.objects.filter(ceremony_id=ceremony_id, winner__isnull=False)
        .select_related("winner")
        .order_by("-revealed_at", "-id")
        .first()
    )
    if category is None:
        return None
    return {
        "categoryId": category.pk,
        "categoryName": category.name,
        "nominationId": category.winner_id,
        "title": category.winner.title,
    }
