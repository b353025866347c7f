"""Auth endpoints (CONTRACT §3): register, login, logout, me, ws-ticket.

Register and login run without authentication classes: a browser has no
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

from accounts.models import User
from accounts.ratelimit import FailureCounter
from accounts.serializers import LoginSerializer, RegisterSerializer, user_json
from accounts.tickets import ticket_issue


class InvalidCredentials(exceptions.APIException):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "invalid_credentials"  # → INVALID_CREDENTIALS (config.errors)
    default_detail = "Wrong username or password."
    # A 401 names the scheme to use (RFC 9110); the error handler sends it.
    auth_header = "Token"


def login_failures() -> FailureCounter:
    """Failed sign-ins per username."""
    return FailureCounter(
        scope="login",
        limit=settings.ENVELOPE_LOGIN_FAILURE_LIMIT,
        window=settings.ENVELOPE_FAILURE_WINDOW,
    )


def login_address_failures() -> FailureCounter:
    """Failed sign-ins per client address: higher, since a whole party shares
    one Wi-Fi address and one guest's typos must not lock everyone out."""
    return FailureCounter(
        scope="login-ip",
        limit=settings.ENVELOPE_LOGIN_IP_FAILURE_LIMIT,
        window=settings.ENVELOPE_FAILURE_WINDOW,
    )


def _client_ip(request: Request) -> str:
    # Behind a proxy, run daphne with --proxy-headers so this is the client's.
    return request.META.get("REMOTE_ADDR") or "unknown"


def _signed_in(request: Request, user: User, status_code: int) -> Response:
    """Start the browser session and answer `{user, token}`."""
    login(request._request, user, backend="django.contrib.auth.backends.ModelBackend")
    token, _ = Token.objects.get_or_create(user=user)
    return Response({"user": user_json(user), "token": token.key}, status=status_code)


class RegisterView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
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
        # Per username (casefolded: case variants must not buy extra tries) and
        # per client address; while limited, even the right password is refused.
        account = f"user:{username.casefold()}"
        address = f"ip:{_client_ip(request)}"
        by_account, by_address = login_failures(), login_address_failures()
        if by_account.is_blocked(account) or by_address.is_blocked(address):
            raise exceptions.Throttled(
                wait=by_account.retry_after(), detail="Too many failed sign-ins. Try again later."
            )
        user = authenticate(
            request._request, username=username, password=serializer.validated_data["password"]
        )
        if user is None:
            by_account.record_failure(account)
            by_address.record_failure(address)
            raise InvalidCredentials()
        by_account.reset(account)
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
