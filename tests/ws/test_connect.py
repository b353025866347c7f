"""Connecting to /ws/ (docs/protocol.md, Connecting): origin, ticket, session, hello."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.tickets import ticket_issue
from config.asgi import application
from tests.factories import UserFactory
from tests.ws.conftest import ORIGIN, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def test_foreign_origin_is_refused_before_the_upgrade(connect, party):
    accepted, code, _ = await connect(
        party.player, headers=[(b"origin", b"http://evil.example"), (b"host", b"testserver")]
    )
    # The origin validator closes before accept (the communicator reports the
    # default 1000); daphne turns a close before accept into HTTP 403.
    assert (accepted, code) == (False, 1000)


@pytest.mark.parametrize("path", ["/elsewhere/", "/ws", "/ws/extra/"])
async def test_only_the_ws_path_is_served(party, path):
    communicator = WebsocketCommunicator(
        application, f"{path}?ticket={ticket_issue(user_id=party.player.pk)}", headers=ORIGIN
    )
    accepted, code = await communicator.connect()
    assert (accepted, code) == (False, 1000)  # refused before accept: HTTP 403 under daphne
    await communicator.disconnect()


async def test_the_ws_path_under_a_root_path_is_served(party):
    communicator = WebsocketCommunicator(
        application, f"/envelope/ws/?ticket={ticket_issue(user_id=party.player.pk)}", headers=ORIGIN
    )
    communicator.scope["root_path"] = "/envelope"
    accepted, _ = await communicator.connect()
    assert accepted
    assert json.loads(await communicator.receive_from())["type"] == "hello"
    await communicator.disconnect()


async def test_missing_origin_is_refused(connect, party):
    accepted, _, _ = await connect(party.player, headers=[(b"host", b"testserver")])
    assert accepted is False


async def test_no_credentials_gets_auth_required_then_4401(connect, transactional_db):
    accepted, _, socket = await connect()
    assert accepted
    frame = await socket.recv()
    assert frame["type"] == "leaderboard:error"
    assert frame["code"] == "AUTH_REQUIRED"
    assert isinstance(frame["message"], str) and frame["message"]
    assert await socket.closed_with() == 4401


@pytest.mark.parametrize("ticket", ["forged", "eyJ1IjoxfQ:1tX:abc", ""])
async def test_forged_ticket_is_not_a_user(connect, transactional_db, ticket):
    accepted, _, socket = await connect(ticket=ticket)
    assert accepted
    assert (await socket.recv())["code"] == "AUTH_REQUIRED"
    assert await socket.closed_with() == 4401


async def test_expired_ticket_is_refused(connect, party, settings):
    ticket = ticket_issue(user_id=party.player.pk)
    settings.ENVELOPE_WS_TICKET_MAX_AGE = -1  # every ticket is now older than allowed
    accepted, _, socket = await connect(ticket=ticket)
    assert accepted
    assert (await socket.recv())["code"] == "AUTH_REQUIRED"
    assert await socket.closed_with() == 4401


async def test_ticket_of_a_deleted_user_gets_user_not_found(connect, transactional_db):
    user = await database_sync_to_async(UserFactory)()
    ticket = ticket_issue(user_id=user.pk)
    await database_sync_to_async(user.delete)()
    accepted, _, socket = await connect(ticket=ticket)
    assert accepted
    frame = await socket.recv()
    assert frame["type"] == "leaderboard:error"
    assert frame["code"] == "USER_NOT_FOUND"
    assert await socket.closed_with() == 4401


async def test_ticket_of_an_inactive_user_gets_user_not_found(connect, transactional_db):
    user = await database_sync_to_async(UserFactory)(is_active=False)
    accepted, _, socket = await connect(user)
    assert accepted
    assert (await socket.recv())["code"] == "USER_NOT_FOUND"
    assert await socket.closed_with() == 4401


async def test_ticket_gets_hello(connect, party):
    before = datetime.now(UTC) - timedelta(seconds=1)
    accepted, _, socket = await connect(party.player)
    assert accepted
    frame = await socket.recv()
    assert set(frame) == {"type", "userId", "serverTime"}
    assert frame["type"] == "hello"
    assert frame["userId"] == party.player.pk
    assert frame["serverTime"].endswith("Z")
    server_time = datetime.fromisoformat(frame["serverTime"].replace("Z", "+00:00"))
    assert before <= server_time <= datetime.now(UTC) + timedelta(seconds=1)


async def test_session_cookie_authenticates(connect, party):
    cookie = await database_sync_to_async(session_cookie)(party.host)
    accepted, _, socket = await connect(cookie=cookie, headers=ORIGIN)
    assert accepted
    frame = await socket.recv()
    assert frame == {"type": "hello", "userId": party.host.pk, "serverTime": frame["serverTime"]}


async def test_valid_ticket_wins_over_the_session(connect, party):
    cookie = await database_sync_to_async(session_cookie)(party.host)
    ticket = ticket_issue(user_id=party.player.pk)
    accepted, _, socket = await connect(ticket=ticket, cookie=cookie)
    assert accepted
    assert (await socket.recv())["userId"] == party.player.pk


async def test_session_of_a_deactivated_user_is_refused(connect, party):
    cookie = await database_sync_to_async(session_cookie)(party.host)
    party.host.is_active = False
    await database_sync_to_async(party.host.save)()
    accepted, _, socket = await connect(cookie=cookie)
    assert accepted
    # Django's session auth already refuses an inactive user: no user at all.
    assert (await socket.recv())["code"] == "AUTH_REQUIRED"
    assert await socket.closed_with() == 4401


async def test_frames_after_an_auth_failure_are_ignored(connect, transactional_db):
    _, _, socket = await connect()
    assert (await socket.recv())["code"] == "AUTH_REQUIRED"
    assert await socket.closed_with() == 4401
    await socket.send({"type": "ping"})
    assert await socket.nothing()
