"""Reads of the games domain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from games import errors
from games.models import (
    PICKABLE_STATUSES,
    Category,
    Ceremony,
    Game,
    GameParticipant,
    Nomination,
    Pick,
)


def last_revealed_json(*, category: Category, winner: Nomination) -> dict[str, Any]:
    """The `lastRevealed` of a board frame: `category` just won by `winner`."""
    return {
        "categoryId": category.pk,
        "categoryName": category.name,
        "nominationId": winner.pk,
        "title": winner.title,
    }


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
    return last_revealed_json(category=category, winner=category.winner)


# --- how far a ceremony has got ----------------------------------------------------


class CeremonyStage(StrEnum):
    UPCOMING = "upcoming"  # nothing revealed: new games take picks
    BEGUN = "begun"  # some categories revealed: new games start LIVE (watch only)
    OVER = "over"  # every category revealed: no new game


@dataclass(frozen=True, slots=True)
class CeremonyProgress:
    id: int
    name: str
    category_count: int
    revealed_count: int

    @property
    def stage(self) -> CeremonyStage:
        if self.revealed_count == 0:
            return CeremonyStage.UPCOMING
        if self.revealed_count >= self.category_count:
            return CeremonyStage.OVER
        return CeremonyStage.BEGUN


def _ceremonies_progress(ceremonies: QuerySet[Ceremony]) -> list[CeremonyProgress]:
    rows = ceremonies.annotate(
        category_count=Count("categories"),
        revealed_count=Count("categories", filter=Q(categories__winner__isnull=False)),
    ).values_list("pk", "name", "category_count", "revealed_count")
    return [CeremonyProgress(*row) for row in rows]


def ceremonies_progress() -> list[CeremonyProgress]:
    """Every ceremony with how far it has got (the home page's create form), one query."""
    return _ceremonies_progress(Ceremony.objects.all())


def ceremony_progress(*, ceremony_id: int) -> CeremonyProgress:
    found = _ceremonies_progress(Ceremony.objects.filter(pk=ceremony_id))
    if not found:
        raise errors.NotFound("No ceremony with that id.")
    return found[0]


# --- API reads --------------------------------------------------------------------


def _categories_prefetch() -> Prefetch:
    return Prefetch(
        "categories",
        queryset=Category.objects.order_by("order", "id").prefetch_related("nominations"),
    )


def ceremony_list() -> QuerySet[Ceremony]:
    """Every ceremony with its categories and nominations: three queries in all."""
    return Ceremony.objects.prefetch_related(_categories_prefetch())


def ceremony_get(*, ceremony_id: int) -> Ceremony:
    ceremony = ceremony_list().filter(pk=ceremony_id).first()
    if ceremony is None:
        raise errors.NotFound("No ceremony with that id.")
    return ceremony


def category_get(*, category_id: int) -> Category:
    category = Category.objects.prefetch_related("nominations").filter(pk=category_id).first()
    if category is None:
        raise errors.NotFound("No category with that id.")
    return category


def game_get(*, game_id: int) -> Game:
    game = Game.objects.filter(pk=game_id).first()
    if game is None:
        raise errors.NotFound("No game with that id.")
    return game


def game_is_participant(*, game_id: int, user_id: int) -> bool:
    """The one participant check of games/ (the API, the pages, the services).

    The host is always a participant: game_create adds them."""
    return GameParticipant.objects.filter(game_id=game_id, user_id=user_id).exists()


def game_participant_ceremony(*, game_id: int, user_id: int) -> int | None:
    """The participant check of a WebSocket join, with what the join needs
    next in the same query: the game's ceremony id if the user is an active
    participant of the game, else None."""
    return (
        GameParticipant.objects.filter(game_id=game_id, user_id=user_id, user__is_active=True)
        .values_list("game__ceremony_id", flat=True)
        .first()
    )


def participants_games(*, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], Game]:
    """The participant checks of many WebSocket joins in one query: for each
    (game id, user id) whose user is an active participant of the game, the
    game's row. Pairs without an answer are refusals (or a vanished game)."""
    by_game: dict[int, set[int]] = {}
    for game_id, user_id in pairs:
        by_game.setdefault(game_id, set()).add(user_id)
    if not by_game:
        return {}
    wanted = Q()
    for game_id, user_ids in by_game.items():
        wanted |= Q(game_id=game_id, user_id__in=sorted(user_ids))
    rows = GameParticipant.objects.filter(wanted, user__is_active=True).select_related("game")
    return {(row.game_id, row.user_id): row.game for row in rows.order_by()}


def game_participant_count(*, game_id: int) -> int:
    return GameParticipant.objects.filter(game_id=game_id).count()


def ceremony_ballot_locked(*, ceremony_id: int) -> bool:
    """Whether a game of the ceremony has locked its picks (or should have:
    its lock time passed, or a category is revealed); then the ceremony's
    categories and nominees are fixed (see games.services)."""
    games = Game.objects.filter(ceremony_id=ceremony_id)
    locked = ~Q(status__in=PICKABLE_STATUSES) | Q(picks_lock_at__lte=timezone.now())
    revealed = Category.objects.filter(ceremony_id=ceremony_id, winner__isnull=False)
    return games.filter(locked).exists() or (games.exists() and revealed.exists())


def _user_games_q(user_id: int) -> Q:
    # A subquery, not a join on participants: with a join, a participant
    # count annotated afterwards would count only the user's own row.
    played = GameParticipant.objects.filter(user_id=user_id).values("game_id")
    return Q(host_id=user_id) | Q(pk__in=played)


def user_games(*, user_id: int) -> QuerySet[Game]:
    """Games the user hosts or plays in, newest first, with `participant_count`
    (the API's game list and the home page)."""
    return (
        Game.objects.filter(_user_games_q(user_id))
        .annotate(participant_count=Count("participants"))
        .order_by("-created_at", "-id")
    )


def user_game_ids_lock_due(*, user_id: int) -> list[int]:
    """The user's games whose picks should be locked now but are not yet
    (picksLockAt passed, or their ceremony has a revealed category)."""
    revealed = Category.objects.filter(ceremony_id=OuterRef("ceremony_id"), winner__isnull=False)
    return list(
        Game.objects.filter(_user_games_q(user_id))
        .filter(status__in=PICKABLE_STATUSES)
        .filter(Q(picks_lock_at__lte=timezone.now()) | Exists(revealed))
        .values_list("pk", flat=True)
    )


def user_picks(*, game_id: int, user_id: int) -> list[dict[str, int]]:
    """The user's picks in a game, in category order, as the API shows them."""
    rows = (
        Pick.objects.filter(game_id=game_id, user_id=user_id)
        .order_by("category__order", "category_id")
        .values_list("category_id", "nomination_id")
    )
    return [
        {"categoryId": category_id, "nominationId": nomination_id}
        for category_id, nomination_id in rows
    ]


def game_pick_counts(*, game_id: int) -> dict[str, dict[str, int]]:
    """`{categoryId: {nominationId: count}}` for picked nominees, one aggregate query.

    Keys are strings because JSON object keys are; unpicked nominees are absent.
    """
    rows = (
        Pick.objects.filter(game_id=game_id)
        .values("category_id", "nomination_id")
        .annotate(count=Count("id"))
        .order_by("category_id", "nomination_id")
    )
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(str(row["category_id"]), {})[str(row["nomination_id"])] = row["count"]
    return counts
