from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    display_name = models.CharField(max_length=60, blank=True)

    @property
    def public_name(self) -> str:
        """The name other players see: display name, else the username."""
        return self.display_name or self.username

    def __str__(self) -> str:
        return self.public_name
