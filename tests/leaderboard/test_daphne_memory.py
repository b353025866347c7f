"""config.daphne_memory: what daphne no longer keeps per WebSocket connection."""

from __future__ import annotations

import asyncio

import pytest
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from config import daphne_memory
from config.daphne_memory import InputQueue, _release_after_upgrade

daphne_memory.install()
daphne_memory.install()  # idempotent: config.asgi may be imported twice


def connected_protocol(factory: WebSocketFactory) -> WebSocketProtocol:
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
    protocol.makeConnection(
        StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8000),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 5555),
        )
    )
    return protocol


def test_a_connection_reads_the_factorys_options_from_the_class():
    factory = WebSocketFactory(object(), server="envelope-test")
    # As daphne's Server.run configures its factory:
    factory.setProtocolOptions(
        autoPingTimeout=31,
        allowNullOrigin=True,
        openHandshakeTimeout=29,
        maxMessagePayloadSize=1234,
        maxFramePayloadSize=567,
    )
    protocol = connected_protocol(factory)
    assert not set(WebSocketProtocol.CONFIG_ATTRS) & set(vars(protocol))
    for name in WebSocketProtocol.CONFIG_ATTRS:
        assert getattr(protocol, name) == getattr(factory, name), name
    assert (protocol.autoPingTimeout, protocol.openHandshakeTimeout) == (31, 29)
    assert (protocol.maxMessagePayloadSize, protocol.maxFramePayloadSize) == (1234, 567)
    assert protocol.allowNullOrigin is True
    # The factory's accept function is called as the factory defines it.
    assert protocol.perMessageCompressionAccept([]) is None


class Channel:
    """The parts of Twisted's HTTPChannel the release touches."""

    def __init__(self) -> None:
        self.requests: list[object] = []


class Request:
    def __init__(self, transport: StringTransport, channel: Channel) -> None:
        self.transport = transport
        self.channel = channel
        channel.requests.append(self)


def test_an_upgraded_connection_lets_go_of_its_http_channel_and_request():
    transport, channel = StringTransport(), Channel()
    transport.registerProducer(channel, True)
    request = Request(transport, channel)

    def upgrade(self: Request) -> None:  # what daphne's WebRequest.process does
        self.transport = None

    _release_after_upgrade(upgrade)(request)
    assert transport.producer is None
    assert channel.requests == []


def test_a_plain_http_request_keeps_everything():
    transport, channel = StringTransport(), Channel()
    transport.registerProducer(channel, True)
    request = Request(transport, channel)
    _release_after_upgrade(lambda self: None)(request)
    assert transport.producer is channel
    assert channel.requests == [request]


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
