"""The WebSocket doors an attacker found open: tickets are one-use and die at
logout, any JSON text (lone surrogates included) is valid input and never
closes the socket, and an unreachable cache at connect is SERVICE_UNAVAILABLE
and 1013, not 1011."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tickets import ticket_claim, ticket_issue
from leaderboard import consumers
from leaderboard.presence import get_presence
from tests.liveserver import free_port
from tests.ws.conftest import Socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def refused_with(socket: Socket) -> tuple[str, int | None]:
    """(error code, close code) of a socket turned away at connect."""
    frame = await socket.recv()
    assert frame["type"] == "leaderboard:error", frame
    assert isinstance(frame["message"], str) and frame["message"]
    return frame["code"], await socket.closed_with()


async def raw_reply(socket: Socket, text: str) -> tuple[str, dict[str, Any]]:
    """Send raw JSON text; the reply's text as sent and as parsed."""
    await socket.send_text(text)
    reply = await socket.comm.receive_from(2)
    # What daphne does with every text: a lone surrogate left raw in the
    # reply made this raise, and the socket closed 1011.
    reply.encode("utf-8")
    return reply, json.loads(reply)


# --- one-use tickets -----------------------------------------------------------


async def test_a_ticket_opens_one_socket_only(connect, party):
    ticket = ticket_issue(user_id=party.player.pk)
    accepted, _, first = await connect(ticket=ticket)
    assert accepted
    assert (await first.recv())["type"] == "hello"
    # The same ticket again, while the first socket is open and after.
    accepted, _, second = await connect(ticket=ticket)
    assert accepted
    assert await refused_with(second) == ("AUTH_REQUIRED", 4401)
    await first.comm.disconnect()
    accepted, _, third = await connect(ticket=ticket)
    assert await refused_with(third) == ("AUTH_REQUIRED", 4401)
    # A fresh ticket still works: the refusal is about the ticket, not the user.
    _, _, fresh = await connect(party.player)
    assert (await fresh.recv())["type"] == "hello"


async def test_sockets_racing_with_one_ticket_get_one_hello(connect, party):
    ticket = ticket_issue(user_id=party.player.pk)
    opened = await asyncio.gather(*(connect(ticket=ticket) for _ in range(5)))
    firsts = [await socket.recv() for _, _, socket in opened]
    assert sorted(frame["type"] for frame in firsts) == ["hello"] + ["leaderboard:error"] * 4
    for (_, _, socket), frame in zip(opened, firsts, strict=True):
        if frame["type"] != "hello":
            assert frame["code"] == "AUTH_REQUIRED"
            assert await socket.closed_with() == 4401


async def test_tickets_carry_a_nonce_each():
    first, second = (ticket_claim(ticket_issue(user_id=7)) for _ in range(2))
    assert first is not None and second is not None
    assert first.nonce and second.nonce and first.nonce != second.nonce


def _api_ticket_then_logout(user: User) -> str:
    """A ticket from the API, then a logout through the API."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    response = client.post("/api/auth/ws-ticket")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["expiresIn"] == 60
    assert client.post("/api/auth/logout").status_code == 204
    return body["ticket"]


async def test_a_ticket_issued_before_logout_is_refused(connect, party):
    ticket = await database_sync_to_async(_api_ticket_then_logout)(party.player)
    accepted, _, socket = await connect(ticket=ticket)
    assert accepted
    assert await refused_with(socket) == ("AUTH_REQUIRED", 4401)


# --- the cache or the database unreachable at connect ---------------------------


async def test_an_unreachable_cache_at_connect_is_service_unavailable_and_1013(
    connect, party, caplog
):
    ticket = ticket_issue(user_id=party.player.pk)
    # Redis on a port nothing listens on: every cache call is refused.
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    with override_settings(CACHES=unreachable):
        accepted, _, socket = await connect(ticket=ticket)
        assert accepted
        assert await refused_with(socket) == ("SERVICE_UNAVAILABLE", 1013)
    warnings = [r for r in caplog.records if r.name == consumers.logger.name]
    assert len(warnings) == 1
    assert warnings[0].levelname == "WARNING" and warnings[0].exc_info is None
    # Not used up: the same ticket works once the cache is back.
    accepted, _, socket = await connect(ticket=ticket)
    assert (await socket.recv())["type"] == "hello"


@contextlib.contextmanager
def database_unreachable() -> Iterator[None]:
    """New database connections go to a port nothing listens on. The test's
    own connection stays open; the consumer's threads open theirs per query."""
    settings_dict = connections.settings[DEFAULT_DB_ALIAS]
    port = settings_dict["PORT"]
    settings_dict["PORT"] = str(free_port())
    try:
        yield
    finally:
        settings_dict["PORT"] = port


