from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    display_name = models.CharField(max_length=60, blank=True)
    # When the user last signed out: WebSocket tickets issued and sockets
    # authenticated before it stop working. Stored, not only broadcast, so a
    # sign-out whose message a Redis restart lost still closes the sockets.
    signed_out_at = models.DateTimeField(null=True, blank=True, editable=False)

    @property
    def public_name(self) -> str:
        """The name other players see: display name, else the username."""
        return self.display_name or self.username

    def __str__(self) -> str:
        return self.public_name
