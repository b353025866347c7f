"""config.daphne_prepared_send: one framed text written to many daphne sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor

from config.daphne_prepared_send import PreparedSend, write_now


class Transport:
    """Not Twisted's TCP transport: only `write()` may be used on it."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


class FakeProtocol:
    """What PreparedSend uses of daphne's autobahn protocol."""

    STATE_OPEN = WebSocketProtocol.STATE_OPEN

    def __init__(self, state: int, *, compress: object = None) -> None:
        self.state = state
        self._perMessageCompress = compress
        self.send_queue: list[bytes] = []
        self.transport = Transport()
        self.through_autobahn: list[bytes] = []

    def sendPreparedMessage(self, prepared) -> None:
        self.through_autobahn.append(prepared.payloadHybi)


@pytest.fixture
def tcp_pair() -> Iterator[tuple[tcp.Server, socket.socket, MemoryReactor]]:
    """A real Twisted TCP server transport over a socket pair, on a reactor
    that only records which sockets want writing."""
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.settimeout(2)
    reactor = MemoryReactor()
    transport = tcp.Server(ours, Protocol(), ("127.0.0.1", 1), None, 1, reactor)
    yield transport, peer, reactor
    ours.close()
    peer.close()


def read_exactly(peer: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += peer.recv(size - len(data))
    return data


def test_a_text_is_framed_once_as_an_unmasked_rfc6455_text_frame():
    short = PreparedSend.prepare("héllo").payloadHybi
    assert short == b"\x81\x06" + "héllo".encode()
    text = "x" * 7500
    long = PreparedSend.prepare(text).payloadHybi
    assert long[:4] == b"\x81\x7e" + (7500).to_bytes(2, "big") and long[4:] == text.encode()


def test_the_same_bytes_go_to_every_open_socket_and_none_to_a_closing_one():
    prepared = PreparedSend.prepare('{"type":"leaderboard:update"}')
    open_a, open_b = (
        FakeProtocol(WebSocketProtocol.STATE_OPEN),
        FakeProtocol(WebSocketProtocol.STATE_OPEN),
    )
    closing = FakeProtocol(WebSocketProtocol.STATE_CLOSING)
    results = [PreparedSend(p).send(prepared) for p in (open_a, open_b, closing)]
    assert results == [True, True, False]
    assert open_a.transport.written == open_b.transport.written == [prepared.payloadHybi]
    assert closing.transport.written == []


def test_compression_or_autobahns_own_queue_keep_autobahns_path():
    prepared = PreparedSend.prepare("{}")
    compressing = FakeProtocol(WebSocketProtocol.STATE_OPEN, compress=object())
    queued = FakeProtocol(WebSocketProtocol.STATE_OPEN)
    queued.send_queue.append(b"earlier")
    for protocol in (compressing, queued):
        assert PreparedSend(protocol).send(prepared)
        assert protocol.through_autobahn == [prepared.payloadHybi]
        assert protocol.transport.written == []


def test_with_nothing_buffered_the_bytes_leave_at_once(tcp_pair):
    transport, peer, reactor = tcp_pair
    write_now(transport, b"frame")
    assert read_exactly(peer, 5) == b"frame"
    assert transport._tempDataBuffer == [] and transport not in reactor.getWriters()


def test_bytes_queued_ahead_go_first(tcp_pair):
    transport, peer, reactor = tcp_pair
    transport.write(b"joined;")  # buffered by Twisted, not sent yet
    write_now(transport, b"update")
    assert transport in reactor.getWriters()
    transport.doWrite()
    assert read_exactly(peer, 13) == b"joined;update"


def test_what_the_kernel_does_not_take_waits_in_twisteds_buffer(tcp_pair):
    transport, peer, reactor = tcp_pair
    data = bytes(range(256)) * 40_000  # 10 MB: more than any socket buffer
    write_now(transport, data)
    assert transport in reactor.getWriters()  # the rest is Twisted's to send
    received = b""
    while len(received) < len(data):
        received += peer.recv(1 << 20)
        transport.doWrite()
    assert received == data


def test_other_transports_use_their_own_write():
    transport = Transport()
    write_now(transport, b"frame")
    assert transport.written == [b"frame"]
