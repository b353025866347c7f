from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    display_name = models.CharField(max_length=60, blank=True)
    # When the user last signed out: WebSocket tickets issued and sockets
    # authenticated before it stop working. Stored, not only broadcast, so a
    # sign-out whose message a Redis restart lost still closes the sockets.
    signed_out_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Made by a guest join (name + PIN, no password) and not claimed yet:
    # `POST /api/auth/claim` turns it into a full account.
    is_guest = models.BooleanField(default=False)

    @property
    def public_name(self) -> str:
        """The name other players see: display name, else the username."""
        return self.display_name or self.username

    def __str__(self) -> str:
        return self.public_name


class GuestPass(models.Model):
    """How a guest signs back in to the game they joined: the name they chose
    (casefolded, one guest per name and game) and a hash of their PIN.

    The guest is a real User (unusable password), so picks, sockets, tickets,
    removal by the host and sign-out work as for anyone; this row only stands
    in for the password. Claiming the account deletes it.
    """

    game = models.ForeignKey("games.Game", on_delete=models.CASCADE, related_name="guest_passes")
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="guest_pass")
    # casefold() can lengthen a name ("ß" → "ss"): room for 60 characters of it.
    name_key = models.CharField(max_length=180)
    # Django's make_password: salted and slow, like a password.
    pin_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "guest passes"
        constraints = [
            models.UniqueConstraint(
                fields=["game", "name_key"], name="guest_pass_unique_game_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name_key} in game {self.game_id}"
