"""server/close_codes.py on the real daphne/autobahn protocol: close codes
1009/1012/1013 reach the client, and every inbound message over 4 KiB is
closed with a close frame 1009, never a TCP drop."""

from __future__ import annotations

import inspect

import pytest
from daphne import ws_protocol

from leaderboard.protocol import MAX_FRAME_BYTES
from server.close_codes import INBOUND_MESSAGE_LIMIT, CloseCodes
from server.daphne_server import WebSocketProtocol
from tests.server.asgi_app import make_application
from tests.server.harness import Client, client_frame, close_code, start

KIB = 1024


@pytest.fixture
async def connected(monkeypatch):
    received: list[str] = []
    server = start(monkeypatch, make_application(received))
    client = Client(server)
    await client.upgrade()
    client.received = received
    return client


def assert_closed_too_big(client: Client) -> None:
    frames = client.frames()
    assert [(opcode, close_code(payload)) for _, opcode, payload in frames] == [(0x8, 1009)]
    assert frames[0][2][2:] == b"message too big"
    # The closing handshake, not a TCP drop (the client would see 1006).
    assert not client.transport.disconnecting
    assert client.websocket.state == client.websocket.STATE_CLOSING


def test_the_limit_is_the_contracts():
    assert INBOUND_MESSAGE_LIMIT == MAX_FRAME_BYTES == 4 * KIB


@pytest.mark.parametrize("name", [n for n, v in vars(CloseCodes).items() if inspect.isfunction(v)])
def test_every_override_replaces_a_method_of_daphnes_protocol(name):
    # Renamed in daphne or autobahn, an override would silently never run.
    assert callable(getattr(ws_protocol.WebSocketProtocol, name, None)), name
    assert WebSocketProtocol.__mro__.index(CloseCodes) == 1


async def test_a_message_of_4_kib_reaches_the_application(connected):
    await connected.send(client_frame(b"x" * (4 * KIB)))
    assert [payload for _, _, payload in connected.frames()] == [b"len 4096"]


@pytest.mark.parametrize("size", [4 * KIB + 1, 5 * KIB])
async def test_a_message_over_4_kib_is_closed_with_1009(connected, size):
    await connected.send(client_frame("é".encode() * (size // 2) + b"x" * (size % 2)))
    assert_closed_too_big(connected)
    assert connected.received == []


async def test_a_2_mib_frame_is_refused_from_its_header_alone(connected):
    frame = client_frame(b"", announce=2 * KIB * KIB)  # the header and mask only
    await connected.send(frame)
    assert_closed_too_big(connected)
    # The rest of its payload is read and dropped; nothing reaches the application.
    await connected.send(b"\0" * (64 * KIB))
    assert connected.frames() == [] and connected.received == []


async def test_a_fragmented_message_is_refused_at_the_fragment_past_4_kib(connected):
    await connected.send(client_frame(b"a" * KIB, fin=False))
    for _ in range(3):
        await connected.send(client_frame(b"a" * KIB, opcode=0x0, fin=False))
    assert connected.frames() == []  # 4 KiB so far: within the limit
    await connected.send(client_frame(b"a", opcode=0x0, fin=False))
    assert_closed_too_big(connected)
    assert connected.received == []


async def test_autobahns_own_limits_close_with_1009_too(monkeypatch):
    # A frame limit below 4 KiB trips autobahn's own check first.
    server = start(monkeypatch, make_application(), websocket_max_frame_size=1000)
    client = Client(server)
    await client.upgrade()
    await client.send(client_frame(b"x" * 2000))
    assert_closed_too_big(client)


@pytest.mark.parametrize("code", [1009, 1012, 1013, 1000, 4000])
async def test_the_application_closes_with_its_code(connected, code):
    # autobahn's sendClose refuses 1009/1012/1013; the client saw 1011.
    await connected.send(client_frame(f"close {code}".encode()))
    frames = connected.frames()
    assert [(opcode, close_code(payload)) for _, opcode, payload in frames] == [(0x8, code)]
