"""Who may do what in the games API (docs/api.md, Visibility and endpoints "who")."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import User
from games import errors
from games.models import Game, GameStatus
from games.selectors import game_is_participant

# Once picks are locked, seeing how the room picked spoils nothing.
PICK_COUNTS_PUBLIC_STATUSES = (GameStatus.LIVE, GameStatus.COMPLETED)


class IsStaff(BasePermission):
    message = "Only staff can do that."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_staff)


def require_participant(game: Game, user: User) -> None:
    """The host is always a participant (game_create adds them)."""
    if not game_is_participant(game_id=game.pk, user_id=user.pk):
        raise errors.NotParticipant()


def require_pick_counts_visible(game: Game, user: User) -> None:
    """Staff and the host always; participants once the game is LIVE."""
    if user.is_staff or game.host_id == user.pk:
        return
    require_participant(game, user)
    if game.status not in PICK_COUNTS_PUBLIC_STATUSES:
        raise errors.Forbidden("Pick counts are shown once picks are locked.")
