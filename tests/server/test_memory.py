"""server/memory.py on the real daphne classes: what our server no longer
keeps per WebSocket connection."""

from __future__ import annotations

import asyncio

import pytest
from daphne import ws_protocol
from twisted.web.http import HTTPChannel

from server.daphne_server import WebRequest, WebSocketFactory
from server.memory import InputQueue
from tests.server.asgi_app import make_application
from tests.server.harness import Client, client_frame, start


async def test_a_connection_reads_the_factorys_options_from_its_class(monkeypatch):
    server = start(
        monkeypatch,
        make_application(),
        ping_timeout=31,
        websocket_handshake_timeout=29,
        websocket_max_message_size=1234,
        websocket_max_frame_size=567,
    )
    factory = server.ws_factory
    assert isinstance(factory, WebSocketFactory)
    client = Client(server)
    await client.upgrade()
    protocol = client.websocket
    assert type(protocol) is factory.protocol
    config = protocol.CONFIG_ATTRS
    assert len(config) > 20
    # autobahn copied none of them onto the connection ...
    assert not set(config) & set(vars(protocol))
    # ... and it reads every one as the factory has it (daphne's run() set them).
    for name in config:
        assert getattr(protocol, name) == getattr(factory, name), name
    assert (protocol.autoPingTimeout, protocol.openHandshakeTimeout) == (31, 29)
    assert (protocol.maxMessagePayloadSize, protocol.maxFramePayloadSize) == (1234, 567)
    assert protocol.allowNullOrigin is True
    # The factory's accept function is called as the factory defines it.
    assert protocol.perMessageCompressionAccept([]) is None


async def test_daphnes_own_classes_and_other_factories_keep_their_options(monkeypatch):
    first = start(monkeypatch, make_application(), ping_timeout=31)
    second = start(monkeypatch, make_application(), ping_timeout=47)
    assert first.ws_factory.protocol is not second.ws_factory.protocol
    assert first.ws_factory.protocol.autoPingTimeout == 31
    assert second.ws_factory.protocol.autoPingTimeout == 47
    assert "autoPingTimeout" not in vars(ws_protocol.WebSocketProtocol)


async def test_an_upgraded_connection_lets_go_of_its_http_channel_and_request(monkeypatch):
    server = start(monkeypatch, make_application())
    client = Client(server)
    # The HTTP channel registers itself as the transport's producer.
    channel = client.transport.producer
    assert isinstance(channel, HTTPChannel)
    client.send_upgrade()
    assert isinstance(client.websocket, ws_protocol.WebSocketProtocol)  # handed over
    assert client.transport.producer is None
    assert channel.requests == []
    # And the socket works.
    await asyncio.sleep(0)
    client.transport.clear()
    await client.send(client_frame(b"hello"))
    assert [payload for _, _, payload in client.frames()] == [b"len 5"]


async def test_a_plain_http_request_keeps_its_channel(monkeypatch):
    server = start(monkeypatch, make_application())
    client = Client(server)
    channel = client.transport.producer
    client.channel.dataReceived(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n")
    (request,) = channel.requests
    assert isinstance(request, WebRequest)
    assert client.transport.producer is channel
    for _ in range(10):
        await asyncio.sleep(0)
    response = client.transport.value()
    assert response.startswith(b"HTTP/1.1 200") and b"\r\nenvelope server\r\n" in response


async def test_each_connection_reads_its_events_from_an_input_queue(monkeypatch):
    server = start(monkeypatch, make_application())
    client = Client(server)
    await client.upgrade()
    assert type(client.websocket.application_queue) is InputQueue


async def test_the_input_queue_hands_events_over_in_order():
    queue = InputQueue()
    queue.put_nowait("connect")
    queue.put_nowait("receive")
    assert [await queue.get(), await queue.get()] == ["connect", "receive"]
    assert queue._items is None  # an idle connection holds no deque


async def test_a_waiting_reader_wakes_on_the_next_event():
    queue = InputQueue()
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()
    queue.put_nowait("receive")
    assert await asyncio.wait_for(reader, 1) == "receive"


async def test_a_reader_cancelled_after_the_wake_up_leaves_the_event_queued():
    queue = InputQueue()
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("disconnect")
    reader.cancel()  # before it ran again to take the event
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await asyncio.wait_for(queue.get(), 1) == "disconnect"
