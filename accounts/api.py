"""Auth endpoints (docs/api.md): register, login, guest join, claim, logout,
me, ws-ticket.

Register, login and guest join run without authentication classes: a browser has no
session yet, so there is nothing to protect with CSRF, and a stale session
cookie must not make them demand a CSRF token. Every other endpoint keeps
DRF's defaults (token first, then session with CSRF enforced).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.db import IntegrityError, transaction
from rest_framework import exceptions, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import limits, services
from accounts.models import User
from accounts.serializers import (
    ClaimSerializer,
    GuestJoinSerializer,
    LoginSerializer,
    RegisterSerializer,
    user_json,
)
from accounts.tickets import ticket_issue
from games import errors
from games.selectors import game_participant_count
from games.serializers import game_json


class InvalidCredentials(exceptions.APIException):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "invalid_credentials"  # → INVALID_CREDENTIALS (config.errors)
    default_detail = "Wrong username or password."
    # A 401 names the scheme to use (RFC 9110); the error handler sends it.
    auth_header = "Token"


def _signed_in(request: Request, user: User, status_code: int, **extra: object) -> Response:
    """Start the browser session and answer `{user, token}` (plus `extra`)."""
    login(request._request, user, backend="django.contrib.auth.backends.ModelBackend")
    token, _ = Token.objects.get_or_create(user=user)
    body = {"user": user_json(user), "token": token.key, **extra}
    return Response(body, status=status_code)


def _registration_counters(request: Request) -> list[limits.Counter]:
    """Registration and claim count together: both make an account."""
    counters = [limits.Counter(limits.REGISTER_BY_ADDRESS, limits.client_address(request._request))]
    username = request.data.get("username") if isinstance(request.data, dict) else None
    if isinstance(username, str):
        counters.append(limits.Counter(limits.REGISTER_BY_ACCOUNT, limits.account_key(username)))
    return counters


class RegisterView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        # Every registration counts, valid or not, per address and per username
        # asked for: accounts are free to make, and a taken name tells who exists.
        counters = _registration_counters(request)
        limits.require_open(request._request, counters, "Too many registrations. Try again later.")
        limits.count(request._request, counters)
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    username=data["username"],
                    password=data["password"],
                    display_name=data["displayName"],
                )
        except IntegrityError:  # lost a race with the same username
            raise exceptions.ValidationError(
                {"username": ["A user with that username already exists."]}
            ) from None
        return _signed_in(request, user, status.HTTP_201_CREATED)


class LoginView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        # While limited, even the right password is refused.
        counters = limits.sign_in_counters(request._request, username)
        limits.require_open(
            request._request, counters, "Too many failed sign-ins. Try again later."
        )
        user = authenticate(
            request._request, username=username, password=serializer.validated_data["password"]
        )
        if user is None:
            limits.count(request._request, counters)
            raise InvalidCredentials()
        return _signed_in(request, user, status.HTTP_200_OK)


class GuestJoinView(APIView):
    """Join a game by code with a name and a PIN, no account needed."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = GuestJoinSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        by_address = limits.guest_address_counters(request._request)
        # While limited, even the right PIN is refused, as for a password.
        limits.require_open(
            request._request, by_address, "Too many tries from here. Try again later."
        )
        try:
            game_id = services.guest_game_id(access_code=data["accessCode"])
        except errors.InvalidCode:
            limits.count(request._request, [by_address.wrong_codes])
            raise
        name_counter = limits.guest_name_counter(
            game_id, services.guest_name_key(data["displayName"])
        )
        limits.require_open(
            request._request, [name_counter], "Too many wrong PINs for this name. Try again later."
        )
        try:
            joined = services.guest_join(
                game_id=game_id, display_name=data["displayName"], pin=data["pin"]
            )
        except services.WrongPin as exc:
            limits.count(request._request, [by_address.wrong_pins, name_counter])
            raise InvalidCredentials(exc.message) from None
        if joined.created:
            limits.count(request._request, [by_address.guests_made])
        game = game_json(
            joined.game,
            user_id=joined.user.pk,
            participant_count=game_participant_count(game_id=joined.game.pk),
        )
        status_code = status.HTTP_201_CREATED if joined.created else status.HTTP_200_OK
        return _signed_in(request, joined.user, status_code, game=game)


class ClaimView(APIView):
    """A signed-in guest picks a username and password: a full account."""

    def post(self, request: Request) -> Response:
        counters = _registration_counters(request)
        limits.require_open(request._request, counters, "Too many registrations. Try again later.")
        limits.count(request._request, counters)
        if not request.user.is_guest:
            raise services.NotGuest()
        serializer = ClaimSerializer(data=request.data, context={"user": request.user})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            user = services.guest_claim(
                user=request.user,
                username=data["username"],
                password=data["password"],
                display_name=data.get("displayName"),
            )
        except IntegrityError:  # lost a race with the same username
            raise exceptions.ValidationError(
                {"username": ["A user with that username already exists."]}
            ) from None
        # A new password ends the guest's other sessions; this one goes on.
        return _signed_in(request, user, status.HTTP_200_OK)


class LogoutView(APIView):
    def post(self, request: Request) -> Response:
        user = request.user
        Token.objects.filter(user=user).delete()
        # logout() sends user_logged_out (which closes the user's sockets) for
        # request.user: make sure that is the token's user too, so the signal
        # fires exactly once whichever way the request authenticated.
        request._request.user = user
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"user": user_json(request.user)})


class WsTicketView(APIView):
    def post(self, request: Request) -> Response:
        return Response(
            {
                "ticket": ticket_issue(user_id=request.user.pk),
                "expiresIn": settings.ENVELOPE_WS_TICKET_MAX_AGE,
            }
        )
