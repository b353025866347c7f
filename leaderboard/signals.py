"""Receivers turning domain changes into real-time events, after commit only."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.dispatch import receiver

from games.signals import game_events_recorded, participant_removed
from leaderboard import events


@receiver(game_events_recorded)
def on_game_events_recorded(sender: Any, event_ids: list[int], **kwargs: Any) -> None:
    transaction.on_commit(partial(events.deliver_game_events, event_ids))


@receiver(participant_removed)
def on_participant_removed(sender: Any, game_id: int, user_id: int, **kwargs: Any) -> None:
    transaction.on_commit(
        partial(events.notify_participant_removed, game_id=game_id, user_id=user_id)
    )


@receiver(user_logged_out)
def on_user_logged_out(sender: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        transaction.on_commit(partial(events.close_user_sockets, user_id=user.pk))
