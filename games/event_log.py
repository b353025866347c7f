"""The game event log: every state change of a game, numbered by its seq and
stored with the exact frame clients receive.

A write collects its events in an EventLog inside its transaction, with the
rows of the games concerned locked, then saves them: the games' new seqs in
one UPDATE, the events in one bulk INSERT. A leaderboard update's frame is
rendered there and then, from the standings the same transaction sees, so
the frame stored under seq N is the board as of N — never a later reveal's.
After commit, `game_events_recorded` hands the events to the real-time layer;
the log in the database stays the truth that recovery replays from.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Value, When

from games.models import Game, GameEvent
from games.signals import game_events_recorded
from games.standings import leaderboard_frame, standings_of_games

# Old events are pruned when a game's seq crosses a multiple of this, so the
# delete is not paid on every event.
PRUNE_EVERY = 50


class EventLog:
    """The events one transaction appends. Precondition for every method:
    inside `transaction.atomic`, with the rows of the games passed in locked
    (select_for_update), so their in-memory seq is the stored one."""

    def __init__(self) -> None:
        self.events: list[GameEvent] = []
        self._first_seq: dict[int, int] = {}  # game id → its seq before this log

    def append(self, game: Game, type_: str, **fields: Any) -> GameEvent:
        """The game's next event, with `fields` beside type, gameId and seq."""
        self._first_seq.setdefault(game.pk, game.seq)
        game.seq += 1
        payload = {"type": type_, "gameId": game.pk, "seq": game.seq, **fields}
        return self._add(game, type_, payload)

    def append_boards(
        self, games: list[Game], *, ceremony_id: int, last_revealed: dict[str, Any] | None
    ) -> None:
        """A `leaderboard:update` for each game (all of `ceremony_id`), with
        the standings this transaction sees: one read for all of them."""
        standings = standings_of_games(ceremony_id=ceremony_id, game_ids=[g.pk for g in games])
        for game in games:
            self._first_seq.setdefault(game.pk, game.seq)
            game.seq += 1
            frame = leaderboard_frame(
                game_id=game.pk,
                seq=game.seq,
                standings=standings[game.pk],
                last_revealed=last_revealed,
            )
            self._add(game, "leaderboard:update", frame)

    def _add(self, game: Game, type_: str, payload: dict[str, Any]) -> GameEvent:
        event = GameEvent(game=game, seq=game.seq, type=type_, payload=payload)
        self.events.append(event)
        return event

    def save(self) -> list[GameEvent]:
        """Store the events and the games' seqs; announce them after commit."""
        if not self.events:
            return []
        steps = Counter(event.game_id for event in self.events)
        _seqs_advance(steps)
        GameEvent.objects.bulk_create(self.events, batch_size=1000)
        _prune(
            game_id
            for game_id, first in self._first_seq.items()
            if _crossed_prune_mark(first, first + steps[game_id])
        )
        game_events_recorded.send(sender=GameEvent, events=list(self.events))
        return self.events


def _seqs_advance(steps: Counter[int]) -> None:
    """seq += steps[game] for every game, in one statement: games are grouped
    by how many events they got (a reveal gives all but the newly locked
    ones the same number)."""
    by_step: dict[int, list[int]] = defaultdict(list)
    for game_id, step in steps.items():
        by_step[step].append(game_id)
    Game.objects.filter(pk__in=list(steps)).update(
        seq=F("seq")
        + Case(
            *(When(pk__in=ids, then=Value(step)) for step, ids in by_step.items()),
            default=Value(0),
            output_field=models.PositiveBigIntegerField(),
        )
    )


def _crossed_prune_mark(before: int, after: int) -> bool:
    retention = settings.ENVELOPE_EVENT_RETENTION
    return after > retention and after // PRUNE_EVERY > before // PRUNE_EVERY


def _prune(game_ids: Iterable[int]) -> None:
    """Forget events older than the retention window of these games."""
    game_ids = list(game_ids)
    if game_ids:
        GameEvent.objects.filter(
            game_id__in=game_ids, seq__lte=F("game__seq") - settings.ENVELOPE_EVENT_RETENTION
        ).delete()
