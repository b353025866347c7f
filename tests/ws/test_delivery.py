"""Server → client delivery: reveals, resume, removal, sign-out (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out

from accounts.models import User
from games.models import Category, GameEvent
from games.services import category_reveal, category_undo, participant_remove
from leaderboard.events import ceremony_group, game_group
from tests.ws.conftest import group_members

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def categories(game) -> list[tuple[int, list[int]]]:
    """(category id, nomination ids in order) for each category of the game."""
    return [
        (category.pk, [n.pk for n in category.nominations.order_by("order")])
        for category in Category.objects.filter(ceremony_id=game.ceremony_id).order_by("order")
    ]


reveal = database_sync_to_async(category_reveal)
undo = database_sync_to_async(category_undo)


async def joined_socket(hello, user, game, **fields):
    socket = await hello(user)
    frame = await socket.join(game.pk, **fields)
    assert frame["type"] == "joined", frame
    return socket, frame


async def drain_presence(*sockets):
    for socket in sockets:
        while not await socket.nothing(0.3):
            assert (await socket.recv())["type"] == "presence:diff"


def scores(frame):
    return [(p["userId"], p["totalScore"], p["correctCount"], p["rank"]) for p in frame["players"]]


async def test_reveal_delivers_status_then_standings(hello, party):
    host, _ = await joined_socket(hello, party.host, party.game)
    player, _ = await joined_socket(hello, party.player, party.game)
    await drain_presence(host, player)
    (first, nominees), *_ = await categories(party.game)
    await reveal(category_id=first, nomination_id=nominees[0])
    for socket in (host, player):
        status = await socket.recv()
        assert status == {
            "type": "game:status",
            "gameId": party.game.pk,
            "seq": 1,
            "status": "LIVE",
            "picksLockAt": None,
        }
        update = await socket.recv()
        assert update["type"] == "leaderboard:update"
        assert update["seq"] == 2
        assert scores(update) == [(party.host.pk, 5, 1, 1), (party.player.pk, 0, 0, 2)]
        assert update["revealedCount"] == 1
        assert update["lastRevealed"]["categoryId"] == first
        assert update["lastRevealed"]["nominationId"] == nominees[0]
        assert await socket.nothing()


async def test_last_reveal_completes_and_undo_recomputes(hello, party):
    socket, _ = await joined_socket(hello, party.player, party.game)
    await drain_presence(socket)
    cats = await categories(party.game)
    for category_id, nominees in cats:
        await reveal(category_id=category_id, nomination_id=nominees[1])
    frames = await socket.recv_until("game:completed")
    assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
    assert frames[-1]["completedAt"].endswith("Z")
    assert scores(frames[-2]) == [(party.player.pk, 8, 3, 1), (party.host.pk, 0, 0, 2)]
    await undo(category_id=cats[0][0])
    status, update = await socket.recv(), await socket.recv()
    assert (status["type"], status["status"]) == ("game:status", "LIVE")
    assert update["type"] == "leaderboard:update"
    assert scores(update) == [(party.player.pk, 3, 2, 1), (party.host.pk, 0, 0, 2)]


async def test_resume_replays_exactly_the_missed_events(hello, party):
    socket, joined = await joined_socket(hello, party.player, party.game)
    last_seq = joined["seq"]
    await socket.comm.disconnect()
    cats = await categories(party.game)
    await reveal(category_id=cats[0][0], nomination_id=cats[0][1][0])
    await reveal(category_id=cats[1][0], nomination_id=cats[1][1][1])

    again, rejoined = await joined_socket(hello, party.player, party.game, lastSeq=last_seq)
    assert rejoined["recovered"] is True
    assert rejoined["seq"] == 3
    assert scores(rejoined["leaderboard"]) == [(party.host.pk, 5, 1, 1), (party.player.pk, 2, 1, 2)]
    replay = [await again.recv() for _ in range(3)]
    assert [(f["type"], f["seq"]) for f in replay] == [
        ("game:status", 1),
        ("leaderboard:update", 2),
        ("leaderboard:update", 3),
    ]
    stored = await database_sync_to_async(
        lambda: [e.payload for e in GameEvent.objects.filter(game=party.game).order_by("seq")]
    )()
    assert replay == stored  # the very frames live sockets got
    # Then presence only: the first socket's leave and this one's join may
    # fall in one diff window or two (each diff states the user as online).
    diff = await again.recv()
    assert (diff["type"], diff["joins"]) == (
        "presence:diff",
        [{"userId": party.player.pk, "name": "Player"}],
    )
    await drain_presence(again)


async def test_resume_up_to_date_and_too_old(hello, party):
    cats = await categories(party.game)
    await reveal(category_id=cats[0][0], nomination_id=cats[0][1][0])
    socket, joined = await joined_socket(hello, party.player, party.game, lastSeq=2)
    assert (joined["recovered"], joined["seq"]) == (True, 2)
    await drain_presence(socket)
    # Events before seq 2 pruned: resuming from 0 falls back to the snapshot.
    await database_sync_to_async(GameEvent.objects.filter(seq__lte=1).delete)()
    rejoined = await socket.join(party.game.pk, lastSeq=0)
    assert (rejoined["type"], rejoined["recovered"], rejoined["seq"]) == ("joined", False, 2)
    # A lastSeq from the future cannot be trusted either.
    future = await socket.join(party.game.pk, lastSeq=99)
    assert future["recovered"] is False
    assert await socket.nothing()


async def test_events_already_covered_are_dropped(hello, party):
    """A live event whose seq the socket already has (from the joined snapshot,
    a replay, or a duplicate delivery) is not sent again; later ones are."""
    cats = await categories(party.game)
    await reveal(category_id=cats[0][0], nomination_id=cats[0][1][0])
    socket, joined = await joined_socket(hello, party.player, party.game)
    await drain_presence(socket)
    assert joined["seq"] == 2
    layer = get_channel_layer()
    for seq in (1, 2, 3, 3, 2, 4):
        text = json.dumps({"type": "game:status", "gameId": party.game.pk, "seq": seq})
        await layer.group_send(
            game_group(party.game.pk),
            {"type": "game.event", "game_id": party.game.pk, "seq": seq, "text": text},
        )
    assert [(await socket.recv())["seq"] for _ in range(2)] == [3, 4]
    assert await socket.nothing()


async def test_participant_removal_sends_game_removed_and_stops_events(hello, party):
    host, _ = await joined_socket(hello, party.host, party.game)
    player, _ = await joined_socket(hello, party.player, party.game)
    await drain_presence(host, player)
    await database_sync_to_async(participant_remove)(
        game_id=party.game.pk, actor=party.host, user_id=party.player.pk
    )
    frames = await player.recv_until("game:removed")
    assert frames[-1] == {"type": "game:removed", "gameId": party.game.pk}
    host_frames = await host.recv_until("presence:diff")
    assert host_frames[-1]["leaves"] == [{"userId": party.player.pk, "name": "Player"}]
    assert host_frames[-1]["onlineCount"] == 1
    cats = await categories(party.game)
    await reveal(category_id=cats[0][0], nomination_id=cats[0][1][0])
    assert (await host.recv())["type"] == "game:status"
    assert await player.nothing()
    refused = await player.join(party.game.pk)
    assert refused["code"] == "NOT_PARTICIPANT"
    assert len(await group_members(ceremony_group(party.game.ceremony_id))) == 1


async def test_sign_out_closes_every_socket_of_the_user_4401(hello, party):
    first, _ = await joined_socket(hello, party.player, party.game)
    second = await hello(party.player)
    other = await hello(party.host)
    user = await database_sync_to_async(User.objects.get)(pk=party.player.pk)
    await database_sync_to_async(user_logged_out.send)(sender=User, request=None, user=user)
    for socket in (first, second):
        frames = await socket.recv_until("leaderboard:error")
        assert frames[-1]["code"] == "AUTH_REQUIRED"
        assert await socket.closed_with() == 4401
    assert await other.nothing()


class RecordedWrites:
    """Stands in for our server's extension (server/prepared_send.py): keeps
    what the consumer writes through it, in order."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    @staticmethod
    def prepare(text: str) -> str:
        return text

    def send(self, prepared: str) -> bool:
        self.texts.append(prepared)
        return True


async def test_under_our_server_every_frame_is_written_through_its_extension(connect, party):
    """hello, joined, replies and the game's shared frames all leave through
    the server's direct write, none through the ASGI send (only the accept)."""
    from server.extension import EXTENSION

    writes = RecordedWrites()
    accepted, _, socket = await connect(party.player, extensions={EXTENSION: writes})
    assert accepted

    async def written_until(type_: str) -> list[str]:
        for _ in range(100):
            types = [json.loads(text)["type"] for text in writes.texts]
            if type_ in types:
                break
            await asyncio.sleep(0.02)
        return types

    await socket.send({"type": "join", "gameId": party.game.pk, "ref": "j"})
    await socket.send({"type": "ping", "ref": "p"})
    assert (await written_until("pong"))[:3] == ["hello", "joined", "pong"], writes.texts
    (first, nominees), *_ = await categories(party.game)
    await database_sync_to_async(category_reveal)(category_id=first, nomination_id=nominees[0])
    assert (await written_until("leaderboard:update")).count("leaderboard:update") == 1
    assert await socket.nothing()  # the ASGI send carried nothing
