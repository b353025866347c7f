"""The real-time path end to end: two daphne processes sharing PostgreSQL and
Redis, real `websockets` clients, reveals made through the HTTP API."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import (
    http,
    joined,
    make_party,
    open_socket,
    recv,
    recv_until,
    ticket,
)

pytestmark = pytest.mark.e2e


def standings(frame):
    return [(p["userId"], p["totalScore"], p["rank"]) for p in frame["players"]]


async def close_all(*sockets):
    await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)


def reveal(stack, party, index, nominee):
    category_id, _, nominations = party.categories[index]
    status, body = http(
        stack.servers[0],
        "POST",
        f"/api/categories/{category_id}/winner",
        token=party.staff_token,
        body={"nominationId": nominations[nominee]},
    )
    assert status == 200, body


async def test_reveals_reach_both_processes_lock_complete_and_undo(stack):
    party = make_party(stack, "flow", 3, [5, 2, 1])
    a, b = stack.servers
    host, _ = await joined(a, party.players[0], party.game_id)
    guest, joined_b = await joined(b, party.players[1], party.game_id)
    # On the same process as `guest`: each form is framed once and shared.
    watcher, _ = await joined(b, party.players[2], party.game_id, board="top")
    try:
        assert joined_b["game"]["status"] == "OPEN"
        start = joined_b["seq"]
        await asyncio.to_thread(reveal, stack, party, 0, 1)  # player 1 picked nominee 1
        updates = []
        for socket in (host, guest, watcher):
            frames = await recv_until(socket, "leaderboard:update")
            status = next(f for f in frames if f["type"] == "game:status")
            assert (status["status"], status["seq"]) == ("LIVE", start + 1)
            update = frames[-1]
            assert update["seq"] == start + 2
            assert standings(update)[0] == (party.players[1].id, 5, 1)
            assert update["lastRevealed"]["nominationId"] == party.categories[0][2][1]
            updates.append(update)
        assert "ranks" not in updates[1]
        assert updates[2]["ranks"] == [
            [p["userId"], p["rank"], p["totalScore"], p["correctCount"]]
            for p in updates[1]["players"]
        ]
        await asyncio.to_thread(reveal, stack, party, 1, 0)
        await asyncio.to_thread(reveal, stack, party, 2, 2)
        for socket in (host, guest):
            frames = await recv_until(socket, "game:completed")
            updates = [f for f in frames if f["type"] == "leaderboard:update"]
            assert standings(updates[-1]) == [
                (party.players[1].id, 5, 1),
                (party.players[0].id, 2, 2),
                (party.players[2].id, 1, 3),
            ]
            assert frames[-1]["completedAt"].endswith("Z")
        category_id = party.categories[0][0]
        status, _ = await asyncio.to_thread(
            http, a, "DELETE", f"/api/categories/{category_id}/winner", token=party.staff_token
        )
        assert status == 200
        for socket in (host, guest):
            frames = await recv_until(socket, "leaderboard:update")
            assert any(f["type"] == "game:status" and f["status"] == "LIVE" for f in frames)
            assert standings(frames[-1]) == [
                (party.players[0].id, 2, 1),
                (party.players[2].id, 1, 2),
                (party.players[1].id, 0, 3),
            ]
    finally:
        await close_all(host, guest, watcher)


async def test_idle_sockets_outlive_the_redis_read_timeout(stack):
    """A socket that hears nothing for longer than the Redis client's read
    timeout (redis-py's default is 5 s, as long as channels_redis's blocking
    pop) must stay open: the layer's receive must not time out and crash it."""
    party = make_party(stack, "idle", 1, [1])
    sockets = [
        (await joined(server, party.players[0], party.game_id))[0] for server in stack.servers
    ]
    try:
        await asyncio.sleep(7)
        for socket in sockets:
            await socket.send(json.dumps({"type": "ping", "t": "still here"}))
            assert (await recv_until(socket, "pong"))[-1]["t"] == "still here"
    finally:
        await close_all(*sockets)


async def test_rejoin_with_last_seq_gets_exactly_the_missed_events(stack):
    party = make_party(stack, "resume", 2, [3, 1])
    a, b = stack.servers
    socket, first = await joined(a, party.players[0], party.game_id)
    await socket.close()
    await asyncio.to_thread(reveal, stack, party, 0, 0)
    again, frame = await joined(b, party.players[0], party.game_id, lastSeq=first["seq"])
    try:
        assert frame["recovered"] is True
        assert frame["seq"] == first["seq"] + 2
        missed = [await recv(again) for _ in range(2)]
        assert [(f["type"], f["seq"]) for f in missed] == [
            ("game:status", first["seq"] + 1),
            ("leaderboard:update", first["seq"] + 2),
        ]
        assert standings(missed[1])[0] == (party.players[0].id, 3, 1)
    finally:
        await close_all(again)


async def test_presence_crosses_processes(stack):
    party = make_party(stack, "presence", 2, [1])
    a, b = stack.servers
    watcher, _ = await joined(a, party.players[0], party.game_id)
    try:
        await recv_until(watcher, "presence:diff")  # my own arrival
        newcomer, frame = await joined(b, party.players[1], party.game_id)
        try:
            assert {entry["userId"] for entry in frame["online"]} == {
                party.players[0].id,
                party.players[1].id,
            }
            diff = (await recv_until(watcher, "presence:diff"))[-1]
            assert diff["joins"] == [{"userId": party.players[1].id, "name": party.players[1].name}]
            assert diff["onlineCount"] == 2
        finally:
            await newcomer.close()
        diff = (await recv_until(watcher, "presence:diff"))[-1]
        assert diff["leaves"] == [{"userId": party.players[1].id, "name": party.players[1].name}]
        assert diff["onlineCount"] == 1
    finally:
        await close_all(watcher)


