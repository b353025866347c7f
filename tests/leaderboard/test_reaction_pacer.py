"""ReactionPacer: reaction batches heard from every process become at most one
`reaction:broadcast` per game per window on each socket."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

from leaderboard.reactions import ReactionPacer

WINDOW = 0.1


def _reaction(n: int) -> dict:
    return {"id": f"r{n}", "emoji": "🔥", "userId": n, "name": f"p{n}", "rank": 1, "timestamp": 0}


class Socket:
    def __init__(self) -> None:
        self.frames: list[tuple[float, int, dict]] = []

    async def deliver(self, game_id: int, text: str) -> None:
        self.frames.append((time.monotonic(), game_id, json.loads(text)))


async def test_batches_from_several_processes_are_merged_and_paced():
    socket = Socket()
    pacer = ReactionPacer(socket.deliver, window=WINDOW)
    # Three processes' batches arrive together, then more keep coming.
    for n in range(3):
        pacer.add(7, [_reaction(n)])
    for n in range(3, 12):
        await asyncio.sleep(WINDOW / 4)
        pacer.add(7, [_reaction(n)])
    await asyncio.sleep(WINDOW * 2.5)

    frames = socket.frames
    assert frames[0][2]["type"] == "reaction:broadcast" and frames[0][2]["gameId"] == 7
    assert [r["id"] for r in frames[0][2]["reactions"]] == ["r0", "r1", "r2"]
    # Every reaction arrives exactly once, in order.
    ids = [r["id"] for _, _, frame in frames for r in frame["reactions"]]
    assert ids == [f"r{n}" for n in range(12)]
    # Never two frames within one window, however the batches arrived.
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(frames)]
    assert all(gap >= WINDOW * 0.95 for gap in gaps)


async def test_games_are_paced_separately():
    socket = Socket()
    pacer = ReactionPacer(socket.deliver, window=WINDOW)
    pacer.add(1, [_reaction(1)])
    pacer.add(2, [_reaction(2)])
    await asyncio.sleep(WINDOW / 2)
    assert sorted(game_id for _, game_id, _ in socket.frames) == [1, 2]
