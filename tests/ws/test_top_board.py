"""`join` with `board: "top"`: the top of the board plus a rank table
(leaderboard.top), side by side with sockets on the contract's full frames."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from games.models import GameEvent
from leaderboard import top
from tests.ws.test_delivery import categories, drain_presence, joined_socket, reveal, scores

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _one_top_row(monkeypatch):
    # Two players: a top of one row shows the cut.
    monkeypatch.setattr(top, "TOP_ROWS", 1)


def ranks(frame):
    return [tuple(row) for row in frame["ranks"]]


async def test_a_top_socket_gets_the_top_form_while_a_full_socket_gets_every_row(hello, party):
    host, host_joined = await joined_socket(hello, party.host, party.game, board="top")
    player, player_joined = await joined_socket(hello, party.player, party.game)
    await drain_presence(host, player)
    assert host_joined["leaderboard"]["playerCount"] == 2
    assert len(host_joined["leaderboard"]["players"]) == 1
    assert len(player_joined["leaderboard"]["players"]) == 2
    assert "ranks" not in player_joined["leaderboard"]

    (first, nominees), *_ = await categories(party.game)
    await reveal(category_id=first, nomination_id=nominees[1])  # the player's pick
    host_status, host_update = await host.recv(), await host.recv()
    player_status, player_update = await player.recv(), await player.recv()
    assert host_status == player_status  # only leaderboard frames change form
    assert scores(player_update) == [(party.player.pk, 5, 1, 1), (party.host.pk, 0, 0, 2)]
    assert host_update["players"] == player_update["players"][:1]
    assert ranks(host_update) == [(party.player.pk, 1, 5, 1), (party.host.pk, 2, 0, 0)]
    assert host_update["playerCount"] == 2
    same = ("seq", "revealedCount", "categoryCount", "incompleteCount", "lastRevealed", "timestamp")
    assert {k: host_update[k] for k in same} == {k: player_update[k] for k in same}


async def test_a_resumed_top_socket_gets_its_replay_in_the_top_form(hello, party):
    socket, joined = await joined_socket(hello, party.host, party.game, board="top")
    await socket.comm.disconnect()
    cats = await categories(party.game)
    await reveal(category_id=cats[0][0], nomination_id=cats[0][1][0])
    again, rejoined = await joined_socket(
        hello, party.host, party.game, board="top", lastSeq=joined["seq"]
    )
    assert rejoined["recovered"] is True
    status, update = await again.recv(), await again.recv()
    assert (status["type"], update["type"]) == ("game:status", "leaderboard:update")
    stored = await database_sync_to_async(
        lambda: GameEvent.objects.get(game=party.game, seq=update["seq"]).payload
    )()
    assert update == top.top_payload(stored)
    assert ranks(update) == [(party.host.pk, 1, 5, 1), (party.player.pk, 2, 0, 0)]


async def test_joining_again_with_the_full_board_switches_back(hello, party):
    socket, _ = await joined_socket(hello, party.player, party.game, board="top")
    again = await socket.join(party.game.pk, board="full")
    assert again["type"] == "joined" and "ranks" not in again["leaderboard"]
    await drain_presence(socket)
    (first, nominees), *_ = await categories(party.game)
    await reveal(category_id=first, nomination_id=nominees[0])
    frames = await socket.recv_until("leaderboard:update")
    assert "ranks" not in frames[-1] and len(frames[-1]["players"]) == 2


@pytest.mark.parametrize("board", ["tiny", 5, ["top"], ""])
async def test_an_unknown_board_is_refused_and_joins_nothing(hello, party, board):
    socket = await hello(party.player)
    refused = await socket.join(party.game.pk, board=board, ref="j1")
    assert refused == {
        "type": "leaderboard:error",
        "code": "INVALID_MESSAGE",
        "message": 'board must be "full" or "top".',
        "ref": "j1",
        "gameId": party.game.pk,
    }
    await socket.send({"type": "reaction:send", "gameId": party.game.pk, "emoji": "🔥"})
    assert (await socket.recv())["code"] == "NOT_JOINED"


async def test_a_null_board_is_the_full_board(hello, party):
    socket = await hello(party.player)
    joined = await socket.join(party.game.pk, board=None)
    assert joined["type"] == "joined" and "ranks" not in joined["leaderboard"]
