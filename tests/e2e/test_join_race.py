"""Joins racing reveals on real servers: many sockets on two daphne processes
join a game while its winners are revealed. Each socket must get `joined`
and then every later event of the game once, in seq order, with no gap.

The stack here catches up from the event log only every ten minutes: what
the sockets get is what the join sequence (leaderboard.joining, the hub's
join shield) delivers, not what a periodic catch-up mends.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import require_service
from tests.e2e.conftest import Party, http, joined, make_party, open_socket, recv, ticket
from tests.liveserver import LiveStack

pytestmark = pytest.mark.e2e

PLAYERS, TABS = 12, 5  # 60 sockets, half on each process
CATEGORIES = 6  # a round each: some sockets join while one winner is revealed
# A round's joins are spread over about the time a reveal takes.
JOIN_SPREAD_SECONDS = 0.15
# How long a socket may take to reach a round's last seq: well under the
# stack's catch-up interval, so a lost event shows as a socket left behind.
SETTLE_SECONDS = 3.0


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    require_service("REDIS_URL", 6379, "Redis")
    require_service("DATABASE_URL", 5432, "PostgreSQL")
    with LiveStack(processes=2, extra_env={"ENVELOPE_RECOVERY_SECONDS": "600"}) as live:
        yield live


def _reveal_first_nominee(stack: LiveStack, party: Party, category_index: int) -> None:
    category_id, _, nomination_ids = party.categories[category_index]
    path = f"/api/categories/{category_id}/winner"
    body = {"nominationId": nomination_ids[0]}
    status, reply = http(stack.servers[0], "POST", path, token=party.staff_token, body=body)
    assert status == 200, reply


async def _collect(socket: ClientConnection, game_id: int, out: list[dict[str, Any]]) -> None:
    """Append this socket's `joined` and seq'd frames of the game to `out`."""
    async for raw in socket:
        frame = json.loads(raw)
        if frame.get("gameId") == game_id and "seq" in frame:
            out.append(frame)


async def _settled_seq(frames: list[dict[str, Any]]) -> int:
    """The last seq of a socket that follows the game, once it is quiet."""
    while True:
        count = len(frames)
        await asyncio.sleep(0.3)
        if len(frames) == count:
            return frames[-1]["seq"]


async def _reached(received: list[list[dict[str, Any]]], seq: int) -> None:
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while not all(frames and frames[-1]["seq"] >= seq for frames in received):
        if asyncio.get_running_loop().time() > deadline:
            behind = [(i, f[-1]["seq"] if f else None) for i, f in enumerate(received)]
            pytest.fail(f"sockets behind seq {seq}: {[b for b in behind if b[1] != seq]}")
        await asyncio.sleep(0.05)


async def test_sockets_joining_while_winners_are_revealed_miss_nothing(stack):
    party = make_party(stack, "joinrace", PLAYERS, [1] * CATEGORIES)
    game_id = party.game_id
    servers = stack.servers
    probe, _ = await joined(servers[0], party.players[0], game_id)  # joined before any reveal
    sockets: list[ClientConnection] = []
    for index in range(PLAYERS * TABS):
        server, player = servers[index % 2], party.players[index % PLAYERS]
        socket = await open_socket(server, await asyncio.to_thread(ticket, server, player))
        assert (await recv(socket, 30))["type"] == "hello"
        sockets.append(socket)
    probe_frames: list[dict[str, Any]] = []
    received: list[list[dict[str, Any]]] = [[] for _ in sockets]
    readers = [asyncio.create_task(_collect(probe, game_id, probe_frames))] + [
        asyncio.create_task(_collect(socket, game_id, frames))
        for socket, frames in zip(sockets, received, strict=True)
    ]
    rng = random.Random(7)

    async def join_soon(socket: ClientConnection) -> None:
        await asyncio.sleep(rng.uniform(0, JOIN_SPREAD_SECONDS))
        await socket.send(json.dumps({"type": "join", "gameId": game_id}))

    per_round = len(sockets) // CATEGORIES
    try:
        for index in range(CATEGORIES):
            batch = sockets[index * per_round : (index + 1) * per_round]
            await asyncio.gather(
                asyncio.to_thread(_reveal_first_nominee, stack, party, index),
                *(join_soon(socket) for socket in batch),
            )
            # Each round checked on its own: a later event would let a socket
            # that lost one ask for a catch-up, hiding the loss.
            await _reached(received[: (index + 1) * per_round], await _settled_seq(probe_frames))
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(probe.close(), *(s.close() for s in sockets), return_exceptions=True)

    final = probe_frames[-1]["seq"]
    starts = set()
    for index, frames in enumerate(received):
        assert frames and frames[0]["type"] == "joined", (index, frames[:1])
        start = frames[0]["seq"]
        starts.add(start)
        seqs = [frame["seq"] for frame in frames[1:]]
        assert seqs == list(range(start + 1, final + 1)), (index, start, seqs)
    # The joins did race the reveals: they started from several seqs.
    assert len(starts) > 2, starts
