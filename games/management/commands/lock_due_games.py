"""`manage.py lock_due_games`: lock every open game whose picksLockAt passed.

Meant for a cron (e.g. every minute) so live boards switch to LIVE on time.
Correctness does not depend on it: every pick enforces the lock lazily.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from games import services
from games.errors import NotFound
from games.models import Game, GameStatus


class Command(BaseCommand):
    help = "Lock (OPEN → LIVE) every game whose picksLockAt has passed, with its events."

    def handle(self, *args: Any, **options: Any) -> None:
        due = Game.objects.filter(
            status__in=services.PICKABLE_STATUSES, picks_lock_at__lte=timezone.now()
        ).values_list("pk", flat=True)
        locked = 0
        for game_id in list(due):
            # The service re-checks under the row lock: a game locked meanwhile is skipped.
            try:
                game = services.game_lock_if_due(game_id=game_id)
            except NotFound:  # deleted since the query
                continue
            locked += game.status == GameStatus.LIVE
        self.stdout.write(f"Locked {locked} game(s).")
