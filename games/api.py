"""Games API (docs/api.md): thin views that validate, call one service or
selector, and render. DomainErrors flow to config.errors.exception_handler."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import limits
from accounts.models import User
from games import errors, selectors, services
from games.models import Game
from games.permissions import IsStaff, require_participant, require_pick_counts_visible
from games.serializers import (
    GameCreateSerializer,
    GameUpdateSerializer,
    JoinSerializer,
    NominationChoiceSerializer,
    category_json,
    ceremony_json,
    game_json,
)
from games.standings import game_board


def _validated(serializer_class: type, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _game_response(game: Game, user: User, status_code: int = status.HTTP_200_OK) -> Response:
    count = selectors.game_participant_count(game_id=game.pk)
    return Response(game_json(game, user_id=user.pk, participant_count=count), status=status_code)


def _participant_game(game_id: int, user: User) -> Game:
    """The game, fresh and locked if its lock came due, for one of its players."""
    require_participant(selectors.game_get(game_id=game_id), user)
    # A passed picksLockAt shows as LIVE even if no timer ran.
    return services.game_lock_if_due(game_id=game_id)


# --- ceremonies and reveals -------------------------------------------------------


class CeremonyListView(APIView):
    def get(self, request: Request) -> Response:
        return Response([ceremony_json(ceremony) for ceremony in selectors.ceremony_list()])


class CeremonyDetailView(APIView):
    def get(self, request: Request, ceremony_id: int) -> Response:
        return Response(ceremony_json(selectors.ceremony_get(ceremony_id=ceremony_id)))


class CategoryWinnerView(APIView):
    permission_classes = [IsAuthenticated, IsStaff]

    def post(self, request: Request, category_id: int) -> Response:
        data = _validated(NominationChoiceSerializer, request.data)
        category, _ = services.category_reveal(
            category_id=category_id, nomination_id=data["nominationId"]
        )
        return Response(category_json(category))

    def delete(self, request: Request, category_id: int) -> Response:
        category, _ = services.category_undo(category_id=category_id)
        return Response(category_json(category))


# --- games ----------------------------------------------------------------------------


class GameListView(APIView):
    def get(self, request: Request) -> Response:
        user_id = request.user.pk
        # Lock the (rare) games whose lock came due, so no list shows them OPEN.
        for game_id in selectors.user_game_ids_lock_due(user_id=user_id):
            services.game_lock_if_due(game_id=game_id)
        return Response(
            [
                game_json(game, user_id=user_id, participant_count=game.participant_count)
                for game in selectors.user_games(user_id=user_id)
            ]
        )

    def post(self, request: Request) -> Response:
        data = _validated(GameCreateSerializer, request.data)
        game = services.game_create(
            host=request.user,
            ceremony_id=data["ceremonyId"],
            name=data["name"],
            picks_lock_at=data["picksLockAt"],
        )
        # A game made once its ceremony has begun (or with a past picksLockAt)
        # is LIVE from the start, not OPEN until someone looks.
        game = services.game_lock_if_due(game_id=game.pk)
        return _game_response(game, request.user, status.HTTP_201_CREATED)


class GameJoinView(APIView):
    def post(self, request: Request) -> Response:
        data = _validated(JoinSerializer, request.data)
        # Wrong codes per player and per address: codes are short enough to guess.
        counters = [
            limits.Counter(limits.JOIN_BY_ACCOUNT, str(request.user.pk)),
            limits.Counter(limits.JOIN_BY_ADDRESS, limits.client_address(request._request)),
        ]
        limits.require_open(request._request, counters, "Too many wrong codes. Try again later.")
        try:
            game = services.game_join(user=request.user, access_code=data["accessCode"])
        except errors.InvalidCode:
            limits.count(request._request, counters)
            raise
        return _game_response(game, request.user)


class GameDetailView(APIView):
    def get(self, request: Request, game_id: int) -> Response:
        return _game_response(_participant_game(game_id, request.user), request.user)

    def patch(self, request: Request, game_id: int) -> Response:
        data = _validated(GameUpdateSerializer, request.data)
        changes: dict[str, Any] = {"name": data.get("name"), "status": data.get("status")}
        if "picksLockAt" in data:  # absent keeps it; null clears it
            changes["picks_lock_at"] = data["picksLockAt"]
        game = services.game_update(game_id=game_id, actor=request.user, **changes)
        return _game_response(game, request.user)


class ParticipantView(APIView):
    def delete(self, request: Request, game_id: int, user_id: int) -> Response:
        services.participant_remove(game_id=game_id, actor=request.user, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- picks and standings ------------------------------------------------------------


class PickListView(APIView):
    def get(self, request: Request, game_id: int) -> Response:
        require_participant(selectors.game_get(game_id=game_id), request.user)
        return Response(selectors.user_picks(game_id=game_id, user_id=request.user.pk))


class PickView(APIView):
    def put(self, request: Request, game_id: int, category_id: int) -> Response:
        data = _validated(NominationChoiceSerializer, request.data)
        pick = services.pick_submit(
            game_id=game_id,
            user=request.user,
            category_id=category_id,
            nomination_id=data["nominationId"],
        )
        return Response({"categoryId": pick.category_id, "nominationId": pick.nomination_id})


class LeaderboardView(APIView):
    def get(self, request: Request, game_id: int) -> Response:
        game = _participant_game(game_id, request.user)
        return Response(game_board(game_id=game.pk).frame)


class PickCountsView(APIView):
    def get(self, request: Request, game_id: int) -> Response:
        # Lock first (404 for an unknown id): a passed picksLockAt makes the counts public.
        game = services.game_lock_if_due(game_id=game_id)
        require_pick_counts_visible(game, request.user)
        return Response(selectors.game_pick_counts(game_id=game_id))