async def test_logout_closes_sockets_on_both_processes(stack):
    party = make_party(stack, "logout", 2, [1])
    a, b = stack.servers
    player = party.players[1]
    on_a, _ = await joined(a, player, party.game_id)
    on_b, _ = await joined(b, player, party.game_id)
    bystander, _ = await joined(b, party.players[0], party.game_id)
    try:
        status, _ = await asyncio.to_thread(http, a, "POST", "/api/auth/logout", token=player.token)
        assert status == 204
        for socket in (on_a, on_b):
            frames = await recv_until(socket, "leaderboard:error")
            assert frames[-1]["code"] == "AUTH_REQUIRED"
            with pytest.raises(ConnectionClosed):
                while True:
                    await recv(socket)
            assert socket.close_code == 4401
        await bystander.send(json.dumps({"type": "ping", "t": 1}))
        assert (await recv_until(bystander, "pong"))[-1]["t"] == 1
    finally:
        await close_all(on_a, on_b, bystander)


async def test_300_sockets_at_once_then_one_reveal_reaches_all(stack):
    users, per_user = 30, 10
    party = make_party(stack, "crowd", users, [2, 1])
    servers = stack.servers
    tickets = [
        await asyncio.to_thread(ticket, servers[k % 2], player)
        for k, player in enumerate(party.players)
    ]

    async def one(index: int):
        user = index % users
        server = servers[index % 2]
        socket = await open_socket(server, tickets[user])
        hello = await recv(socket, 30)
        assert hello == {**hello, "type": "hello", "userId": party.players[user].id}
        await socket.send(json.dumps({"type": "join", "gameId": party.game_id}))
        frame = (await recv_until(socket, "joined", 30))[-1]
        assert frame["gameId"] == party.game_id
        return socket

    started = time.monotonic()
    results = await asyncio.gather(
        *(one(i) for i in range(users * per_user)), return_exceptions=True
    )
    sockets = [r for r in results if not isinstance(r, BaseException)]
    failures = [r for r in results if isinstance(r, BaseException)]
    connect_seconds = time.monotonic() - started
    try:
        assert not failures, failures[:3]
        assert len(sockets) == 300
        # Let presence diffs of the burst settle, then time one reveal.
        await asyncio.sleep(1)
        for socket in sockets:
            while True:
                try:
                    await asyncio.wait_for(socket.recv(), 0.001)
                except TimeoutError:
                    break

        async def until_update(socket) -> float:
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
                if frame["type"] == "leaderboard:update":
                    return time.monotonic()

        waiters = [asyncio.create_task(until_update(socket)) for socket in sockets]
        sent = time.monotonic()
        await asyncio.to_thread(reveal, stack, party, 0, 0)
        arrivals = await asyncio.gather(*waiters)
        print(
            f"\n300 sockets (2 processes): connect+hello+joined {connect_seconds:.2f}s; "
            f"reveal API call → last socket {max(arrivals) - sent:.3f}s "
            f"(first {min(arrivals) - sent:.3f}s)"
        )
    finally:
        await close_all(*sockets)


async def test_real_daphne_sends_the_contracts_close_codes_and_refuses_foreign_origins(stack):
    """Over a real daphne: an oversized frame closes with 1009 (autobahn's
    own sendClose refuses that code: server/close_codes.py), a binary
    frame is INVALID_MESSAGE, and a foreign Origin gets HTTP 403."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    party = make_party(stack, "codes", 2, [1])
    server = stack.servers[0]
    socket, _ = await joined(server, party.players[1], party.game_id)
    try:
        await socket.send(b"\x00\x01")
        error = (await recv_until(socket, "leaderboard:error"))[-1]
        assert error["code"] == "INVALID_MESSAGE"
        await socket.send(json.dumps({"type": "ping", "t": "x" * 5000}))
        with pytest.raises(ConnectionClosed):
            while True:
                await recv(socket)
        assert socket.close_code == 1009
    finally:
        await close_all(socket)
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            f"{server.ws_url}?ticket={ticket(server, party.players[1])}",
            origin="http://evil.example",
            proxy=None,
        )
    assert refused.value.response.status_code == 403
    assert "Traceback" not in server.log()


async def test_restart_closes_with_1012_and_clients_resume_with_last_seq(stack):
    """Runs last in this module: it restarts one server process."""
    party = make_party(stack, "restart", 2, [1, 1])
    a, b = stack.servers
    socket, first = await joined(a, party.players[1], party.game_id)
    try:
        await asyncio.to_thread(a.stop)
        with pytest.raises(ConnectionClosed):
            while True:
                await recv(socket)
        assert socket.close_code == 1012
    finally:
        await close_all(socket)
    # A reveal while the client is away, through the other process.
    category_id, _, nominations = party.categories[0]
    status, body = http(
        b,
        "POST",
        f"/api/categories/{category_id}/winner",
        token=party.staff_token,
        body={"nominationId": nominations[1]},
    )
    assert status == 200, body
    await asyncio.to_thread(a.start)
    again, rejoined = await joined(a, party.players[1], party.game_id, lastSeq=first["seq"])
    try:
        assert rejoined["recovered"] is True
        missed = [await recv(again) for _ in range(rejoined["seq"] - first["seq"])]
        assert [f["seq"] for f in missed] == list(range(first["seq"] + 1, rejoined["seq"] + 1))
        assert missed[-1]["type"] == "leaderboard:update"
        assert missed[-1]["players"][0]["userId"] == party.players[1].id
    finally:
        await close_all(again)
