"""Emoji reactions: ephemeral, never stored, batched twice.

A roomful of thumbs must not become N² frames. On the way in, each process
collects the reactions its sockets send for a game during BATCH_SECONDS and
sends them to the game's group as one message. On the way out, each process
merges what it hears from every process (ReactionPacer) into at most one
`reaction:broadcast` per game per BATCH_SECONDS: a socket gets at most
1 / BATCH_SECONDS reaction frames a second however many processes there are.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async

from config import metrics
from games.models import Game
from games.standings import game_standings
from leaderboard import events
from leaderboard.protocol import encode

logger = logging.getLogger(__name__)

# 0.25 s: at most 4 reaction frames per second reach a socket.
BATCH_SECONDS = 0.25
RANK_CACHE_SECONDS = 2.0
# Per socket (docs/protocol.md): a burst of 10, then 1 per second.
BURST = 10
PER_SECOND = 1.0

# Reaction ids: a random tag per process and a counter, unique across
# processes without coordination. Short on purpose: a storm puts hundreds of
# reactions in each frame, and a uuid-based id made a reaction 130 bytes
# instead of 106.
_PROCESS_TAG = secrets.token_hex(4)
_sequence = itertools.count(1)


def reaction_id() -> str:
    return f"{_PROCESS_TAG}-{next(_sequence):x}"


class RankCache:
    """Each player's current rank per game, cached briefly in this process so a
    reaction storm costs one standings query per game every couple of seconds."""

    def __init__(
        self, ttl: float = RANK_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ):
        self.ttl = ttl
        self.clock = clock
        self._ranks: dict[int, tuple[float, dict[int, int]]] = {}

    async def rank(self, *, game_id: int, user_id: int) -> int | None:
        cached = self._ranks.get(game_id)
        if cached is None or cached[0] <= self.clock():
            ranks = await _ranks_of(game_id)
            cached = (self.clock() + self.ttl, ranks)
            self._ranks[game_id] = cached
        return cached[1].get(user_id)


@database_sync_to_async
def _ranks_of(game_id: int) -> dict[int, int]:
    game = Game.objects.filter(pk=game_id).first()
    if game is None:
        return {}
    return {player.user_id: player.rank for player in game_standings(game=game).players}


class ReactionBatcher:
    """Collects reactions per game and flushes each game's list once per window."""

    def __init__(self, window: float = BATCH_SECONDS) -> None:
        self.window = window
        self._pending: dict[int, list[dict[str, Any]]] = {}
        self._flushers: dict[int, asyncio.Task[None]] = {}

    def add(self, game_id: int, reaction: dict[str, Any]) -> None:
        self._pending.setdefault(game_id, []).append(reaction)
        task = self._flushers.get(game_id)
        # A flusher from a loop that is gone (tests run one loop each) never runs.
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            self._flushers[game_id] = asyncio.create_task(self._flush_later(game_id))

    async def _flush_later(self, game_id: int) -> None:
        await asyncio.sleep(self.window)
        reactions = self._pending.pop(game_id, [])
        self._flushers.pop(game_id, None)
        if reactions:
            metrics.reaction_batch()
            await events.send_reactions(game_id=game_id, reactions=reactions)


class ReactionPacer:
    """Merges the reaction batches a process hears for a game, from every
    process, into at most one frame per window, handed to `deliver` encoded."""

    def __init__(
        self,
        deliver: Callable[[int, str], Awaitable[None]],
        window: float = BATCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deliver = deliver
        self.window = window
        self.clock = clock
        self._pending: dict[int, list[dict[str, Any]]] = {}
        self._last_sent: dict[int, float] = {}
        self._flushers: dict[int, asyncio.Task[None]] = {}

    def add(self, game_id: int, reactions: list[dict[str, Any]]) -> None:
        self._pending.setdefault(game_id, []).extend(reactions)
        if game_id not in self._flushers:
            self._flushers[game_id] = asyncio.create_task(self._flush_when_due(game_id))

    async def _flush_when_due(self, game_id: int) -> None:
        try:
            due = self._last_sent.get(game_id, -math.inf) + self.window
            await asyncio.sleep(max(0.0, due - self.clock()))
        finally:
            del self._flushers[game_id]
        reactions = self._pending.pop(game_id, [])
        self._last_sent[game_id] = self.clock()
        if reactions:
            frame = {"type": "reaction:broadcast", "gameId": game_id, "reactions": reactions}
            await self.deliver(game_id, encode(frame))


ranks = RankCache()
batcher = ReactionBatcher()


async def reaction_send(*, game_id: int, user_id: int, name: str, emoji: str) -> None:
    """Queue one reaction for its game's next broadcast."""
    rank = await ranks.rank(game_id=game_id, user_id=user_id)
    batcher.add(
        game_id,
        {
            "id": reaction_id(),
            "emoji": emoji,
            "userId": user_id,
            "name": name,
            "rank": rank,
            "timestamp": int(time.time() * 1000),
        },
    )