async def test_an_unreachable_database_at_connect_is_service_unavailable_and_1013(connect, party):
    ticket = ticket_issue(user_id=party.player.pk)
    cookie = await database_sync_to_async(session_cookie)(party.host)
    with database_unreachable():
        _, _, by_ticket = await connect(ticket=ticket)
        assert await refused_with(by_ticket) == ("SERVICE_UNAVAILABLE", 1013)
        # The session is read before the consumer runs: the same answer.
        _, _, by_session = await connect(cookie=cookie)
        assert await refused_with(by_session) == ("SERVICE_UNAVAILABLE", 1013)
    # The ticket was given back (its socket was refused for the outage).
    _, _, socket = await connect(ticket=ticket)
    assert (await socket.recv())["type"] == "hello"
    _, _, socket = await connect(cookie=cookie)
    assert (await socket.recv())["userId"] == party.host.pk


# --- any JSON text is valid input --------------------------------------------------


async def test_lone_surrogates_in_a_ping_are_echoed_as_valid_json(hello, party):
    socket = await hello(party.player)
    text, pong = await raw_reply(socket, r'{"type":"ping","ref":"\ud800","t":"x\udfffy"}')
    assert pong == {"type": "pong", "t": "x\udfffy", "seqs": {}, "ref": "\ud800"}
    # A high surrogate alone, nested values and keys, and a proper pair (one
    # code point, which stays as it is): all echoed, all parse back the same.
    text, pong = await raw_reply(
        socket,
        r'{"type":"ping","ref":"\ud83d","t":{"\udc00":["\ud83d\ude00","é",'
        r'{"k\ud800":null}]},"\ud800":{"\udc00":1}}',
    )
    assert pong["ref"] == "\ud83d"
    assert pong["t"] == {"\udc00": ["😀", "é", {"k\ud800": None}]}
    assert "😀" in text and "é" in text  # only the surrogates are escaped


async def test_lone_surrogates_anywhere_get_the_usual_answers_and_keep_the_socket(hello, party):
    socket = await hello(party.player)
    game_id = party.game.pk
    _, unknown = await raw_reply(socket, r'{"type":"\ud800","ref":"\udbff"}')
    assert (unknown["code"], unknown["ref"]) == ("UNKNOWN_TYPE", "\udbff")
    _, bad_id = await raw_reply(socket, r'{"type":"join","gameId":"\ud800","ref":"\ud800"}')
    assert (bad_id["code"], bad_id["ref"]) == ("INVALID_MESSAGE", "\ud800")
    _, not_joined = await raw_reply(
        socket, f'{{"type":"leave","gameId":{game_id},"ref":"\\ud800"}}'
    )
    assert (not_joined["code"], not_joined["ref"]) == ("NOT_JOINED", "\ud800")
    _, joined = await raw_reply(
        socket, f'{{"type":"join","gameId":{game_id},"ref":"j\\udc00","\\ud800":1}}'
    )
    assert (joined["type"], joined["ref"]) == ("joined", "j\udc00")
    assert joined["leaderboard"]["gameId"] == game_id
    _, emoji = await raw_reply(
        socket,
        f'{{"type":"reaction:send","gameId":{game_id},"emoji":"\\ud83d","ref":"\\ud800"}}',
    )
    assert (emoji["code"], emoji["ref"]) == ("INVALID_EMOJI", "\ud800")
    # Still open, still following the game, still answering.
    while not await socket.nothing():
        assert (await socket.recv())["type"] == "presence:diff"
    await socket.send({"type": "ping", "t": 1})
    pong = await socket.recv()
    assert (pong["type"], pong["seqs"]) == ("pong", {str(game_id): joined["seq"]})
    assert await get_presence().online(game_id=game_id) == [party.player.pk]
    # The user is offline as soon as the socket is gone.
    await socket.comm.disconnect()
    assert await get_presence().online(game_id=game_id) == []


async def test_a_raw_lone_surrogate_in_the_text_is_measured_not_raised(hello, party):
    # daphne only hands over valid UTF-8; other servers (and this communicator)
    # may pass a str holding a raw surrogate: the size check must not raise.
    socket = await hello(party.player)
    _, reply = await raw_reply(socket, '{"type":"ping","ref":"\ud800"}')
    assert (reply["type"], reply["ref"]) == ("pong", "\ud800")
    await socket.send_text('{"type":"ping","t":"' + "\ud800" * 1400 + '"}')  # 4200 bytes
    assert await socket.closed_with() == 1009


async def test_a_crash_while_following_a_game_still_leaves_it(hello, party, monkeypatch):
    """Whatever ends the application, the user must not stay online."""
    socket = await hello(party.player)
    assert (await socket.join(party.game.pk))["type"] == "joined"
    assert await get_presence().online(game_id=party.game.pk) == [party.player.pk]

    async def broken(self: consumers.LeaderboardConsumer, message: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(consumers.LeaderboardConsumer, "_leave", broken)
    await socket.send({"type": "leave", "gameId": party.game.pk})
    with pytest.raises(RuntimeError, match="a bug"):
        while True:  # frames already on their way (presence diffs) come first
            assert (await socket.comm.receive_output(2))["type"] == "websocket.send"
    assert await get_presence().online(game_id=party.game.pk) == []
