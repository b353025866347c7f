"""WebSocket consumer fixtures: communicators that always disconnect, a game
with players, and helpers that read the channel layer's groups."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from accounts.models import User
from accounts.tickets import ticket_issue
from config.asgi import application
from games.models import Game
from leaderboard import presence, reactions
from leaderboard.fanout import close_hub
from tests.factories import GameFactory, ParticipantFactory, UserFactory, make_ceremony, pick_all

ORIGIN = [(b"origin", b"http://testserver"), (b"host", b"testserver")]


@pytest.fixture(autouse=True)
def _fresh_realtime_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own layer, presence and reaction state: nothing a
    previous test (or a previous run, on Redis) left behind can leak in."""
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    channel_layers.backends.clear()
    monkeypatch.setattr(presence, "_store", None)
    monkeypatch.setattr(reactions, "ranks", reactions.RankCache())
    monkeypatch.setattr(reactions, "batcher", reactions.ReactionBatcher())
    # Short windows keep the tests quick; batching itself is tested with its own.
    monkeypatch.setattr(presence, "diffs", presence.DiffBatcher(window=0.05))


class Socket:
    """A WebsocketCommunicator that speaks JSON."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.comm = communicator

    async def send(self, frame: Any) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def recv(self, wait: float = 2) -> dict[str, Any]:
        return json.loads(await self.comm.receive_from(wait))

    async def recv_until(self, type_: str, wait: float = 2) -> list[dict[str, Any]]:
        """Frames up to and including the first one of `type_`."""
        frames = [await self.recv(wait)]
        while frames[-1]["type"] != type_:
            frames.append(await self.recv(wait))
        return frames

    async def closed_with(self, wait: float = 2) -> int | None:
        output = await self.comm.receive_output(wait)
        assert output["type"] == "websocket.close", output
        return output.get("code")

    async def nothing(self, wait: float = 0.3) -> bool:
        return await self.comm.receive_nothing(wait)

    async def join(self, game_id: int, **fields: Any) -> dict[str, Any]:
        await self.send({"type": "join", "gameId": game_id, **fields})
        return await self.recv()


Connect = Callable[..., Awaitable[tuple[bool, Any, Socket]]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """connect(user=…, ticket=…, cookie=…, headers=…, extensions=…) → (accepted, detail, Socket).

    `user` authenticates with a fresh ticket; every socket is disconnected
    at teardown."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(
        user: User | None = None,
        *,
        ticket: str | None = None,
        cookie: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> tuple[bool, Any, Socket]:
        if user is not None:
            ticket = ticket_issue(user_id=user.pk)
        path = f"/ws/?ticket={ticket}" if ticket is not None else "/ws/"
        all_headers = list(headers if headers is not None else ORIGIN)
        if cookie:
            all_headers.append((b"cookie", cookie.encode()))
        communicator = WebsocketCommunicator(application, path, headers=all_headers)
        if extensions:  # what a server offers beside ASGI (ours: server/extension.py)
            communicator.scope["extensions"] = extensions
        opened.append(communicator)
        accepted, detail = await communicator.connect()
        return accepted, detail, Socket(communicator)

    yield open_socket
    for communicator in opened:
        # A test that timed out waiting for a frame has had its application
        # cancelled: disconnecting it re-raises that, and the hub must still
        # be closed below, or its database connection outlives the test.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await communicator.disconnect()
    # The process-wide fan-out hub outlives its sockets; this loop ends here.
    await close_hub()
    # Test code's own ORM calls ran in asgiref's thread-sensitive thread.
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
async def hello(connect: Connect) -> Callable[[User], Awaitable[Socket]]:
    """hello(user) → a connected Socket whose `hello` frame was consumed."""

    async def open_authenticated(user: User) -> Socket:
        accepted, _, socket = await connect(user)
        assert accepted
        frame = await socket.recv()
        assert frame["type"] == "hello", frame
        return socket

    return open_authenticated


@dataclass
class Party:
    game: Game
    host: User
    player: User
    outsider: User


@pytest.fixture
def party(transactional_db: None) -> Party:
    """An OPEN game of a 3-category ceremony (5, 2, 1 points): the host picks
    every first nominee, the player every second one; the outsider plays not."""
    ceremony = make_ceremony(categories=3, nominees=4, points=[5, 2, 1])
    host = UserFactory(username="hostess", display_name="Hostess")
    player = UserFactory(username="player", display_name="Player")
    outsider = UserFactory(username="outsider", display_name="Outsider")
    game = GameFactory(ceremony=ceremony, host=host)
    ParticipantFactory(game=game, user=player)
    pick_all(game, host, choose=0)
    pick_all(game, player, choose=1)
    return Party(game=game, host=host, player=player, outsider=outsider)


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def group_members(group: str) -> set[str]:
    """Channel names in a layer group, for the in-memory and the Redis layer."""
    layer = get_channel_layer()
    if hasattr(layer, "_group_key"):  # channels_redis
        connection = layer.connection(layer.consistent_hash(group))
        return {
            member.decode() for member in await connection.zrange(layer._group_key(group), 0, -1)
        }
    return set(layer.groups.get(group, {}))
