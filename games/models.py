from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

# No 0/O, 1/I/L: codes are read aloud at parties and typed on phones.
ACCESS_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
ACCESS_CODE_LENGTH = 8


def new_access_code() -> str:
    return "".join(secrets.choice(ACCESS_CODE_ALPHABET) for _ in range(ACCESS_CODE_LENGTH))


class Ceremony(models.Model):
    name = models.CharField(max_length=200)
    date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "id"]
        verbose_name_plural = "ceremonies"
        constraints = [
            # Re-importing the same ceremony file is an error, not a duplicate.
            models.UniqueConstraint(fields=["name", "date"], name="ceremony_unique_name_date"),
        ]

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    ceremony = models.ForeignKey(Ceremony, on_delete=models.CASCADE, related_name="categories")
    name = models.CharField(max_length=200)
    order = models.PositiveIntegerField()
    points = models.PositiveIntegerField(default=1)
    winner = models.ForeignKey(
        "Nomination", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["ceremony_id", "order", "id"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(fields=["ceremony", "order"], name="category_unique_order"),
            # Revealed exactly when a winner is set.
            models.CheckConstraint(
                condition=Q(winner__isnull=True, revealed_at__isnull=True)
                | Q(winner__isnull=False, revealed_at__isnull=False),
                name="category_revealed_iff_winner",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_revealed(self) -> bool:
        return self.winner_id is not None


class Nomination(models.Model):
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="nominations")
    title = models.CharField(max_length=300)
    subtitle = models.CharField(max_length=300, blank=True)
    # Null, not "", is the contract's "no image" (imageUrl: null).
    image_url = models.URLField(max_length=500, null=True, blank=True)  # noqa: DJ001
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["category_id", "order", "id"]

    def __str__(self) -> str:
        return f"{self.title} — {self.subtitle}" if self.subtitle else self.title


class GameStatus(models.TextChoices):
    SETUP = "SETUP"
    OPEN = "OPEN"
    LIVE = "LIVE"
    COMPLETED = "COMPLETED"


# The statuses in which players may still pick. The pages' scripts get this
# and the labels below from templates/base.html (games/templatetags), so
# Python is their one home.
PICKABLE_STATUSES = (GameStatus.SETUP, GameStatus.OPEN)

# What the pages call each status (a chip on the home, live and host pages).
# Not the choices' labels: those are in the migrations and the admin.
STATUS_LABELS = {
    GameStatus.SETUP: "Setup",
    GameStatus.OPEN: "Picks open",
    GameStatus.LIVE: "Picks locked",
    GameStatus.COMPLETED: "Final results",
}


class Game(models.Model):
    ceremony = models.ForeignKey(Ceremony, on_delete=models.PROTECT, related_name="games")
    host = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hosted_games"
    )
    name = models.CharField(max_length=120)
    access_code = models.CharField(max_length=ACCESS_CODE_LENGTH, unique=True)
    status = models.CharField(max_length=10, choices=GameStatus.choices, default=GameStatus.OPEN)
    picks_lock_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Last event sequence number handed out; grows by exactly 1 per game event.
    seq = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["ceremony", "status"])]

    def __str__(self) -> str:
        return self.name


class GameParticipant(models.Model):
    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations"
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    # Kept by games.services in the same transactions that change picks and
    # winners, so standings are a read of one narrow row per player rather
    # than an aggregate over every pick (5,000 players x 24 categories).
    pick_count = models.PositiveIntegerField(default=0)
    total_score = models.PositiveIntegerField(default=0)
    correct_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["game_id", "joined_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["game", "user"], name="participant_unique_game_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.game}"


class Pick(models.Model):
    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="picks")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="picks")
    nomination = models.ForeignKey(Nomination, on_delete=models.CASCADE, related_name="picks")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["game", "user", "category"], name="pick_unique_game_user_category"
            ),
        ]
        indexes = [models.Index(fields=["game", "nomination"])]

    def __str__(self) -> str:
        return f"{self.user_id} picks {self.nomination_id} in {self.game_id}"


class GameEvent(models.Model):
    """One state change of a game, numbered by the game's seq: the event log
    that resume and recovery replay from (games.event_log).

    `payload` is the exact frame sent to every socket of the game, rendered
    in the same transaction as the change (a leaderboard update's standings
    are those as of its seq).
    """

    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=40)
    # Unused since frames are rendered with their events; kept for old rows.
    data = models.JSONField(default=dict, blank=True)
    # The frame clients receive. Null only in rows written by versions that
    # rendered leaderboard frames after commit; those are never replayed.
    payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["game_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["game", "seq"], name="event_unique_game_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.game_id}#{self.seq} {self.type}"
