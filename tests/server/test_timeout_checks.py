"""daphne's timeout check (which sends the WebSocket pings) runs a slice of
connections per loop turn, so a reveal never waits behind a thousand pings."""

from __future__ import annotations

import itertools
import math
from typing import Any

from server.daphne_server import TIMEOUT_CHECK_SECONDS, TIMEOUT_CHECK_SLICE
from tests.server.asgi_app import make_application
from tests.server.harness import Client, start


def next_turn(reactor: Any) -> None:
    """One turn of the loop: the calls due now run, not those they schedule
    (a memory reactor's advance() would run those too)."""
    due = [call for call in reactor.getDelayedCalls() if call.getTime() <= reactor.seconds()]
    for call in due:
        reactor.calls.remove(call)
        call.func(*call.args, **call.kw)


async def test_pings_due_together_are_sent_a_slice_per_loop_turn(monkeypatch):
    server = start(monkeypatch, make_application(), ping_interval=20)
    reactor = server.test_reactor
    clients = [Client(server) for _ in range(2 * TIMEOUT_CHECK_SLICE + 50)]
    for client in clients:
        await client.upgrade()
        client.websocket.last_ping = 0  # every socket is due its ping

    def pinged() -> int:
        return sum(1 for client in clients if client.websocket.last_ping > 0)

    # daphne's connections hold each client's HTTP channel beside its
    # WebSocket: a slice of connections pings at most a slice of sockets.
    turns = math.ceil(len(server.connections) / TIMEOUT_CHECK_SLICE)
    assert turns >= 3
    server.timeout_checker()
    counts = [pinged()]
    for _ in range(turns - 1):
        next_turn(reactor)
        counts.append(pinged())
    assert 0 < counts[0] <= TIMEOUT_CHECK_SLICE
    steps = [after - before for before, after in itertools.pairwise(counts)]
    assert all(0 <= step <= TIMEOUT_CHECK_SLICE for step in steps), counts
    assert counts[-1] == len(clients)

    # The next round starts TIMEOUT_CHECK_SECONDS after the last slice.
    for client in clients:
        client.websocket.last_ping = 0
    reactor.advance(TIMEOUT_CHECK_SECONDS - 0.01)
    assert pinged() == 0
    reactor.rightNow += 0.01
    next_turn(reactor)
    assert 0 < pinged() <= TIMEOUT_CHECK_SLICE


async def test_a_connection_closed_between_slices_is_not_checked(monkeypatch):
    server = start(monkeypatch, make_application(), ping_interval=20)
    clients = [Client(server) for _ in range(TIMEOUT_CHECK_SLICE + 1)]
    for client in clients:
        await client.upgrade()
        client.websocket.last_ping = 0
    server.timeout_checker()
    last = clients[-1].websocket
    del server.connections[last]  # what daphne does when it closes
    next_turn(server.test_reactor)
    assert last.last_ping == 0
