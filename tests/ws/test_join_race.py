"""A join racing a reveal: the two ordering guarantees of the join sequence
(leaderboard.joining), each pinned where its race is won or lost.

- The consumer's hold-back: an event committed while a join is answered
  (after the follow, before the socket takes events) reaches the socket
  once, in order, after `joined`.
- The hub's join shield (leaderboard.fanout.Hub.follow_game): a second
  socket joining while this process is still being added to the ceremony's
  group reads its snapshot only after the add, so an event committed in
  between is in its snapshot or reaches it.

The periodic catch-up from the event log would mend a lost event within
ENVELOPE_RECOVERY_SECONDS: these tests set it far beyond their waits, so
they see what the join sequence itself delivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

from games.models import Category, Game
from games.services import category_reveal
from leaderboard import joining
from leaderboard.events import ceremony_group
from leaderboard.fanout import get_hub
from tests.ws.conftest import Socket

pytestmark = pytest.mark.django_db(transaction=True)

# Far beyond any wait here: no periodic catch-up hides a lost event.
NO_CATCH_UP_SECONDS = 600.0


@pytest.fixture(autouse=True)
def _no_periodic_catch_up(settings: Any) -> None:
    settings.ENVELOPE_RECOVERY_SECONDS = NO_CATCH_UP_SECONDS


@database_sync_to_async
def _winners(game: Game) -> list[tuple[int, int]]:
    """(category id, its first nomination's id) for each category, in order."""
    return [
        (category.pk, category.nominations.order_by("order")[0].pk)
        for category in Category.objects.filter(ceremony_id=game.ceremony_id).order_by("order")
    ]


@database_sync_to_async
def _seq(game_id: int) -> int:
    return Game.objects.get(pk=game_id).seq


async def _until(condition: Callable[[], bool], wait: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + wait
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _reveal(game_id: int, category_id: int, nomination_id: int) -> int:
    """Reveal a winner; returns the game's seq once this process's hub has
    handed its events to the local sockets."""
    await database_sync_to_async(category_reveal)(
        category_id=category_id, nomination_id=nomination_id
    )
    seq = await _seq(game_id)
    hub = get_hub()
    await _until(lambda: hub.latest.get(game_id, 0) >= seq)
    return seq


async def _game_frames(socket: Socket, game_id: int) -> list[dict[str, Any]]:
    """The game's `joined` and seq'd frames this socket received, until it has
    been quiet for a while (presence diffs left out)."""
    frames = []
    while not await socket.nothing(0.5):
        frame = await socket.recv()
        if frame.get("gameId") == game_id and frame["type"] != "presence:diff":
            frames.append(frame)
    return frames


def _assert_once_in_order(frames: list[dict[str, Any]], *, through: int) -> dict[str, Any]:
    """`joined` first, then every later seq exactly once, in order, through
    `through`; returns the `joined` frame."""
    assert frames and frames[0]["type"] == "joined", frames[:1]
    joined = frames[0]
    seqs = [frame["seq"] for frame in frames[1:]]
    assert seqs == list(range(joined["seq"] + 1, through + 1)), (joined["seq"], seqs)
    return joined


async def test_events_committed_while_a_join_is_answered_arrive_once_in_order(
    hello, party, monkeypatch
):
    """Reveals land on both sides of the snapshot read: the first one's events
    are in the snapshot (and, held back, must not come again), the second
    one's are not (and, held back, must come after `joined`). Without the
    hold-back the second reveal's events are lost."""
    (first, first_winner), (second, second_winner), *_ = await _winners(party.game)
    game_id = party.game.pk
    read_snapshot = joining._snapshot
    seqs: list[int] = []

    async def snapshot_between_reveals(**kwargs: Any) -> Any:
        # The socket follows the game already: the hub hands it these events.
        seqs.append(await _reveal(game_id, first, first_winner))
        snapshot = await read_snapshot(**kwargs)
        seqs.append(await _reveal(game_id, second, second_winner))
        return snapshot

    monkeypatch.setattr(joining, "_snapshot", snapshot_between_reveals)
    socket = await hello(party.player)
    await socket.send({"type": "join", "gameId": game_id})
    frames = await _game_frames(socket, game_id)
    joined = _assert_once_in_order(frames, through=seqs[-1])
    assert joined["seq"] == seqs[0]  # the first reveal is in the snapshot
    assert [frame["type"] for frame in frames[1:]] == ["leaderboard:update"]
    assert frames[-1]["lastRevealed"]["categoryId"] == second


async def test_a_join_during_the_groups_add_waits_for_it(hello, party, monkeypatch):
    """The host's join adds this process to the ceremony's group; the player's
    join comes while that add is in flight, and a reveal is published before
    it completes (the process does not hear it). The player must not read its
    snapshot before the add: it would miss the reveal both ways."""
    (category_id, winner), *_ = await _winners(party.game)
    game_id = party.game.pk
    host, player = await hello(party.host), await hello(party.player)
    hub = get_hub()
    layer = hub.layer
    group = ceremony_group(party.game.ceremony_id)
    add_may_finish, reveal_sent = asyncio.Event(), asyncio.Event()
    add_group, send_group = layer.group_add, layer.group_send

    async def slow_group_add(name: str, channel: str) -> None:
        if name == group:
            await add_may_finish.wait()
        await add_group(name, channel)

    async def watched_group_send(name: str, message: dict[str, Any]) -> None:
        await send_group(name, message)
        if message["type"] == "game.events":
            reveal_sent.set()

    monkeypatch.setattr(layer, "group_add", slow_group_add)
    monkeypatch.setattr(layer, "group_send", watched_group_send)
    read_snapshot = joining._snapshot
    snapshots_read: list[int] = []

    async def counted_snapshot(**kwargs: Any) -> Any:
        snapshot = await read_snapshot(**kwargs)
        snapshots_read.append(snapshot.seq)
        return snapshot

    monkeypatch.setattr(joining, "_snapshot", counted_snapshot)

    await host.send({"type": "join", "gameId": game_id})
    await _until(lambda: len(hub.games.get(game_id, ())) == 1)  # the host's add is in flight
    await player.send({"type": "join", "gameId": game_id})
    await _until(lambda: len(hub.games.get(game_id, ())) == 2)
    # Without the shield the player's join reads its snapshot now; with it,
    # it waits for the add. Give the first case time to happen.
    with_shield = asyncio.get_running_loop().time() + 1.0
    await _until(lambda: bool(snapshots_read) or asyncio.get_running_loop().time() > with_shield)
    await database_sync_to_async(category_reveal)(category_id=category_id, nomination_id=winner)
    await asyncio.wait_for(reveal_sent.wait(), 3)
    add_may_finish.set()

    seq = await _seq(game_id)
    for socket in (host, player):
        _assert_once_in_order(await _game_frames(socket, game_id), through=seq)
