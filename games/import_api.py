"""`POST /api/ceremonies/import` (docs/api.md, Ceremonies and reveals): staff
import a ceremony from a Wikipedia page, its wikitext, or a ceremony-file
object; `preview: true` answers the parsed ceremony and writes nothing."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.serializers import StrictCharField
from games import errors, selectors, services
from games.ceremony_file import CeremonyFileError, ceremony_document, validate_ceremony
from games.permissions import IsStaff
from games.serializers import ceremony_json
from games.wikipedia import ceremony_from_url, ceremony_from_wikitext

SOURCES = ("wikipediaUrl", "wikitext", "ceremony")


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: DRF's would take "yes" and 1."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class CeremonyImportSerializer(serializers.Serializer):
    wikipediaUrl = StrictCharField(required=False, max_length=2000)
    # The body's 1 MiB limit bounds the wikitext; a ceremony page is ~100 KB.
    wikitext = StrictCharField(required=False, trim_whitespace=False)
    ceremony = serializers.JSONField(required=False)
    preview = StrictBooleanField(required=False, default=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in SOURCES if name in data]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Give exactly one of wikipediaUrl, wikitext or ceremony."
            )
        return data


def _ceremony_data(body: dict[str, Any]) -> dict[str, Any]:
    if "wikipediaUrl" in body:
        return ceremony_from_url(body["wikipediaUrl"])
    if "wikitext" in body:
        return ceremony_from_wikitext(body["wikitext"])
    try:
        return validate_ceremony(body["ceremony"])
    except CeremonyFileError as exc:
        path = f"ceremony.{exc.path}" if exc.path else "ceremony"
        raise errors.ImportInvalid(f"{path}: {exc.problem}") from None


class CeremonyImportView(APIView):
    permission_classes = [IsAuthenticated, IsStaff]

    def post(self, request: Request) -> Response:
        serializer = CeremonyImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
        data = _ceremony_data(body)
        if body["preview"]:
            return Response(ceremony_document(data))
        try:
            with transaction.atomic():
                ceremony = services.ceremony_create(data=data)
        except errors.ValidationFailed as exc:  # the same name and date exist already
            raise errors.ImportInvalid(f"name: {exc.message}") from None
        except IntegrityError:  # another import of it committed between check and insert
            raise errors.ImportInvalid(
                f"name: A ceremony named {data['name']!r} on {data['date']} already exists."
            ) from None
        ceremony = selectors.ceremony_get(ceremony_id=ceremony.pk)
        return Response(ceremony_json(ceremony), status=status.HTTP_201_CREATED)
