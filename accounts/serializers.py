"""Input validation and JSON shapes of the auth API (docs/api.md)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.models import User


class StrictCharField(serializers.CharField):
    """A JSON string only: DRF's CharField would turn 5 into "5"."""

    default_error_messages = {"invalid": "A string is required."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.username,
        "displayName": user.public_name,
        "isStaff": user.is_staff,
    }


class RegisterSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = StrictCharField(max_length=128, trim_whitespace=False)
    displayName = StrictCharField(max_length=60)

    def validate_username(self, value: str) -> str:
        # Case-insensitively unique: "Bob" and "bob" at one party is a trap.
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("A user with that username already exists.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Django's validators, with the would-be user so similarity checks work.
        candidate = User(username=attrs["username"], display_name=attrs["displayName"])
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class LoginSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=128, trim_whitespace=False)
