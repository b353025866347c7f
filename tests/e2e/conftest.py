"""End-to-end fixtures: one LiveStack (two daphne processes sharing PostgreSQL
and Redis) per module, HTTP helpers and real `websockets` clients."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import require_live_stack_services
from tests.liveserver import LiveStack, Server

PASSWORD = "e2e-password-123"


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    require_live_stack_services()
    with LiveStack(processes=2) as live:
        live.failed = False  # type: ignore[attr-defined]
        yield live
        if live.failed:
            for index, server in enumerate(live.servers):
                # Access-log lines drown the tracebacks: leave them out.
                lines = [line for line in server.log().splitlines() if " - - [" not in line]
                print(f"--- daphne {index} log ---\n" + "\n".join(lines[:200]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # Remember a failure so the stack fixture prints the servers' logs.
    outcome = yield
    report = outcome.get_result()
    live = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(live, LiveStack):
        live.failed = True


def http(
    server: Server, method: str, path: str, *, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    """One API call: (status, decoded JSON body or None)."""
    request = urllib.request.Request(
        f"{server.url}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Origin": server.url}
        | ({"Authorization": f"Token {token}"} if token else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


@dataclass
class Player:
    id: int
    username: str
    name: str
    token: str


@dataclass
class Party:
    game_id: int
    ceremony_id: int
    # [(category id, points, [nomination ids])] in ceremony order
    categories: list[tuple[int, int, list[int]]]
    players: list[Player]  # players[0] hosts
    staff_token: str


_PARTY_SCRIPT = """
import asyncio
import json
from accounts.models import User
from rest_framework.authtoken.models import Token
from games import services
from games.ceremony_file import parse_ceremony
tag, count, points = {tag!r}, {count!r}, {points!r}
doc = {{"name": "E2E " + tag, "date": "2025-03-02", "categories": [
    {{"name": f"Category {{i}}", "points": p,
      "nominations": [{{"title": f"Nominee {{i}}.{{j}}"}} for j in range(3)]}}
    for i, p in enumerate(points)]}}
ceremony = services.ceremony_create(data=parse_ceremony(json.dumps(doc)))
staff, _ = User.objects.get_or_create(username="staff", defaults={{"is_staff": True}})
players = []
for k in range(count):
    user = User.objects.create_user(f"{{tag}}-p{{k}}", password={password!r},
                                    display_name=f"Player {{k:02d}} {{tag}}")
    players.append(user)
game = services.game_create(host=players[0], ceremony_id=ceremony.pk, name="E2E " + tag)
categories = list(ceremony.categories.order_by("order"))
for k, user in enumerate(players):
    if k:
        services.game_join(user=user, access_code=game.access_code)
    for category in categories:
        nominees = list(category.nominations.order_by("order"))
        services.pick_submit(game_id=game.pk, user=user, category_id=category.pk,
                             nomination_id=nominees[k % 3].pk)
print(json.dumps({{
    "game_id": game.pk, "ceremony_id": ceremony.pk,
    "categories": [[c.pk, c.points, [n.pk for n in c.nominations.order_by("order")]]
                   for c in categories],
    "players": [[u.pk, u.username, u.display_name, Token.objects.create(user=u).key]
                for u in players],
    "staff_token": Token.objects.get_or_create(user=staff)[0].key,
}}))
"""


def make_party(stack: LiveStack, tag: str, count: int, points: list[int]) -> Party:
    """A fresh ceremony and game: player k picks nominee k % 3 everywhere."""
    out = stack.shell(_PARTY_SCRIPT.format(tag=tag, count=count, points=points, password=PASSWORD))
    data = json.loads(out.strip().splitlines()[-1])
    return Party(
        game_id=data["game_id"],
        ceremony_id=data["ceremony_id"],
        categories=[(c[0], c[1], c[2]) for c in data["categories"]],
        players=[Player(*row) for row in data["players"]],
        staff_token=data["staff_token"],
    )


class Ticket(str):
    """A ticket from the API that knows whose it is, for `open_socket`."""

    server: Server
    player: Player


# Tickets `open_socket` presented. A ticket opens one socket only: a test
# that opens several sockets with one `ticket()` (each is a new connection of
# the same player) gets a fresh ticket for each socket after the first.
_presented: set[str] = set()


def ticket(server: Server, player: Player) -> Ticket:
    status, body = http(server, "POST", "/api/auth/ws-ticket", token=player.token)
    assert status == 200, body
    value = Ticket(body["ticket"])
    value.server, value.player = server, player
    return value


async def open_socket(server: Server, ticket_value: str) -> ClientConnection:
    """A socket presenting the ticket; a `Ticket` it already presented is
    replaced by a fresh one of the same player (pass a plain str to present
    a ticket as it is, e.g. to test that a used one is refused)."""
    if isinstance(ticket_value, Ticket):
        if ticket_value in _presented:
            ticket_value = await asyncio.to_thread(ticket, ticket_value.server, ticket_value.player)
        _presented.add(str(ticket_value))
    return await connect(
        f"{server.ws_url}?ticket={ticket_value}",
        origin=server.url,
        proxy=None,
        compression=None,
        open_timeout=30,
    )


async def recv(socket: ClientConnection, wait: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), wait))


async def recv_until(
    socket: ClientConnection, type_: str, wait: float = 10
) -> list[dict[str, Any]]:
    frames = [await recv(socket, wait)]
    while frames[-1]["type"] != type_:
        frames.append(await recv(socket, wait))
    return frames


async def joined(
    server: Server, player: Player, game_id: int, **fields: Any
) -> tuple[ClientConnection, dict[str, Any]]:
    """A socket on `server` that said hello and joined the game."""
    socket = await open_socket(server, ticket(server, player))
    hello = await recv(socket)
    assert hello["type"] == "hello", hello
    await socket.send(json.dumps({"type": "join", "gameId": game_id, **fields}))
    frame = await recv_until(socket, "joined")
    return socket, frame[-1]
