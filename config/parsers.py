"""The API's JSON parser: DRF's, plus the two things its input must never do.

- Be larger than MAX_REQUEST_BODY_BYTES: 413 PAYLOAD_TOO_LARGE. The ASGI
  middleware (config.http_limits) refuses such bodies before Django sees
  them on a real server; this covers every other way a request arrives.
- Carry a lone surrogate (`"\\ud800"` is valid JSON text but no Unicode
  string): it could not be stored or sent on, and failed deep inside the
  database driver as a 500. It is a 400 VALIDATION_ERROR up front.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"  # → PAYLOAD_TOO_LARGE (config.errors)
    default_detail = "The request body is larger than 1 MiB."


def has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(item) for item in value)
    return False


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.MAX_REQUEST_BODY_BYTES
        request = (parser_context or {}).get("request")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0) if request else 0
        except ValueError:
            declared = 0
        if declared > limit:
            raise PayloadTooLarge()
        data = super().parse(stream, media_type, parser_context)
        if has_lone_surrogate(data):
            raise exceptions.ParseError("Text must be valid Unicode: it holds a lone surrogate.")
        return data
