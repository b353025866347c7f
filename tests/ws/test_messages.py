"""Client → server messages and every error that keeps the socket open (docs/protocol.md)."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from games.models import GameStatus
from leaderboard.consumers import LeaderboardConsumer
from leaderboard.events import ceremony_group
from tests.ws.conftest import group_members

pytestmark = pytest.mark.django_db(transaction=True)


def error(code: str, **extra: object) -> dict[str, object]:
    return {"type": "leaderboard:error", "code": code, **extra}


def without_message(frame: dict[str, object]) -> dict[str, object]:
    assert isinstance(frame.get("message"), str) and frame["message"]
    return {key: value for key, value in frame.items() if key != "message"}


async def test_join_replies_with_the_exact_joined_shape(hello, party):
    socket = await hello(party.player)
    frame = await socket.join(party.game.pk, ref="j1")
    leaderboard = frame["leaderboard"]
    assert frame == {
        "type": "joined",
        "gameId": party.game.pk,
        "seq": 0,
        "recovered": False,
        "game": {
            "status": "OPEN",
            "picksLockAt": None,
            "completedAt": None,
            "participantCount": 2,
        },
        "leaderboard": {
            "type": "leaderboard:update",
            "gameId": party.game.pk,
            "seq": 0,
            "players": [
                {
                    "userId": party.host.pk,
                    "name": "Hostess",
                    "totalScore": 0,
                    "correctCount": 0,
                    "rank": 1,
                },
                {
                    "userId": party.player.pk,
                    "name": "Player",
                    "totalScore": 0,
                    "correctCount": 0,
                    "rank": 1,
                },
            ],
            "revealedCount": 0,
            "categoryCount": 3,
            "incompleteCount": 0,
            "lastRevealed": None,
            "timestamp": leaderboard["timestamp"],
        },
        "onlineCount": 1,
        "online": [{"userId": party.player.pk, "name": "Player"}],
        "ref": "j1",
    }
    assert isinstance(leaderboard["timestamp"], int)
    assert await group_members(ceremony_group(party.game.ceremony_id))


async def test_join_locks_a_game_whose_lock_time_passed(hello, party):
    from django.utils import timezone

    party.game.picks_lock_at = timezone.now()
    await database_sync_to_async(party.game.save)()
    socket = await hello(party.player)
    frame = await socket.join(party.game.pk)
    assert frame["game"]["status"] == GameStatus.LIVE
    assert frame["seq"] == 2  # game:status and leaderboard:update were recorded


async def test_non_participant_join_is_refused_and_adds_nothing(hello, party):
    socket = await hello(party.outsider)
    frame = await socket.join(party.game.pk, ref="r")
    assert without_message(frame) == error("NOT_PARTICIPANT", ref="r", gameId=party.game.pk)
    assert await group_members(ceremony_group(party.game.ceremony_id)) == set()
    # Still not following: a reaction is NOT_JOINED, the socket stays open.
    await socket.send({"type": "reaction:send", "gameId": party.game.pk, "emoji": "🔥"})
    assert (await socket.recv())["code"] == "NOT_JOINED"


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ({"type": "join", "gameId": 999999}, error("GAME_NOT_FOUND", gameId=999999)),
        ({"type": "join", "gameId": 0}, error("GAME_NOT_FOUND", gameId=0)),
        ({"type": "join", "gameId": 2**70}, error("GAME_NOT_FOUND", gameId=2**70)),
        ({"type": "join"}, error("GAME_ID_REQUIRED")),
        ({"type": "join", "gameId": None}, error("GAME_ID_REQUIRED")),
        ({"type": "join", "gameId": "1"}, error("INVALID_MESSAGE")),
        ({"type": "join", "gameId": 1.5}, error("INVALID_MESSAGE")),
        ({"type": "join", "gameId": True}, error("INVALID_MESSAGE")),
        ({"type": "leave"}, error("GAME_ID_REQUIRED")),
        ({"type": "reaction:send", "emoji": "🔥"}, error("GAME_ID_REQUIRED")),
        ({"type": "reaction:send", "gameId": [1], "emoji": "🔥"}, error("INVALID_MESSAGE")),
        ({"type": "dance"}, error("UNKNOWN_TYPE")),
        ({"type": 7}, error("INVALID_MESSAGE")),
        ({"gameId": 1}, error("INVALID_MESSAGE")),
        ({"type": "ping", "ref": 5}, error("INVALID_MESSAGE")),
        ({"type": "dance", "ref": "x"}, error("UNKNOWN_TYPE", ref="x")),
        ({"type": "join", "ref": "y"}, error("GAME_ID_REQUIRED", ref="y")),
    ],
)
async def test_malformed_messages(hello, party, frame, expected):
    socket = await hello(party.player)
    await socket.send(frame)
    assert without_message(await socket.recv()) == expected
    await socket.send({"type": "ping", "t": 1})
    assert await socket.recv() == {"type": "pong", "t": 1, "seqs": {}}  # still open


@pytest.mark.parametrize("last_seq", [-1, "3", 1.0, False])
async def test_join_with_a_bad_last_seq(hello, party, last_seq):
    socket = await hello(party.player)
    reply = await socket.join(party.game.pk, lastSeq=last_seq, ref="s")
    assert without_message(reply) == error("INVALID_MESSAGE", ref="s", gameId=party.game.pk)


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '"join"', "null", "42", '{"type": "ping", "t": NaN}']
)
async def test_frames_that_are_not_json_objects(hello, party, text):
    socket = await hello(party.player)
    await socket.send_text(text)
    assert without_message(await socket.recv()) == error("INVALID_MESSAGE")


async def test_binary_frame_is_invalid(hello, party):
    socket = await hello(party.player)
    await socket.comm.send_to(bytes_data=b'{"type": "ping"}')
    assert without_message(await socket.recv()) == error("INVALID_MESSAGE")


async def test_oversized_frame_closes_1009(hello, party):
    socket = await hello(party.player)
    # 4096 bytes exactly is allowed; multi-byte characters count as bytes.
    await socket.send_text(json.dumps({"type": "ping", "t": "x" * (4096 - 25)}))
    assert (await socket.recv())["type"] == "pong"
    await socket.send_text(json.dumps({"type": "ping", "t": "é" * 2100}))
    assert await socket.closed_with() == 1009


async def test_ping_echoes_any_value_and_ref(hello, party):
    socket = await hello(party.player)
    await socket.send({"type": "ping", "t": {"a": [1, None]}, "ref": "p"})
    assert await socket.recv() == {"type": "pong", "t": {"a": [1, None]}, "seqs": {}, "ref": "p"}
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong", "seqs": {}}
    await socket.send({"type": "ping", "t": None})
    assert await socket.recv() == {"type": "pong", "t": None, "seqs": {}}


async def test_leave(hello, party):
    socket = await hello(party.player)
    await socket.join(party.game.pk)
    await socket.recv_until("presence:diff")
    await socket.send({"type": "leave", "gameId": party.game.pk, "ref": "l"})
    assert await socket.recv() == {"type": "left", "gameId": party.game.pk, "ref": "l"}
    assert await group_members(ceremony_group(party.game.ceremony_id)) == set()
    await socket.send({"type": "leave", "gameId": party.game.pk, "ref": "l2"})
    assert without_message(await socket.recv()) == error(
        "NOT_JOINED", ref="l2", gameId=party.game.pk
    )


async def test_reaction_before_join_is_not_joined(hello, party):
    socket = await hello(party.player)
    await socket.send({"type": "reaction:send", "gameId": party.game.pk, "emoji": "🔥", "ref": "e"})
    assert without_message(await socket.recv()) == error(
        "NOT_JOINED", ref="e", gameId=party.game.pk
    )


@pytest.mark.parametrize(
    ("emoji", "code"), [("🍕", "INVALID_EMOJI"), ("", "INVALID_EMOJI"), (1, "INVALID_MESSAGE")]
)
async def test_invalid_emoji(hello, party, emoji, code):
    socket = await hello(party.player)
    await socket.join(party.game.pk)
    await socket.recv_until("presence:diff")
    await socket.send({"type": "reaction:send", "gameId": party.game.pk, "emoji": emoji})
    assert without_message(await socket.recv()) == error(code, gameId=party.game.pk)


@pytest.fixture
def frozen_clock(monkeypatch):
    """Rate-limit buckets never refill: exact counts become testable."""
    monkeypatch.setattr(LeaderboardConsumer, "clock", staticmethod(lambda: 1000.0))


async def test_reaction_flood_is_rate_limited_then_closed_4429(hello, party, frozen_clock):
    socket = await hello(party.player)
    await socket.join(party.game.pk)
    await socket.recv_until("presence:diff")
    reaction = {"type": "reaction:send", "gameId": party.game.pk, "emoji": "👏"}
    for _ in range(10):  # the burst
        await socket.send(reaction)
    broadcast = await socket.recv()
    assert broadcast["type"] == "reaction:broadcast"
    assert len(broadcast["reactions"]) == 10  # one batched frame
    await socket.send({**reaction, "ref": "11"})
    assert without_message(await socket.recv()) == error(
        "RATE_LIMITED", ref="11", gameId=party.game.pk
    )
    # Other messages still work while reactions are limited.
    await socket.send({"type": "ping", "t": 0})
    assert await socket.recv() == {"type": "pong", "t": 0, "seqs": {str(party.game.pk): 0}}
    for _ in range(18):
        await socket.send(reaction)
        assert (await socket.recv())["code"] == "RATE_LIMITED"
    await socket.send(reaction)  # the 20th refusal within 10 s
    assert (await socket.recv())["code"] == "RATE_LIMITED"
    assert await socket.closed_with() == 4429


async def test_general_frame_bucket(hello, party, frozen_clock):
    socket = await hello(party.player)
    for index in range(30):
        await socket.send({"type": "ping", "t": index})
        assert (await socket.recv())["t"] == index
    await socket.send({"type": "ping", "ref": "over"})
    assert without_message(await socket.recv()) == error("RATE_LIMITED", ref="over")
    # Garbage counts too, and keeps counting towards the flood close.
    for _ in range(19):
        await socket.send_text("garbage")
        assert (await socket.recv())["code"] == "RATE_LIMITED"
    assert await socket.closed_with() == 4429


async def test_bucket_refills_over_time(hello, party, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(LeaderboardConsumer, "clock", staticmethod(lambda: now[0]))
    socket = await hello(party.player)
    await socket.join(party.game.pk)
    await socket.recv_until("presence:diff")
    reaction = {"type": "reaction:send", "gameId": party.game.pk, "emoji": "🔥"}
    for _ in range(10):
        await socket.send(reaction)
    assert len((await socket.recv())["reactions"]) == 10
    await socket.send(reaction)
    assert (await socket.recv())["code"] == "RATE_LIMITED"
    now[0] += 1.0  # one more reaction per second
    await socket.send(reaction)
    assert len((await socket.recv())["reactions"]) == 1
