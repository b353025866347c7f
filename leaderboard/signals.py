"""Receivers turning domain changes into real-time events, after commit only."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.dispatch import receiver

from games.event_log import RecordedEvent
from games.signals import game_events_recorded
from leaderboard import events


@receiver(game_events_recorded)
def on_game_events_recorded(sender: Any, events: list[RecordedEvent], **kwargs: Any) -> None:
    transaction.on_commit(partial(_publish, events))


def _publish(recorded: list[RecordedEvent]) -> None:
    events.publish_game_events(recorded)


@receiver(user_logged_out)
def on_user_logged_out(sender: Any, user: Any, **kwargs: Any) -> None:
    # The fast path; accounts records the sign-out, which the hubs' recovery
    # check also finds.
    if user is not None:
        transaction.on_commit(partial(events.close_user_sockets, user_id=user.pk))
