"""The game event log: every state change of a game, numbered by its seq and
stored with the exact frame clients receive.

A write collects its events in an EventLog inside its transaction, with the
rows of the games concerned locked, then saves them: the games' new seqs in
one UPDATE, the events in one COPY (one bulk INSERT on SQLite). A leaderboard
update's frame is rendered there and then, from the standings the same
transaction sees, so the frame stored under seq N is the board as of N —
never a later reveal's. Each frame is encoded to JSON text once: that text is
what is stored and what every socket is sent. After commit,
`game_events_recorded` hands the events to the real-time layer; the log in
the database stays the truth that recovery replays from.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, models
from django.db.models import Case, F, Value, When
from django.utils import timezone

from games.formatting import json_text
from games.models import Game, GameEvent
from games.signals import game_events_recorded
from games.sql import id_set
from games.standings import CategoryCounts, leaderboard_frame, standings_of_games

# Old events are pruned when a game's seq crosses a multiple of this, so the
# delete is not paid on every event.
PRUNE_EVERY = 50


class SequencedGame(Protocol):
    """A locked game row as the log needs it (a Game, or a lighter record)."""

    pk: int
    ceremony_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event as its transaction recorded it."""

    game_id: int
    ceremony_id: int
    seq: int
    type: str
    payload: dict[str, Any]  # the frame
    text: str  # the frame as JSON text, exactly as stored and sent


class EventLog:
    """The events one transaction appends. Precondition for every method:
    inside `transaction.atomic`, with the rows of the games passed in locked
    (select_for_update), so their in-memory seq is the stored one."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self._first_seq: dict[int, int] = {}  # game id → its seq before this log

    def append(self, game: SequencedGame, type_: str, **fields: Any) -> None:
        """The game's next event, with `fields` beside type, gameId and seq."""
        self._next_seq(game)
        self._record(game, type_, {"type": type_, "gameId": game.pk, "seq": game.seq, **fields})

    def append_boards(
        self,
        games: list[SequencedGame],
        *,
        ceremony_id: int,
        last_revealed: dict[str, Any] | None,
        counts: CategoryCounts | None = None,
    ) -> None:
        """A `leaderboard:update` for each game (all of `ceremony_id`), with
        the standings this transaction sees: one read for all of them.
        `counts`, if given, are the ceremony's as this transaction sees them."""
        standings = standings_of_games(
            ceremony_id=ceremony_id, game_ids=[g.pk for g in games], counts=counts
        )
        for game in games:
            self._next_seq(game)
            frame = leaderboard_frame(
                game_id=game.pk,
                seq=game.seq,
                standings=standings[game.pk],
                last_revealed=last_revealed,
            )
            self._record(game, "leaderboard:update", frame)

    def _next_seq(self, game: SequencedGame) -> None:
        self._first_seq.setdefault(game.pk, game.seq)
        game.seq += 1

    def _record(self, game: SequencedGame, type_: str, payload: dict[str, Any]) -> None:
        self.events.append(
            RecordedEvent(game.pk, game.ceremony_id, game.seq, type_, payload, json_text(payload))
        )

    def save(self) -> list[RecordedEvent]:
        """Store the events and the games' seqs; announce them after commit."""
        if not self.events:
            return []
        steps = Counter(event.game_id for event in self.events)
        _seqs_advance(steps)
        _events_store(self.events)
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
    if len(by_step) == 1:
        ((step, ids),) = by_step.items()
        Game.objects.filter(pk__in=id_set(ids)).update(seq=F("seq") + step)
        return
    Game.objects.filter(pk__in=id_set(list(steps))).update(
        seq=F("seq")
        + Case(
            *(When(pk__in=id_set(ids), then=Value(step)) for step, ids in by_step.items()),
            default=Value(0),
            output_field=models.PositiveBigIntegerField(),
        )
    )


def _events_store(events: list[RecordedEvent]) -> None:
    created_at = timezone.now()
    if connection.vendor != "postgresql":
        GameEvent.objects.bulk_create(
            [
                GameEvent(
                    game_id=e.game_id,
                    seq=e.seq,
                    type=e.type,
                    payload=e.payload,
                    created_at=created_at,
                )
                for e in events
            ],
            batch_size=500,
        )
        return
    # COPY, not INSERT: a reveal stores one frame per game of its ceremony,
    # a large party's is large, and a bulk INSERT had psycopg quote each of
    # them client-side (bench/README.md). The stored text is the one the
    # sockets are sent.
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(GameEvent._meta.get_field(name).column)
        for name in ("game", "seq", "type", "data", "payload", "created_at")
    )
    sql = f"COPY {quote(GameEvent._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for e in events:
            copy.write_row((e.game_id, e.seq, e.type, "{}", e.text, created_at))


def _crossed_prune_mark(before: int, after: int) -> bool:
    retention = settings.ENVELOPE_EVENT_RETENTION
    return after > retention and after // PRUNE_EVERY > before // PRUNE_EVERY


def _prune(game_ids: Iterable[int]) -> None:
    """Forget events older than the retention window of these games."""
    game_ids = list(game_ids)
    if game_ids:
        GameEvent.objects.filter(
            game_id__in=id_set(game_ids),
            seq__lte=F("game__seq") - settings.ENVELOPE_EVENT_RETENTION,
        ).delete()
