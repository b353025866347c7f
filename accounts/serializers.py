"""Input validation and JSON shapes of the auth API (docs/api.md)."""

from __future__ import annotations

import re
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


# Guests get generated usernames with this prefix (accounts.services); nobody
# may register one, so a generated name never collides with a chosen one.
GUEST_USERNAME_PREFIX = "guest-"
DISPLAY_NAME_MAX_LENGTH = 60
# ASCII digits only: \d would also take other scripts' digits.
PIN_PATTERN = re.compile(r"[0-9]{4,6}")


def display_name_field(**kwargs: Any) -> StrictCharField:
    """The name other players see, for registration and guests alike: a
    trimmed, non-blank string of at most 60 characters."""
    return StrictCharField(max_length=DISPLAY_NAME_MAX_LENGTH, **kwargs)


class RegisterSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = StrictCharField(max_length=128, trim_whitespace=False)
    displayName = display_name_field()

    def validate_username(self, value: str) -> str:
        if value.casefold().startswith(GUEST_USERNAME_PREFIX):
            raise serializers.ValidationError(
                f"Usernames starting with {GUEST_USERNAME_PREFIX!r} are reserved for guests."
            )
        # Case-insensitively unique: "Bob" and "bob" at one party is a trap.
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("A user with that username already exists.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _validate_password(attrs["password"], attrs["username"], attrs["displayName"])
        return attrs


def _validate_password(password: str, username: str, display_name: str) -> None:
    # Django's validators, with the would-be user so similarity checks work.
    candidate = User(username=username, display_name=display_name)
    try:
        password_validation.validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({"password": list(exc.messages)}) from exc


class GuestJoinSerializer(serializers.Serializer):
    # Codes are 8 characters; the slack allows spaces pasted around them.
    accessCode = StrictCharField(max_length=32)
    displayName = display_name_field()
    pin = StrictCharField(max_length=6)

    def validate_pin(self, value: str) -> str:
        if not PIN_PATTERN.fullmatch(value):
            raise serializers.ValidationError("A PIN is 4 to 6 digits.")
        return value


class ClaimSerializer(RegisterSerializer):
    """A guest's own account: a username and password validated as
    registration's; the display name is kept unless a new one is given."""

    displayName = display_name_field(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        guest: User = self.context["user"]
        display_name = attrs.get("displayName", guest.display_name)
        _validate_password(attrs["password"], attrs["username"], display_name)
        return attrs


class LoginSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=128, trim_whitespace=False)
