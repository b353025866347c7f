"""The API's single error shape (docs/api.md).

Every error leaves as `{"error": {"code": "CODE", "message": "human text"}}`:
DRF's own exceptions, Django's 404/403, our DomainErrors, and anything
unexpected (logged, answered 500 without a traceback).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from config import outages
from config.parsers import PayloadTooLarge
from games.errors import DomainError

logger = logging.getLogger(__name__)

# DRF exception class → contract code. Subclasses must come before their bases.
DRF_CODES: tuple[tuple[type[exceptions.APIException], str], ...] = (
    (exceptions.NotAuthenticated, "AUTH_REQUIRED"),
    (exceptions.AuthenticationFailed, "AUTH_REQUIRED"),
    (exceptions.PermissionDenied, "FORBIDDEN"),
    (exceptions.NotFound, "NOT_FOUND"),
    (exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (exceptions.NotAcceptable, "NOT_ACCEPTABLE"),
    (exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (exceptions.Throttled, "RATE_LIMITED"),
    (PayloadTooLarge, "PAYLOAD_TOO_LARGE"),
    # Malformed JSON is a client input error like any other.
    (exceptions.ParseError, "VALIDATION_ERROR"),
    (exceptions.ValidationError, "VALIDATION_ERROR"),
)


SERVER_ERROR_MESSAGE = "Something went wrong on our side. Please try again."


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def _flatten(detail: Any, path: str = "") -> list[str]:
    """'field: message' lines from DRF's nested error detail, field paths dotted."""
    if isinstance(detail, dict):
        lines: list[str] = []
        for key, value in detail.items():
            key = str(key)
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                lines.extend(_flatten(value, path))
            else:
                lines.extend(_flatten(value, f"{path}.{key}" if path else key))
        return lines
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, path)]
    return [f"{path}: {detail}" if path else str(detail)]


def _drf_code(exc: exceptions.APIException) -> str:
    for cls, code in DRF_CODES:
        if isinstance(exc, cls):
            return code
    return str(exc.default_code).upper()


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: never returns None, so nothing escapes as HTML."""
    request = context.get("request")
    if outages.is_outage(exc):
        set_rollback()
        if request is not None:
            outages.log_outage(request, exc)
        return Response(
            error_body("SERVICE_UNAVAILABLE", outages.MESSAGE),
            status=503,
            headers={"Retry-After": str(outages.RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(exc.code, exc.message), status=exc.status)

    if isinstance(exc, exceptions.APIException):
        headers: dict[str, str] = {}
        # DRF sets auth_header only when it answers 401 (our TokenAuthentication
        # comes first, so unauthenticated requests get 401, not 403).
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = f"{exc.wait:.0f}"  # type: ignore[attr-defined]
        set_rollback()
        message = "; ".join(_flatten(exc.detail)) or "Invalid request."
        return Response(
            error_body(_drf_code(exc), message), status=exc.status_code, headers=headers
        )

    view = context.get("view")
    logger.error(
        "unhandled error in API view %s",
        type(view).__name__,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    set_rollback()
    return Response(error_body("SERVER_ERROR", SERVER_ERROR_MESSAGE), status=500)


@csrf_exempt  # a 404 changes nothing; without this a POST would get CSRF's HTML 403
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/ answer in the API's shape, not an HTML page."""
    return JsonResponse(error_body("NOT_FOUND", "No such API endpoint."), status=404)
