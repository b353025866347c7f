"""Server-rendered pages (README, Pages): the first paint comes from the ORM,
then the small JS client in static/js/ talks to the API and the socket.

Initial data reaches the browser only through `json_script`, never as
hand-built JavaScript, and names are only ever inserted as text.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import segno
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import ensure_csrf_cookie

from games import errors, selectors
from games.formatting import iso_utc
from games.models import Game
from games.selectors import CeremonyStage
from games.serializers import category_json
from games.services import game_lock_if_due
from games.standings import game_board


def _me(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "id": user.pk,
        "username": user.username,
        "displayName": user.public_name,
        "isStaff": user.is_staff,
    }


def _error_page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    return render(
        request,
        "pages/error.html",
        {"title": title, "message": message, "status": status},
        status=status,
    )


def _page_game_json(game: Game, user_id: int) -> dict[str, Any]:
    """The game the page scripts start from: unlike the API's game_json, with
    the seq the socket resumes after."""
    return {
        "id": game.pk,
        "name": game.name,
        "ceremonyId": game.ceremony_id,
        "status": game.status,
        "picksLockAt": iso_utc(game.picks_lock_at),
        "completedAt": iso_utc(game.completed_at),
        "isHost": game.host_id == user_id,
        "seq": game.seq,
    }


def _categories_json(ceremony_id: int) -> list[dict[str, Any]]:
    """The API's category shape; `winnerId` is null until revealed."""
    return [
        category_json(c) for c in selectors.ceremony_get(ceremony_id=ceremony_id).categories.all()
    ]


def _game_or_error_page(
    request: HttpRequest, game_id: int, *, staff_ok: bool = False
) -> Game | HttpResponse:
    """The game, locked first if its lock time passed; or the 404/403 page.

    Players and the host may open a game's pages; staff only where `staff_ok`
    (the host page: staff mark winners for every game of a ceremony)."""
    try:
        game = game_lock_if_due(game_id=game_id)
    except errors.NotFound:
        return _error_page(request, 404, "Game not found", "There is no game with that link.")
    is_player = selectors.game_is_participant(game_id=game.pk, user_id=request.user.pk)
    if not (is_player or (staff_ok and request.user.is_staff)):
        return _error_page(
            request,
            403,
            "Not your game",
            "You are not a player in this game. Ask the host for the access code to join.",
        )
    return game


@ensure_csrf_cookie
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "pages/signin.html", {"next": _safe_next(request)})
    games = selectors.user_games(user_id=request.user.pk).select_related("ceremony")
    ceremonies = [_ceremony_choice(c) for c in selectors.ceremonies_progress()]
    # Preselect one a new game can still be played on: upcoming first.
    playable = [c for c in ceremonies if c["stage"] != CeremonyStage.OVER]
    upcoming = [c for c in playable if c["stage"] == CeremonyStage.UPCOMING]
    default = (upcoming or playable or [None])[0]
    return render(
        request,
        "pages/home.html",
        {
            "games": games,
            "ceremonies": ceremonies,
            "default_ceremony": default,
            "data": {"me": _me(request), "ceremonies": ceremonies},
        },
    )


def _ceremony_choice(progress: selectors.CeremonyProgress) -> dict[str, Any]:
    """A ceremony in the create form: its stage decides whether a new game
    takes picks (upcoming), starts live (begun) or is refused (over)."""
    stage = progress.stage
    if stage == CeremonyStage.UPCOMING:
        label = "upcoming"
    elif stage == CeremonyStage.BEGUN:
        label = f"{progress.revealed_count} of {progress.category_count} revealed"
    else:
        label = "over"
    return {
        "id": progress.id,
        "name": progress.name,
        "stage": str(stage),
        "label": label,
        "revealedCount": progress.revealed_count,
        "categoryCount": progress.category_count,
    }


def _safe_next(request: HttpRequest) -> str:
    """Only same-site paths: `?next=//evil.example` must not become a redirect."""
    target = request.GET.get("next", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@ensure_csrf_cookie
def join(request: HttpRequest, code: str) -> HttpResponse:
    # Signed out: join as a guest (name + PIN), or sign in / register and
    # come back here. Signed in: the page joins at once. The code is not
    # looked up here, so the page tells nobody which codes exist.
    signed_in = request.user.is_authenticated
    return render(
        request,
        "pages/join.html",
        {
            "code": code,
            "signed_in": signed_in,
            "next": f"/join/{quote(code)}",
            "data": {"accessCode": code},
        },
    )


@login_required
@ensure_csrf_cookie
def picks(request: HttpRequest, game_id: int) -> HttpResponse:
    game = _game_or_error_page(request, game_id)
    if isinstance(game, HttpResponse):
        return game
    my_picks = selectors.user_picks(game_id=game.pk, user_id=request.user.pk)
    data = {
        "me": _me(request),
        "game": _page_game_json(game, request.user.pk),
        "categories": _categories_json(game.ceremony_id),
        "picks": {str(pick["categoryId"]): pick["nominationId"] for pick in my_picks},
    }
    return render(request, "pages/picks.html", {"game": game, "data": data})


@login_required
@ensure_csrf_cookie
def live(request: HttpRequest, game_id: int) -> HttpResponse:
    game = _game_or_error_page(request, game_id)
    if isinstance(game, HttpResponse):
        return game
    # The board as of one seq: the socket then replays exactly what follows it.
    board = game_board(game_id=game.pk)
    data = {
        "me": _me(request),
        "game": _page_game_json(board.game, request.user.pk),
        "leaderboard": board.frame,
        "participantCount": board.participant_count,
        "reactions": settings.ENVELOPE_REACTIONS,
    }
    tv = request.GET.get("tv") == "1"
    return render(
        request,
        "pages/live.html",
        {"game": game, "data": data, "tv": tv, "reactions": settings.ENVELOPE_REACTIONS},
    )


@login_required
@ensure_csrf_cookie
def host(request: HttpRequest, game_id: int) -> HttpResponse:
    game = _game_or_error_page(request, game_id, staff_ok=True)
    if isinstance(game, HttpResponse):
        return game
    is_host = game.host_id == request.user.pk
    if not (is_host or request.user.is_staff):
        return _error_page(
            request, 403, "Hosts only", "Only the host of this game and staff can open this page."
        )
    join_base = request.build_absolute_uri("/join/")
    join_url = f"{join_base}{game.access_code}"
    # segno renders the SVG from the URL alone; nothing user-written reaches it.
    qr_svg = mark_safe(segno.make(join_url, error="m").svg_inline(scale=5, dark="#0b1633"))
    data = {
        "me": _me(request),
        "game": {**_page_game_json(game, request.user.pk), "accessCode": game.access_code},
        "categories": _categories_json(game.ceremony_id),
        "pickCounts": selectors.game_pick_counts(game_id=game.pk),
        "joinUrl": join_url,
        "canReveal": request.user.is_staff,
    }
    return render(
        request,
        "pages/host.html",
        {
            "game": game,
            "data": data,
            "join_url": join_url,
            "join_base": join_base,
            "qr_svg": qr_svg,
            "is_host": is_host,
        },
    )
