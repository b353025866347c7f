"""PostgreSQL or Redis unreachable: 503 SERVICE_UNAVAILABLE, never a 500.

API views get the contract's error body (config.errors), pages a friendly
page, both with Retry-After. Every database write runs in a transaction that
the failure rolls back, and the Redis steps of a request (rate limits) come
before its writes, so an outage leaves nothing half-written.

Outages reach us from three places: DRF's exception handler (API views),
`process_exception` (page views), and Django's 500 handler for what fails
outside a view (a session saved by its middleware).
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.defaults import server_error as django_server_error
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# OperationalError covers a refused connection, a connection lost mid-query,
# a database shutting down and psycopg's pool timing out; InterfaceError a
# connection already closed. Any Redis error is Redis being unusable.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, RedisError)
RETRY_AFTER_SECONDS = 5
MESSAGE = "The service is briefly unavailable. Please try again in a moment."


def is_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, OUTAGE_ERRORS)


def log_outage(request: HttpRequest, exc: BaseException) -> None:
    # One line: during an outage every request fails the same way.
    logger.warning(
        "503 for %s %s: %s unreachable (%s)",
        request.method,
        request.path,
        "Redis" if isinstance(exc, RedisError) else "the database",
        type(exc).__name__,
    )


def outage_page() -> HttpResponse:
    # Rendered without the request: its context processors would read the
    # session and user, from the database that is away.
    page = render_to_string(
        "pages/error.html",
        {
            "status": 503,
            "title": "Back in a moment",
            "message": "Envelope cannot reach one of its services right now. "
            "Nothing you did was lost: try again in a few seconds.",
        },
    )
    response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def outage_json() -> JsonResponse:
    from config.errors import error_body

    response = JsonResponse(error_body("SERVICE_UNAVAILABLE", MESSAGE), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def outage_response(request: HttpRequest) -> HttpResponse:
    return outage_json() if request.path.startswith("/api/") else outage_page()


class ServiceOutageMiddleware:
    """A page view that meets an outage answers the friendly 503 page."""

    def __init__(self, get_response: object) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)  # type: ignore[operator]

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not is_outage(exc):
            return None
        log_outage(request, exc)
        return outage_response(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an outage outside any view (a middleware saving the
    session) is a 503 too; anything else a 500 in the path's shape."""
    exc = sys.exc_info()[1]
    if is_outage(exc):
        assert exc is not None
        log_outage(request, exc)
        return outage_response(request)
    if request.path.startswith("/api/"):
        from config.errors import SERVER_ERROR_MESSAGE, error_body

        return JsonResponse(error_body("SERVER_ERROR", SERVER_ERROR_MESSAGE), status=500)
    return django_server_error(request)
